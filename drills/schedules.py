"""Scheduled drills: an approver's recurring scenario, started by beat inside its window only.

A schedule allows windows (weekdays, a start and an end time in a time zone). In each window
beat starts one drill, through the same gate as a drill started by hand (drills allowed, the
actuator can perform it, guardrails from the rows, the worker's pre-flight), as long as the
drill's longest duration still ends inside the window. While another drill holds the cluster
it tries again on the next tick. A window that ends without its drill is recorded as missed,
with the reason; it is never run late.
"""

import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from drills import services
from drills.models import DrillSchedule, ScheduledWindow
from scorecard import audit, catalog, roles
from scorecard.catalog import Scenario
from scorecard.models import Row
from scorecard.targets import GUARDRAILS

log = logging.getLogger(__name__)

# How far back beat looks for windows that ended while it was not running.
LOOKBACK_DAYS = 8


def validate_schedule(
    *, scenario: str, weekdays: list[int], window_start: time, window_end: time, time_zone: str, params: dict
) -> dict:
    """Every field checked; ValidationError by field. Returns the parsed drill parameters."""
    errors = {}
    if scenario not in Scenario.values:
        errors["scenario"] = f"unknown scenario {scenario!r}"
    if not weekdays or any(not isinstance(d, int) or not 1 <= d <= 7 for d in weekdays):
        errors["weekdays"] = "Choose at least one weekday."
    if window_start == window_end:
        errors["window_end"] = "The window must not be empty."
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        errors["time_zone"] = f"Unknown time zone {time_zone!r} (use an IANA name such as Europe/Paris)."
    parsed = {}
    try:
        parsed = vars(catalog.parse("drill", params))
    except catalog.ParamError as exc:
        errors["params"] = str(exc)
    if not errors:
        length = _window_length(window_start, window_end)
        if parsed["max_duration_seconds"] > length.total_seconds():
            errors["window_end"] = (
                f"The window ({length}) is shorter than the drill's longest duration "
                f"({parsed['max_duration_seconds']} s): it could never start inside it."
            )
    if errors:
        raise ValidationError(errors)
    return parsed


def _window_length(start: time, end: time) -> timedelta:
    """A window ending at or before its start ends the next day (22:00-02:00)."""
    length = datetime.combine(date.min, end) - datetime.combine(date.min, start)
    return length if length > timedelta(0) else length + timedelta(days=1)


def windows(schedule: DrillSchedule, *, since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """The schedule's windows that start between `since` and `until`, in UTC. Each is built from
    wall-clock times in its zone, so a window keeps its local hours across clock changes; one
    that falls entirely in a skipped hour does not exist that day."""
    zone = ZoneInfo(schedule.time_zone)
    next_day = schedule.window_end <= schedule.window_start
    day = since.astimezone(zone).date() - timedelta(days=1)
    last = until.astimezone(zone).date()
    found = []
    while day <= last:
        if day.isoweekday() in schedule.weekdays:
            start = datetime.combine(day, schedule.window_start, tzinfo=zone).astimezone(UTC)
            end_day = day + timedelta(days=1) if next_day else day
            end = datetime.combine(end_day, schedule.window_end, tzinfo=zone).astimezone(UTC)
            if end > start and since <= start <= until:
                found.append((start, end))
        day += timedelta(days=1)
    return found


def _record(schedule: DrillSchedule, start: datetime, end: datetime, *, run=None, missed: str = "") -> None:
    try:
        with transaction.atomic():
            ScheduledWindow.objects.create(
                schedule=schedule, window_start=start, window_end=end, run=run, missed_reason=missed[:500]
            )
    except IntegrityError:
        pass  # another beat recorded this window already
    DrillSchedule.objects.filter(pk=schedule.pk).update(handled_window=start)
    schedule.handled_window = start


def _guardrails(schedule: DrillSchedule) -> dict:
    """What its approver set, else the rows' (as when an approver starts a drill by hand)."""
    return {name: schedule.params.get(name) for name in GUARDRAILS}


def _longest(schedule: DrillSchedule) -> timedelta:
    """How long the drill may run: its duration guardrail, from the schedule or the rows."""
    rows = Row.objects.filter(scorecard__cluster=schedule.cluster, key__in=services.drill_rows(schedule.scenario))
    limits, _ = services.drill_guardrails(rows=list(rows), asked=_guardrails(schedule), by="", may_loosen=True)
    return timedelta(seconds=limits["max_duration_seconds"])


def schedule_tick(schedule: DrillSchedule, now: datetime) -> str:
    """Deal with the schedule's windows up to `now`; returns what happened, for logs and tests."""
    if schedule.handled_window:
        since = schedule.handled_window + timedelta(seconds=1)
    else:  # from the window open when the schedule was made, if any
        since = schedule.created_at - _window_length(schedule.window_start, schedule.window_end)
    since = max(since, now - timedelta(days=LOOKBACK_DAYS))
    outcome = "nothing due"
    due = windows(schedule, since=since, until=now)
    longest = _longest(schedule) if due else None
    for start, end in due:
        if now + longest > end:
            _record(schedule, start, end, missed="the window passed before a drill could start and finish in it")
            outcome = "missed"
            continue
        outcome = _start(schedule, start, end)
    return outcome


def _start(schedule: DrillSchedule, start: datetime, end: datetime) -> str:
    cluster = schedule.cluster
    if not roles.user_may(schedule.created_by, "approve_drills"):
        reason = f"{schedule.created_by}, who scheduled it, is no longer a drill approver"
        _record(schedule, start, end, missed=reason)
        return "missed"
    try:
        # The run and its window are recorded together: a window never gets a second drill.
        with transaction.atomic(), audit.acting_as(f"schedule {schedule.pk} ({schedule.created_by})"):
            run = services.drill_run_start(
                cluster=cluster,
                scenario=schedule.scenario,
                params=schedule.params,
                guardrails=_guardrails(schedule),
                may_loosen=True,
                requested_by=f"schedule {schedule.pk}",
                schedule=schedule,
            )
            _record(schedule, start, end, run=run)
    except services.DrillBusy:
        return "busy"  # not handled: tried again on the next tick, while the window lasts
    except services.DrillRefused as exc:
        _record(schedule, start, end, missed=f"refused: {exc}")
        return "missed"
    except (services.QueueUnavailable, catalog.ParamError) as exc:
        _record(schedule, start, end, missed=f"not started: {exc}")
        return "missed"
    log.info("schedule %s started drill %s on %s", schedule.pk, run.pk, cluster.name)
    return "started"


def schedules_tick(now: datetime | None = None) -> dict[int, str]:
    """Called by beat every few seconds: every enabled schedule. One schedule that fails does
    not keep the others from their windows."""
    now = now or timezone.now()
    outcomes = {}
    for schedule in DrillSchedule.objects.filter(enabled=True).select_related("cluster"):
        try:
            outcomes[schedule.pk] = schedule_tick(schedule, now)
        except Exception:  # logged; the next tick tries again while the window lasts
            log.exception("drill schedule %s could not be checked", schedule.pk)
            outcomes[schedule.pk] = "error"
    return outcomes


@transaction.atomic
def schedule_create(*, cluster, by: str, scenario: str, weekdays: list[int], window_start: time,
                    window_end: time, time_zone: str, params: dict) -> DrillSchedule:  # fmt: skip
    """An approver's schedule; its first window is the one open now, or the next."""
    validate_schedule(
        scenario=scenario,
        weekdays=weekdays,
        window_start=window_start,
        window_end=window_end,
        time_zone=time_zone,
        params=params,
    )
    refusal = services.scenario_refusal(cluster, scenario)
    if refusal:
        raise ValidationError({"scenario": refusal})
    schedule = DrillSchedule.objects.create(
        cluster=cluster,
        scenario=scenario,
        params=params,
        weekdays=sorted(set(weekdays)),
        window_start=window_start,
        window_end=window_end,
        time_zone=time_zone,
        created_by=by,
    )
    audit.record("drill_schedule.create", schedule, cluster=cluster, after=audit.snapshot(schedule))
    return schedule


@transaction.atomic
def schedule_delete(*, schedule: DrillSchedule) -> None:
    audit.record("drill_schedule.delete", schedule, cluster=schedule.cluster, before=audit.snapshot(schedule))
    schedule.delete()
