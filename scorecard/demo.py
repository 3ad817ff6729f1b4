"""Demo data: the sandbox and Tansu clusters with owners and rollback conditions on every row."""

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from scorecard import services
from scorecard.catalog import ProbeKind, RowKey
from scorecard.models import Actuator, Check, Cluster, Row, Scorecard

DEMO_USER = "demo"
# Short enough that a visitor sees scheduled runs arrive; long enough not to load a laptop.
DEMO_INTERVAL_SECONDS = 120
DEMO_MAX_AGE_SECONDS = 600

DEMO_ROWS = {
    RowKey.DURABILITY: {
        "owner": "Storage platform team",
        "owner_contact": "#kafka-storage",
        "rollback_condition": "Stop the drill when produce errors exceed 5% over 30 s or fewer than 2 brokers are up.",
        "target": "RPO = 0 acknowledged records lost",
    },
    RowKey.METADATA: {
        "owner": "Kafka SRE on-call",
        "owner_contact": "kafka-sre@example.com",
        "rollback_condition": "Stop when any partition stays leaderless for more than 30 s.",
        "target": "controller present; 0 offline partitions; re-election <= 10 s",
    },
    RowKey.CLIENT_CONTINUITY: {
        "owner": "Payments streaming team",
        "owner_contact": "#payments-streaming",
        "rollback_condition": "Stop when consumer lag on critical groups exceeds 50,000 records.",
    },
    RowKey.AUTOMATION: {
        "owner": "Platform automation",
        "owner_contact": "#platform-automation",
        "rollback_condition": "Any drill longer than 10 minutes is aborted and recovered.",
    },
    RowKey.COST: {
        "owner": "FinOps",
        "owner_contact": "finops@example.com",
        "rollback_condition": "Not disruptive: the cost model only reads metadata and throughput.",
    },
}


@transaction.atomic
def demo_cluster(
    *, name: str, bootstrap_servers: str, expected_brokers: int, groups: list[str], control_socket: str = ""
) -> Scorecard:
    """Register a demo cluster, or point it at this run's process (ports change each run),
    and make every check due now so the scheduler collects fresh evidence at once."""
    cluster = Cluster.objects.filter(name=name).first()
    if cluster is None:
        cluster = Cluster(
            name=name,
            bootstrap_servers=bootstrap_servers,
            expected_brokers=expected_brokers,
            drills_allowed=bool(control_socket),
            actuator=Actuator.SANDBOX if control_socket else Actuator.NONE,
            sandbox_control=control_socket,
        )
        scorecard = services.cluster_register(cluster=cluster, rows=DEMO_ROWS)
    else:
        cluster.bootstrap_servers = bootstrap_servers
        cluster.sandbox_control = control_socket
        services.cluster_update(cluster=cluster)
        for key, fields in DEMO_ROWS.items():
            Row.objects.filter(scorecard__cluster=cluster, key=key, owner="").update(**fields)
        scorecard = cluster.scorecard
    checks = Check.objects.filter(row__scorecard=scorecard)
    checks.update(interval_seconds=DEMO_INTERVAL_SECONDS, max_age_seconds=DEMO_MAX_AGE_SECONDS, last_scheduled_at=None)
    for check in checks.filter(kind=ProbeKind.CONSUMER_GROUPS):
        services.check_update(check=check, user="demo", params={**check.params, "groups": groups})
    for check in checks.filter(kind=ProbeKind.COST_MODEL):
        services.check_update(check=check, user="demo", params={**check.params, "sample_seconds": 5})
    return scorecard


def demo_user() -> tuple[str, str]:
    """Create or reset the demo login; a fresh password each run."""
    password = secrets.token_urlsafe(12)
    user, _ = get_user_model().objects.get_or_create(username=DEMO_USER)
    user.set_password(password)
    user.save()
    return DEMO_USER, password
