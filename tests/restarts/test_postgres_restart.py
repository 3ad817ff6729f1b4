"""PostgreSQL restarted under load: a test-owned cluster (initdb, its own port), a real worker
running probes and a real beat against it. Every session is cut mid-probe and the server stays
down for a few seconds; the worker and beat outlive it, each run ends with its evidence once."""

import json
import subprocess
import sys
import time

import psycopg
import pytest

from tests.conftest import ROOT, Worker, celery_env, start_worker, stop_worker, unique_queue, wait_for
from tests.restarts.test_beat_kill import Beat
from tests.restarts.test_worker_kill import slow_brokers

pytestmark = pytest.mark.django_db(transaction=True)

# Run against the test's PostgreSQL: a scorecard with four runs of cluster health queued through
# the web's service, and bootstrap endpoints scheduled every 4 s by beat.
SETUP = """
import json
import sys
import django
django.setup()
from django.utils import timezone
from drills.services import check_run_request
from scorecard.models import Check
from scorecard.roles import role_assign
from tests.factories import check_of, register
role_assign(username="sre", role="operator", create=True)
scorecard = register(bootstrap=sys.argv[1], worker_queue=sys.argv[2], expected_brokers=3)
health, scheduled = check_of(scorecard), check_of(scorecard, "bootstrap_endpoints")
Check.objects.filter(row__scorecard=scorecard).exclude(pk__in=[health.pk, scheduled.pk]).update(
    not_applicable=True, not_applicable_reason="two checks in this test")
Check.objects.filter(pk=health.pk).update(interval_seconds=86400, last_scheduled_at=timezone.now())
Check.objects.filter(pk=scheduled.pk).update(interval_seconds=4)
runs = [check_run_request(check=health, requested_by="sre").pk for _ in range(4)]
print(json.dumps({"runs": runs, "scorecard": scorecard.pk}))
"""

CHAIN = """
import sys
import django
django.setup()
from scorecard.evidence import chain_verify
from scorecard.models import Scorecard
result = chain_verify(scorecard=Scorecard.objects.get(pk=int(sys.argv[1])))
print(result.ok, result.count)
"""


def django_run(env: dict, script: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", script, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"the script failed: {done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def rows(url: str, sql: str, *params) -> list[tuple]:
    with psycopg.connect(url, connect_timeout=5) as db:
        return db.execute(sql, params).fetchall()


def test_a_postgresql_restart_under_load_leaves_the_worker_and_beat_running_and_every_run_with_one_evidence(
    private_postgres, private_sandbox, django_db_blocker
):
    private_postgres.psql("postgres", "CREATE DATABASE scorecard")
    url = private_postgres.url("scorecard")
    env = {**celery_env(django_db_blocker), "DATABASE_URL": url}
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], cwd=ROOT, env=env, check=True,
                   timeout=180)  # fmt: skip
    queue = unique_queue("pg")
    worker: Worker = start_worker(env, queue)
    beat = Beat(env)
    try:
        slow_brokers(private_sandbox, 300)
        setup = json.loads(django_run(env, SETUP, private_sandbox.bootstrap, queue))
        runs = setup["runs"]
        beat.start()

        def state(run_id: int) -> str:
            return rows(url, "SELECT state FROM scorecard_checkrun WHERE id = %s", run_id)[0][0]

        wait_for(lambda: state(runs[0]) == "running", timeout=30, message="the first probe")
        private_postgres.stop("immediate")  # every session cut, mid-probe
        time.sleep(6)  # down past the probe's end
        # ...and until beat has tried to read its schedule (it reloads every 5 s, later under load).
        wait_for(
            lambda: "the schedule could not be read" in "".join(path.read_text() for path in beat.logs),
            timeout=30,
            message="beat to meet the outage",
        )
        private_postgres.start()
        restarted = time.monotonic()
        slow_brokers(private_sandbox, 0)

        wait_for(lambda: all(state(r) == "done" for r in runs), timeout=45, message="every queued run to finish")
        print(f"PostgreSQL back to the last queued run's evidence: {time.monotonic() - restarted:.1f} s")
        # Beat read the schedule again and went on sending the scheduled check.
        since = (
            "SELECT count(*) FROM scorecard_checkrun WHERE requested_by = 'schedule' "
            "AND created_at > now() - %s::interval"
        )
        wait_for(lambda: rows(url, since, "3 seconds")[0][0] > 0, timeout=30, message="a scheduled run after")
        assert beat.process.poll() is None and worker.process.poll() is None
    finally:
        beat.stop()
        stop_worker(worker)

    per_run = rows(url, "SELECT r.id, r.state, count(e.id) FROM scorecard_checkrun r "
                        "LEFT JOIN scorecard_evidence e ON e.run_id = r.id GROUP BY r.id, r.state")  # fmt: skip
    assert all(evidence == 1 for _, state, evidence in per_run if state == "done"), per_run
    assert all(state == "done" for _, state, _ in per_run), per_run
    logs = worker.log()
    assert "Retry in" in logs, "the probe that lost its database session was tried again"
    ok, count = django_run(env, CHAIN, str(setup["scorecard"])).split()
    assert ok == "True" and int(count) == sum(evidence for *_, evidence in per_run)
