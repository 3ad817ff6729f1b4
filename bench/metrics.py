"""/metrics benchmark: server time, queries and size of a scrape of 100 clusters.

Builds, in a PostgreSQL database of its own (created and dropped), the page benchmark's 100
clusters with their evidence chains and drills (`bench/pages.py`), then a day of probing on top:
every runnable check run every 15 minutes for 24 hours, one run in twenty ERROR (76,800 runs).
Then scrapes /metrics in-process with a viewer's token and prints the median and p95 of 20
scrapes (gzipped, as Prometheus asks), the queries, the bytes and the series.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_metrics CELERY_BROKER_URL=redis://127.0.0.1:6379/13 \
        .venv/bin/python bench/metrics.py [TOTAL] [BIG]
"""

import gc
import gzip
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

from bench.pages import MEASURED, build, measure, run_at_scale  # noqa: E402 (sets Django up)

PROBE_INTERVAL = timedelta(minutes=15)
RUNS_PER_CHECK = int(timedelta(days=1) / PROBE_INTERVAL)


def probe_a_day() -> int:
    """Append a day of scheduled runs and their evidence to every chain; returns the runs made."""
    from scorecard import evidence
    from scorecard.models import Check, CheckRun, Evidence, Scorecard

    start, made = timezone.now() - timedelta(days=1), 0
    for scorecard in Scorecard.objects.all():
        checks = Check.objects.runnable().filter(row__scorecard=scorecard).select_related("row")
        runs = [
            CheckRun(check_obj=check, state="done", requested_by="scheduler", created_at=at, started_at=at,
                     finished_at=at + timedelta(seconds=1 + check.pk % 7))
            for check in checks
            for at in (start + i * PROBE_INTERVAL for i in range(RUNS_PER_CHECK))
        ]  # fmt: skip
        runs.sort(key=lambda run: run.created_at)
        CheckRun.objects.bulk_create(runs)
        prev, seq, items = scorecard.head_hash, scorecard.head_count, []
        for run in runs:
            seq += 1
            item = Evidence(
                scorecard=scorecard, seq=seq, check_obj=run.check_obj, run=run, row_key=run.check_obj.row.key,
                status="ERROR" if seq % 20 == 0 else "PASS", summary=f"probe {seq}", measurements=MEASURED(seq),
                collected_by="celery@bench", collected_at=run.finished_at, prev_hash=prev,
            )  # fmt: skip
            item.hash = prev = evidence.evidence_hash(evidence.evidence_payload(item), prev)
            items.append(item)
        Evidence.objects.bulk_create(items)
        scorecard.head_count, scorecard.head_hash = seq, prev
        evidence.head_sign(scorecard)
        Scorecard.objects.filter(pk=scorecard.pk).update(
            head_count=seq, head_hash=prev, head_signature=scorecard.head_signature
        )
        made += len(runs)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return made


def main(total: int, big: int) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    from api.tokens import token_create
    from scorecard.roles import role_assign

    build(total, big)
    started = time.perf_counter()
    runs = probe_a_day()
    print(f"a day of probing: {runs:,} runs with their evidence in {time.perf_counter() - started:.0f} s")
    gc.collect()
    gc.freeze()  # as a fresh gunicorn worker: no builder's garbage for the collector to walk
    viewer = role_assign(username="bench", role="viewer", create=True)[0]
    token = token_create(actor=viewer, name="prometheus")[1]
    # Prometheus asks for gzip.
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_ACCEPT_ENCODING="gzip")
    url = reverse("metrics")
    median, p95, queries = measure(client, url)
    with CaptureQueriesContext(connection) as captured:
        zipped = client.get(url).content
    body = gzip.decompress(zipped)
    families = list(text_string_to_metric_families(body.decode()))
    series = sum(len(family.samples) for family in families)
    broker = next(s.value for f in families if f.name == "kafka_recovery_broker_up" for s in f.samples)
    print(f"/metrics, 100 clusters: median {median:.1f} ms, p95 {p95:.1f} ms, {queries} queries")
    print(f"size: {len(body):,} bytes, {len(zipped):,} gzipped; {series:,} series in {len(families)} metrics")
    print(f"broker up: {broker:.0f}")
    slowest = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:3]
    print("slowest queries: " + "; ".join(f"{float(q['time']) * 1000:.1f} ms {q['sql'][:60]}..." for q in slowest))


if __name__ == "__main__":
    run_at_scale(main)
