"""The catalogue of what can be run against a cluster: probe kinds and the row each feeds,
drill scenarios, and the parameters each takes, validated the same way from pages and workers.

It lives in `scorecard` because the record (checks, their parameters, drill runs) is defined
in these terms, and it imports no Kafka client: pages build forms from it, `drills` runs what
it names. That keeps the dependency one way: drills -> scorecard.
"""

import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import models


class RowKey(models.TextChoices):
    DURABILITY = "durability", "Data durability"
    METADATA = "metadata", "Metadata recovery"
    CLIENT_CONTINUITY = "client_continuity", "Client continuity"
    AUTOMATION = "automation", "Operational automation"
    COST = "cost", "Cost sustainability"


class ProbeKind(models.TextChoices):
    CLUSTER_HEALTH = "cluster_health", "Cluster health"
    DURABILITY_CONFIG = "durability_config", "Durability config"
    ACK_WRITE = "ack_write", "Acknowledged write"
    BOOTSTRAP_ENDPOINTS = "bootstrap_endpoints", "Bootstrap endpoints"
    CONSUMER_GROUPS = "consumer_groups", "Consumer groups"
    CLIENT_COMPATIBILITY = "client_compatibility", "Client compatibility"
    STANDBY_PARITY = "standby_parity", "Standby parity"
    DRILL_CADENCE = "drill_cadence", "Drill cadence"
    COST_MODEL = "cost_model", "Cost model"
    DRILL_RESULTS = "drill_results", "Drill results"


# Which row each probe feeds (DESIGN.md section 4). Drill results feed several rows.
PROBE_ROWS = {
    ProbeKind.CLUSTER_HEALTH: RowKey.METADATA,
    ProbeKind.DURABILITY_CONFIG: RowKey.DURABILITY,
    ProbeKind.ACK_WRITE: RowKey.DURABILITY,
    ProbeKind.BOOTSTRAP_ENDPOINTS: RowKey.CLIENT_CONTINUITY,
    ProbeKind.CONSUMER_GROUPS: RowKey.CLIENT_CONTINUITY,
    ProbeKind.CLIENT_COMPATIBILITY: RowKey.CLIENT_CONTINUITY,
    ProbeKind.STANDBY_PARITY: RowKey.CLIENT_CONTINUITY,
    ProbeKind.DRILL_CADENCE: RowKey.AUTOMATION,
    ProbeKind.COST_MODEL: RowKey.COST,
}


class Scenario(models.TextChoices):
    BROKER_LOSS = "broker_loss", "Broker loss"
    ZONE_LOSS = "zone_loss", "Zone loss"
    LEADER_CHANGE = "leader_change", "Leader change"
    CONSUMER_RESTART = "consumer_restart", "Consumer restart"
    LAG_CATCH_UP = "lag_catch_up", "Lag catch-up"
    STANDBY_CUTOVER = "standby_cutover", "Standby cutover rehearsal"


# Faults an actuator performs on the cluster; the others are faults the drill applies to its own clients.
CLUSTER_FAULTS = (Scenario.BROKER_LOSS, Scenario.ZONE_LOSS, Scenario.LEADER_CHANGE)
CLIENT_FAULTS = (Scenario.CONSUMER_RESTART, Scenario.LAG_CATCH_UP, Scenario.STANDBY_CUTOVER)

# Probe parameters that are a row's typed target (scorecard.targets): filled in from the row
# when the probe runs, never stored on the check.
FROM_ROW_TARGETS = {"monthly_budget": "monthly_budget_usd"}

NAME_PATTERN = r"[A-Za-z0-9._-]{1,249}"  # Kafka topic and (our subset of) group names
FEATURES = ("idempotent_producer", "transactions", "consumer_groups", "kip848_consumer_protocol")


class ParamError(ValueError):
    """One or more parameters are invalid; `errors` maps each parameter to its message."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{name}: {message}" for name, message in errors.items()))
        self.errors = errors

    @property
    def name(self) -> str:
        return next(iter(self.errors))


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # int, float, bool, str, names (list of Kafka names), choices (subset of `choices`)
    default: Any
    help: str
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False  # None allowed
    max_items: int = 50
    label: str = field(default="")

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


def _timeout(default: int, maximum: int = 120) -> Param:
    return Param("timeout_seconds", "int", default, "Timeout of each Kafka call, in seconds.", 1, maximum)


# The most Kafka calls a probe waits on one after another, each up to timeout_seconds + 1 s:
# (calls, calls per configured group). Calls repeated per broker or per bootstrap address are
# not counted: they are bounded by the worker's soft time limit, which turns an overrun into
# ERROR evidence.
PROBE_WAITS: dict[str, tuple[int, int]] = {
    ProbeKind.CLUSTER_HEALTH: (3, 0),
    ProbeKind.DURABILITY_CONFIG: (4, 0),
    ProbeKind.ACK_WRITE: (10, 0),
    ProbeKind.BOOTSTRAP_ENDPOINTS: (4, 0),
    ProbeKind.CONSUMER_GROUPS: (4, 3),
    ProbeKind.CLIENT_COMPATIBILITY: (3, 0),
    ProbeKind.STANDBY_PARITY: (10, 2),
    ProbeKind.DRILL_CADENCE: (0, 0),
    ProbeKind.COST_MODEL: (7, 0),
}
# What the task keeps for itself after the probe: evidence, and the margin to the soft limit.
PROBE_TIME_MARGIN_SECONDS = 30


def probe_worst_case_seconds(kind: str, params: SimpleNamespace) -> float:
    """How long the probe can run with these parameters, waiting its timeout on every call."""
    calls, per_group = PROBE_WAITS[kind]
    calls += per_group * len(getattr(params, "groups", []))
    return calls * (getattr(params, "timeout_seconds", 0) + 1) + getattr(params, "sample_seconds", 0)


def probe_time_budget_seconds() -> int:
    """A probe must fit in its task's soft time limit, less the margin."""
    return settings.CELERY_TASK_SOFT_TIME_LIMIT - PROBE_TIME_MARGIN_SECONDS


SPECS: dict[str, tuple[Param, ...]] = {
    "cluster_health": (
        Param("expected_brokers", "int", None, "Warn when fewer brokers answer (defaults to the cluster's).", 1,
              10_000, optional=True),
        Param("min_insync_replicas", "int", 2, "Assumed min.insync.replicas where the cluster does not report it.",
              1, 100),
        _timeout(10),
    ),
    "durability_config": (
        Param("min_replication_factor", "int", 3, "Lowest acceptable replication factor.", 1, 100),
        Param("min_insync_replicas", "int", 2, "Lowest acceptable min.insync.replicas (and it must be below RF).",
              1, 100),
        Param("include_internal", "bool", False, "Also judge internal topics (names starting with '__')."),
        _timeout(15),
    ),
    "ack_write": (
        Param("records", "int", 5000, "Records to produce and verify.", 1, 1_000_000),
        Param("topic", "str", "__recovery_probe", "The dedicated probe topic."),
        Param("replication_factor", "int", 3, "Replication factor the probe topic must have (capped at the "
              "broker count); used when the probe creates it.", 1, 100),
        _timeout(30, 50),
    ),
    "bootstrap_endpoints": (
        Param("cert_warn_days", "int", 30, "Warn when a TLS certificate expires within this many days.", 0, 3650),
        _timeout(5, 60),
    ),
    "consumer_groups": (
        Param("groups", "names", [], "The critical consumer groups, comma separated."),
        Param("topics", "names", [], "Topics the groups consume (empty: every non-internal topic)."),
        Param("max_lag_records", "int", 10_000, "Warn above this lag, in records, on any partition.", 0, 10**12),
        Param("max_lag_seconds", "float", 300.0, "Warn above this lag, in seconds, on any partition.", 0, 10**7),
        _timeout(10),
    ),
    "client_compatibility": (
        Param("features", "choices", ["idempotent_producer", "transactions", "consumer_groups"],
              "Client features the applications use.", choices=FEATURES),
        _timeout(5, 60),
    ),
    "standby_parity": (
        Param("groups", "names", [], "Consumer groups whose offsets must be usable on the standby."),
        Param("max_offset_lag", "int", 100, "Largest acceptable committed-offset gap, in records.", 0, 10**12),
        Param("max_replication_lag", "int", 10_000, "Warn above this end-offset gap, in records, summed.", 0,
              10**12),
        _timeout(10),
    ),
    "drill_cadence": (
        Param("window_days", "int", 30, "Each scenario must have passed within this many days.", 1, 365),
        Param("scenarios", "choices", [s.value for s in Scenario if s != Scenario.STANDBY_CUTOVER],
              "Scenarios the policy requires.", choices=tuple(Scenario.values)),
    ),
    "cost_model": (
        Param("price_cross_zone_gb", "float", 0.02, "Price of one GB crossing zones, in $.", 0, 1000,
              label="$ per cross-zone GB"),
        Param("price_broker_hour", "float", 0.21, "Price of one broker for one hour, in $.", 0, 10_000,
              label="$ per broker-hour"),
        # Filled in from the cost row's target by the runner; not a parameter of the check.
        Param("monthly_budget", "float", 5000.0, "Monthly budget of the resilient topology, in $.", 0, 10**9),
        Param("standby_brokers", "int", 0, "Standby brokers billed (used when no standby cluster is registered).",
              0, 10_000),
        Param("consumer_fanout", "float", 1.0, "How many times each produced byte is consumed.", 0, 1000),
        Param("fetch_from_follower", "bool", False, "Consumers read from a replica in their own zone (KIP-392)."),
        Param("producer_zones", "names", [], "Zones the producers run in (empty: spread over the brokers' zones)."),
        Param("consumer_zones", "names", [], "Zones the consumers run in (empty: spread over the brokers' zones)."),
        Param("sample_seconds", "int", 10, "How long to sample end offsets to measure ingress.", 1, 300),
        _timeout(10),
    ),
    "drill": (
        Param("fault_seconds", "float", 10.0, "How long the fault is held before recovery.", 0.5, 3600),
        Param("baseline_seconds", "float", 3.0, "Steady traffic measured before the fault.", 0.5, 600),
        Param("settle_seconds", "float", 5.0, "Traffic observed after recovery.", 0, 600),
        Param("interval_ms", "int", 10, "One record per partition every this many milliseconds.", 1, 1000),
        Param("latency_slo_ms", "float", 500.0, "A record slower than this counts as not recovered.", 1, 60_000),
        Param("stability_window_seconds", "float", 2.0, "Recovered = every record within the SLO this long.",
              0.1, 60),
        Param("broker", "int", None, "Broker to stop or move leaders off (default: the busiest leader).", 0,
              10**6, optional=True),
        Param("zone", "str", None, "Zone (rack) to lose (default: the busiest leader's).", optional=True),
        Param("move_leaders", "bool", False, "Move the lost brokers' leaders to survivors (controller failover)."),
        Param("topic", "str", "__recovery_probe", "The probe topic the drill writes to."),
        Param("replication_factor", "int", 3, "Replication factor the probe topic must have (capped at the "
              "broker count); used when the drill creates it.", 1, 100),
        Param("canary_group", "str", None, "Standby cutover: the group whose synced offsets are rehearsed.",
              optional=True),
        Param("canary_topic", "str", None, "Standby cutover: the topic the canary group consumes.", optional=True),
        Param("max_offset_lag", "int", 100, "Standby cutover: largest acceptable synced-offset lag behind the primary "
              "(as standby parity).", 0, 10**12),
        Param("max_duration_seconds", "int", 300, "Guardrail: abort and recover after this long.", 5, 3600),
        Param("max_error_rate", "float", None, "Guardrail: abort above this produce error rate (0-1).", 0, 1,
              optional=True),
        Param("error_window_seconds", "float", 5.0, "Window of the error-rate guardrail.", 0.5, 600),
        Param("max_consumer_lag", "int", None, "Guardrail: abort above this consumer lag, in records.", 0,
              10**9, optional=True),
        Param("min_healthy_brokers", "int", None, "Guardrail: abort when fewer brokers answer.", 0, 10_000,
              optional=True),
    ),
}  # fmt: skip


def defaults(kind: str) -> dict:
    """What a new check stores: every default except those the row's targets give."""
    return {p.name: p.default for p in SPECS[kind] if p.default is not None and p.name not in FROM_ROW_TARGETS}


def _check(param: Param, value: Any) -> Any:
    if value is None:
        if param.optional:
            return None
        raise ValueError("is required")
    if param.kind == "bool":
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if param.kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"must be a number, not {value!r}")
        try:
            if param.kind == "int" and not float(value).is_integer():
                raise ValueError("must be a whole number")
            value = int(value) if param.kind == "int" else float(value)
        except OverflowError:  # an int too large for a float: outside the range, on one side or the other
            raise ValueError(f"must be between {param.minimum:g} and {param.maximum:g}") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        if param.minimum is not None and value < param.minimum:
            raise ValueError(f"must be at least {param.minimum:g}")
        if param.maximum is not None and value > param.maximum:
            raise ValueError(f"must be at most {param.maximum:g}")
        return value
    if param.kind == "str":
        if not isinstance(value, str) or not re.fullmatch(NAME_PATTERN, value):
            raise ValueError("must be 1-249 letters, digits, '.', '_' or '-'")
        return value
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("must be a list of names")
    if len(value) > param.max_items:
        raise ValueError(f"at most {param.max_items} entries")
    if param.kind == "names":
        bad = [item for item in value if not re.fullmatch(NAME_PATTERN, item)]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a valid name (letters, digits, '.', '_' or '-')")
    else:
        bad = [item for item in value if item not in param.choices]
        if bad:
            raise ValueError(f"{bad[0]!r} is not one of {', '.join(param.choices)}")
    return list(dict.fromkeys(value))


def parse(kind: str, raw: dict) -> SimpleNamespace:
    """Validated parameters with defaults filled in; ParamError names every bad one."""
    spec = SPECS[kind]
    known = {p.name for p in spec}
    errors = {name: "is not a parameter of this probe" for name in raw if name not in known}
    values = {}
    for param in spec:
        try:
            values[param.name] = _check(param, raw.get(param.name, param.default))
        except ValueError as exc:
            errors[param.name] = str(exc)
    if errors:
        raise ParamError(errors)
    parsed = SimpleNamespace(**values)
    if kind in PROBE_WAITS:
        worst, budget = probe_worst_case_seconds(kind, parsed), probe_time_budget_seconds()
        if worst > budget:
            raise ParamError(
                {
                    "timeout_seconds": f"with these values the probe could run {worst:.0f} s, beyond the "
                    f"{budget} s a check may take (the worker's time limit); lower the timeout"
                    + (", the sample time" if "sample_seconds" in values else "")
                    + (" or the number of groups" if "groups" in values else "")
                }
            )
    return parsed
