"""Celery tasks: adapters that take ids and call one function of `drills.runner`.

Every task is acks-late: a worker that dies mid-task leaves the message to be redelivered,
and the runner's claim on the run row makes the redelivery harmless.
"""

import socket

from celery import shared_task
from django.db import InterfaceError, OperationalError

from drills import runner

# PostgreSQL restarting or failing over under a probe: the claim, and the evidence with the
# run marked done, are each one transaction, so the task is simply tried again (after a random
# wait of up to 1, 2, 4... s, at most 30 s: about 3 minutes in all) and the retry may take
# over the run its failed try claimed. Each try runs the probe again: results are not kept
# across tries. A run still RUNNING after the last try is failed by beat's sweep.
PROBE_RETRY = {
    "autoretry_for": (InterfaceError, OperationalError),
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "max_retries": 10,
}


def _worker() -> str:
    return f"celery@{socket.gethostname()}"


def _redelivered(task) -> bool:
    """Whether an earlier delivery of this work ended without finishing it: Redis marks a
    message it restores (its worker died, or the visibility timeout passed), a retry counts."""
    return bool((task.request.delivery_info or {}).get("redelivered")) or task.request.retries > 0


@shared_task(bind=True, acks_late=True, **PROBE_RETRY)
def run_check(self, run_id: int) -> None:
    runner.check_run_execute(run_id=run_id, worker=_worker(), redelivered=_redelivered(self))


@shared_task(bind=True, acks_late=True, **PROBE_RETRY)
def run_scheduled_check(self, check_id: int) -> None:
    """Sent by beat (drills.beat.CheckScheduler) to the cluster's queue."""
    runner.check_run_scheduled(
        check_id=check_id, task_id=self.request.id or "", worker=_worker(), redelivered=_redelivered(self)
    )


@shared_task(acks_late=True)
def run_drill(run_id: int) -> None:
    runner.drill_run_execute(run_id=run_id, worker=_worker())


@shared_task
def drill_watchdog(queue: str) -> int:
    """Sent by beat to every queue serving drills: recover this queue's drills whose worker died."""
    return len(runner.drills_recover_abandoned(queue=queue, worker=_worker()))
