"""Operations on the record that span rows: registration, runs, the evidence chain, status."""

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from config.celery import app as celery_app
from drills import params as probe_params
from scorecard.models import (
    EVIDENCE_STATUSES,
    PROBE_ROWS,
    Check,
    CheckRun,
    Cluster,
    Evidence,
    ProbeKind,
    Row,
    RowKey,
    Scorecard,
    Status,
)
from scorecard.status import check_status, row_status, scorecard_ready

GENESIS_HASH = "0" * 64
RUN_CHECK_TASK = "drills.tasks.run_check"

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
        Check.objects.create(row=rows[PROBE_ROWS[kind]], kind=kind, params=probe_params.defaults(kind))
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


def check_run_request(*, check: Check, requested_by: str) -> CheckRun:
    """Create a run row and enqueue it on the cluster's queue once the transaction commits."""
    run = CheckRun.objects.create(check_obj=check, requested_by=requested_by)
    queue = check.row.scorecard.cluster.worker_queue
    transaction.on_commit(lambda: celery_app.send_task(RUN_CHECK_TASK, args=[run.pk], queue=queue))
    return run


@transaction.atomic
def scorecard_run_checks(*, scorecard: Scorecard, requested_by: str) -> list[CheckRun]:
    checks = Check.objects.runnable().filter(row__scorecard=scorecard).select_related("row__scorecard__cluster")
    return [check_run_request(check=check, requested_by=requested_by) for check in checks]


def check_run_for_schedule(*, check_id: int, task_id: str) -> CheckRun | None:
    """The run of one scheduled message: created once per task id, so a redelivery finds it."""
    check = Check.objects.runnable().filter(pk=check_id).first()
    if check is None or not task_id:
        return None
    run, _ = CheckRun.objects.get_or_create(task_id=task_id, defaults={"check_obj": check, "requested_by": "schedule"})
    return run


def check_run_claim(*, run_id: int, worker: str) -> CheckRun | None:
    """Move a queued run to running; None if it is gone or another delivery already claimed it.

    A run still RUNNING past the hard task time limit belonged to a worker that died (the
    limit would have killed it otherwise), so its redelivery may claim it again.
    """
    now = timezone.now()
    abandoned = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    claimable = Q(state=CheckRun.State.QUEUED) | Q(state=CheckRun.State.RUNNING, started_at__lt=abandoned)
    claimed = CheckRun.objects.filter(claimable, pk=run_id).update(
        state=CheckRun.State.RUNNING, started_at=now, worker=worker[:200]
    )
    if not claimed:
        return None
    return CheckRun.objects.select_related("check_obj__row__scorecard__cluster").get(pk=run_id)


@transaction.atomic
def check_run_finish(*, run: CheckRun, status: str, summary: str, measurements: dict, collected_by: str) -> Evidence:
    """Append the run's evidence and mark the run done, together."""
    evidence = evidence_append(
        check=run.check_obj,
        run=run,
        status=status,
        summary=summary,
        measurements=measurements,
        collected_by=collected_by,
    )
    CheckRun.objects.filter(pk=run.pk).update(state=CheckRun.State.DONE, finished_at=timezone.now())
    return evidence


def check_run_fail(*, run_id: int, error: str) -> None:
    CheckRun.objects.filter(pk=run_id).exclude(state=CheckRun.State.DONE).update(
        state=CheckRun.State.FAILED, finished_at=timezone.now(), error=error[:2000]
    )


# --- the evidence chain -------------------------------------------------------------------


def evidence_payload(evidence: Evidence) -> dict:
    """The fields the hash covers, in a form that survives a database round trip."""
    return {
        "scorecard": evidence.scorecard_id,
        "seq": evidence.seq,
        "check": evidence.check_obj_id,
        "run": evidence.run_id,
        "row": evidence.row_key,
        "status": evidence.status,
        "summary": evidence.summary,
        "measurements": evidence.measurements,
        "collected_by": evidence.collected_by,
        "collected_at": evidence.collected_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }


def evidence_hash(payload: dict, prev_hash: str) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256((canonical + prev_hash).encode()).hexdigest()


@transaction.atomic
def evidence_append(
    *,
    check: Check,
    status: str,
    summary: str,
    measurements: dict,
    collected_by: str,
    run: CheckRun | None = None,
) -> Evidence:
    """Append evidence to the check's scorecard chain under a lock on the scorecard."""
    if status not in EVIDENCE_STATUSES:
        raise ValueError(f"evidence status must be one of {', '.join(EVIDENCE_STATUSES)}, not {status!r}")
    scorecard = Scorecard.objects.select_for_update().get(pk=check.row.scorecard_id)
    last = Evidence.objects.filter(scorecard=scorecard).order_by("-seq").only("seq", "hash").first()
    # Round-trip through JSON so the hash covers exactly what the database will give back.
    measurements = json.loads(json.dumps(measurements, allow_nan=False, default=str))
    evidence = Evidence(
        scorecard=scorecard,
        seq=(last.seq + 1) if last else 1,
        check_obj=check,
        run=run,
        row_key=check.row.key,
        status=status,
        summary=summary[:500],
        measurements=measurements,
        collected_by=collected_by[:200],
        collected_at=timezone.now(),
        prev_hash=last.hash if last else GENESIS_HASH,
    )
    evidence.hash = evidence_hash(evidence_payload(evidence), evidence.prev_hash)
    evidence.save()
    return evidence


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    count: int
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""


def chain_verify(*, scorecard: Scorecard) -> ChainVerification:
    """Walk the chain from the first link; name the first link whose hash or link does not hold."""
    prev_hash = GENESIS_HASH
    count = 0
    expected_seq = 1
    for evidence in Evidence.objects.filter(scorecard=scorecard).order_by("seq").iterator(chunk_size=500):
        if evidence.seq != expected_seq:
            return ChainVerification(False, count, prev_hash, expected_seq, f"evidence #{expected_seq} is missing")
        if evidence.prev_hash != prev_hash:
            return ChainVerification(
                False, count, prev_hash, evidence.seq, f"evidence #{evidence.seq} does not link to its predecessor"
            )
        if evidence_hash(evidence_payload(evidence), prev_hash) != evidence.hash:
            return ChainVerification(
                False, count, prev_hash, evidence.seq, f"evidence #{evidence.seq} was changed after it was recorded"
            )
        prev_hash = evidence.hash
        count += 1
        expected_seq += 1
    return ChainVerification(True, count, prev_hash)


# --- status -------------------------------------------------------------------------------


@dataclass
class CheckView:
    check: Check
    status: Status
    latest: Evidence | None


@dataclass
class RowView:
    row: Row
    status: Status
    checks: list[CheckView] = field(default_factory=list)


@dataclass
class ScorecardView:
    scorecard: Scorecard
    rows: list[RowView]

    @property
    def ready(self) -> bool:
        return scorecard_ready(r.status for r in self.rows)

    @property
    def proven(self) -> int:
        return sum(1 for r in self.rows if r.status == Status.PASS)


def scorecard_views(*, scorecards: list[Scorecard], now: datetime | None = None) -> list[ScorecardView]:
    """Status of every row and check of the given scorecards, in a fixed number of queries."""
    now = now or timezone.now()
    rows = list(Row.objects.filter(scorecard__in=scorecards).prefetch_related("checks"))
    checks = [check for row in rows for check in row.checks.all()]
    latest_ids = (
        Evidence.objects.filter(check_obj__in=checks)
        .values("check_obj")
        .annotate(last_seq=Max("seq"))
        .values_list("check_obj", "last_seq")
    )
    wanted = {(check_id, seq) for check_id, seq in latest_ids}
    latest: dict[int, Evidence] = {}
    if wanted:
        candidates = Evidence.objects.filter(check_obj__in=[c for c, _ in wanted], seq__in=[s for _, s in wanted])
        latest = {e.check_obj_id: e for e in candidates if (e.check_obj_id, e.seq) in wanted}
    by_scorecard: dict[int, list[RowView]] = {s.pk: [] for s in scorecards}
    for row in sorted(rows, key=lambda r: r.position):
        check_views = []
        for check in row.checks.all():
            evidence = latest.get(check.pk)
            status = check_status(
                not_applicable=check.not_applicable,
                latest_status=evidence.status if evidence else None,
                latest_at=evidence.collected_at if evidence else None,
                max_age=timedelta(seconds=check.max_age_seconds),
                now=now,
            )
            check_views.append(CheckView(check, status, evidence))
        status = row_status(
            (c.status for c in check_views),
            has_owner=bool(row.owner.strip()),
            has_rollback_condition=bool(row.rollback_condition.strip()),
        )
        by_scorecard[row.scorecard_id].append(RowView(row, status, check_views))
    return [ScorecardView(s, by_scorecard[s.pk]) for s in scorecards]


def row_recent_evidence(*, scorecard: Scorecard, per_row: int) -> dict[str, list[Evidence]]:
    """The newest evidence of each row, at most `per_row` items each."""
    history: dict[str, list[Evidence]] = {}
    for key in RowKey.values:
        history[key] = list(
            Evidence.objects.filter(scorecard=scorecard, row_key=key).select_related("check_obj")[:per_row]
        )
    return history
