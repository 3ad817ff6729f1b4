"""Commands on the record: registration, rows, checks and their runs.

The evidence chain is in `scorecard.evidence`, the read side in `scorecard.selectors`.
Queueing runs on workers is `drills.services`: this app never imports `drills`.
"""

from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from scorecard import audit, catalog, roles
from scorecard.catalog import PROBE_ROWS, ProbeKind, RowKey
from scorecard.evidence import chain_start, evidence_append
from scorecard.models import Check, CheckRun, Cluster, Evidence, Row, Scorecard, SignOff, Status
from scorecard.targets import loosenings

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
    chain_start(scorecard)
    for key in RowKey.values:
        Row.objects.create(scorecard=scorecard, key=key, **{**ROW_DEFAULTS[key], **(rows or {}).get(key, {})})
    cluster_sync_checks(cluster=cluster)
    audit.record("cluster.register", cluster, after=audit.snapshot(cluster))
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
    before = audit.snapshot(Cluster.objects.get(pk=cluster.pk))
    secret_typed = getattr(cluster, "_secret_typed", False)
    cluster.full_clean()
    cluster.save()
    cluster_sync_checks(cluster=cluster)
    audit.record(
        "cluster.update",
        cluster,
        before=before,
        after=audit.snapshot(cluster),
        comment="SASL password entered" if secret_typed else "",
    )
    return cluster


def row_may_edit(user, row: Row) -> bool:
    """Admins edit any row; an operator the rows linked to them."""
    return roles.can(user, "manage_clusters") or (
        roles.can(user, "edit_own_rows") and row.owner_user_id is not None and row.owner_user_id == user.pk
    )


@transaction.atomic
def row_update(*, row: Row, may_loosen: bool = True, **fields) -> Row:
    """Change a row's owner, contact, test, rollback condition (text and guardrails) or targets.
    Without `may_loosen`, relaxing a guardrail or a target is refused."""
    stored = Row.objects.select_for_update().get(pk=row.pk)
    if not may_loosen and (loosened := loosenings(stored, fields)):
        raise PermissionDenied(" ".join(loosened.values()))
    before = audit.snapshot(stored)
    for name, value in fields.items():
        setattr(row, name, value)
    row.full_clean()
    row.save()
    audit.record("row.update", row, before=before, after=audit.snapshot(row))
    return row


def row_sign_off(*, row: Row, user, comment: str, status: str) -> SignOff:
    """The row's owner attests "reviewed, accepted" at the row's current status."""
    if row.owner_user_id is None or row.owner_user_id != user.pk:
        raise PermissionDenied(f"only the row's owner may sign off {row.title}")
    comment = comment.strip()
    if not comment:
        raise ValidationError({"comment": "Say what was reviewed and accepted."})
    if status not in Status.values:
        raise ValueError(f"unknown status {status!r}")
    with transaction.atomic():
        signoff = SignOff.objects.create(
            row=row, user=user, username=user.get_username(), comment=comment[:2000], row_status=status
        )
        audit.record("row.sign_off", row, after={"status": status, "comment": comment[:2000]})
    return signoff


SCHEDULE_FIELDS = ("interval_seconds", "max_age_seconds")


@transaction.atomic
def check_update(*, check: Check, **fields) -> Check:
    """Change a check's parameters or schedule (applicability has its own two-person steps)."""
    if unknown := set(fields) - {"params", *SCHEDULE_FIELDS}:
        raise ValueError(f"check_update does not change {', '.join(sorted(unknown))}")
    before = audit.snapshot(Check.objects.get(pk=check.pk), fields)  # a bound form already changed `check`
    for name, value in fields.items():
        setattr(check, name, value)
    check.full_clean()
    check.save()
    audit.record("check.update", check, before=before, after=audit.snapshot(check, fields))
    return check


NA_FIELDS = (
    "not_applicable",
    "not_applicable_reason",
    "not_applicable_by",
    "not_applicable_at",
    "not_applicable_approved_by",
    "not_applicable_approved_at",
)


def _na_save(check: Check, action: str, **fields) -> Check:
    before = audit.snapshot(check, NA_FIELDS)
    for name, value in fields.items():
        setattr(check, name, value)
    check.full_clean()
    check.save(update_fields=list(fields))
    audit.record(action, check, before=before, after=audit.snapshot(check, NA_FIELDS))
    return check


def _locked(check: Check) -> Check:
    """The check re-read under a row lock, so two people's NOT APPLICABLE steps serialize."""
    fresh = Check.objects.select_for_update().get(pk=check.pk)
    for name in NA_FIELDS:
        setattr(check, name, getattr(fresh, name))
    return check


@transaction.atomic
def not_applicable_request(*, check: Check, by: str, reason: str) -> Check:
    """Ask for the check to be NOT APPLICABLE; it applies until someone else approves."""
    check = _locked(check)
    if check.not_applicable:
        raise ValidationError({"not_applicable_reason": "The check is already NOT APPLICABLE."})
    if check.not_applicable_pending:
        raise ValidationError(
            {"not_applicable_reason": f"{check.not_applicable_by} already asked; withdraw that request first."}
        )
    if not reason.strip():
        raise ValidationError({"not_applicable_reason": "Say why the check does not apply."})
    return _na_save(
        check,
        "not_applicable.request",
        not_applicable_reason=reason.strip(),
        not_applicable_by=by,
        not_applicable_at=timezone.now(),
        not_applicable_approved_by="",
        not_applicable_approved_at=None,
    )


@transaction.atomic
def not_applicable_approve(*, check: Check, by: str) -> Check:
    """An approver other than the person who asked makes the check NOT APPLICABLE."""
    check = _locked(check)
    if not check.not_applicable_pending:
        raise ValidationError({"not_applicable_reason": "Nobody asked for this check to be NOT APPLICABLE."})
    if by == check.not_applicable_by:
        raise PermissionDenied("NOT APPLICABLE needs an approver other than the person who asked")
    return _na_save(
        check,
        "not_applicable.approve",
        not_applicable=True,
        not_applicable_approved_by=by,
        not_applicable_approved_at=timezone.now(),
    )


@transaction.atomic
def not_applicable_withdraw(*, check: Check) -> Check:
    """The check applies again (a pending request is dropped): anyone who edits checks may."""
    check = _locked(check)
    return _na_save(
        check,
        "not_applicable.withdraw",
        not_applicable=False,
        not_applicable_reason="",
        not_applicable_by="",
        not_applicable_at=None,
        not_applicable_approved_by="",
        not_applicable_approved_at=None,
    )


# Who asked for the runs beat sends.
SCHEDULER = "schedule"


def check_run_create(*, check: Check, requested_by: str) -> CheckRun:
    """The row of one run, created before anything is queued (the worker claims it)."""
    return CheckRun.objects.create(check_obj=check, requested_by=requested_by)


def check_run_for_schedule(*, check_id: int, task_id: str) -> CheckRun | None:
    """The run of one scheduled message: created once per task id, so a redelivery finds it."""
    check = Check.objects.runnable().filter(pk=check_id).first()
    if check is None or not task_id:
        return None
    run, _ = CheckRun.objects.get_or_create(task_id=task_id, defaults={"check_obj": check, "requested_by": SCHEDULER})
    return run


def check_run_claim(*, run_id: int, worker: str, redelivered: bool = False) -> CheckRun | None:
    """Claim a queued run for this worker; a run RUNNING past the hard task time limit
    belonged to a worker that died (the limit would have killed it otherwise).

    A redelivered message (its worker process died: reject-on-worker-lost; or a retry after a
    database error) may take over a RUNNING run at once: the delivery that claimed it has
    ended. Should it still be running after all, the claim's start time makes only the newest
    delivery's evidence count (CheckRun.mark_done)."""
    now, limit = timezone.now(), timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    abandoned = now if redelivered else now - limit
    return CheckRun.claim(run_id, worker=worker, abandoned_before=abandoned, time_limit=limit)


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
