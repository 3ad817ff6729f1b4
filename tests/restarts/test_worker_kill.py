"""A worker SIGKILLed mid-probe: its pool process alone (the OOM killer's usual pick), or the
whole worker (a node lost). Real workers on a test-owned Redis, a real sandbox cluster."""

import subprocess
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from drills.services import runs_abandoned_expire
from scorecard.evidence import chain_verify
from scorecard.models import CheckRun, Evidence
from tests.conftest import celery_env, start_worker, stop_worker, unique_queue, wait_for
from tests.factories import check_of, register
from tests.restarts.conftest import kill_group, pool_processes, post_pages

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("requesters")]


def slow_brokers(sandbox, rtt_ms: int) -> None:
    """Every broker answers `rtt_ms` late: a cluster health probe then takes seconds."""
    for broker in (1, 2, 3):
        sandbox.control.call("latency", broker=broker, rtt_ms=rtt_ms)


def state_of(run: CheckRun) -> str:
    run.refresh_from_db()
    return run.state


def redis_cli(redis, *args: str) -> str:
    return subprocess.run(["redis-cli", "-p", str(redis.port), *args], capture_output=True, text=True).stdout


@pytest.fixture
def workers():
    started = []
    yield started
    for worker in started:
        stop_worker(worker)


def test_a_pool_process_killed_mid_probe_is_redelivered_at_once_and_its_run_ends_with_one_evidence(
    redis_server, private_sandbox, workers, django_db_blocker
):
    redis = redis_server(appendonly=False)
    env = {**celery_env(django_db_blocker), "CELERY_BROKER_URL": redis.url}
    queue = unique_queue("kill")
    workers += [start_worker(env, queue), start_worker(env, queue)]
    check = check_of(register(bootstrap=private_sandbox.bootstrap, worker_queue=queue, expected_brokers=3))
    slow_brokers(private_sandbox, 400)
    assert post_pages(env, reverse("drills-run-check", args=[check.pk])) == [302]
    run = CheckRun.objects.get(check_obj=check)
    wait_for(lambda: state_of(run) == CheckRun.State.RUNNING, timeout=30, message="the probe to start")
    holder = next(w for w in workers if "run_check[" in w.log())
    (pool,) = pool_processes(holder)
    subprocess.run(["kill", "-KILL", str(pool)], check=True)
    slow_brokers(private_sandbox, 0)

    # reject_on_worker_lost puts the message back; the redelivery takes the run over.
    wait_for(lambda: state_of(run) == CheckRun.State.DONE, timeout=40, message="the redelivered run")
    evidence = Evidence.objects.get(run=run)
    assert evidence.status == "PASS", evidence.summary
    logs = "".join(w.log() for w in workers)
    assert logs.count("run_check[") >= 2 and "WorkerLostError" in holder.log()
    assert holder.process.poll() is None, "the worker's main process lives on with a new pool process"
    assert chain_verify(scorecard=check.row.scorecard).ok


def test_a_whole_worker_killed_mid_probe_holds_back_only_its_run_which_beat_fails_and_the_late_redelivery_ignores(
    redis_server, private_sandbox, workers, django_db_blocker
):
    redis = redis_server(appendonly=False)
    env = {**celery_env(django_db_blocker), "CELERY_BROKER_URL": redis.url}
    queue = unique_queue("node")
    workers.append(start_worker(env, queue))
    check = check_of(register(bootstrap=private_sandbox.bootstrap, worker_queue=queue, expected_brokers=3))
    slow_brokers(private_sandbox, 400)
    page = reverse("drills-run-check", args=[check.pk])
    assert post_pages(env, page) == [302]
    run = CheckRun.objects.get(check_obj=check)
    wait_for(lambda: state_of(run) == CheckRun.State.RUNNING, timeout=30, message="the probe to start")
    kill_group(workers[0].process)
    slow_brokers(private_sandbox, 0)

    # A second worker on the queue takes later work at once: the dead one held nothing else.
    workers.append(start_worker(env, queue))
    assert post_pages(env, page) == [302]
    later = CheckRun.objects.filter(check_obj=check).exclude(pk=run.pk).get()
    wait_for(lambda: state_of(later) == CheckRun.State.DONE, timeout=30, message="the later run")
    # The killed run's message waits in Redis, unacknowledged, for the visibility timeout.
    assert state_of(run) == CheckRun.State.RUNNING
    assert redis_cli(redis, "HLEN", "unacked").strip() == "1"
    assert runs_abandoned_expire() == 0, "a run within its hard time limit is left alone"

    # The hard time limit (plus a minute) passes: beat's sweep fails the run with the reason.
    run.refresh_from_db()
    assert run.time_limit_at == run.started_at + timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    CheckRun.objects.filter(pk=run.pk).update(time_limit_at=timezone.now() - timedelta(seconds=61))
    assert runs_abandoned_expire() == 1
    run.refresh_from_db()
    assert run.state == CheckRun.State.FAILED and "its worker stopped without a result" in run.error

    # The visibility timeout passes (Redis's clock for the message, set back): the next worker
    # to start gives the message back; its delivery finds the run failed and writes nothing.
    tag = redis_cli(redis, "ZRANGE", "unacked_index", "0", "-1").split()[0]
    score = float(redis_cli(redis, "ZSCORE", "unacked_index", tag)) - settings.CELERY_VISIBILITY_TIMEOUT - 1
    redis_cli(redis, "ZADD", "unacked_index", "XX", str(score), tag)
    stop_worker(workers[1])
    workers.append(start_worker(env, queue))
    wait_for(lambda: f"run {run.pk} already claimed or gone" in workers[2].log(), timeout=30, message="the redelivery")
    assert not Evidence.objects.filter(run=run).exists()
    assert Evidence.objects.filter(run=later).count() == 1
    assert chain_verify(scorecard=check.row.scorecard).ok
