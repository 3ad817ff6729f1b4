"""What workers execute: a check's probe, a drill from its claim to its evidence, and the
recovery of a drill whose worker died. Tasks call these; pages never do (they only queue)."""

import logging
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from django.utils import timezone

from drills import kafka, scenarios
from drills.actuators import Action, ActuatorError, ManualActuator, actuator_for
from drills.engine import DrillEngine, DrillResult, Hooks, PreflightRefused
from drills.evidence import drill_evidence_record
from drills.models import DrillRun, DrillTimeline, Outcome, ScheduledWindow
from drills.probes import probe_run
from drills.probes.base import ProbeResult
from scorecard import catalog, roles, services
from scorecard.catalog import ProbeKind
from scorecard.models import Check, CheckRun, Evidence, InvalidTransition, Status

log = logging.getLogger(__name__)

HEARTBEAT_EVERY = 2.0
STEP_POLL_SECONDS = 0.5


# --- checks ------------------------------------------------------------------------------------


def check_run_execute(*, run_id: int, worker: str, redelivered: bool = False) -> Evidence | None:
    """Claim the run, probe, append evidence. Shared by on-demand and scheduled runs;
    `redelivered`: this delivery follows one that ended without finishing the run."""
    run = services.check_run_claim(run_id=run_id, worker=worker, redelivered=redelivered)
    if run is None:
        log.info("run %s already claimed or gone; nothing to do", run_id)
        return None
    if run.requested_by != services.SCHEDULER and not roles.user_may(run.requested_by, "run_checks"):
        run.fail(f"{run.requested_by} no longer holds a role that runs probes; nothing was run")
        return None
    return _probe_and_record(run, worker)


def _probe_and_record(run: CheckRun, worker: str) -> Evidence | None:
    """Probe a claimed run and append its evidence."""
    try:
        result = probe_run(run.check_obj)
    except SoftTimeLimitExceeded:
        result = ProbeResult(Status.ERROR, "the probe exceeded the task time limit", {"error": "task time limit"})
    except Exception as exc:  # a bug must still leave evidence, not a run stuck in RUNNING
        log.exception("probe of run %s crashed", run.pk)
        result = ProbeResult(Status.ERROR, f"the probe crashed: {type(exc).__name__}", {"error": type(exc).__name__})
    try:
        return services.check_run_finish(
            run=run,
            status=result.status,
            summary=result.summary,
            measurements=result.measurements,
            collected_by=f"{worker} ({run.requested_by})",
        )
    except InvalidTransition:
        log.warning("run %s was reclaimed by another delivery; its evidence is that delivery's", run.pk)
        return None


def check_run_scheduled(*, check_id: int, task_id: str, worker: str, redelivered: bool = False) -> Evidence | None:
    """A run sent by beat: its row is created once per message, so a redelivery finds it."""
    run = services.check_run_for_schedule(check_id=check_id, task_id=task_id)
    return None if run is None else check_run_execute(run_id=run.pk, worker=worker, redelivered=redelivered)


def _cadence_recompute(*, run: DrillRun, worker: str) -> None:
    """Drill cadence reads only drill runs: recompute it here, in this worker, at once."""
    cadence = Check.objects.runnable().filter(row__scorecard__cluster=run.cluster, kind=ProbeKind.DRILL_CADENCE)
    for check in cadence:
        cadence_run = services.check_run_create(check=check, requested_by=f"drill {run.pk}")
        claimed = services.check_run_claim(run_id=cadence_run.pk, worker=worker)
        if claimed is not None:  # the worker's own run: no person's role to check
            _probe_and_record(claimed, worker)


# --- drills ------------------------------------------------------------------------------------


class Heartbeat(threading.Thread):
    """Beats for the drill while this worker process lives, whatever the engine is waiting on."""

    def __init__(self, run: DrillRun):
        super().__init__(name=f"drill-{run.pk}-heartbeat", daemon=True)
        self.run_obj = run
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(HEARTBEAT_EVERY):
            try:
                self.run_obj.beat()
            except DatabaseError:
                log.warning("drill %s heartbeat failed", self.run_obj.pk)
        close_old_connections()


def _wait_for_person(run: DrillRun, description: str) -> dict:
    """Manual actuator: show the step on the page and wait until someone confirms it."""
    asked = timezone.now()
    run.await_step(description)
    while True:
        run.refresh_from_db(fields=["step_confirmed_at", "abort_requested", "deadline_at"])
        if run.step_confirmed_at:
            run.clear_step()
            return {
                "asked_at": asked.isoformat(),
                "confirmed_at": run.step_confirmed_at.isoformat(),
                "waited_s": round((run.step_confirmed_at - asked).total_seconds(), 3),
            }
        if run.abort_requested or (run.deadline_at and timezone.now() > run.deadline_at):
            run.clear_step()
            raise ActuatorError(f"nobody confirmed the step: {description}")
        time.sleep(STEP_POLL_SECONDS)  # the drill's Heartbeat thread keeps beating meanwhile


def _actuator(run: DrillRun, brokers: dict[int, dict]):
    return actuator_for(run.cluster, brokers, wait_for_person=lambda description: _wait_for_person(run, description))


def _hooks(run: DrillRun, brokers: dict[int, dict]) -> Hooks:
    abort = {"requested": False}

    def progress(state: dict) -> None:
        # The progress write (every 0.5 s) also reads the Abort flag; no second query needed.
        abort["requested"] = run.report_progress(state)

    return Hooks(
        progress=progress,
        should_abort=lambda: abort["requested"],
        event=run.record_event,
        recovery_plan=lambda actions: run.store_recovery_plan(
            {"actions": actions, "brokers": {str(k): v for k, v in brokers.items()}}
        ),
    )


def _drill(run: DrillRun) -> DrillResult:
    """Plan the fault from live metadata and run the engine; every failure becomes a result."""
    config = SimpleNamespace(**{**catalog.defaults("drill"), **run.params})
    standby = run.cluster.standby
    try:
        connection = kafka.ConnectionSettings.for_cluster(run.cluster)
        # A refused certificate or SASL login is named before anything is planned or injected.
        if reason := kafka.quick_failure(connection):
            return DrillResult.not_injected(reason)
        metadata = kafka.cluster_metadata(connection, timeout=10, topic=config.topic)
        brokers = {b.id: {"host": b.host, "port": b.port, "rack": b.rack} for b in metadata.brokers}
        plan = scenarios.plan(
            run.scenario,
            metadata,
            topic=config.topic,
            broker=config.broker,
            zone=config.zone,
            move_leaders=config.move_leaders,
        )
        run.describe_plan(plan.description)
        return DrillEngine(
            connection=connection,
            actuator=_actuator(run, brokers),
            plan=plan,
            config=config,
            hooks=_hooks(run, brokers),
            standby=kafka.ConnectionSettings.for_cluster(standby) if standby else None,
            expected_brokers=run.cluster.expected_brokers,
        ).run()
    except PreflightRefused as exc:
        return DrillResult.refused(str(exc))
    except (kafka.KafkaCallError, scenarios.ScenarioError, ActuatorError) as exc:
        return DrillResult.not_injected(str(exc))
    except SoftTimeLimitExceeded:
        # The engine's finally already ran the recovery; record the deadline as the trip.
        return DrillResult.aborted("the drill passed its deadline", tripped="deadline")
    except Exception as exc:  # a bug must not leave the cluster disrupted or the run RUNNING
        log.exception("drill %s crashed", run.pk)
        run.refresh_from_db()
        errors = drill_run_recovery_plan_execute(run=run, by="crash handler")
        return DrillResult.aborted(
            f"the drill engine crashed ({type(exc).__name__}); the recovery plan ran"
            + (f" with errors: {'; '.join(errors)}" if errors else "")
        )


def drill_run_execute(*, run_id: int, worker: str) -> DrillRun | None:
    """Claim the drill, run it under a heartbeat, record its figures and evidence. A
    redelivered drill whose first worker died is recovered instead of run again."""
    run = DrillRun.claim(run_id, worker=worker)
    if run is None:
        recovered = drill_run_recover_abandoned(run_id=run_id, worker=worker)
        log.info("drill %s already claimed or gone; %s", run_id, "recovered it" if recovered else "nothing to do")
        return recovered
    if refusal := _requester_refusal(run):
        run.finish(outcome=Outcome.ABORTED, figures={}, tripped="", error=refusal, manual_steps=0)
        return run
    heartbeat = Heartbeat(run)
    heartbeat.start()
    try:
        result = _drill(run)
    finally:
        heartbeat.stopped.set()
        heartbeat.join(5)
    return drill_run_finish(run=run, result=result, worker=worker)


def _requester_refusal(run: DrillRun) -> str:
    """Why the drill may no longer run: its requester lost the role it needs, or its schedule
    is gone, disabled, or its window closed before a worker picked it up."""
    window = ScheduledWindow.objects.filter(run=run).select_related("schedule").first()
    if window is not None:
        schedule = window.schedule
        if not schedule.enabled or not roles.user_may(schedule.created_by, "approve_drills"):
            return "its schedule was disabled or its approver lost the role; nothing was injected"
        if timezone.now() + timedelta(seconds=run.time_limit_seconds) > window.window_end:
            return "its window closed before a worker picked it up; nothing was injected (never run late)"
        return ""
    if run.schedule_id is None and run.requested_by.startswith("schedule "):
        return "its schedule was removed; nothing was injected"
    needed = (
        "approve_drills" if any(s.startswith("loosened") for s in run.guardrail_sources.values()) else "start_drills"
    )
    if not roles.user_may(run.requested_by, needed):
        return f"{run.requested_by} no longer holds the role this drill needs ({needed}); nothing was injected"
    return ""


def drill_run_finish(*, run: DrillRun, result: DrillResult, worker: str) -> DrillRun | None:
    """Record the outcome, the timeline and the rows' evidence together; then recompute cadence."""
    try:
        with transaction.atomic():
            run.finish(
                outcome=result.outcome,
                figures=result.figures,
                tripped=result.tripped,
                error=result.error,
                manual_steps=result.manual_steps,
            )
            if result.timeline is not None:
                DrillTimeline.objects.update_or_create(run=run, defaults={"data": result.timeline})
            drill_evidence_record(run=run)
    except InvalidTransition:
        log.warning("drill %s was already finished (recovered by the watchdog); result dropped", run.pk)
        return None
    _cadence_recompute(run=run, worker=worker)
    return run


# --- recovery of drills whose worker died -----------------------------------------------------------


def _stale_before():
    """A drill whose last heartbeat is older than this lost its worker."""
    return timezone.now() - timedelta(seconds=settings.DRILL_HEARTBEAT_STALE_SECONDS)


def drills_recover_abandoned(*, queue: str, worker: str) -> list[DrillRun]:
    """Recover every drill on clusters served by `queue` whose worker stopped beating or
    that passed its deadline; returns the drills recovered."""
    abandoned = DrillRun.objects.filter(
        DrillRun.lost(_stale_before()),
        state__in=[DrillRun.State.RUNNING, DrillRun.State.RECOVERING],
        cluster__worker_queue=queue,
    ).values_list("pk", flat=True)
    recovered = []
    for run_id in list(abandoned):
        log.warning("drill %s lost its worker; running its recovery plan", run_id)
        run = drill_run_recover_abandoned(run_id=run_id, worker=worker)
        if run is not None:
            recovered.append(run)
    return recovered


def drill_run_recover_abandoned(*, run_id: int, worker: str) -> DrillRun | None:
    """Run the stored recovery plan of a drill whose worker died, and mark it aborted."""
    run = DrillRun.claim_abandoned(run_id, worker=worker, stale_before=_stale_before())
    if run is None:
        return None
    errors = drill_run_recovery_plan_execute(run=run, by=worker)
    run.record_event("worker_lost", {"recovered_by": worker, "errors": errors})
    result = DrillResult(
        outcome=DrillRun.Outcome.ABORTED,
        figures=run.figures or {},
        timeline=None,
        tripped="worker_lost",
        error="the worker running the drill stopped; the watchdog ran the recovery"
        + (f" with errors: {'; '.join(errors)}" if errors else ""),
        manual_steps=run.manual_steps,
    )
    return drill_run_finish(run=run, result=result, worker=worker)


def drill_run_recovery_plan_execute(*, run: DrillRun, by: str) -> list[str]:
    """Perform the recovery plan stored before the fault; returns the steps that failed.

    Recovery steps are idempotent (start a started broker, move a leader where it is), so
    running them after a partial recovery is safe. A manual actuator cannot be driven by a
    machine: its steps are recorded for a person instead.
    """
    plan = run.recovery_plan or {}
    actuator = _actuator(run, {int(k): v for k, v in plan.get("brokers", {}).items()})
    errors = []
    for step in plan.get("actions", []):
        action = Action(step["op"], step["broker"], step.get("topic", ""), step.get("partition", -1))
        if actuator is None or isinstance(actuator, ManualActuator):
            errors.append(f"{action.describe()}: needs a person")
            continue
        try:
            detail = actuator.perform(action) or {}
            run.record_event("watchdog_recovery", {"action": step, "by": by, **detail})
        except ActuatorError as exc:
            errors.append(f"{action.describe()}: {exc}")
    return errors
