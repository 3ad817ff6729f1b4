"""Demo data: the sandbox cluster with owners and rollback conditions on every row."""

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from scorecard import services
from scorecard.models import Actuator, Cluster, Row, RowKey, Scorecard

DEMO_CLUSTER = "sandbox"
DEMO_USER = "demo"

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
def demo_seed(*, bootstrap_servers: str, control_socket: str) -> Scorecard:
    """Register the demo cluster, or point it at this run's sandbox (its ports change each run)."""
    cluster = Cluster.objects.filter(name=DEMO_CLUSTER).first()
    if cluster is None:
        cluster = Cluster(
            name=DEMO_CLUSTER,
            bootstrap_servers=bootstrap_servers,
            expected_brokers=3,
            drills_allowed=True,
            actuator=Actuator.SANDBOX,
            sandbox_control=control_socket,
        )
        return services.cluster_register(cluster=cluster, rows=DEMO_ROWS)
    cluster.bootstrap_servers = bootstrap_servers
    cluster.sandbox_control = control_socket
    cluster.full_clean()
    cluster.save(update_fields=["bootstrap_servers", "sandbox_control"])
    for key, fields in DEMO_ROWS.items():
        Row.objects.filter(scorecard__cluster=cluster, key=key, owner="").update(**fields)
    return cluster.scorecard


def demo_user() -> tuple[str, str]:
    """Create or reset the demo login; a fresh password each run."""
    password = secrets.token_urlsafe(12)
    user, _ = get_user_model().objects.get_or_create(username=DEMO_USER)
    user.set_password(password)
    user.save()
    return DEMO_USER, password
