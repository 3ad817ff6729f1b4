"""Celery tasks: adapters that take ids and call one function of `drills.runner`.

Every task is acks-late: a worker that dies mid-task leaves the message to be redelivered,
and the runner's claim on the run row makes the redelivery harmless.
"""

import logging
import socket

from celery import shared_task

from drills import runner

log = logging.getLogger(__name__)


def _worker() -> str:
    return f"celery@{socket.gethostname()}"


@shared_task(acks_late=True)
def run_check(run_id: int) -> None:
    runner.check_run_execute(run_id=run_id, worker=_worker())


@shared_task(bind=True, acks_late=True)
def run_scheduled_check(self, check_id: int) -> None:
    """Sent by beat (drills.beat.CheckScheduler) to the cluster's queue."""
    runner.check_run_scheduled(check_id=check_id, task_id=self.request.id or "", worker=_worker())


@shared_task(acks_late=True)
def run_drill(run_id: int) -> None:
    runner.drill_run_execute(run_id=run_id, worker=_worker())


@shared_task(acks_late=True)
def recover_drill(run_id: int, stale_seconds: float | None = None) -> None:
    runner.drill_run_recover_abandoned(run_id=run_id, stale_seconds=stale_seconds, worker=_worker())


@shared_task
def drill_watchdog(stale_seconds: float | None = None) -> int:
    """Find drills whose worker died and send their recovery to the cluster's queue."""
    abandoned = runner.drills_abandoned(stale_seconds=stale_seconds)
    for run in abandoned:
        log.warning("drill %s on %s lost its worker; sending its recovery", run.pk, run.cluster.name)
        recover_drill.apply_async(args=[run.pk, stale_seconds], queue=run.cluster.worker_queue)
    return len(abandoned)
