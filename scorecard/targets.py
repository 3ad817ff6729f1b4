"""Typed targets and enforced rollback conditions, read from the rows.

A row's `targets` hold numbers per metric, by default and optionally per scenario:
    {"default": {"write_rto_s": 30}, "broker_loss": {"write_rto_s": 10}}
Verdicts are judged against the target for their scenario, and the evidence names it. A
row's rollback_* fields are a drill's guardrails: the strictest of the rows a drill affects.
"""

import math
from dataclasses import dataclass

from scorecard.catalog import RowKey, Scenario


@dataclass(frozen=True)
class Metric:
    label: str
    unit: str
    row: str
    default: float | None  # the product's default when no row sets one; None = no target


METRICS: dict[str, Metric] = {
    "rpo_records": Metric("RPO (acknowledged records lost)", "records", RowKey.DURABILITY, 0),
    "reelection_s": Metric("Leader re-election", "s", RowKey.METADATA, 30),
    "catch_up_s": Metric("Replica catch-up", "s", RowKey.METADATA, None),
    "write_rto_s": Metric("Write RTO", "s", RowKey.CLIENT_CONTINUITY, 30),
    "read_rto_s": Metric("Read RTO", "s", RowKey.CLIENT_CONTINUITY, 30),
    "consumer_resume_s": Metric("Consumer resume", "s", RowKey.CLIENT_CONTINUITY, 30),
    "lag_catch_up_s": Metric("Lag catch-up time", "s", RowKey.CLIENT_CONTINUITY, None),
    "monthly_budget_usd": Metric("Monthly budget", "$", RowKey.COST, 5000),
}
SCOPES = ("default", *Scenario.values)
LIMIT = 10**9


def row_metrics(row_key: str) -> list[str]:
    return [name for name, metric in METRICS.items() if metric.row == row_key]


def validate_targets(row_key: str, targets: object) -> dict:
    """The targets, checked: known scopes, this row's metrics, finite non-negative numbers."""
    if not isinstance(targets, dict):
        raise ValueError("targets must be a mapping of scope to {metric: number}")
    allowed = row_metrics(row_key)
    clean = {}
    for scope, values in targets.items():
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}: use default or a scenario ({', '.join(Scenario.values)})")
        if not isinstance(values, dict):
            raise ValueError(f"{scope}: expected {{metric: number}}")
        for name, value in values.items():
            if name not in allowed:
                raise ValueError(f"{scope}.{name}: not a target of this row (it has {', '.join(allowed) or 'none'})")
            number = isinstance(value, int | float) and not isinstance(value, bool)
            try:
                finite = number and math.isfinite(value)
            except OverflowError:  # an int too large for a float: finite, and out of range below
                finite = True
            if not finite:
                raise ValueError(f"{scope}.{name}: expected a number")
            if not 0 <= value <= LIMIT:
                raise ValueError(f"{scope}.{name}: must be between 0 and {LIMIT:,}")
        if values:
            clean[scope] = dict(values)
    return clean


def target_for(row, metric: str, scenario: str = "") -> tuple[float | None, str]:
    """(value, where it comes from) for one metric of one row, for a scenario if given."""
    title = RowKey(METRICS[metric].row).label
    targets = row.targets if row is not None else {}
    if scenario and metric in targets.get(scenario, {}):
        return targets[scenario][metric], f"{title} row, {Scenario(scenario).label}"
    if metric in targets.get("default", {}):
        return targets["default"][metric], f"{title} row"
    return METRICS[metric].default, "product default (no target on the row)"


def targets_snapshot(rows_by_key: dict, scenario: str) -> dict:
    """The targets of the given rows' metrics for a scenario, with their sources: what a drill
    is judged against."""
    snapshot = {}
    for name, metric in METRICS.items():
        if metric.row not in rows_by_key:
            continue
        value, source = target_for(rows_by_key[metric.row], name, scenario)
        if value is not None:
            snapshot[name] = {"value": value, "source": source}
    return snapshot


def describe(target: dict | None, unit: str = " s") -> str:
    """'target <= 30 s, Client continuity row' for a snapshot entry."""
    if not target:
        return "no target"
    return f"target <= {target['value']:g}{unit}, {target['source']}"


# --- guardrails -----------------------------------------------------------------------------

# guardrail -> (row field, stricter-is, label)
GUARDRAILS = {
    "max_duration_seconds": ("rollback_max_duration_seconds", min, "max drill duration (s)"),
    "max_error_rate": ("rollback_max_error_rate", min, "max produce error rate"),
    "error_window_seconds": ("rollback_error_window_seconds", min, "error-rate window (s)"),
    "max_consumer_lag": ("rollback_max_consumer_lag", min, "max consumer lag (records)"),
    "min_healthy_brokers": ("rollback_min_healthy_brokers", max, "min healthy brokers"),
}


def guardrail_words(row) -> list[str]:
    """The row's machine-enforced rollback parts, in words: "max produce error rate 0.05"."""
    return [
        f"{label} {getattr(row, field):g}" for field, _, label in GUARDRAILS.values() if getattr(row, field) is not None
    ]


def row_guardrails(rows) -> dict[str, tuple[float, str]]:
    """The strictest of each guardrail the rows set: {name: (value, "Row title row")}."""
    strictest: dict[str, tuple[float, str]] = {}
    for row in rows:
        for name, (field, stricter, _) in GUARDRAILS.items():
            value = getattr(row, field)
            if value is None:
                continue
            current = strictest.get(name)
            if current is None or stricter(value, current[0]) != current[0]:
                strictest[name] = (value, f"{row.title} row")
    return strictest


def looser(name: str, asked: float | None, limit: float) -> bool:
    """Whether `asked` relaxes the row's limit (no value at all relaxes it entirely)."""
    if asked is None:
        return True
    _, stricter, _ = GUARDRAILS[name]
    return stricter(asked, limit) == limit and asked != limit


def _effective(targets: dict, scope: str, metric: str) -> float | None:
    for where in (scope, "default"):
        if metric in targets.get(where, {}):
            return targets[where][metric]
    return METRICS[metric].default


def loosenings(row, changes: dict) -> dict[str, str]:
    """What an edit of a row would loosen, by form field: a guardrail relaxed or removed, or a
    target raised or removed (for any scenario). Only approvers and admins may."""
    found = {}
    for name, (field, _, label) in GUARDRAILS.items():
        stored = getattr(row, field)
        if field in changes and stored is not None and looser(name, changes[field], stored):
            found[field] = f"Only a drill approver may loosen the {label} guardrail (now {stored:g})."
    if "targets" in changes:
        old, new = row.targets or {}, changes["targets"]
        for metric in row_metrics(row.key):
            for scope in SCOPES:
                before, after = _effective(old, scope, metric), _effective(new, scope, metric)
                if before is not None and (after is None or after > before):
                    where = "" if scope == "default" else f" for {Scenario(scope).label}"
                    found.setdefault(
                        f"target_{metric}",
                        f"Only a drill approver may loosen the {METRICS[metric].label} target{where} (now {before:g}).",
                    )
    return found
