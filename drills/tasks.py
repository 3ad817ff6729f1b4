"""Celery tasks: adapters that take ids and call one function of `drills.runner`.

Every task is acks-late: a worker that dies mid-task leaves the message to be redelivered,
and the runner's claim on the run row makes the redelivery harmless.
"""

import socket

from celery import shared_task

from drills import runner


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


@shared_task
def drill_watchdog(queue: str) -> int:
    """Sent by beat to every queue serving drills: recover this queue's drills whose worker died."""
    return len(runner.drills_recover_abandoned(queue=queue, worker=_worker()))
