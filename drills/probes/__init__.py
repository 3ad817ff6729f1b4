"""Live probes (DESIGN.md section 4): one function per probe, taking a context and validated
parameters, returning a ProbeResult. A failing Kafka call becomes ERROR with its reason."""

from collections.abc import Callable

from drills.probes.base import ProbeContext, ProbeResult
from drills.probes.cadence import drill_cadence
from drills.probes.compatibility import client_compatibility
from drills.probes.cost import cost_model
from drills.probes.durability import durability_config
from drills.probes.endpoints import bootstrap_endpoints
from drills.probes.groups import consumer_groups
from drills.probes.health import cluster_health
from drills.probes.parity import standby_parity
from drills.probes.write import ack_write

PROBES: dict[str, Callable[..., ProbeResult]] = {
    "cluster_health": cluster_health,
    "durability_config": durability_config,
    "ack_write": ack_write,
    "bootstrap_endpoints": bootstrap_endpoints,
    "consumer_groups": consumer_groups,
    "client_compatibility": client_compatibility,
    "standby_parity": standby_parity,
    "drill_cadence": drill_cadence,
    "cost_model": cost_model,
}

__all__ = ["PROBES", "ProbeContext", "ProbeResult"]
