"""Redis killed and restarted while probe runs are queued and one is running: a real worker and
the web's enqueue path on a test-owned redis-server, with and without an append-only file."""

import time

import pytest
from django.urls import reverse

from drills.services import runs_never_queued_expire
from scorecard.evidence import chain_verify
from scorecard.models import CheckRun, Evidence
from tests.conftest import celery_env, start_worker, stop_worker, unique_queue, wait_for
from tests.factories import check_of, register
from tests.restarts.conftest import post_pages
from tests.restarts.test_worker_kill import slow_brokers, state_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("requesters")]

ENDED = (CheckRun.State.DONE, CheckRun.State.FAILED)


@pytest.mark.parametrize("appendonly", [False, True], ids=["no-persistence", "appendonly"])
def test_a_redis_restart_leaves_every_run_with_one_evidence_or_failed_with_the_reason(
    appendonly, redis_server, private_sandbox, django_db_blocker, settings
):
    redis = redis_server(appendonly=appendonly)
    env = {**celery_env(django_db_blocker), "CELERY_BROKER_URL": redis.url}
    queue = unique_queue("redis")
    worker = start_worker(env, queue)
    try:
        check = check_of(register(bootstrap=private_sandbox.bootstrap, worker_queue=queue, expected_brokers=3))
        slow_brokers(private_sandbox, 300)
        page = reverse("drills-run-check", args=[check.pk])
        assert post_pages(env, *[page] * 5) == [302] * 5
        runs = list(CheckRun.objects.filter(check_obj=check).order_by("pk"))
        wait_for(lambda: state_of(runs[0]) == CheckRun.State.RUNNING, timeout=30, message="the first probe")
        assert redis.llen(queue) == 4, "four runs wait in Redis while the first one runs"
        redis.restart()
        restarted = time.monotonic()
        slow_brokers(private_sandbox, 0)

        # The worker reconnects by itself and takes later work.
        assert post_pages(env, page) == [302]
        marker = CheckRun.objects.filter(check_obj=check).latest("pk")
        wait_for(lambda: state_of(marker) == CheckRun.State.DONE, timeout=45, message="work queued after the restart")
        print(f"restart to a later run's evidence: {time.monotonic() - restarted:.1f} s")
        if appendonly:
            # The append-only file kept the queued messages: every run gets its evidence.
            wait_for(lambda: all(state_of(r) == CheckRun.State.DONE for r in runs), timeout=30, message="the runs")
        else:
            # A Redis without persistence forgot the queued messages: the runs stay queued until
            # beat's sweep (RUN_QUEUE_TIMEOUT_SECONDS, here 0 s) fails them with the reason.
            assert [state_of(r) for r in runs[1:]] == [CheckRun.State.QUEUED] * 4
            settings.RUN_QUEUE_TIMEOUT_SECONDS = 0
            assert runs_never_queued_expire() == (4, 0)

        for run in [*runs, marker]:
            assert state_of(run) in ENDED
            evidence = Evidence.objects.filter(run=run).count()
            if run.state == CheckRun.State.DONE:
                assert evidence == 1
            else:
                assert evidence == 0 and "not picked up by a worker within 0 s" in run.error
        # The run that was running when Redis went down finished and wrote its evidence once.
        assert runs[0].state == CheckRun.State.DONE
        assert Evidence.objects.filter(check_obj=check).count() == (6 if appendonly else 2)
        assert chain_verify(scorecard=check.row.scorecard).ok
    finally:
        stop_worker(worker)
