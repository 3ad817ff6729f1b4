"""Requests to run something against a cluster, from pages and commands: checks now, a drill,
its abort, a manual step confirmed. Each writes its row first and queues the work on commit;
workers execute it (`drills.runner`)."""

from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError

from drills.models import DrillRun, DrillSchedule
from drills.tasks import run_check, run_drill
from scorecard import audit, catalog, roles
from scorecard.catalog import CLUSTER_FAULTS, RowKey, Scenario
from scorecard.models import Actuator, Check, CheckRun, Cluster, Row, Scorecard
from scorecard.services import check_run_create
from scorecard.targets import GUARDRAILS, looser, row_guardrails, targets_snapshot

# Beyond the hard time limit before a RUNNING run counts as abandoned: the worker's own
# hard-limit kill and its log line come first.
ABANDONED_MARGIN_SECONDS = 60


class DrillRefused(Exception):
    """The drill may not start; the message says why."""


class DrillBusy(DrillRefused):
    """Another drill holds the cluster."""


class QueueUnavailable(Exception):
    """The broker did not take the work; the runs concerned are marked failed with the reason."""


def _unavailable(exc: Exception) -> str:
    return f"could not be queued: the task broker is unreachable ({exc})"


def _send_checks(runs: Sequence[CheckRun]) -> None:
    """Send each run to its cluster's queue; when the broker refuses, no run is left queued."""
    for i, run in enumerate(runs):
        try:
            run_check.apply_async(args=[run.pk], queue=run.check_obj.row.scorecard.cluster.worker_queue)
        except OperationalError as exc:
            reason = _unavailable(exc)
            CheckRun.fail_unqueued([r.pk for r in runs[i:]], reason=reason)
            raise QueueUnavailable(reason) from None


def check_run_request(*, check: Check, requested_by: str) -> CheckRun:
    """Create a run row and queue it on the cluster's worker queue once the transaction commits."""
    run = check_run_create(check=check, requested_by=requested_by)
    transaction.on_commit(lambda: _send_checks([run]))
    return run


def scorecard_run_checks(*, scorecard: Scorecard, requested_by: str) -> list[CheckRun]:
    """Queue a run of every check a probe can run on the scorecard."""
    checks = Check.objects.runnable().filter(row__scorecard=scorecard).select_related("row__scorecard__cluster")
    with transaction.atomic():
        runs = [check_run_create(check=check, requested_by=requested_by) for check in checks]
        # A copy: the caller may extend the list it gets back before the transaction commits.
        transaction.on_commit(lambda queued=tuple(runs): _send_checks(queued))
    return runs


def runs_never_queued_expire() -> tuple[int, int]:
    """Runs and drills still queued long after they were requested never reached a worker (a
    broker outage, or no worker on their queue): fail them with that reason, so nothing stays
    queued for ever and a drill does not block its cluster. Called by beat every few seconds."""
    older = timezone.now() - timedelta(seconds=settings.RUN_QUEUE_TIMEOUT_SECONDS)
    reason = (
        f"not picked up by a worker within {settings.RUN_QUEUE_TIMEOUT_SECONDS} s: "
        "is a worker serving the cluster's queue?"
    )
    # Subqueries: one UPDATE each.
    checks = CheckRun.objects.filter(state=CheckRun.State.QUEUED, created_at__lt=older).values("pk")
    drills = DrillRun.objects.filter(state=DrillRun.State.QUEUED, created_at__lt=older).values("pk")
    return CheckRun.fail_unqueued(checks, reason=reason), DrillRun.abort_unqueued(drills, reason=reason)


def runs_abandoned_expire() -> int:
    """Check runs still RUNNING a minute past their claim's hard time limit lost their worker
    process without a redelivery (the whole worker was killed: Redis gives its message back
    only after the visibility timeout, and a retry after a database error may have run out):
    fail them with that reason. A late redelivery then finds the run failed and does nothing.
    Called by beat every few seconds; drills have their own heartbeat watchdog."""
    ended_before = timezone.now() - timedelta(seconds=ABANDONED_MARGIN_SECONDS)
    reason = "its worker stopped without a result: still running a minute after its hard time limit ended"
    return CheckRun.fail_abandoned(limit_ended_before=ended_before, reason=reason)


def scenario_refusal(cluster: Cluster, scenario: str, *, move_leaders: bool = False) -> str:
    """Why the cluster cannot run the scenario as asked, or '' when it can: only what its
    actuator can perform is offered."""
    if scenario not in Scenario.values:
        return f"unknown scenario {scenario!r}"
    label = Scenario(scenario).label
    if scenario == Scenario.STANDBY_CUTOVER and not cluster.standby_id:
        return f"{label} needs a standby registered on {cluster.name}"
    if scenario not in CLUSTER_FAULTS:
        return ""
    if cluster.actuator == Actuator.NONE:
        return f"{cluster.name} has no actuator configured to inject {label}"
    moves = scenario == Scenario.LEADER_CHANGE or move_leaders
    if moves and cluster.actuator == Actuator.COMMAND:
        return f"the command actuator of {cluster.name} stops and starts brokers; it cannot move leaders ({label})"
    return ""


def drill_rows(scenario: str) -> list[str]:
    """The rows a drill's figures bear on: their rollback conditions guard it."""
    rows = [RowKey.DURABILITY, RowKey.CLIENT_CONTINUITY, RowKey.AUTOMATION]
    return rows + [RowKey.METADATA] if scenario in CLUSTER_FAULTS else rows


def drill_guardrails(*, rows: list[Row], asked: dict, by: str, may_loosen: bool) -> tuple[dict, dict]:
    """The drill's guardrails and where each came from: the strictest of the affected rows'
    rollback conditions; the person starting it may tighten them, only an approver may loosen
    them. `asked` holds what was typed (None = take the rows')."""
    limits = row_guardrails(rows)
    defaults = catalog.defaults("drill")
    values, sources = {}, {}
    for name, (_, _, label) in GUARDRAILS.items():
        wanted = asked.get(name)
        if name not in limits:
            value = wanted if wanted is not None else defaults.get(name)
            source = "drill default" if wanted is None or wanted == defaults.get(name) else f"set by {by}"
        else:
            limit, row = limits[name]
            if wanted is None or wanted == limit:
                value, source = limit, row
            elif looser(name, wanted, limit):
                if not may_loosen:
                    raise DrillRefused(
                        f"{label} {wanted:g} is looser than the {row}'s rollback condition ({limit:g}): "
                        "only a drill approver may loosen a guardrail"
                    )
                value, source = wanted, f"loosened by {by} from {limit:g} ({row})"
            else:
                value, source = wanted, f"tightened by {by} from {limit:g} ({row})"
        if value is not None:
            values[name], sources[name] = value, source
    return values, sources


def drill_run_start(
    *,
    cluster: Cluster,
    scenario: str,
    params: dict,
    requested_by: str,
    guardrails: dict | None = None,
    may_loosen: bool = False,
    schedule: DrillSchedule | None = None,
) -> DrillRun:
    """Validate and queue a drill; refuses a second active drill on the same cluster.

    Guardrails come from the rows (`drill_guardrails`), `guardrails` being what the person
    typed (None: those among `params`); targets are the rows' for the scenario, kept on the run
    as they were when it started."""
    if not cluster.drills_allowed:
        raise DrillRefused(f"drills are not allowed on {cluster.name}: enable them on the cluster first")
    catalog.parse("drill", params)  # ParamError names each bad parameter
    if guardrails is None:  # callers without a form: guardrails given among the parameters
        guardrails = {name: params.get(name) for name in GUARDRAILS}
    rows = list(Row.objects.filter(scorecard__cluster=cluster, key__in=drill_rows(scenario)))
    limits, sources = drill_guardrails(rows=rows, asked=guardrails, by=requested_by, may_loosen=may_loosen)
    parsed = catalog.parse("drill", {**params, **limits})
    refusal = scenario_refusal(cluster, scenario, move_leaders=parsed.move_leaders)
    if refusal:
        raise DrillRefused(refusal)
    if scenario == Scenario.STANDBY_CUTOVER and not (parsed.canary_group and parsed.canary_topic):
        raise DrillRefused("a standby cutover rehearsal needs a canary group and its topic")
    enforced = {name: value for name, value in limits.items() if name != "error_window_seconds"}
    try:
        with transaction.atomic():
            run = DrillRun.objects.create(
                cluster=cluster,
                scenario=scenario,
                params=vars(parsed),
                guardrails=enforced,
                guardrail_sources=sources,
                targets=targets_snapshot({row.key: row for row in rows}, scenario),
                actuator=cluster.actuator,
                requested_by=requested_by,
                schedule=schedule,
            )
            audit.record(
                "drill.start",
                run,
                cluster=cluster,
                after={"scenario": scenario, "guardrails": enforced, "guardrail_sources": sources},
                comment=next((s for s in sources.values() if s.startswith("loosened")), ""),
            )
    except IntegrityError:
        active = DrillRun.objects.filter(cluster=cluster, state__in=DrillRun.ACTIVE).first()
        raise DrillBusy(
            f"a drill is already running on {cluster.name}"
            + (f" (run {active.pk}, {active.get_scenario_display()})" if active else "")
        ) from None
    transaction.on_commit(lambda: _send_drill(run))
    return run


def _send_drill(run: DrillRun) -> None:
    try:
        run_drill.apply_async(
            args=[run.pk],
            queue=run.cluster.worker_queue,
            soft_time_limit=run.time_limit_seconds,
            time_limit=run.hard_time_limit_seconds,
        )
    except OperationalError as exc:
        reason = _unavailable(exc)
        DrillRun.abort_unqueued([run.pk], reason=reason)
        raise QueueUnavailable(reason) from None


def may_act_on(user, run: DrillRun) -> bool:
    """Abort or confirm a step: an approver on any drill, an operator on the drills they started."""
    return roles.can(user, "approve_drills") or (
        roles.can(user, "start_drills") and run.requested_by == user.get_username()
    )


def may_act_require(user, run: DrillRun, action: str) -> None:
    if not may_act_on(user, run):
        raise PermissionDenied(
            f"{user.get_username()} may not {action} drill {run.pk}: "
            f"only its requester ({run.requested_by}) or a drill approver may"
        )


def drill_run_abort_request(*, run: DrillRun, user: str) -> bool:
    if aborted := run.request_abort(user=user):
        audit.record("drill.abort", run, cluster=run.cluster, actor=user)
    return aborted


def drill_step_confirm(*, run: DrillRun, user: str) -> bool:
    if confirmed := run.confirm_step(user=user):
        audit.record("drill.confirm_step", run, cluster=run.cluster, actor=user, comment=run.awaiting_step)
    return confirmed
