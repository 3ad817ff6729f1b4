"""Commands on the record: registration, rows, checks and their runs.

The evidence chain is in `scorecard.evidence`, the read side in `scorecard.selectors`.
Queueing runs on workers is `drills.services`: this app never imports `drills`.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from scorecard import catalog
from scorecard.catalog import PROBE_ROWS, ProbeKind, RowKey
from scorecard.evidence import evidence_append
from scorecard.models import Check, CheckRun, Cluster, Evidence, Row, Scorecard

ROW_DEFAULTS: dict[str, dict[str, str]] = {
    RowKey.DURABILITY: {
        "test_description": (
            "Acknowledged write: records produced with acks=all and idempotence are read back and verified per "
            "partition by sequence number. Durability config: RF >= 3, min.insync.replicas >= 2 and < RF, no unclean "
            "leader election, on every topic and in the broker defaults."
        ),
        "target": "RPO = 0 acknowledged records lost",
    },
    RowKey.METADATA: {
        "test_description": (
            "Cluster health: expected brokers present, a controller, a leader for every partition, no "
            "under-replicated or under-min-ISR partitions."
        ),
        "target": "controller present; 0 offline and 0 under-min-ISR partitions",
    },
    RowKey.CLIENT_CONTINUITY: {
        "test_description": (
            "Bootstrap endpoints answer one by one (TLS expiry, SASL refusal); critical consumer groups keep "
            "committed offsets inside retention; brokers advertise the APIs the clients need; the standby holds "
            "the topics and usable offsets."
        ),
        "target": "write RTO <= 30 s; consumers resume with no gap",
    },
    RowKey.AUTOMATION: {
        "test_description": (
            "Drill cadence: every required scenario passed within its window, guarded, without manual steps."
        ),
        "target": "every scenario passed within 30 days",
    },
    RowKey.COST: {
        "test_description": (
            "Cost model: cross-zone replication and consumer traffic from measured ingress, broker and standby "
            "hours, priced against the monthly budget."
        ),
        "target": "within the monthly budget",
    },
}

# Probes every cluster gets; standby parity only once a standby is registered.
DEFAULT_PROBES = [kind for kind in PROBE_ROWS if kind != ProbeKind.STANDBY_PARITY]


@transaction.atomic
def cluster_register(*, cluster: Cluster, rows: dict[str, dict[str, str]] | None = None) -> Scorecard:
    """Save a new cluster with its scorecard, the five rows and their default checks."""
    cluster.full_clean()
    cluster.save()
    scorecard = Scorecard.objects.create(cluster=cluster)
    for key in RowKey.values:
        Row.objects.create(scorecard=scorecard, key=key, **{**ROW_DEFAULTS[key], **(rows or {}).get(key, {})})
    cluster_sync_checks(cluster=cluster)
    return scorecard


def cluster_sync_checks(*, cluster: Cluster) -> list[Check]:
    """Create the checks the cluster should have and does not yet (never removes one)."""
    kinds = list(DEFAULT_PROBES) + ([ProbeKind.STANDBY_PARITY] if cluster.standby_id else [])
    rows = {row.key: row for row in Row.objects.filter(scorecard__cluster=cluster)}
    existing = set(Check.objects.filter(row__scorecard__cluster=cluster).values_list("kind", flat=True))
    return [
        Check.objects.create(row=rows[PROBE_ROWS[kind]], kind=kind, params=catalog.defaults(kind))
        for kind in kinds
        if kind not in existing
    ]


@transaction.atomic
def cluster_update(*, cluster: Cluster) -> Cluster:
    """Save edited connection settings; a new standby brings its parity check."""
    cluster.full_clean()
    cluster.save()
    cluster_sync_checks(cluster=cluster)
    return cluster


def row_update(*, row: Row, **fields) -> Row:
    """Change a row's owner, contact, test, rollback condition or target."""
    for name, value in fields.items():
        setattr(row, name, value)
    row.full_clean()
    row.save()
    return row


def check_update(*, check: Check, user: str, **fields) -> Check:
    """Change a check's parameters, schedule or applicability; who marked N/A is recorded."""
    for name, value in fields.items():
        setattr(check, name, value)
    if "not_applicable" in fields:
        check.not_applicable_by = user if check.not_applicable else ""
        check.not_applicable_at = timezone.now() if check.not_applicable else None
        if not check.not_applicable:
            check.not_applicable_reason = ""
    check.full_clean()
    check.save()
    return check


def check_run_create(*, check: Check, requested_by: str) -> CheckRun:
    """The row of one run, created before anything is queued (the worker claims it)."""
    return CheckRun.objects.create(check_obj=check, requested_by=requested_by)


def check_run_for_schedule(*, check_id: int, task_id: str) -> CheckRun | None:
    """The run of one scheduled message: created once per task id, so a redelivery finds it."""
    check = Check.objects.runnable().filter(pk=check_id).first()
    if check is None or not task_id:
        return None
    run, _ = CheckRun.objects.get_or_create(task_id=task_id, defaults={"check_obj": check, "requested_by": "schedule"})
    return run


def check_run_claim(*, run_id: int, worker: str) -> CheckRun | None:
    """Claim a queued run for this worker; a run RUNNING past the hard task time limit
    belonged to a worker that died (the limit would have killed it otherwise)."""
    abandoned = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    return CheckRun.claim(run_id, worker=worker, abandoned_before=abandoned)


@transaction.atomic
def check_run_finish(*, run: CheckRun, status: str, summary: str, measurements: dict, collected_by: str) -> Evidence:
    """Mark the run done and append its evidence, together or not at all."""
    run.mark_done()
    return evidence_append(
        check=run.check_obj,
        run=run,
        status=status,
        summary=summary,
        measurements=measurements,
        collected_by=collected_by,
    )
