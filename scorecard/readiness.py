"""The readiness answer a pipeline asks for: the same rules as the scorecard page (rows proven
by the system's evidence on a whole chain, signed off), with each row's status, evidence age
and the reasons it is not ready; `max_age` turns older evidence into a reason too."""

from datetime import timedelta

from django.utils import timezone

from scorecard import selectors
from scorecard.evidence import chain_verify
from scorecard.models import Scorecard, Status


def readiness(*, scorecard: Scorecard, max_age: timedelta | None = None, now=None) -> dict:
    now = now or timezone.now()
    chain = chain_verify(scorecard=scorecard)
    (view,) = selectors.scorecard_views(scorecards=[scorecard], chains={scorecard.pk: chain}, now=now)
    reasons, rows = [], []
    if not chain.ok:
        reasons.append(f"evidence chain broken: {chain.reason}")
    for row in view.rows:
        oldest = row.oldest_evidence
        age = (now - oldest).total_seconds() if oldest else None
        row_reasons = []
        if row.status != Status.PASS:
            row_reasons.append(f"status {row.status}")
        if row.awaiting_signoff:
            row_reasons.append(f"sign-off: {row.awaiting_signoff}")
        if max_age is not None and (age is None or age > max_age.total_seconds()):
            row_reasons.append(
                "no evidence" if age is None else f"evidence {age:.0f} s old (max {max_age.total_seconds():.0f} s)"
            )
        reasons += [f"{row.row.title}: {reason}" for reason in row_reasons]
        rows.append({"row": row.row.key, "status": str(row.status), "evidence_age_s": age, "signed_off": row.signed,
                     "trusted": row.trusted, "reasons": row_reasons})  # fmt: skip
    return {
        "cluster": scorecard.cluster.name,
        "ready": view.ready and not reasons,
        "proven": view.proven,
        "chain": {"ok": chain.ok, "count": chain.count, "head": chain.head_hash, "reason": chain.reason},
        "rows": rows,
        "reasons": reasons,
    }
