"""The probe task in a real `celery worker` process over Redis, writing to PostgreSQL."""

import pytest

from drills import kafka
from drills.services import check_run_request
from drills.tasks import run_check
from scorecard.evidence import chain_verify
from scorecard.models import CheckRun, Evidence, ProbeKind
from tests.conftest import wait_for
from tests.factories import check_of, register

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("requesters")]


def run_now(check) -> CheckRun:
    # Outside an atomic block on_commit fires at once: this is the real enqueue path.
    return check_run_request(check=check, requested_by="test")


def finished(run: CheckRun) -> CheckRun | None:
    run.refresh_from_db()
    return run if run.state in (CheckRun.State.DONE, CheckRun.State.FAILED) else None


def test_probes_run_in_the_worker_and_their_evidence_lands_in_postgresql(shared_worker, shared_sandbox):
    scorecard = register(bootstrap=shared_sandbox.bootstrap, worker_queue=shared_worker.queue, expected_brokers=3)
    runs = [run_now(check_of(scorecard, kind)) for kind in (ProbeKind.CLUSTER_HEALTH, ProbeKind.ACK_WRITE)]
    for run in runs:
        wait_for(lambda run=run: finished(run), timeout=90, message=f"run {run.pk}")
        assert run.state == CheckRun.State.DONE
        assert run.worker.startswith("celery@")
        evidence = Evidence.objects.get(run=run)
        assert evidence.status == "PASS", evidence.summary
    health = Evidence.objects.get(run=runs[0])
    assert health.measurements["broker_count"] == 3
    assert Evidence.objects.get(run=runs[1]).measurements["missing"] == 0
    assert chain_verify(scorecard=scorecard).count == 2


def test_a_second_delivery_of_the_same_run_appends_no_second_evidence(shared_worker, shared_sandbox):
    scorecard = register(bootstrap=shared_sandbox.bootstrap, worker_queue=shared_worker.queue)
    check = check_of(scorecard)
    run = run_now(check)
    wait_for(lambda: finished(run), timeout=60, message="the first delivery")
    # Deliver the same run again, then a marker run: the worker (one process, FIFO) handles
    # the redelivery before the marker, so once the marker is done the redelivery was seen.
    run_check.apply_async(args=[run.pk], queue=shared_worker.queue)
    marker = run_now(check)
    wait_for(lambda: finished(marker), timeout=60, message="the marker run")
    assert Evidence.objects.filter(run=run).count() == 1
    assert Evidence.objects.filter(scorecard=scorecard).count() == 2
    assert f"run {run.pk} already claimed" in shared_worker.log()


def evidence_of_a_run(check, params: dict, what: str) -> Evidence:
    """Add `params` to the check's stored parameters, run it on the worker, return its evidence."""
    check.params = {**check.params, **params}
    check.save()
    run = run_now(check)
    wait_for(lambda: finished(run), timeout=60, message=what)
    return Evidence.objects.get(run=run)


def test_an_unreachable_cluster_becomes_error_evidence_and_the_worker_goes_on(shared_worker):
    scorecard = register(name="gone", bootstrap="127.0.0.1:1", worker_queue=shared_worker.queue)
    evidence = evidence_of_a_run(check_of(scorecard), {"timeout_seconds": 2}, "the run against a dead cluster")
    assert evidence.status == "ERROR"
    assert "connection refused" in evidence.summary


def test_invalid_parameters_become_error_evidence_naming_the_parameter(shared_worker, shared_sandbox):
    scorecard = register(name="bad-params", bootstrap=shared_sandbox.bootstrap, worker_queue=shared_worker.queue)
    check = check_of(scorecard, ProbeKind.ACK_WRITE)
    check.params = {}  # the bad value alone, stored past the form that would refuse it
    evidence = evidence_of_a_run(check, {"records": -5}, "the run with bad parameters")
    assert evidence.status == "ERROR"
    assert evidence.measurements["parameter"] == "records"


def test_beat_sends_a_due_check_to_its_clusters_queue_and_a_worker_runs_it(shared_worker, beat_process, shared_sandbox):
    from scorecard.models import Check

    scorecard = register(name="scheduled", bootstrap=shared_sandbox.bootstrap, worker_queue=shared_worker.queue)
    health = check_of(scorecard)
    Check.objects.filter(row__scorecard=scorecard).exclude(pk=health.pk).update(
        not_applicable=True, not_applicable_reason="only cluster health in this test"
    )
    Check.objects.filter(pk=health.pk).update(interval_seconds=10)

    def scheduled_runs():
        return list(CheckRun.objects.filter(check_obj=health, requested_by="schedule", state=CheckRun.State.DONE))

    first = wait_for(scheduled_runs, timeout=60, message="a scheduled run")[0]
    assert first.task_id
    assert Evidence.objects.get(run=first).status == "PASS"
    health.refresh_from_db()
    assert health.last_scheduled_at is not None
    # The schedule repeats: a second run follows within the 10 s interval (plus beat's 5 s loop).
    wait_for(lambda: len(scheduled_runs()) >= 2, timeout=40, message="the second scheduled run")
    # Checks marked not applicable were never scheduled.
    assert not CheckRun.objects.filter(check_obj__row__scorecard=scorecard).exclude(check_obj=health).exists()


def test_a_group_that_does_not_exist_on_the_cluster_fails_the_run_naming_it(shared_worker, shared_sandbox):
    """Group names are not checked in the web request; the worker's run reports a missing one."""
    connection = shared_sandbox.connection
    shared_sandbox.control.call("topic_create", name="page-orders", partitions=1, replication_factor=3)
    kafka.produce_values(connection, topic="page-orders", values=[(0, b"x")] * 5, timeout=5)
    kafka.commit_offsets(connection, group="page-ledger", offsets={("page-orders", 0): 5}, timeout=5)
    scorecard = register(name="groups", bootstrap=shared_sandbox.bootstrap, worker_queue=shared_worker.queue)
    check = check_of(scorecard, ProbeKind.CONSUMER_GROUPS)
    params = {"groups": ["page-ledger", "ghost-group"], "topics": ["page-orders"]}
    evidence = evidence_of_a_run(check, params, "the consumer groups run")
    assert evidence.status == "FAIL"
    assert "ghost-group: no committed offset" in evidence.summary
    assert "page-ledger" not in evidence.summary.split(";")[0]


def test_run_now_from_the_check_page_ends_as_evidence_through_the_worker(shared_worker, shared_sandbox, role_client):
    """The path of docs/architecture.md: check page -> drills.services -> run_check task on the
    cluster's queue -> drills.runner -> probe -> scorecard.services -> the evidence chain."""
    from django.urls import reverse

    scorecard = register(name="paged", bootstrap=shared_sandbox.bootstrap, worker_queue=shared_worker.queue)
    check = check_of(scorecard)
    client = role_client("operator", username="sre")
    assert client.post(reverse("drills-run-check", args=[check.pk])).status_code == 302
    run = CheckRun.objects.get(check_obj=check)
    wait_for(lambda: finished(run), timeout=60, message="the run queued from the page")
    evidence = Evidence.objects.get(run=run)
    assert evidence.status == "PASS" and evidence.collected_by.endswith("(sre)")
    assert chain_verify(scorecard=scorecard).ok
