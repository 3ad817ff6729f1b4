"""Live probes (DESIGN.md section 4): one function per probe, taking a context and validated
parameters, returning a ProbeResult. A failing Kafka call becomes ERROR with its reason."""

from collections.abc import Callable

from drills import kafka
from drills.probes.base import ProbeContext, ProbeResult, error, unsupported
from drills.probes.cadence import drill_cadence
from drills.probes.compatibility import client_compatibility
from drills.probes.cost import cost_model
from drills.probes.durability import durability_config
from drills.probes.endpoints import bootstrap_endpoints
from drills.probes.groups import consumer_groups
from drills.probes.health import cluster_health
from drills.probes.parity import standby_parity
from drills.probes.write import ack_write
from scorecard import catalog
from scorecard.catalog import ProbeKind
from scorecard.models import Check, Cluster, Status
from scorecard.targets import target_for

PROBES: dict[str, Callable[..., ProbeResult]] = {
    ProbeKind.CLUSTER_HEALTH: cluster_health,
    ProbeKind.DURABILITY_CONFIG: durability_config,
    ProbeKind.ACK_WRITE: ack_write,
    ProbeKind.BOOTSTRAP_ENDPOINTS: bootstrap_endpoints,
    ProbeKind.CONSUMER_GROUPS: consumer_groups,
    ProbeKind.CLIENT_COMPATIBILITY: client_compatibility,
    ProbeKind.STANDBY_PARITY: standby_parity,
    ProbeKind.DRILL_CADENCE: drill_cadence,
    ProbeKind.COST_MODEL: cost_model,
}


def probe_context(cluster: Cluster) -> ProbeContext:
    standby = cluster.standby
    return ProbeContext(
        cluster_id=cluster.pk,
        connection=kafka.ConnectionSettings.for_cluster(cluster),
        expected_brokers=cluster.expected_brokers,
        standby=kafka.ConnectionSettings.for_cluster(standby) if standby else None,
        standby_name=standby.name if standby else None,
    )


def probe_run(check: Check) -> ProbeResult:
    """Run the check's probe; bad parameters and failed Kafka calls come back as ERROR."""
    # Parameters that are the row's targets come from the row, with where they came from.
    targets = {
        param: target_for(check.row, metric)
        for param, metric in catalog.FROM_ROW_TARGETS.items()
        if param in {p.name for p in catalog.SPECS.get(check.kind, ())}
    }
    raw = {**check.params, **{param: value for param, (value, _) in targets.items()}}
    try:
        params = catalog.parse(check.kind, raw)
    except catalog.ParamError as exc:
        return error(f"invalid parameters: {exc}", parameter=exc.name, **exc.errors)
    result = _probe(check, params)
    if targets and result.status != Status.ERROR:
        result.measurements["targets"] = {p: {"value": v, "source": s} for p, (v, s) in targets.items()}
    return result


def _probe(check: Check, params) -> ProbeResult:
    try:
        context = probe_context(check.row.scorecard.cluster)
        # A cluster no client can use says so within seconds; only a silent one waits out the
        # timeout. Drill cadence reads the database; bootstrap endpoints judges each address itself.
        if check.kind not in (ProbeKind.DRILL_CADENCE, ProbeKind.BOOTSTRAP_ENDPOINTS):
            reason = kafka.quick_failure(context.connection)
            if reason:
                return error(reason)
        return PROBES[check.kind](context, params)
    except kafka.UnsupportedApi as exc:
        return unsupported(exc)
    except kafka.KafkaCallError as exc:
        return error(exc.reason)


__all__ = ["PROBES", "ProbeContext", "ProbeResult", "probe_run"]
