"""What every probe shares: its context, its result and the way failures become ERROR."""

from dataclasses import dataclass, field

from drills import kafka
from scorecard.models import Status

MAX_LISTED = 50


@dataclass(frozen=True)
class ProbeContext:
    """Where a probe runs: the cluster, and its standby where one is registered."""

    cluster_id: int
    connection: kafka.ConnectionSettings
    expected_brokers: int | None = None
    standby: kafka.ConnectionSettings | None = None
    standby_name: str | None = None


@dataclass(frozen=True)
class ProbeResult:
    status: Status  # PASS, WARN, FAIL or ERROR (the others are derived, never measured)
    summary: str
    measurements: dict = field(default_factory=dict)


def error(reason: str, **measurements) -> ProbeResult:
    """The probe could not run: ERROR with the reason, safe to show."""
    return ProbeResult(Status.ERROR, reason[:500], {"error": reason, **measurements})


def unsupported(exc: kafka.UnsupportedApi, **measurements) -> ProbeResult:
    """The cluster lacks an API the probe needs: ERROR naming it, so the owner can judge N/A."""
    return error(exc.reason, missing_api=exc.api, **measurements)


def is_internal(topic: str) -> bool:
    return topic.startswith("__") or topic.startswith("_confluent")


def listed(items: list) -> list:
    """A bounded list for evidence: the first MAX_LISTED items."""
    return items[:MAX_LISTED]
