"""The evidence chain (DESIGN.md section 6): append-only, hash-chained per scorecard."""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC

from django.db import transaction
from django.utils import timezone

from scorecard.models import EVIDENCE_STATUSES, Check, CheckRun, Evidence, Scorecard

GENESIS_HASH = "0" * 64


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
    for evidence in Evidence.objects.filter(scorecard=scorecard).order_by("seq").iterator(chunk_size=500):
        expected_seq = count + 1
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
    return ChainVerification(True, count, prev_hash)
