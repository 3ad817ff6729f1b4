"""Evidence chain benchmark: what the keyed chain costs as it grows.

Appends N evidence items to one scorecard (each under the scorecard's lock, moving its signed
head), then times: the page's verification when nothing is new, and after 10 new links; the
full walk (beat's, hourly); and the one-query state for a list of scorecards. Runs against
DATABASE_URL (PostgreSQL recommended) in a database of its own that it creates and drops.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/chain.py [N]
"""

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SCORECARD_MODE", "test")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test.utils import setup_databases, teardown_databases  # noqa: E402


def timed(fn, repeat: int = 5) -> float:
    """Median seconds of `repeat` calls."""
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def main(n: int) -> None:
    from scorecard import evidence
    from scorecard.models import Check, Cluster, Scorecard
    from scorecard.services import cluster_register

    scorecard = cluster_register(cluster=Cluster(name="bench", bootstrap_servers="127.0.0.1:9092"))
    check = Check.objects.select_related("row").filter(row__scorecard=scorecard).first()
    started = time.perf_counter()
    for i in range(n):
        evidence.evidence_append(check=check, status="PASS", summary="ok", measurements={"i": i}, collected_by="b")
    append_s = time.perf_counter() - started
    print(f"evidence items:                     {n:,}")
    print(f"append (lock, link, signed head):   {append_s / n * 1000:.2f} ms each, {n / append_s:,.0f}/s")
    print(f"full walk (beat):                   {timed(lambda: evidence.chain_walk(scorecard=scorecard), 3):.3f} s")
    print(
        f"page verification, nothing new:     {timed(lambda: evidence.chain_verify(scorecard=scorecard)) * 1000:.1f} ms"
    )

    def ten_new():
        for i in range(10):
            evidence.evidence_append(check=check, status="PASS", summary="ok", measurements={"i": i}, collected_by="b")
        started = time.perf_counter()
        evidence.chain_verify(scorecard=scorecard)
        return time.perf_counter() - started

    print(f"page verification, 10 new links:    {statistics.median(ten_new() for _ in range(5)) * 1000:.1f} ms")
    for _ in range(99):
        cluster_register(cluster=Cluster(name=f"bench-{_}", bootstrap_servers="127.0.0.1:9092"))
    cards = list(Scorecard.objects.all())
    print(f"list state, {len(cards)} scorecards:        {timed(lambda: evidence.chain_states(cards)) * 1000:.1f} ms")
    assert evidence.chain_walk(scorecard=scorecard).ok


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    config = setup_databases(verbosity=0, interactive=False, keepdb=False)
    try:
        print(f"database: {connection.vendor}")
        main(count)
    finally:
        teardown_databases(config, verbosity=0)
