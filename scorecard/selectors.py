"""The read side: what the pages show, in a fixed number of queries."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Max
from django.utils import timezone

from scorecard.catalog import RowKey
from scorecard.evidence import ChainVerification, chain_states
from scorecard.models import Check, CheckRun, Evidence, Row, Scorecard, SignOff, Status
from scorecard.status import check_status, row_status, scorecard_ready, signoff_lapse


@dataclass
class CheckView:
    check: Check
    status: Status
    latest: Evidence | None


def _check_view(check: Check, latest: Evidence | None, now: datetime) -> CheckView:
    status = check_status(
        not_applicable=check.not_applicable,
        latest_status=latest.status if latest else None,
        latest_at=latest.collected_at if latest else None,
        max_age=timedelta(seconds=check.max_age_seconds),
        now=now,
    )
    return CheckView(check, status, latest)


@dataclass
class RowView:
    row: Row
    status: Status
    checks: list[CheckView] = field(default_factory=list)
    # False while the scorecard's evidence chain is broken: the status rests on evidence
    # that cannot be trusted.
    trusted: bool = True
    signoff: SignOff | None = None  # the latest sign-off, lapsed or not
    signoff_lapsed: str = ""  # why the latest sign-off no longer holds ("" = it holds)

    @property
    def proven(self) -> bool:
        return self.trusted and self.status == Status.PASS

    @property
    def signed(self) -> bool:
        return self.signoff is not None and not self.signoff_lapsed

    @property
    def awaiting_signoff(self) -> str:
        """Why the row needs its owner's sign-off ("" = signed and current)."""
        if self.signed:
            return ""
        if self.signoff is None:
            return "never signed off"
        return self.signoff_lapsed


@dataclass
class ScorecardView:
    scorecard: Scorecard
    rows: list[RowView]
    chain: ChainVerification

    @property
    def ready(self) -> bool:
        """All five rows proven by trusted evidence and signed off by their owners."""
        return self.chain.ok and scorecard_ready(r.status for r in self.rows) and all(r.signed for r in self.rows)

    @property
    def proven(self) -> int:
        return sum(1 for r in self.rows if r.proven)

    @property
    def awaiting_signoff(self) -> list[RowView]:
        return [r for r in self.rows if r.awaiting_signoff]


def scorecard_views(
    *,
    scorecards: list[Scorecard],
    now: datetime | None = None,
    chains: dict[int, ChainVerification] | None = None,
) -> list[ScorecardView]:
    """Status of every row and check of the given scorecards, in a fixed number of queries.
    `chains` are verifications already made; the others come from `chain_states`."""
    now = now or timezone.now()
    chains = {**chain_states([s for s in scorecards if s.pk not in (chains or {})]), **(chains or {})}
    rows = list(Row.objects.filter(scorecard__in=scorecards).prefetch_related("checks").select_related("owner_user"))
    signoffs = latest_signoffs(rows)
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
        check_views = [_check_view(check, latest.get(check.pk), now) for check in row.checks.all()]
        status = row_status(
            (c.status for c in check_views),
            has_owner=bool(row.owner.strip()),
            has_rollback_condition=bool(row.rollback_condition.strip()),
        )
        signoff = signoffs.get(row.pk)
        lapsed = signoff_lapse(
            signoff,
            owner_id=row.owner_user_id,
            status=status,
            now=now,
            valid=timedelta(days=settings.SIGNOFF_VALID_DAYS),
        )
        trusted = chains[row.scorecard_id].ok
        by_scorecard[row.scorecard_id].append(RowView(row, status, check_views, trusted, signoff, lapsed))
    return [ScorecardView(s, by_scorecard[s.pk], chains[s.pk]) for s in scorecards]


def latest_signoffs(rows: list[Row]) -> dict[int, SignOff]:
    """The newest sign-off of each row, in one query."""
    newest = SignOff.objects.filter(row__in=rows).values("row").annotate(last=Max("id")).values_list("last", flat=True)
    return {s.row_id: s for s in SignOff.objects.filter(pk__in=list(newest))}


def scorecards_all() -> list[Scorecard]:
    return list(Scorecard.objects.select_related("cluster").order_by("cluster__name"))


def row_recent_evidence(*, scorecard: Scorecard, per_row: int) -> dict[str, list[Evidence]]:
    """The newest evidence of each row, at most `per_row` items each."""
    return {
        key: list(Evidence.objects.filter(scorecard=scorecard, row_key=key).select_related("check_obj")[:per_row])
        for key in RowKey.values
    }


def scorecard_recent_runs(*, scorecard: Scorecard, limit: int = 10) -> list[CheckRun]:
    return list(CheckRun.objects.filter(check_obj__row__scorecard=scorecard).select_related("check_obj__row")[:limit])


def row_evidence_page(*, row: Row, page: str | None, per_page: int) -> Page:
    """One page of a row's evidence history, newest first."""
    evidence = Evidence.objects.filter(scorecard=row.scorecard, row_key=row.key).select_related("check_obj")
    return Paginator(evidence, per_page).get_page(page)


def check_view(*, check: Check, now: datetime | None = None) -> CheckView:
    """The check's status by the same rules as the scorecard page, with its latest evidence."""
    return _check_view(check, Evidence.objects.filter(check_obj=check).first(), now or timezone.now())
