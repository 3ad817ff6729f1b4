"""Page benchmark: server time and queries of every page at a year of evidence.

Builds, in a PostgreSQL database of its own (created and dropped), 100 clusters with their
scorecards and 1,000,000 evidence items in valid keyed chains (bulk inserted), one cluster
holding 250,000, plus drills and audit events; then requests each page in-process (Django's
test client, so the figure is the server's time without the network) and prints the median
and p95 of 20 requests and the queries each made.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/pages.py [TOTAL] [BIG]
"""

import gc
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SCORECARD_MODE", "test")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_databases, teardown_databases  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils import timezone  # noqa: E402

CLUSTERS = 100


def MEASURED(seq: int) -> dict:  # noqa: N802 (a table, read as one)
    """Measurements the trend charts read, whatever the check."""
    return {"produce_ms_p99": seq % 97, "max_lag_records": seq % 1000, "cost_total": 1000 + seq % 500}


REQUESTS = 20
BATCH = 10_000


def build(total: int, big: int) -> dict:
    """100 clusters, `total` evidence items, `big` of them on the first cluster."""
    from drills.models import DrillRun
    from scorecard import evidence
    from scorecard.models import Check, Cluster, Evidence, Scorecard
    from scorecard.services import cluster_register

    started = time.perf_counter()
    scorecards = [
        cluster_register(cluster=Cluster(name=f"cluster-{i:03d}", bootstrap_servers=f"10.0.{i // 250}.{i % 250}:9092"))
        for i in range(CLUSTERS)
    ]
    rest = (total - big) // (CLUSTERS - 1)
    now = timezone.now()
    for index, scorecard in enumerate(scorecards):
        count = big if index == 0 else rest
        checks = list(Check.objects.runnable().filter(row__scorecard=scorecard).select_related("row"))
        prev, batch = evidence.GENESIS_HASH, []
        step = timedelta(days=365) / max(count, 1)
        for seq in range(1, count + 1):
            check = checks[seq % len(checks)]
            item = Evidence(
                scorecard=scorecard, seq=seq, check_obj=check, row_key=check.row.key,
                status="PASS" if seq % 50 else "WARN", summary=f"probe {seq}", measurements=MEASURED(seq),
                collected_by="celery@bench", collected_at=now - (count - seq) * step, prev_hash=prev,
            )  # fmt: skip
            item.hash = evidence.evidence_hash(evidence.evidence_payload(item), prev)
            prev = item.hash
            batch.append(item)
            if len(batch) == BATCH:
                Evidence.objects.bulk_create(batch)
                batch = []
        Evidence.objects.bulk_create(batch)
        scorecard.head_count, scorecard.head_hash = count, prev
        evidence.head_sign(scorecard)
        Scorecard.objects.filter(pk=scorecard.pk).update(
            head_count=count, head_hash=prev, head_signature=scorecard.head_signature
        )
        for scenario in ("broker_loss", "zone_loss", "leader_change"):
            figures = {"write_rto_s": 3.1, "rpo_acked_lost": 0}
            DrillRun.objects.create(
                cluster=scorecard.cluster,
                scenario=scenario,
                state="done",
                outcome="passed",
                requested_by="b",
                figures=figures,
            )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"built {CLUSTERS} clusters, {total:,} evidence ({big:,} on one) in {time.perf_counter() - started:.0f} s")
    return {"big": scorecards[0], "small": scorecards[1], "others": scorecards[2:4]}


def measure(client: Client, url: str) -> tuple[float, float, int]:
    times, queries = [], 0
    for _ in range(REQUESTS):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            times.append(time.perf_counter() - started)
        assert response.status_code == 200, (url, response.status_code)
        queries = len(captured)
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.95) - 1] * 1000, queries


def main(total: int, big: int) -> None:
    from drills.models import DrillRun
    from scorecard.evidence import chain_walk_all
    from scorecard.models import Check, Evidence, Row
    from scorecard.roles import role_assign
    from scorecard.trends import readiness_sample_all

    reverse("scorecard-index")  # load the pages' code now: the build takes minutes
    data = build(total, big)
    # A server process does not hold the builder's garbage: collect it and keep the collector
    # from walking what is left on every full collection, as a fresh gunicorn worker would.
    gc.collect()
    gc.freeze()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(role_assign(username="bench", role="viewer", create=True)[0])
    big_card, small_card, others = data["big"], data["small"], data["others"]
    row = Row.objects.get(scorecard=big_card, key="durability")
    check = Check.objects.filter(row=row).first()
    history = Evidence.objects.filter(scorecard=big_card, row_key=row.key).order_by("-seq")
    deep = history.values_list("seq", flat=True)[min(HISTORY_DEPTH, history.count() - 1)]
    walked = time.perf_counter()
    chain_walk_all()  # as beat does every hour; pages then verify only what is new
    print(f"full walk of every chain: {time.perf_counter() - walked:.1f} s")
    pages = {
        "overview of 100 clusters": reverse("scorecard-index"),
        f"scorecard, {big:,} evidence": reverse("scorecard-detail", args=[big_card.cluster_id]),
        f"scorecard, {(total - big) // (CLUSTERS - 1):,} evidence": reverse(
            "scorecard-detail", args=[small_card.cluster_id]
        ),
        "row history, newest page": reverse("scorecard-row-evidence", args=[row.pk]),
        "row history, 200 pages back": reverse("scorecard-row-evidence", args=[row.pk]) + f"?before={deep}",
        "check page": reverse("scorecard-check", args=[check.pk]),
        "drills page": reverse("drills-list", args=[big_card.cluster_id]),
        "drill page": reverse("drills-detail", args=[DrillRun.objects.filter(cluster=big_card.cluster).first().pk]),
        "audit trail": reverse("scorecard-audit"),
        "trends, 365 days": reverse("scorecard-trends", args=[big_card.cluster_id]) + "?days=365",
        "trends, 7 days": reverse("scorecard-trends", args=[big_card.cluster_id]) + "?days=7",
        "compare 4 clusters": reverse("scorecard-compare")
        + "?"
        + "&".join(f"clusters={card.cluster_id}" for card in [big_card, small_card, *others]),
    }
    readiness_sample_all()
    print(f"{'page':34} {'median ms':>10} {'p95 ms':>8} {'queries':>8}")
    for name, url in pages.items():
        median, p95, queries = measure(client, url)
        print(f"{name:34} {median:10.1f} {p95:8.1f} {queries:8d}")


HISTORY_DEPTH = 200 * 20  # page 200 of 20 items


def run_at_scale(main) -> None:
    """main(TOTAL, BIG) from the command line (default a million evidence items, a quarter on
    one cluster), in a database of its own, dropped afterwards."""
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    big = int(sys.argv[2]) if len(sys.argv) > 2 else 250_000
    config = setup_databases(verbosity=0, interactive=False, keepdb=False)
    try:
        main(total, big)
    finally:
        teardown_databases(config, verbosity=0)


if __name__ == "__main__":
    run_at_scale(main)
