"""Beat SIGKILLed and restarted: its schedule state is the Check table (drills/beat.py), so a
restarted beat neither sends a check twice for one due time nor forgets it."""

import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from scorecard.models import Check, CheckRun, Evidence
from tests.conftest import ROOT, celery_env, start_worker, stop_worker, unique_queue, wait_for
from tests.factories import check_of, register

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("requesters")]

INTERVAL = 3


class Beat:
    """`celery beat` processes started one after another, each logging to its own file."""

    def __init__(self, env: dict):
        self.env = {**env, "PYTHONUNBUFFERED": "1"}  # its log is read after a SIGKILL
        self.process: subprocess.Popen | None = None
        self.logs: list[Path] = []

    def start(self) -> None:
        log_path = Path(tempfile.mkdtemp(prefix="beat-")) / "beat.log"
        with open(log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"],
                cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.logs.append(log_path)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.kill()


def scheduled(check) -> list[CheckRun]:
    return list(CheckRun.objects.filter(check_obj=check, requested_by="schedule").order_by("created_at"))


def test_a_killed_and_restarted_beat_sends_each_due_time_once_and_keeps_the_schedule_going(
    redis_server, shared_sandbox, django_db_blocker
):
    redis = redis_server(appendonly=False)
    env = {**celery_env(django_db_blocker), "CELERY_BROKER_URL": redis.url}
    queue = unique_queue("beat")
    worker = start_worker(env, queue)
    beat = Beat(env)
    try:
        check = check_of(register(bootstrap=shared_sandbox.bootstrap, worker_queue=queue, expected_brokers=3))
        Check.objects.filter(row__scorecard=check.row.scorecard).exclude(pk=check.pk).update(
            not_applicable=True, not_applicable_reason="one scheduled check in this test"
        )
        Check.objects.filter(pk=check.pk).update(interval_seconds=INTERVAL)
        beat.start()
        wait_for(lambda: scheduled(check), timeout=30, message="a scheduled run")

        # Killed just after a send, restarted at once: the send is not repeated.
        sent = len(scheduled(check))
        wait_for(lambda: len(scheduled(check)) > sent, timeout=20, message="a send")
        beat.kill()
        beat.start()
        resumed = len(scheduled(check))
        wait_for(lambda: len(scheduled(check)) >= resumed + 2, timeout=30, message="runs after the restart")

        # Killed and kept down past a due time: restarted, it sends the missed check once, then
        # goes on at the interval.
        beat.kill()
        down = len(scheduled(check))
        time.sleep(INTERVAL * 2 + 1)  # the outage: two due times pass with no beat
        assert len(scheduled(check)) == down
        beat.start()
        wait_for(lambda: len(scheduled(check)) >= down + 2, timeout=30, message="runs after the outage")
        beat.kill()
        runs = scheduled(check)
        wait_for(lambda: all(r.state == CheckRun.State.DONE for r in scheduled(check)), timeout=30, message="runs")
    finally:
        beat.stop()
        stop_worker(worker)

    gaps = [round((b.created_at - a.created_at).total_seconds(), 2) for a, b in zip(runs, runs[1:], strict=False)]
    print(f"gaps between scheduled runs: {gaps}")
    # One run per due time: no two runs close together (a due time sent twice would be picked up
    # back to back); half the interval leaves room for the worker's pick-up jitter under load.
    assert min(gaps) > INTERVAL / 2, gaps
    # The outage shows as one long gap, not as a burst of catch-up runs after it.
    assert max(gaps) > INTERVAL * 2
    assert len({r.task_id for r in runs}) == len(runs)
    assert Evidence.objects.filter(run__in=runs).count() == len(runs)
    logs = "".join(path.read_text() for path in beat.logs)
    assert logs.count("beat: Starting...") == 3
