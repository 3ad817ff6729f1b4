"""Drills end to end: started through the service, run by real worker processes, recorded."""

import os
import signal
import sys
import time

import pytest
from django.utils import timezone

from drills import kafka
from drills import services as drill_services
from drills.models import DrillRun, DrillTimeline
from scorecard.models import Actuator, Check, CheckRun, Evidence
from tests.conftest import wait_for
from tests.factories import register

# Drills through workers, timed against their figures: one after another in one test process.
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.xdist_group("drill-runs"),
    pytest.mark.usefixtures("requesters"),
]

QUICK = {"baseline_seconds": 2, "settle_seconds": 3}


def sandbox_cluster(private_sandbox, queue: str, name: str = "drilled"):
    return register(
        name=name,
        bootstrap=private_sandbox.bootstrap,
        worker_queue=queue,
        expected_brokers=3,
        drills_allowed=True,
        actuator=Actuator.SANDBOX,
        sandbox_control=private_sandbox.control_path,
    ).cluster


def finished(run: DrillRun) -> DrillRun | None:
    run.refresh_from_db()
    return None if run.active else run


def test_a_broker_loss_drill_runs_in_a_worker_and_updates_the_rows(private_sandbox, start_private_worker):
    worker = start_private_worker("drills-a")
    cluster = sandbox_cluster(private_sandbox, worker.queue)
    params = {**QUICK, "fault_seconds": 2}
    run = drill_services.drill_run_start(cluster=cluster, scenario="broker_loss", params=params, requested_by="sre")
    run = wait_for(lambda: finished(run), timeout=90, message="the drill to finish")
    assert (run.state, run.outcome) == ("done", "passed"), (run.error, run.figures)
    assert run.figures["rpo_acked_lost"] == 0
    assert abs(run.figures["write_rto_s"] - 2) <= 0.5
    assert DrillTimeline.objects.get(run=run).data["records"]
    assert {e["kind"] for e in run.events} >= {"fault", "action", "phase"}
    by_row = {e.row_key: e for e in Evidence.objects.filter(check_obj__kind="drill_results")}
    assert set(by_row) == {"durability", "metadata", "client_continuity", "automation"}
    assert by_row["durability"].status == "PASS"
    assert by_row["automation"].measurements["drill_run"] == run.pk
    # Drill cadence is re-computed after the drill.
    cadence = CheckRun.objects.get(check_obj__kind="drill_cadence", requested_by=f"drill {run.pk}")
    assert cadence.state == CheckRun.State.DONE and Evidence.objects.filter(run=cadence).exists()
    assert all(b["up"] for b in private_sandbox.control.call("status")["brokers"])


def test_a_tripped_guardrail_stops_the_fault_and_runs_the_recovery(private_sandbox, start_private_worker):
    worker = start_private_worker("drills-b")
    cluster = sandbox_cluster(private_sandbox, worker.queue)
    params = {**QUICK, "fault_seconds": 60, "max_duration_seconds": 6}
    run = drill_services.drill_run_start(cluster=cluster, scenario="broker_loss", params=params, requested_by="sre")
    run = wait_for(lambda: finished(run), timeout=60, message="the guarded drill to stop")
    assert (run.state, run.outcome, run.tripped_guardrail) == ("aborted", "aborted", "max_duration")
    tripped = next(e for e in run.events if e["kind"] == "guardrail_tripped")
    assert tripped["guardrail"] == "max_duration" and 5.5 <= tripped["at_s"] <= 8
    assert all(b["up"] for b in private_sandbox.control.call("status")["brokers"])
    automation = Evidence.objects.get(check_obj__kind="drill_results", row_key="automation")
    assert "guardrail max_duration tripped" in automation.summary


def test_a_second_drill_on_the_same_cluster_is_refused(private_sandbox, start_private_worker):
    worker = start_private_worker("drills-c")
    cluster = sandbox_cluster(private_sandbox, worker.queue)
    first = drill_services.drill_run_start(
        cluster=cluster, scenario="lag_catch_up", params={**QUICK, "fault_seconds": 5}, requested_by="sre"
    )
    with pytest.raises(drill_services.DrillRefused, match="already running"):
        drill_services.drill_run_start(cluster=cluster, scenario="broker_loss", params=QUICK, requested_by="other")
    assert DrillRun.objects.filter(cluster=cluster).count() == 1
    wait_for(lambda: finished(first), timeout=60, message="the first drill")
    # Once it is over, the next one may start.
    second = drill_services.drill_run_start(
        cluster=cluster, scenario="leader_change", params={**QUICK, "fault_seconds": 1}, requested_by="other"
    )
    wait_for(lambda: finished(second), timeout=60, message="the second drill")


def test_drills_are_refused_where_not_allowed_or_without_an_actuator(shared_sandbox):
    blocked = register(name="no-drills", bootstrap=shared_sandbox.bootstrap).cluster
    with pytest.raises(drill_services.DrillRefused, match="not allowed"):
        drill_services.drill_run_start(cluster=blocked, scenario="broker_loss", params={}, requested_by="sre")
    no_actuator = register(name="no-actuator", bootstrap=shared_sandbox.bootstrap, drills_allowed=True).cluster
    with pytest.raises(drill_services.DrillRefused, match="no actuator"):
        drill_services.drill_run_start(cluster=no_actuator, scenario="broker_loss", params={}, requested_by="sre")
    assert not DrillRun.objects.exists()


STALE = 5  # seconds without a heartbeat before a drill counts as abandoned, in these workers


def test_the_only_worker_on_the_clusters_queue_dies_mid_fault_and_the_next_one_restores_the_cluster(
    private_sandbox, start_private_worker, beat_process
):
    """No worker serves the default queue: beat's watchdog for the cluster's own queue finds
    the silent drill, and the new worker on that queue runs the stored recovery plan."""
    doomed = start_private_worker("drills-d", DRILL_HEARTBEAT_STALE_SECONDS=str(STALE))
    cluster = sandbox_cluster(private_sandbox, doomed.queue)
    # Keep beat's probes of this cluster off the queue: only the watchdog matters here.
    Check.objects.filter(row__scorecard__cluster=cluster).update(last_scheduled_at=timezone.now())
    run = drill_services.drill_run_start(
        cluster=cluster,
        scenario="broker_loss",
        params={**QUICK, "fault_seconds": 120, "max_duration_seconds": 300},
        requested_by="sre",
    )

    def broker_down():
        return any(not b["up"] for b in private_sandbox.control.call("status")["brokers"])

    wait_for(broker_down, timeout=60, message="the fault to be injected")
    run.refresh_from_db()
    assert run.recovery_plan["actions"], "the recovery plan is stored before the fault"
    os.killpg(doomed.process.pid, signal.SIGKILL)  # the worker and its pool child, mid-drill
    doomed.process.wait(10)
    killed = time.monotonic()
    start_private_worker("drills-d", DRILL_HEARTBEAT_STALE_SECONDS=str(STALE))
    wait_for(lambda: not broker_down(), timeout=90, interval=0.2, message="the watchdog to restore the broker")
    # Stale after STALE s, then at most one watchdog period (15 s); the new worker's start-up on top.
    assert time.monotonic() - killed <= STALE + 15 + 15
    run = wait_for(lambda: finished(run), timeout=30, message="the drill to be marked aborted")
    assert (run.state, run.outcome, run.tripped_guardrail) == ("aborted", "aborted", "worker_lost")
    assert any(e["kind"] == "watchdog_recovery" for e in run.events)
    assert "watchdog ran the recovery" in run.error


def test_killing_tansu_through_the_command_actuator_loses_acknowledged_records(private_tansu, start_private_worker):
    worker = start_private_worker("drills-e")
    connection = kafka.ConnectionSettings(private_tansu.bootstrap)
    kafka.topic_create(connection, name="__recovery_probe", partitions=1, replication_factor=1, timeout=5)
    commands = {
        "broker_down": ["pkill", "-9", "-f", "tcp://127.0.0.1:{port}"],
        "broker_up": [sys.executable, "-m", "drills.tansu", "start", "--port", "{port}"],
        "timeout_seconds": 30,
    }
    cluster = register(
        name="tansu",
        bootstrap=private_tansu.bootstrap,
        worker_queue=worker.queue,
        drills_allowed=True,
        actuator=Actuator.COMMAND,
        actuator_commands=commands,
    ).cluster
    run = drill_services.drill_run_start(
        cluster=cluster,
        scenario="broker_loss",
        params={**QUICK, "fault_seconds": 1, "settle_seconds": 8},
        requested_by="sre",
    )
    run = wait_for(lambda: finished(run), timeout=120, message="the Tansu drill")
    f = run.figures
    assert f["rpo_acked_lost"] > 0, (run.error, f)
    assert run.outcome == "failed", f.get("metadata")
    # The broker was gone (no answer, then an empty restarted broker): re-election spans it.
    assert f["metadata"]["loss_observed"] and f["reelection_s"] > 0, f["metadata"]
    actions = [e for e in run.events if e["kind"] == "action"]
    assert actions[0]["argv"][:3] == ["pkill", "-9", "-f"] and actions[0]["exit_code"] == 0
    assert "tansu started" in actions[1]["output"]
    durability = Evidence.objects.get(check_obj__kind="drill_results", row_key="durability")
    assert durability.status == "FAIL" and "acknowledged records lost" in durability.summary
    # The reused idempotent producer cannot continue after the restart: recorded, recreated.
    assert f["producer_fatal_errors"], (f["produce_errors"], f["write_rto_s"], f["records_failed"], run.events[-8:])
    continuity = Evidence.objects.get(check_obj__kind="drill_results", row_key="client_continuity")
    assert "fatal state" in continuity.summary


def test_a_manual_drill_waits_for_a_person_and_counts_the_steps(private_sandbox, start_private_worker):
    worker = start_private_worker("drills-f")
    cluster = register(
        name="manual",
        bootstrap=private_sandbox.bootstrap,
        worker_queue=worker.queue,
        drills_allowed=True,
        actuator=Actuator.MANUAL,
    ).cluster
    run = drill_services.drill_run_start(
        cluster=cluster, scenario="broker_loss", params={**QUICK, "fault_seconds": 1, "broker": 2}, requested_by="sre"
    )

    def waiting():
        run.refresh_from_db()
        return run.awaiting_step

    for step, fault in (
        ("stop broker 2", lambda: private_sandbox.control.call("broker_down", broker=2)),
        ("start broker 2", lambda: private_sandbox.control.call("broker_up", broker=2)),
    ):
        assert wait_for(waiting, timeout=60, message=f"the step {step}") == step
        fault()  # the person does it
        assert drill_services.drill_step_confirm(run=run, user="oncall")
        wait_for(lambda: not waiting(), timeout=30, message="the confirmation to be taken")
    run = wait_for(lambda: finished(run), timeout=60, message="the manual drill")
    assert run.manual_steps == 2
    assert [e["kind"] for e in run.events].count("step_confirmed") == 2
    automation = Evidence.objects.get(check_obj__kind="drill_results", row_key="automation")
    assert automation.status == "WARN" and "2 manual steps" in automation.summary
    assert not Check.objects.filter(kind="drill_results", interval_seconds__lt=86400).exists()


def test_a_drill_started_from_the_page_ends_with_figures_and_evidence_through_a_worker(
    private_sandbox, start_private_worker, client
):
    """The path of docs/architecture.md: drill page -> drills.services -> run_drill task on the
    cluster's queue -> drills.runner -> engine -> DrillRun figures and the rows' evidence."""
    from django.contrib.auth import get_user_model
    from django.urls import reverse

    worker = start_private_worker("drills-page")
    cluster = sandbox_cluster(private_sandbox, worker.queue, name="paged")
    client.force_login(get_user_model().objects.get(username="sre"))
    form = {
        "scenario": "leader_change", "fault_seconds": "2", "baseline_seconds": "2", "settle_seconds": "3",
        "interval_ms": "10", "latency_slo_ms": "500", "stability_window_seconds": "2", "max_duration_seconds": "120",
        "error_window_seconds": "5",
        "confirm": "paged",
    }  # fmt: skip
    response = client.post(reverse("drills-list", args=[cluster.pk]), form)
    assert response.status_code == 302, response.content.decode()[-2000:]
    run = DrillRun.objects.get(cluster=cluster)
    run = wait_for(lambda: finished(run), timeout=90, message="the drill started from the page")
    assert (run.state, run.outcome) == ("done", "passed"), (run.error, run.figures)
    assert run.worker.startswith("celery@") and run.figures["write_rto_s"] is not None
    assert {e.row_key for e in Evidence.objects.filter(check_obj__kind="drill_results")} >= {
        "durability",
        "automation",
    }
    page = client.get(reverse("drills-detail", args=[run.pk])).content.decode()
    assert "PASSED" in page and "Write RTO" in page


def test_a_scheduled_drill_runs_inside_its_window_only_through_a_worker(private_sandbox, start_private_worker):
    """Beat's tick with the clock controlled: before the window nothing starts; inside it the
    drill starts once and a worker runs it; a window that passes without a drill is recorded as
    missed, never run late."""
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    from drills.models import DrillSchedule, ScheduledWindow
    from drills.schedules import schedule_create, schedules_tick

    worker = start_private_worker("drills-scheduled")
    cluster = sandbox_cluster(private_sandbox, worker.queue, name="scheduled")
    paris = ZoneInfo("Europe/Paris")
    schedule = schedule_create(
        cluster=cluster,
        by="sre",
        scenario="leader_change",
        weekdays=[2],  # Tuesdays
        window_start=time(2, 0),
        window_end=time(3, 0),
        time_zone="Europe/Paris",
        params={**QUICK, "fault_seconds": 1, "max_duration_seconds": 600},
    )
    DrillSchedule.objects.filter(pk=schedule.pk).update(created_at=datetime(2026, 12, 7, tzinfo=paris))
    monday_night = datetime(2026, 12, 8, 1, 59, tzinfo=paris)  # Tuesday 01:59 in Paris
    assert schedules_tick(monday_night) == {schedule.pk: "nothing due"}
    assert not DrillRun.objects.exists()

    assert schedules_tick(datetime(2026, 12, 8, 2, 5, tzinfo=paris)) == {schedule.pk: "started"}
    run = DrillRun.objects.get()
    assert run.schedule_id == schedule.pk and run.requested_by == f"schedule {schedule.pk}"
    # Inside the same window again: nothing more starts.
    assert schedules_tick(datetime(2026, 12, 8, 2, 20, tzinfo=paris)) == {schedule.pk: "nothing due"}
    run = wait_for(lambda: finished(run), timeout=90, message="the scheduled drill to finish")
    assert (run.state, run.outcome) == ("done", "passed"), (run.error, run.figures)
    assert Evidence.objects.filter(check_obj__kind="drill_results", measurements__drill_run=run.pk).exists()

    # Beat was down through the next Tuesday's window: recorded as missed, not run late.
    assert schedules_tick(datetime(2026, 12, 15, 9, 0, tzinfo=paris)) == {schedule.pk: "missed"}
    assert DrillRun.objects.count() == 1
    windows = list(ScheduledWindow.objects.order_by("window_start").values_list("run", "missed_reason"))
    assert windows == [(run.pk, ""), (None, "the window passed before a drill could start and finish in it")]
    # A window too short for the drill's longest duration once it has begun is not used either.
    assert schedules_tick(datetime(2026, 12, 22, 2, 55, tzinfo=paris)) == {schedule.pk: "missed"}
    assert DrillRun.objects.count() == 1
