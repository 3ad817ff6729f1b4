"""The evidence chain (DESIGN.md section 6): append-only, keyed, hash-chained per scorecard.

Each link is an HMAC (SCORECARD_EVIDENCE_KEY, never in the database) over the canonical JSON
of its fields and the previous link's hash. The scorecard keeps a signed head, the count and
last hash, moved in the same transaction as each append; appends continue from the head, not
from whatever the last row is. So a changed, reordered or deleted link, a deleted tail, all
evidence deleted, or a chain recomputed without the key no longer agree with the head.

Verification has three depths:
- `chain_states`: for lists of scorecards, one query (each chain's first and last link
  against its head, two index probes each) plus what the last verification stored;
- `chain_verify`: for a scorecard's pages, the above plus a walk of the links appended since
  the signed checkpoint of the last verification;
- `chain_walk`: every link from the first, on a schedule (beat) and for exports.
"""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.db import connection, transaction
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from scorecard.models import EVIDENCE_STATUSES, GENESIS_HASH, Check, CheckRun, Evidence, Scorecard

__all__ = [
    "GENESIS_HASH",
    "ChainRekeyRefused",
    "ChainVerification",
    "chain_rekey",
    "chain_states",
    "chain_verify",
    "chain_walk",
    "evidence_append",
]


# Migration 0005 marks chains that did not hold before they were re-keyed with this reason.
BROKEN_BEFORE_UPGRADE = "before the upgrade to keyed hashes"


def _mac(message: str, key: str | None = None) -> str:
    key = key or settings.SCORECARD_EVIDENCE_KEY
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


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


def evidence_hash(payload: dict, prev_hash: str, key: str | None = None) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return _mac(canonical + prev_hash, key)


def _signature(kind: str, scorecard_id: int, count: int, last_hash: str, key: str | None = None) -> str:
    return _mac(f"{kind}\x1f{scorecard_id}\x1f{count}\x1f{last_hash}", key)


def head_sign(scorecard: Scorecard) -> None:
    scorecard.head_signature = _signature("head", scorecard.pk, scorecard.head_count, scorecard.head_hash)


def _checkpoint_sign(scorecard: Scorecard, key: str | None = None) -> str:
    return _signature("checkpoint", scorecard.pk, scorecard.verified_count, scorecard.verified_hash, key)


def chain_start(scorecard: Scorecard) -> None:
    """Sign the empty head of a new scorecard (an unsigned head is reported as tampered)."""
    head_sign(scorecard)
    scorecard.verified_signature = _checkpoint_sign(scorecard)
    Scorecard.objects.filter(pk=scorecard.pk).update(
        head_signature=scorecard.head_signature, verified_signature=scorecard.verified_signature
    )


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
    """Append evidence to the check's scorecard chain under a lock on the scorecard, moving
    its signed head in the same transaction."""
    if status not in EVIDENCE_STATUSES:
        raise ValueError(f"evidence status must be one of {', '.join(EVIDENCE_STATUSES)}, not {status!r}")
    scorecard = Scorecard.objects.select_for_update().get(pk=check.row.scorecard_id)
    # Round-trip through JSON so the hash covers exactly what the database will give back.
    measurements = json.loads(json.dumps(measurements, allow_nan=False, default=str))
    evidence = Evidence(
        scorecard=scorecard,
        seq=scorecard.head_count + 1,
        check_obj=check,
        run=run,
        row_key=check.row.key,
        status=status,
        summary=summary[:500],
        measurements=measurements,
        collected_by=collected_by[:200],
        collected_at=timezone.now(),
        prev_hash=scorecard.head_hash,
    )
    evidence.hash = evidence_hash(evidence_payload(evidence), evidence.prev_hash)
    evidence.save()
    scorecard.head_count, scorecard.head_hash = evidence.seq, evidence.hash
    head_sign(scorecard)
    Scorecard.objects.filter(pk=scorecard.pk).update(
        head_count=scorecard.head_count, head_hash=scorecard.head_hash, head_signature=scorecard.head_signature
    )
    return evidence


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    count: int  # links the signed head vouches for
    head_hash: str
    broken_seq: int | None = None
    reason: str = ""
    full: bool = False  # every link was walked (not only those since the last verification)
    walked_at: datetime | None = None  # the last full walk


def _head_problem(scorecard: Scorecard) -> str:
    expected = _signature("head", scorecard.pk, scorecard.head_count, scorecard.head_hash)
    if not hmac.compare_digest(expected, scorecard.head_signature or ""):
        return "the signed head of the chain was altered (or SCORECARD_EVIDENCE_KEY changed)"
    return ""


def _bounds_problem(scorecard: Scorecard) -> tuple[int | None, str]:
    """Compare the first and last links present (two index probes, see `_with_bounds`) with the
    signed head; (first broken seq, reason). A link missing inside the chain is the walks'."""
    head, first, last = scorecard.head_count, scorecard.first_seq, scorecard.last_seq
    if last is None:
        if head == 0:
            return None, ""
        return 1, f"all {head} evidence items are missing (the signed head vouches for #1 to #{head})"
    if last < head:
        span = f"#{last + 1}" if last + 1 == head else f"#{last + 1} to #{head}"
        return last + 1, f"the newest evidence {span} is missing (deleted tail; the signed head vouches for {head})"
    if last > head:
        return head + 1, f"evidence #{head + 1} to #{last} was added outside the chain (not in the signed head)"
    if first != 1:
        span = "#1" if first == 2 else f"#1 to #{first - 1}"
        return 1, f"the oldest evidence {span} is missing (deleted head of the chain)"
    return None, ""


def _with_bounds(scorecards):
    """Scorecards annotated with their first and last link's seq: two index probes each
    (evidence_unique_seq), whatever the chain's length."""
    links = Evidence.objects.filter(scorecard=OuterRef("pk"))
    return scorecards.annotate(
        first_seq=Subquery(links.order_by("seq").values("seq")[:1]),
        last_seq=Subquery(links.order_by("-seq").values("seq")[:1]),
    )


def _walk(scorecard: Scorecard, start: int, prev_hash: str, key: str | None = None) -> tuple[int | None, str]:
    """Check links start..head (under `key`, by default the configured one); (first broken seq
    or None, reason)."""
    expected_seq = start
    links = Evidence.objects.filter(scorecard=scorecard, seq__gte=start, seq__lte=scorecard.head_count)
    for evidence in links.order_by("seq").iterator(chunk_size=500):
        if evidence.seq != expected_seq:
            return expected_seq, f"evidence #{expected_seq} is missing"
        if evidence.prev_hash != prev_hash:
            return evidence.seq, f"evidence #{evidence.seq} does not link to its predecessor"
        if not hmac.compare_digest(evidence_hash(evidence_payload(evidence), prev_hash, key), evidence.hash):
            return evidence.seq, f"evidence #{evidence.seq} was changed or re-hashed after it was recorded"
        prev_hash = evidence.hash
        expected_seq += 1
    if expected_seq <= scorecard.head_count:
        return expected_seq, f"evidence #{expected_seq} is missing"
    if prev_hash != scorecard.head_hash:
        return scorecard.head_count, "the last link does not match the signed head"
    return None, ""


def _record(scorecard: Scorecard, broken_seq: int | None, reason: str, *, full: bool) -> ChainVerification:
    """Store what verification found: a break until a full walk finds the chain whole again,
    and on success a signed checkpoint (which only moves forward) so the next page only walks
    newer links."""
    ok = broken_seq is None and not reason
    now = timezone.now()
    fields = {"walked_at": now} if full else {}
    if not ok:
        fields["broken_reason"] = reason[:500]
    elif full and not scorecard.broken_reason.startswith(BROKEN_BEFORE_UPGRADE):
        fields["broken_reason"] = ""  # a break found before the keyed chain cannot heal
    if fields:
        Scorecard.objects.filter(pk=scorecard.pk).update(**fields)
    if ok:
        scorecard.verified_count, scorecard.verified_hash = scorecard.head_count, scorecard.head_hash
        Scorecard.objects.filter(pk=scorecard.pk, verified_count__lte=scorecard.verified_count).update(
            verified_count=scorecard.verified_count,
            verified_hash=scorecard.verified_hash,
            verified_signature=_checkpoint_sign(scorecard),
        )
    for name, value in fields.items():
        setattr(scorecard, name, value)
    return ChainVerification(
        ok, scorecard.head_count, scorecard.head_hash, broken_seq, reason, full, scorecard.walked_at
    )


def _stored_problem(scorecard: Scorecard) -> str:
    return scorecard.broken_reason or _head_problem(scorecard)


def _rollback_problem(scorecard: Scorecard, key: str | None = None) -> str:
    """A head older than what verification already vouched for: the tail was removed and an
    earlier (validly signed) head put back."""
    checkpoint_ok = hmac.compare_digest(_checkpoint_sign(scorecard, key), scorecard.verified_signature or "")
    if checkpoint_ok and scorecard.verified_count > scorecard.head_count:
        return (
            f"the signed head vouches for {scorecard.head_count} evidence items but {scorecard.verified_count} "
            f"were already verified: an older head was restored and evidence #{scorecard.head_count + 1} to "
            f"#{scorecard.verified_count} is gone"
        )
    return ""


def _current(scorecard: Scorecard) -> Scorecard:
    """The scorecard's head and its chain's bounds, read in one statement, so an append
    committing meanwhile cannot make them disagree."""
    return _with_bounds(Scorecard.objects.filter(pk=scorecard.pk)).get()


def chain_states(scorecards: list[Scorecard]) -> dict[int, ChainVerification]:
    """Whether each chain can be trusted, from one query (the heads as stored now, and each
    chain's first and last link): a stored break, an altered or rolled-back head, a deleted
    tail or start, or links added. (Links changed or missing inside need a walk.)"""
    states = {}
    for scorecard in _with_bounds(Scorecard.objects.filter(pk__in=[s.pk for s in scorecards])):
        broken_seq, reason = _bounds_problem(scorecard)
        reason = _stored_problem(scorecard) or _rollback_problem(scorecard) or reason
        states[scorecard.pk] = ChainVerification(
            not reason, scorecard.head_count, scorecard.head_hash, broken_seq, reason, False, scorecard.walked_at
        )
    return states


def chain_verify(*, scorecard: Scorecard) -> ChainVerification:
    """The page's verification: the head, the rows present, and the links appended since the
    last verification (a full walk if the checkpoint itself does not verify)."""
    current = _current(scorecard)
    if reason := _stored_problem(current):
        return ChainVerification(False, current.head_count, current.head_hash, None, reason, False, current.walked_at)
    if reason := _rollback_problem(current):
        return _record(current, current.head_count + 1, reason, full=False)
    broken_seq, reason = _bounds_problem(current)
    if reason:
        return _record(current, broken_seq, reason, full=False)
    if not hmac.compare_digest(_checkpoint_sign(current), current.verified_signature or ""):
        return chain_walk(scorecard=current)
    start, prev_hash = current.verified_count, current.verified_hash
    if start:
        # The checkpoint's own link must still be the one verified.
        at = Evidence.objects.filter(scorecard=current, seq=start).values_list("hash", flat=True).first()
        if at != prev_hash:
            return _record(current, start, f"evidence #{start} was changed after it was verified", full=False)
    broken_seq, reason = _walk(current, start + 1, prev_hash)
    return _record(current, broken_seq, reason, full=False)


def chain_walk(*, scorecard: Scorecard) -> ChainVerification:
    """Every link from the first, against the signed head (on a schedule)."""
    current = _current(scorecard)
    reason = _head_problem(current) or _rollback_problem(current)
    if current.broken_reason.startswith(BROKEN_BEFORE_UPGRADE):
        reason = current.broken_reason
    if reason:
        return _record(current, None, reason, full=True)
    broken_seq, reason = _bounds_problem(current)
    if not reason:  # the walk names the first link that does not hold, missing ones included
        broken_seq, reason = _walk(current, 1, GENESIS_HASH)
    return _record(current, broken_seq, reason, full=True)


def chain_walk_all() -> dict[str, int]:
    """The scheduled full walk of every scorecard's chain; counts of whole and broken chains."""
    result = {"whole": 0, "broken": 0}
    for scorecard in Scorecard.objects.all().iterator():
        result["whole" if chain_walk(scorecard=scorecard).ok else "broken"] += 1
    return result


# --- rotating the evidence key ----------------------------------------------------------------


class ChainRekeyRefused(Exception):
    """Some chain does not hold under the previous key: re-signing it would launder the break."""


def _problem_under(scorecard: Scorecard, key: str) -> str:
    """Why the chain does not hold under `key` (the head signature, a head rolled back behind
    the checkpoint, bounds and every link: a full walk), or "". A break stored by an earlier
    verification is not a reason: a full walk that finds the chain whole clears it (a page
    seen with the new key before the rotation stores one)."""
    expected = _signature("head", scorecard.pk, scorecard.head_count, scorecard.head_hash, key)
    if not hmac.compare_digest(expected, scorecard.head_signature or ""):
        return "its signed head does not verify under the previous key"
    if reason := _rollback_problem(scorecard, key):
        return reason
    broken_seq, reason = _bounds_problem(scorecard)
    if not reason:
        broken_seq, reason = _walk(scorecard, 1, GENESIS_HASH, key)
    return reason


def _resign(scorecard: Scorecard, key: str, previous_key: str) -> int:
    """Recompute every link, the head and the checkpoint of one (verified) chain under `key`.
    A checkpoint the previous key did not sign is not carried over: it starts again at 0."""
    if not hmac.compare_digest(_checkpoint_sign(scorecard, previous_key), scorecard.verified_signature or ""):
        scorecard.verified_count, scorecard.verified_hash = 0, GENESIS_HASH
    prev_hash, checkpoint_hash, links = GENESIS_HASH, GENESIS_HASH, 0
    batch: list[tuple[str, str, int]] = []
    # Evidence is append-only for the application; this sanctioned re-signing writes the two
    # hash columns directly, inside the transaction that holds the scorecard's lock.
    sql = "UPDATE scorecard_evidence SET prev_hash = %s, hash = %s WHERE id = %s"
    links_qs = Evidence.objects.filter(scorecard=scorecard).order_by("seq")
    with connection.cursor() as cursor:
        for evidence in links_qs.iterator(chunk_size=1000):
            new_hash = evidence_hash(evidence_payload(evidence), prev_hash, key)
            batch.append((prev_hash, new_hash, evidence.pk))
            if evidence.seq == scorecard.verified_count:
                checkpoint_hash = new_hash
            prev_hash, links = new_hash, links + 1
            if len(batch) >= 1000:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)
    scorecard.head_hash = prev_hash
    scorecard.head_signature = _signature("head", scorecard.pk, scorecard.head_count, prev_hash, key)
    if scorecard.verified_count:
        scorecard.verified_hash = checkpoint_hash
    scorecard.verified_signature = _signature(
        "checkpoint", scorecard.pk, scorecard.verified_count, scorecard.verified_hash, key
    )
    if not scorecard.broken_reason.startswith(BROKEN_BEFORE_UPGRADE):
        scorecard.broken_reason = ""  # the walk under the previous key found it whole
    Scorecard.objects.filter(pk=scorecard.pk).update(
        broken_reason=scorecard.broken_reason,
        walked_at=timezone.now(),
        head_hash=scorecard.head_hash,
        head_signature=scorecard.head_signature,
        verified_count=scorecard.verified_count,
        verified_hash=scorecard.verified_hash,
        verified_signature=scorecard.verified_signature,
    )
    return links


@transaction.atomic
def chain_rekey(*, previous_key: str, key: str) -> dict[str, int]:
    """Move every evidence chain from the previous evidence key to `key`: all or nothing.

    Every scorecard is locked (appends wait), every link is checked under the previous key, and
    only when all chains hold is each one re-signed (links, head, checkpoint). A chain that does
    not hold refuses the whole rotation: re-signing would make its break disappear."""
    from scorecard import audit

    if not previous_key or previous_key == key:
        raise ChainRekeyRefused("the previous key must be given and differ from the new one")
    scorecards = list(_with_bounds(Scorecard.objects.select_for_update(of=("self",)).order_by("pk")))
    problems = [
        f"{scorecard.cluster.name}: {reason}"
        for scorecard in scorecards
        if (reason := _problem_under(scorecard, previous_key))
    ]
    if problems:
        raise ChainRekeyRefused(
            "nothing was re-signed; these chains do not hold under the previous key: " + "; ".join(problems)
        )
    totals = {"scorecards": 0, "links": 0}
    for scorecard in scorecards:
        links = _resign(scorecard, key, previous_key)
        audit.record(
            "evidence.rekey",
            scorecard,
            comment=f"{links} evidence links re-signed under the new key after every chain verified under the old one",
        )
        totals["scorecards"] += 1
        totals["links"] += links
    return totals
