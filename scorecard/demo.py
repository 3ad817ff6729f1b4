"""Demo data: the sandbox and Tansu clusters with owners, rollback conditions (text and
guardrails) and targets on every row, one login per role, and drills scheduled on the sandbox."""

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from scorecard import audit, roles, services
from scorecard.catalog import ProbeKind, RowKey
from scorecard.models import Actuator, Check, Cluster, Row, Scorecard

# One login per role; the operator owns (and signs off) every demo row.
DEMO_USERS = {
    "viewer": roles.Role.VIEWER,
    "operator": roles.Role.OPERATOR,
    "approver": roles.Role.APPROVER,
    "admin": roles.Role.ADMIN,
}
ROW_OWNER = "operator"
# Short enough that a visitor sees scheduled runs arrive; long enough not to load a laptop.
DEMO_INTERVAL_SECONDS = 120
DEMO_MAX_AGE_SECONDS = 600

DEMO_ROWS = {
    RowKey.DURABILITY: {
        "owner": "Storage platform team",
        "owner_contact": "#kafka-storage",
        "rollback_condition": "Stop the drill when produce errors exceed 5% over 30 s or fewer than 2 brokers are up.",
        "rollback_max_error_rate": 0.05,
        "rollback_error_window_seconds": 30,
        "rollback_min_healthy_brokers": 2,
        "target": "RPO = 0 acknowledged records lost",
        "targets": {"default": {"rpo_records": 0}},
    },
    RowKey.METADATA: {
        "owner": "Kafka SRE on-call",
        "owner_contact": "kafka-sre@example.com",
        "rollback_condition": "Stop when any partition stays leaderless for more than 30 s; no drill beyond 5 minutes.",
        "rollback_max_duration_seconds": 300,
        "target": "controller present; 0 offline partitions; re-election <= 10 s",
        "targets": {"default": {"reelection_s": 10}},
    },
    RowKey.CLIENT_CONTINUITY: {
        "owner": "Payments streaming team",
        "owner_contact": "#payments-streaming",
        "rollback_condition": "Stop when consumer lag on critical groups exceeds 50,000 records.",
        "rollback_max_consumer_lag": 50_000,
        "target": "write RTO <= 30 s (10 s on leader change); consumers resume with no gap",
        "targets": {"default": {"write_rto_s": 30, "read_rto_s": 30}, "leader_change": {"write_rto_s": 10}},
    },
    RowKey.AUTOMATION: {
        "owner": "Platform automation",
        "owner_contact": "#platform-automation",
        "rollback_condition": "Any drill longer than 10 minutes is aborted and recovered.",
        "rollback_max_duration_seconds": 600,
    },
    RowKey.COST: {
        "owner": "FinOps",
        "owner_contact": "finops@example.com",
        "rollback_condition": "Not disruptive: the cost model only reads metadata and throughput.",
        "target": "under $5,000 a month",
        "targets": {"default": {"monthly_budget_usd": 5000}},
    },
}


@transaction.atomic
def demo_cluster(
    *, name: str, bootstrap_servers: str, expected_brokers: int, groups: list[str], control_socket: str = ""
) -> Scorecard:
    """Register a demo cluster, or point it at this run's process (ports change each run),
    and make every check due now so the scheduler collects fresh evidence at once."""
    owner = get_user_model().objects.get(username=ROW_OWNER)
    rows = {key: {**fields, "owner_user": owner} for key, fields in DEMO_ROWS.items()}
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
        scorecard = services.cluster_register(cluster=cluster, rows=rows)
    else:
        cluster.bootstrap_servers = bootstrap_servers
        cluster.sandbox_control = control_socket
        services.cluster_update(cluster=cluster)
        for key, fields in rows.items():
            Row.objects.filter(scorecard__cluster=cluster, key=key, owner="").update(**fields)
        scorecard = cluster.scorecard
    checks = Check.objects.filter(row__scorecard=scorecard)
    checks.update(interval_seconds=DEMO_INTERVAL_SECONDS, max_age_seconds=DEMO_MAX_AGE_SECONDS, last_scheduled_at=None)
    for check in checks.filter(kind=ProbeKind.CONSUMER_GROUPS):
        services.check_update(check=check, params={**check.params, "groups": groups})
    for check in checks.filter(kind=ProbeKind.COST_MODEL):
        services.check_update(check=check, params={**check.params, "sample_seconds": 5})
    return scorecard


def demo_users() -> dict[str, str]:
    """Create or reset one login per role, a fresh password each run: {username: password}."""
    logins = {}
    with audit.acting_as("demo"):
        for username, role in DEMO_USERS.items():
            user, _ = roles.role_assign(username=username, role=role, create=True)
            logins[username] = secrets.token_urlsafe(12)
            user.set_password(logins[username])
            user.save()
    return logins


def demo_not_applicable(scorecard: Scorecard) -> None:
    """The sandbox (librdkafka's mock cluster) has no DescribeConfigs: its durability config
    check is NOT APPLICABLE, asked by the demo's operator and approved by its approver, the
    two-person way every check is."""
    check = Check.objects.get(row__scorecard=scorecard, kind=ProbeKind.DURABILITY_CONFIG)
    if check.not_applicable or check.not_applicable_pending:
        return
    reason = "the sandbox cluster (librdkafka's mock) does not implement DescribeConfigs"
    with audit.acting_as("operator"):
        services.not_applicable_request(check=check, by="operator", reason=reason)
    with audit.acting_as("approver"):
        services.not_applicable_approve(check=check, by="approver")
