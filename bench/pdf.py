"""Audit PDF benchmark: twelve months of one cluster (10,000 evidence items listed, 50 drills
with their events and 6,000-record timelines), exported as the command and the page do. Prints
seconds, peak memory, pages and bytes. Runs in a PostgreSQL database of its own.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/pdf.py
"""

import io
import os
import resource
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SCORECARD_MODE", "test")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # noqa: E402

django.setup()

from django.test.utils import setup_databases, teardown_databases  # noqa: E402
from django.utils import timezone  # noqa: E402

EVIDENCE = 10_000
DRILLS = 50


def main() -> None:
    from pypdf import PdfReader

    from bench.pages import MEASURED
    from drills.models import DrillRun, DrillTimeline
    from scorecard import evidence
    from scorecard.models import Check, Cluster, Evidence, Scorecard
    from scorecard.report import render_pdf, report_context
    from scorecard.services import cluster_register

    scorecard = cluster_register(cluster=Cluster(name="payments", bootstrap_servers="10.0.0.1:9092"))
    checks = list(Check.objects.runnable().filter(row__scorecard=scorecard).select_related("row"))
    now = timezone.now()
    prev, items = evidence.GENESIS_HASH, []
    for seq in range(1, EVIDENCE + 1):
        check = checks[seq % len(checks)]
        item = Evidence(scorecard=scorecard, seq=seq, check_obj=check, row_key=check.row.key, status="PASS",
                        summary=f"probe {seq}: all fine", measurements=MEASURED(seq), collected_by="celery@bench",
                        collected_at=now - timedelta(days=365) * (1 - seq / EVIDENCE), prev_hash=prev)  # fmt: skip
        item.hash = prev = evidence.evidence_hash(evidence.evidence_payload(item), prev)
        items.append(item)
    Evidence.objects.bulk_create(items, batch_size=5000)
    scorecard.head_count, scorecard.head_hash = EVIDENCE, prev
    evidence.head_sign(scorecard)
    Scorecard.objects.filter(pk=scorecard.pk).update(head_count=EVIDENCE, head_hash=prev,
                                                     head_signature=scorecard.head_signature)  # fmt: skip
    events = [
        {"kind": kind, "at_s": i}
        for i, kind in enumerate(
            ("phase", "preflight_passed", "fault", "action", "fault_confirmed", "action", "recovery_confirmed", "phase")
        )
    ]
    # A drill's timeline: 600 records/s for 10 s, a 3 s outage from second 2.
    records = [[r % 6, r // 6, r / 0.6, r / 0.6 + (3000 if 1200 <= r < 3000 else 8), r / 0.6 + 20, False]
               for r in range(6000)]  # fmt: skip
    timeline = {"records": records, "fault_started_ms": 2000, "fault_ms": 2010, "recovery_started_ms": 5000,
                "recovery_ms": 5010}  # fmt: skip
    for i in range(DRILLS):
        run = DrillRun.objects.create(
            cluster=scorecard.cluster, scenario=("broker_loss", "zone_loss", "leader_change")[i % 3], state="done",
            outcome="passed", requested_by="bench", events=events, created_at=now - timedelta(days=7 * i),
            finished_at=now - timedelta(days=7 * i), figures={"fault_at_s": 2.0, "write_rto_s": 3.1 + i % 5,
            "read_rto_s": 3.3, "rpo_acked_lost": 0, "reelection_s": 1.2},
            targets={"write_rto_s": {"value": 30, "source": "Client continuity row"}},
        )  # fmt: skip
        DrillTimeline.objects.create(run=run, data=timeline)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    context = report_context(scorecards=[Scorecard.objects.get(pk=scorecard.pk)], since=now - timedelta(days=366),
                             until=now + timedelta(minutes=1), generated_by="bench")  # fmt: skip
    collected = time.perf_counter() - started
    pdf = render_pdf(context)
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    pages = len(PdfReader(io.BytesIO(pdf)).pages)
    print(f"evidence listed {EVIDENCE:,}, drills {DRILLS}")
    print(f"collecting {collected:.1f} s, rendering {seconds - collected:.1f} s")
    print(f"export: {seconds:.1f} s, peak memory {peak / 1024:.0f} MB (before {before / 1024:.0f} MB)")
    print(f"PDF: {pages} pages, {len(pdf) / 1e6:.2f} MB")


if __name__ == "__main__":
    config = setup_databases(verbosity=0, interactive=False, keepdb=False)
    try:
        main()
    finally:
        teardown_databases(config, verbosity=0)
