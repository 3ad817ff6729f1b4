"""Drill schedules in a scorecard's YAML (scorecard.config_code).

The record never imports `drills`, so this app registers the section it owns; the record finds
this module the way the admin site finds `admin.py` (autodiscover). Validation and changes go
through `drills.schedules`, as on the drills page.
"""

from datetime import time

from django.core.exceptions import ValidationError

from drills import schedules, services
from drills.models import DrillSchedule
from scorecard import audit, catalog
from scorecard.catalog import Scenario
from scorecard.config_code import Section, register_section
from scorecard.models import Cluster

FIELDS = ("scenario", "weekdays", "window_start", "window_end", "time_zone", "enabled", "params")
# What the drills page's schedule form stores (drills.forms.DrillScheduleForm.params): the page
# shows and edits schedules in these terms, so a file may set no other parameter.
PARAMS = ("fault_seconds", "max_duration_seconds")


def _time_text(value: time) -> str:
    return value.strftime("%H:%M") if not (value.second or value.microsecond) else value.isoformat()


def _item(schedule: DrillSchedule) -> dict:
    """A schedule as configuration: who made it and what its windows did are its history."""
    return {
        "scenario": schedule.scenario,
        "weekdays": sorted(schedule.weekdays),
        "window_start": _time_text(schedule.window_start),
        "window_end": _time_text(schedule.window_end),
        "time_zone": schedule.time_zone,
        "enabled": schedule.enabled,
        "params": dict(schedule.params),
    }


def export(cluster: Cluster) -> list[dict]:
    return [_item(schedule) for schedule in DrillSchedule.objects.filter(cluster=cluster)]


def _time(item: dict, name: str, errors: dict) -> time | None:
    value = item.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 12:30 as the number 750 (base 60).
        errors[name] = "write the time in quotes, e.g. '02:30'"
        return None
    try:
        parsed = time.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is not None:  # the schedule's time_zone says which clock
        errors[name] = "expected a time HH:MM" if value is not None else "required (HH:MM)"
    return parsed


def clean(item: dict, cluster: Cluster) -> dict:
    """One schedule checked as the drills page checks it, against the cluster as the YAML sets it."""
    errors = {}
    scenario, weekdays = item.get("scenario"), item.get("weekdays")
    if not isinstance(scenario, str):
        errors["scenario"] = f"required, one of {', '.join(Scenario.values)}"
    if not isinstance(weekdays, list) or any(isinstance(d, bool) or not isinstance(d, int) for d in weekdays):
        errors["weekdays"] = "expected a list of ISO weekdays, 1 = Monday .. 7 = Sunday"
    window_start, window_end = _time(item, "window_start", errors), _time(item, "window_end", errors)
    time_zone, enabled, params = item.get("time_zone", "UTC"), item.get("enabled", True), item.get("params") or {}
    if not isinstance(time_zone, str):
        errors["time_zone"] = "expected an IANA name such as Europe/Paris"
    if not isinstance(enabled, bool):
        errors["enabled"] = "expected true or false"
    if not isinstance(params, dict):
        errors["params"] = "expected a mapping of drill parameters"
    else:
        params = _params(params, errors)
    if errors:
        raise ValidationError(errors)
    schedules.validate_schedule(scenario=scenario, weekdays=weekdays, window_start=window_start,
                                window_end=window_end, time_zone=time_zone, params=params)  # fmt: skip
    if refusal := services.scenario_refusal(cluster, scenario):
        raise ValidationError({"scenario": refusal})
    return _item(
        DrillSchedule(
            scenario=scenario,
            weekdays=sorted(set(weekdays)),
            window_start=window_start,
            window_end=window_end,
            time_zone=time_zone,
            enabled=enabled,
            params=params,
        )  # fmt: skip
    )


def _params(params: dict, errors: dict) -> dict:
    """The parameters the form takes, checked and typed by the catalogue as the form's are."""
    for name in params.keys() - set(PARAMS):
        errors[f"params.{name}"] = f"not a parameter of a scheduled drill; allowed: {', '.join(PARAMS)}"
    params = {name: params[name] for name in PARAMS if name in params}
    try:
        parsed = vars(catalog.parse("drill", params))
    except catalog.ParamError as exc:
        errors.update({f"params.{name}": message for name, message in exc.errors.items()})
        return params
    return {name: parsed[name] for name in params}


def apply(*, cluster: Cluster, removed: list[dict], added: list[dict], by: str) -> None:
    """Delete the schedules no longer in the YAML, create the new ones (a changed one is both)."""
    removed = list(removed)
    for schedule in DrillSchedule.objects.select_for_update().filter(cluster=cluster):
        if (item := _item(schedule)) in removed:
            removed.remove(item)
            schedules.schedule_delete(schedule=schedule)
    for item in added:
        schedule = schedules.schedule_create(
            cluster=cluster,
            by=by,
            scenario=item["scenario"],
            weekdays=item["weekdays"],
            window_start=time.fromisoformat(item["window_start"]),
            window_end=time.fromisoformat(item["window_end"]),
            time_zone=item["time_zone"],
            params=item["params"],
        )
        if not item["enabled"]:
            # Kept off: re-importing an export must not start drills someone had stopped.
            schedule.enabled = False
            schedule.save(update_fields=["enabled"])
            audit.record("drill_schedule.disable", schedule, cluster=cluster, after={"enabled": False})


register_section(
    Section(
        key="drill_schedules",
        permission="approve_drills",
        action="schedule drills",
        fields=FIELDS,
        export=export,
        clean=clean,
        apply=apply,
    )
)
