from scorecard import catalog, services
from scorecard.models import Check, Cluster, ProbeKind, RowKey, Scorecard

OWNED_ROWS = {key: {"owner": "team", "rollback_condition": "stop on errors"} for key in RowKey.values}


def register(name: str = "prod-eu", bootstrap: str = "127.0.0.1:9092", **fields) -> Scorecard:
    return services.cluster_register(cluster=Cluster(name=name, bootstrap_servers=bootstrap, **fields), rows=OWNED_ROWS)


def check_of(scorecard: Scorecard, kind: str = ProbeKind.CLUSTER_HEALTH) -> Check:
    return Check.objects.select_related("row__scorecard__cluster").get(row__scorecard=scorecard, kind=kind)


def probe(kind: str, connection, *, standby=None, cluster_id: int = 0, expected_brokers=None, **params):
    """Run one probe in-process with validated parameters."""
    from drills.probes import PROBES, ProbeContext

    ctx = ProbeContext(
        cluster_id=cluster_id,
        connection=connection,
        expected_brokers=expected_brokers,
        standby=standby,
        standby_name="standby" if standby else None,
    )
    return PROBES[kind](ctx, catalog.parse(kind, params))
