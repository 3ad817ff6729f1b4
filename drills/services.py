"""Drill runs: starting (with every refusal), progress, finishing, evidence, recovery by the watchdog."""

import logging
import time
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from config.celery import app as celery_app
from drills import params as drill_params
from drills.actuators import Action, ActuatorError, CommandActuator, ManualActuator, SandboxActuator
from drills.models import DrillRun, DrillTimeline, Scenario
from drills.scenarios import CLUSTER_FAULTS, SUPPORTED
from scorecard import services as scorecard_services
from scorecard.models import Actuator, Check, Cluster, ProbeKind, Row, RowKey

log = logging.getLogger(__name__)

RUN_DRILL_TASK = "drills.tasks.run_drill"
RECOVER_DRILL_TASK = "drills.tasks.recover_drill"
VALIDATION_MARGIN_SECONDS = 120  # drain, read-back and evidence after the guardrail deadline


class DrillRefused(Exception):
    """The drill may not start; the message says why."""


def drill_run_start(*, cluster: Cluster, scenario: str, params: dict, requested_by: str) -> DrillRun:
    """Validate and queue a drill; refuses a second active drill on the same cluster."""
    if not cluster.drills_allowed:
        raise DrillRefused(f"drills are not allowed on {cluster.name}: enable them on the cluster first")
    if scenario not in Scenario.values:
        raise DrillRefused(f"unknown scenario {scenario!r}")
    if scenario not in SUPPORTED:
        raise DrillRefused(f"the {Scenario(scenario).label} scenario is not supported by the drill engine yet")
    if scenario in CLUSTER_FAULTS and cluster.actuator == Actuator.NONE:
        raise DrillRefused(f"{cluster.name} has no actuator configured to inject {Scenario(scenario).label}")
    parsed = drill_params.parse("drill", params)  # ParamError names each bad parameter
    if scenario == "standby_cutover" and (cluster.standby_id is None or not parsed.canary_group
                                          or not parsed.canary_topic):  # fmt: skip
        raise DrillRefused("a standby cutover rehearsal needs a registered standby, a canary group and its topic")
    guardrails = {
        name: getattr(parsed, name)
        for name in ("max_duration_seconds", "max_error_rate", "max_consumer_lag", "min_healthy_brokers")
        if getattr(parsed, name) is not None
    }
    try:
        with transaction.atomic():
            run = DrillRun.objects.create(
                cluster=cluster,
                scenario=scenario,
                params=vars(parsed),
                guardrails=guardrails,
                actuator=cluster.actuator,
                requested_by=requested_by,
            )
    except IntegrityError:
        active = DrillRun.objects.filter(cluster=cluster, state__in=DrillRun.ACTIVE).first()
        raise DrillRefused(
            f"a drill is already running on {cluster.name}"
            + (f" (run {active.pk}, {active.get_scenario_display()})" if active else "")
        ) from None
    limit = parsed.max_duration_seconds + VALIDATION_MARGIN_SECONDS
    transaction.on_commit(
        lambda: celery_app.send_task(
            RUN_DRILL_TASK, args=[run.pk], queue=cluster.worker_queue, soft_time_limit=limit, time_limit=limit + 30
        )
    )
    return run


def drill_run_claim(*, run_id: int, worker: str) -> DrillRun | None:
    now = timezone.now()
    run = DrillRun.objects.filter(pk=run_id).first()
    if run is None:
        return None
    deadline = now + timedelta(seconds=run.params.get("max_duration_seconds", 300) + VALIDATION_MARGIN_SECONDS)
    claimed = DrillRun.objects.filter(pk=run_id, state=DrillRun.State.QUEUED).update(
        state=DrillRun.State.RUNNING, started_at=now, heartbeat_at=now, deadline_at=deadline, worker=worker[:200]
    )
    return DrillRun.objects.select_related("cluster__standby").get(pk=run_id) if claimed else None


def drill_run_progress(*, run_id: int, progress: dict) -> bool:
    """Store live progress and beat the heart; returns whether a person asked to abort."""
    DrillRun.objects.filter(pk=run_id, state=DrillRun.State.RUNNING).update(
        progress=progress, phase=progress.get("phase", ""), heartbeat_at=timezone.now()
    )
    return DrillRun.objects.filter(pk=run_id, abort_requested=True).exists()


@transaction.atomic
def drill_run_event(*, run_id: int, kind: str, detail: dict) -> None:
    run = DrillRun.objects.select_for_update().get(pk=run_id)
    run.events = [*run.events, {"kind": kind, "at": timezone.now().isoformat(), **detail}]
    run.save(update_fields=["events"])


def drill_run_set_recovery_plan(*, run_id: int, plan: dict) -> None:
    DrillRun.objects.filter(pk=run_id).update(recovery_plan=plan)


def drill_run_abort_request(*, run: DrillRun, user: str) -> None:
    updated = DrillRun.objects.filter(pk=run.pk, state__in=DrillRun.ACTIVE).update(abort_requested=True)
    if updated:
        drill_run_event(run_id=run.pk, kind="abort_requested", detail={"by": user})


def drill_step_confirm(*, run: DrillRun, user: str) -> bool:
    updated = (
        DrillRun.objects.filter(pk=run.pk, state=DrillRun.State.RUNNING)
        .exclude(awaiting_step="")
        .update(step_confirmed_at=timezone.now())
    )
    if updated:
        drill_run_event(run_id=run.pk, kind="step_confirmed", detail={"by": user, "step": run.awaiting_step})
    return bool(updated)


def wait_for_person(run_id: int, description: str, *, poll: float = 0.5) -> dict:
    """Manual actuator: show the step on the page and wait until someone confirms it."""
    asked = timezone.now()
    DrillRun.objects.filter(pk=run_id).update(awaiting_step=description[:300], step_confirmed_at=None)
    drill_run_event(run_id=run_id, kind="awaiting_person", detail={"step": description})
    while True:
        run = DrillRun.objects.get(pk=run_id)
        if run.step_confirmed_at:
            DrillRun.objects.filter(pk=run_id).update(awaiting_step="")
            return {"asked_at": asked.isoformat(), "confirmed_at": run.step_confirmed_at.isoformat(),
                    "waited_s": round((run.step_confirmed_at - asked).total_seconds(), 3)}  # fmt: skip
        if run.abort_requested or (run.deadline_at and timezone.now() > run.deadline_at):
            DrillRun.objects.filter(pk=run_id).update(awaiting_step="")
            raise ActuatorError(f"nobody confirmed the step: {description}")
        DrillRun.objects.filter(pk=run_id).update(heartbeat_at=timezone.now())
        time.sleep(poll)


def build_actuator(run: DrillRun, brokers: dict[int, dict]):
    cluster = run.cluster
    if cluster.actuator == Actuator.SANDBOX:
        return SandboxActuator(cluster.sandbox_control)
    if cluster.actuator == Actuator.COMMAND:
        return CommandActuator(cluster.actuator_commands, brokers)
    if cluster.actuator == Actuator.MANUAL:
        return ManualActuator(lambda description: wait_for_person(run.pk, description))
    return None


# --- finishing and evidence -------------------------------------------------------------------


def drill_run_finish(*, run: DrillRun, outcome: str, figures: dict, timeline: dict | None, tripped: str,
                     error: str, manual_steps: int) -> DrillRun:  # fmt: skip
    with transaction.atomic():
        state = DrillRun.State.ABORTED if outcome == DrillRun.Outcome.ABORTED else DrillRun.State.DONE
        DrillRun.objects.filter(pk=run.pk).update(
            state=state, outcome=outcome, figures=figures, tripped_guardrail=tripped, error=error[:5000],
            manual_steps=manual_steps, phase="done", finished_at=timezone.now(), awaiting_step="",
        )  # fmt: skip
        if timeline is not None:
            DrillTimeline.objects.update_or_create(run=run, defaults={"data": timeline})
        run.refresh_from_db()
        drill_evidence_record(run=run)
    cadence = Check.objects.runnable().filter(row__scorecard__cluster=run.cluster, kind=ProbeKind.DRILL_CADENCE)
    for check in cadence:
        scorecard_services.check_run_request(check=check, requested_by=f"drill {run.pk}")
    return run


def _drill_check(cluster: Cluster, key: str) -> Check:
    row = Row.objects.get(scorecard__cluster=cluster, key=key)
    check, _ = Check.objects.get_or_create(
        row=row, kind=ProbeKind.DRILL_RESULTS,
        defaults={"params": {}, "interval_seconds": 30 * 86400, "max_age_seconds": 30 * 86400},
    )  # fmt: skip
    return check


def _status(fail: bool, warn: bool) -> str:
    return "FAIL" if fail else ("WARN" if warn else "PASS")


def drill_evidence_record(*, run: DrillRun) -> None:
    """Hand the drill's figures to the rows they prove (DESIGN.md section 5)."""
    f, p, label = run.figures, run.params, f"{run.get_scenario_display()} drill {run.pk}"
    collected_by = f"drill {run.pk} ({run.requested_by})"
    rows = []
    if "rpo_acked_lost" in f:
        lost = f["rpo_acked_lost"] > 0 or f.get("reordered", 0) > 0
        rows.append((RowKey.DURABILITY, _status(lost, f.get("duplicates", 0) > 0),
                     f"{label}: {f['rpo_acked_lost']} acknowledged records lost of {f.get('records_acked')}, "
                     f"{f.get('duplicates', 0)} duplicated, {f.get('reordered', 0)} reordered"))  # fmt: skip
    if f.get("fault_at_s") is not None and run.scenario in CLUSTER_FAULTS:
        reelect = f.get("reelection_s")
        slow = reelect is None or reelect > p.get("reelection_target_seconds", 30)
        rows.append((RowKey.METADATA, _status(slow, False),
                     f"{label}: leaders re-elected in {reelect if reelect is not None else 'never'} s, "
                     f"replicas caught up in {f.get('catchup_s', 'n/a')} s"))  # fmt: skip
    if f.get("fault_at_s") is not None:
        rto = f.get("write_rto_s")
        fatal = len(f.get("producer_fatal_errors") or [])
        group = f.get("consumer_restart") or f.get("standby_cutover") or {}
        gap = group.get("gap_records", 0)
        summary = (
            f"{label}: write RTO {rto if rto is not None else 'not recovered'} s, read RTO {f.get('read_rto_s')} s"
        )
        if fatal:
            summary += f"; the producer entered a fatal state {fatal} times and was recreated"
        if group:
            summary += (
                f"; {group.get('partitions_resumed', 0)} of {group.get('partitions_committed', 0)} partitions resumed"
                f" in {f.get('consumer_resume_s', 'n/a')} s with a gap of {gap} records"
            )
        if "catch_up_s" in f:
            summary += f"; caught up {f.get('catch_up_records')} records in {f['catch_up_s']} s"
        unresumed = group.get("partitions_resumed", 0) < group.get("partitions_committed", 0)
        fail = rto is None or rto > p.get("write_rto_target_seconds", 30) or gap > 0 or unresumed
        rows.append((RowKey.CLIENT_CONTINUITY, _status(fail, bool(fatal)), summary))
    automation_fail = run.outcome == DrillRun.Outcome.FAILED or (run.error and not run.tripped_guardrail)
    automation_summary = f"{label}: {run.outcome or run.state}"
    if run.tripped_guardrail:
        automation_summary += f", guardrail {run.tripped_guardrail} tripped and recovery ran"
    if run.manual_steps:
        automation_summary += f", {run.manual_steps} manual steps"
    if run.error:
        automation_summary += f"; {run.error[:200]}"
    rows.append((RowKey.AUTOMATION, _status(bool(automation_fail), bool(run.tripped_guardrail or run.manual_steps)),
                 automation_summary))  # fmt: skip
    measurements = {"drill_run": run.pk, "scenario": run.scenario, "outcome": run.outcome, "figures": f,
                    "guardrails": run.guardrails, "tripped_guardrail": run.tripped_guardrail}  # fmt: skip
    for key, status, summary in rows:
        scorecard_services.evidence_append(
            check=_drill_check(run.cluster, key), status=status, summary=summary, measurements=measurements,
            collected_by=collected_by,
        )  # fmt: skip


# --- the watchdog -------------------------------------------------------------------------------


def drills_abandoned(*, stale_seconds: float) -> list[DrillRun]:
    """Active drills whose worker stopped beating, or that are past their deadline."""
    now = timezone.now()
    stale = now - timedelta(seconds=stale_seconds)
    runs = DrillRun.objects.filter(state__in=[DrillRun.State.RUNNING, DrillRun.State.RECOVERING]).select_related(
        "cluster"
    )
    return [r for r in runs if (r.heartbeat_at and r.heartbeat_at < stale) or (r.deadline_at and r.deadline_at < now)]


def drill_run_recover_abandoned(*, run_id: int, stale_seconds: float, worker: str) -> DrillRun | None:
    """Run the stored recovery plan of a drill whose worker died, and mark it aborted."""
    now = timezone.now()
    stale = now - timedelta(seconds=stale_seconds)
    lost = Q(heartbeat_at__lt=stale) | Q(deadline_at__lt=now)
    claimed = DrillRun.objects.filter(lost, pk=run_id, state=DrillRun.State.RUNNING).update(
        state=DrillRun.State.RECOVERING, heartbeat_at=timezone.now(), worker=worker[:200]
    )
    run = DrillRun.objects.select_related("cluster").get(pk=run_id)
    if not claimed and run.state != DrillRun.State.RECOVERING:
        return None
    errors = drill_run_recovery_plan_execute(run=run, by=worker)
    drill_run_event(run_id=run.pk, kind="worker_lost", detail={"recovered_by": worker, "errors": errors})
    return drill_run_finish(
        run=run, outcome=DrillRun.Outcome.ABORTED, figures=run.figures or {}, timeline=None, tripped="worker_lost",
        error="the worker running the drill stopped; the watchdog ran the recovery"
        + (f" with errors: {'; '.join(errors)}" if errors else ""),
        manual_steps=run.manual_steps,
    )  # fmt: skip


def drill_run_recovery_plan_execute(*, run: DrillRun, by: str) -> list[str]:
    """Perform the recovery plan stored before the fault; returns the steps that failed.

    Recovery steps are idempotent (start a started broker, move a leader where it is), so
    running them after a partial recovery is safe. A manual actuator cannot be driven by a
    machine: its steps are recorded for a person instead.
    """
    plan = run.recovery_plan or {}
    actuator = build_actuator(run, {int(k): v for k, v in plan.get("brokers", {}).items()})
    errors = []
    for step in plan.get("actions", []):
        action = Action(step["op"], step["broker"], step.get("topic", ""), step.get("partition", -1))
        if actuator is None or isinstance(actuator, ManualActuator):
            errors.append(f"{action.describe()}: needs a person")
            continue
        try:
            detail = actuator.perform(action) or {}
            drill_run_event(run_id=run.pk, kind="watchdog_recovery", detail={"action": step, "by": by, **detail})
        except ActuatorError as exc:
            errors.append(f"{action.describe()}: {exc}")
    return errors
