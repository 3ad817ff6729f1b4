"""What the engine's parts share: the drill's clock, its hooks to the outside and its result."""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from drills.models import Outcome


class DrillAborted(Exception):
    """A guardrail tripped or a person pressed Abort: stop the fault and recover."""


class PreflightRefused(Exception):
    """The cluster is not healthy enough to disrupt: no fault is injected; the message says why."""


@dataclass
class Clock:
    """Times of a drill in milliseconds since it started (the timeline's unit)."""

    start_ns: int = field(default_factory=time.time_ns)

    def ms(self, ns: int | None) -> float | None:
        return None if ns is None else round((ns - self.start_ns) / 1e6, 3)

    def seconds(self, ns: int | None) -> float | None:
        return None if ns is None else round((ns - self.start_ns) / 1e9, 3)

    def elapsed(self) -> float:
        return (time.time_ns() - self.start_ns) / 1e9


@dataclass
class Window:
    """When a fault or its recovery began (the first command started) and when the actuator
    confirmed it (the last command returned successfully); None when it never was."""

    started_ns: int | None = None
    confirmed_ns: int | None = None


@dataclass
class Hooks:
    """How the engine reports without knowing the database; the runner wires them to the run."""

    progress: Callable[[dict], None] = lambda state: None
    should_abort: Callable[[], bool] = lambda: False
    event: Callable[[str, dict], None] = lambda kind, detail: None
    recovery_plan: Callable[[list[dict]], None] = lambda actions: None


@dataclass
class DrillResult:
    outcome: Outcome
    figures: dict
    timeline: dict | None
    tripped: str = ""
    error: str = ""
    manual_steps: int = 0

    @classmethod
    def aborted(cls, error: str, *, tripped: str = "") -> "DrillResult":
        """A drill stopped by its deadline or a crash, after its fault may have bitten."""
        return cls(Outcome.ABORTED, {}, None, tripped, error)

    @classmethod
    def refused(cls, reason: str) -> "DrillResult":
        return cls(Outcome.REFUSED, {"refused": reason}, None, "", "")

    @classmethod
    def not_injected(cls, reason: str) -> "DrillResult":
        """A drill that could not reach its fault (no plan, no metadata, no probe topic)."""
        return cls(
            Outcome.INCONCLUSIVE, {"inconclusive": f"the fault could not be injected ({reason})"}, None, "", reason
        )
