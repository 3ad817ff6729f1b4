"""The drill engine, in parts with one job each: `core` runs the phases, `traffic` produces,
consumes and watches metadata, `guardrails` decides when to stop, `client_faults` breaks the
drill's own clients, `figures` turns what was observed into RTO, RPO and the timeline."""

from drills.engine.base import DrillAborted, DrillResult, Hooks, PreflightRefused
from drills.engine.core import DrillEngine

__all__ = ["DrillAborted", "DrillEngine", "DrillResult", "Hooks", "PreflightRefused"]
