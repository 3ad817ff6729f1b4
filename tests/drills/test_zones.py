"""Queues per network zone (docs/operations.md): a worker runs only its own zone's clusters."""

import pytest

from drills.services import check_run_request
from drills.tasks import run_check
from scorecard.models import CheckRun, Evidence
from tests.conftest import celery_env, start_worker, stop_worker, unique_queue, wait_for
from tests.factories import check_of, register

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("requesters")]


def state(run: CheckRun) -> str:
    run.refresh_from_db()
    return run.state


def test_a_worker_serves_only_its_zones_queue_and_the_other_zone_waits_for_its_own(shared_sandbox, django_db_blocker):
    env = celery_env(django_db_blocker)
    queue_a, queue_b = unique_queue("zone-a"), unique_queue("zone-b")
    in_a = register("in-a", bootstrap=shared_sandbox.bootstrap, worker_queue=queue_a)
    in_b = register("in-b", bootstrap=shared_sandbox.bootstrap, worker_queue=queue_b)
    run_b = check_run_request(check=check_of(in_b), requested_by="test")
    run_a = check_run_request(check=check_of(in_a), requested_by="test")
    workers = [start_worker(env, queue_a)]
    try:
        wait_for(lambda: state(run_a) == CheckRun.State.DONE, timeout=60, message="zone a's run")
        # Zone a's worker ran the later run and left zone b's queued: it never reaches zone b.
        assert state(run_b) == CheckRun.State.QUEUED
        assert not Evidence.objects.filter(run=run_b).exists()
        workers.append(start_worker(env, queue_b))
        wait_for(lambda: state(run_b) == CheckRun.State.DONE, timeout=60, message="zone b's run")
    finally:
        for worker in workers:
            stop_worker(worker)
    received = [worker.log().count(f"{run_check.name}[") for worker in workers]
    assert received == [2, 2]  # each worker saw one run: "received" and "succeeded"
