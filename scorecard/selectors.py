"""The read side: what the pages show, in a fixed number of queries."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from django.conf import settings
from django.db import models
from django.db.models import Max, OuterRef, Subquery
from django.utils import timezone

from scorecard.catalog import RowKey
from scorecard.evidence import ChainVerification, chain_states
from scorecard.models import Check, CheckRun, Evidence, Row, Scorecard, SignOff, Status
from scorecard.status import check_status, row_status, scorecard_ready, signoff_lapse


class EvidenceBrief(NamedTuple):
    """What lists show of a check's latest evidence."""

    check_obj_id: int
    seq: int
    status: str
    summary: str
    collected_at: datetime


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
    def oldest_evidence(self) -> datetime | None:
        """The least recent of the applicable checks' latest evidence (None: none ran)."""
        observed = [c.latest.collected_at for c in self.checks if c.latest and c.status != Status.NOT_APPLICABLE]
        return min(observed, default=None)

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
    detail: bool = True,
) -> list[ScorecardView]:
    """Status of every row and check of the given scorecards, in a fixed number of queries.
    `chains` are verifications already made; the others come from `chain_states`. Without
    `detail` (lists) the evidence's summary and measurements and the checks' parameters are
    left in the database."""
    now = now or timezone.now()
    chains = {**chain_states([s for s in scorecards if s.pk not in (chains or {})]), **(chains or {})}
    checks = Check.objects.all()
    if not detail:
        checks = checks.only("row_id", "kind", "not_applicable", "max_age_seconds")
    rows = Row.objects.filter(scorecard__in=scorecards)
    if detail:
        rows = rows.select_related("owner_user")
    else:
        rows = rows.only("scorecard_id", "key", "owner", "owner_user_id", "rollback_condition")
    rows = list(rows)
    # Grouped here rather than prefetched: a related manager per row costs a queryset each.
    checks = checks.filter(row__scorecard_id__in=[s.pk for s in scorecards])
    checks_by_row: dict[int, list[Check]] = {row.pk: [] for row in rows}
    for check in checks.order_by("id"):
        checks_by_row[check.row_id].append(check)
    signoffs = latest_signoffs(rows)
    latest = latest_evidence(checks, detail=detail)
    by_scorecard: dict[int, list[RowView]] = {s.pk: [] for s in scorecards}
    for row in sorted(rows, key=lambda r: r.position):
        check_views = [_check_view(check, latest.get(check.pk), now) for check in checks_by_row[row.pk]]
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


def latest_evidence(checks, *, detail: bool = True) -> dict[int, Evidence]:
    """Each check's newest evidence (`checks`: a queryset or a list), in one query: one index
    probe per check (evidence_latest_per_check), however long its history."""
    if not isinstance(checks, models.QuerySet):
        checks = Check.objects.filter(pk__in=[c.pk for c in checks])
    newest = (
        checks.order_by()
        .annotate(latest=Subquery(Evidence.objects.filter(check_obj=OuterRef("pk")).order_by("-seq").values("pk")[:1]))
        .exclude(latest=None)
        .values_list("latest", flat=True)
    )
    evidence = Evidence.objects.filter(pk__in=Subquery(newest))
    if detail:
        return {e.check_obj_id: e for e in evidence}
    # Lists need four fields of each: plain records, not model instances (a tenth of the cost).
    fields = ("check_obj_id", "seq", "status", "summary", "collected_at")
    return {row[0]: EvidenceBrief(*row) for row in evidence.values_list(*fields)}


def latest_signoffs(rows: list[Row]) -> dict[int, SignOff]:
    """The newest sign-off of each row, in one query."""
    newest = SignOff.objects.filter(row__in=rows).values("row").annotate(last=Max("id")).values_list("last", flat=True)
    return {s.row_id: s for s in SignOff.objects.filter(pk__in=Subquery(newest))}


def row_recent_evidence(*, scorecard: Scorecard, per_row: int) -> dict[str, list[Evidence]]:
    """The newest evidence of each row, at most `per_row` items each."""
    return {
        key: list(Evidence.objects.filter(scorecard=scorecard, row_key=key).select_related("check_obj")[:per_row])
        for key in RowKey.values
    }


def scorecard_recent_runs(*, scorecard: Scorecard, limit: int = 10) -> list[CheckRun]:
    return list(CheckRun.objects.filter(check_obj__row__scorecard=scorecard).select_related("check_obj__row")[:limit])


@dataclass
class HistoryPage:
    """One page of a history, newest first, addressed by the seq it starts below (keyset
    pagination: no page counts a million rows, page 200 costs what page 1 does)."""

    items: list[Evidence]
    newer: int | None  # `before` of the previous (newer) page, 0 for the newest; None if this is it
    older: int | None  # `before` of the next (older) page; None if there is none


def row_evidence_page(*, row: Row, before: int | None, per_page: int) -> HistoryPage:
    """A page of a row's evidence, newest first, starting below seq `before` (None: the newest)."""
    history = Evidence.objects.filter(scorecard_id=row.scorecard_id, row_key=row.key)
    page = history.filter(seq__lt=before) if before else history
    items = list(page.select_related("check_obj").order_by("-seq")[: per_page + 1])
    older = items[per_page - 1].seq if len(items) > per_page else None
    newer = None
    if before:
        above = list(history.filter(seq__gte=before).order_by("seq").values_list("seq", flat=True)[: per_page + 1])
        newer = above[per_page] if len(above) > per_page else 0
    return HistoryPage(items[:per_page], newer, older)


def check_view(*, check: Check, now: datetime | None = None) -> CheckView:
    """The check's status by the same rules as the scorecard page, with its latest evidence."""
    return _check_view(check, Evidence.objects.filter(check_obj=check).first(), now or timezone.now())


# --- the overview -------------------------------------------------------------------------------

# Drills whose figures were measured (refused, aborted and inconclusive ones measured nothing).
MEASURED_OUTCOMES = ("passed", "failed")

STATUS_FILTERS = {
    "ready": "ready",
    "not_ready": "not ready",
    "failing": "a row FAIL or ERROR",
    "stale": "a check STALE",
    "unsigned": "awaiting sign-off",
}


@dataclass
class OverviewLine:
    view: ScorecardView
    oldest: datetime | None  # the oldest of the checks' latest evidence
    unobserved: int  # applicable checks without any evidence
    drills: list  # the last finished drill of each scenario, in scenario order

    def matches(self, status: str) -> bool:
        statuses = {r.status for r in self.view.rows} | {c.status for r in self.view.rows for c in r.checks}
        return {
            "": True,
            "ready": self.view.ready,
            "not_ready": not self.view.ready,
            "failing": bool(statuses & {Status.FAIL, Status.ERROR}),
            "stale": Status.STALE in statuses,
            "unsigned": bool(self.view.awaiting_signoff),
        }[status]


@dataclass
class Attention:
    cluster: Scorecard
    severity: int  # 0 = most urgent
    what: str
    check: Check | None = None


def overview(*, user, environment: str = "", tag: str = "", status: str = "", now: datetime | None = None):
    """The overview of the clusters `user` may see (filtered) and its attention list, in a
    fixed number of queries."""
    from scorecard.roles import visible

    now = now or timezone.now()
    scorecards = (
        Scorecard.objects.select_related("cluster").filter(visible(user, "cluster__")).order_by("cluster__name")
    )
    if environment:
        scorecards = scorecards.filter(cluster__environment=environment)
    scorecards = [s for s in scorecards if not tag or tag in s.cluster.tag_list]
    views = scorecard_views(scorecards=scorecards, now=now, detail=False)
    drills = last_drills([s.cluster_id for s in scorecards])
    lines = []
    for view in views:
        applicable = [c for r in view.rows for c in r.checks if c.status != Status.NOT_APPLICABLE]
        oldest = min((r.oldest_evidence for r in view.rows if r.oldest_evidence), default=None)
        line = OverviewLine(view, oldest, sum(c.latest is None for c in applicable), [])
        line.drills = drills.get(view.scorecard.cluster_id, [])
        if line.matches(status):
            lines.append(line)
    return lines, attention([line.view for line in lines])


def last_drills(cluster_ids: list[int]) -> dict[int, list]:
    """Each cluster's last measured drill (passed or failed) per scenario, in one query (a window
    function over the (cluster, scenario, finished_at) index). Refused, aborted and inconclusive
    drills measured nothing: automation's evidence reports them."""
    from django.apps import apps
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    from scorecard.catalog import Scenario

    # Looked up by name: the record's pages read drill runs, but this app never imports drills.
    drill_runs = apps.get_model("drills", "DrillRun").objects
    newest_first = Window(RowNumber(), partition_by=[F("cluster_id"), F("scenario")], order_by=F("finished_at").desc())
    ranked = (
        drill_runs.filter(cluster_id__in=cluster_ids, finished_at__isnull=False, outcome__in=MEASURED_OUTCOMES)
        .annotate(rank=newest_first)
        .filter(rank=1)
        .only("cluster_id", "scenario", "outcome", "state", "figures", "targets", "finished_at", "tripped_guardrail")
    )
    order = {scenario: i for i, scenario in enumerate(Scenario.values)}
    found: dict[int, list] = {}
    for run in sorted(ranked, key=lambda r: order.get(r.scenario, 99)):
        found.setdefault(run.cluster_id, []).append(run)
    return found


def attention(views: list[ScorecardView], limit: int = 60) -> list[Attention]:
    """What needs someone across all clusters: broken chains, failing and erroring checks,
    stale ones, rows awaiting sign-off; most urgent first."""
    items = []
    for view in views:
        if not view.chain.ok:
            items.append(Attention(view.scorecard, 0, f"evidence chain broken: {view.chain.reason}"))
        for row in view.rows:
            for check_view in row.checks:
                check = check_view.check
                if check_view.status in (Status.FAIL, Status.ERROR):
                    summary = check_view.latest.summary if check_view.latest else ""
                    items.append(Attention(view.scorecard, 1, f"{check_view.status}: {summary}", check))
                elif check_view.status == Status.STALE:
                    items.append(Attention(view.scorecard, 2, "STALE: evidence older than its maximum age", check))

        if unsigned := view.awaiting_signoff:
            rows = "; ".join(f"{r.row.title} ({r.awaiting_signoff})" for r in unsigned)
            items.append(Attention(view.scorecard, 3, f"{len(unsigned)} of 5 rows awaiting sign-off: {rows}"))
    items.sort(key=lambda item: (item.severity, item.cluster.cluster.name))
    return items[:limit]


# --- comparison ---------------------------------------------------------------------------------

# The drill figures a comparison shows: (figure key, target metric, label, unit).
COMPARED_FIGURES = (
    ("write_rto_s", "write_rto_s", "Write RTO", "s"),
    ("read_rto_s", "read_rto_s", "Read RTO", "s"),
    ("rpo_acked_lost", "rpo_records", "RPO (acknowledged records lost)", "records"),
    ("reelection_s", "reelection_s", "Leader re-election", "s"),
)


@dataclass
class Figure:
    value: object  # None: not observed
    target: float | None
    source: str = ""

    @property
    def met(self) -> bool | None:
        """True or False against the target; None without a target or a value."""
        if self.target is None or self.value is None:
            return None
        return self.value <= self.target


@dataclass
class ComparedCluster:
    view: ScorecardView
    row_ages: dict[str, datetime | None]  # row key -> oldest of its checks' latest evidence
    drills: dict[str, object]  # scenario -> last finished DrillRun
    cost: dict  # the cost model's latest measurements: total and budget
    unsupported: list[str]  # APIs the checks found missing, and checks NOT APPLICABLE

    def figure(self, scenario: str, key: str, metric: str) -> Figure | None:
        run = self.drills.get(scenario)
        if run is None:
            return None
        target = run.targets.get(metric) or {}
        return Figure(run.figures.get(key), target.get("value"), target.get("source", ""))


@dataclass
class Comparison:
    clusters: list[ComparedCluster]
    rows: list[tuple[str, list[tuple[RowView, datetime | None]]]]  # (row title, per cluster)
    # (scenario label, the last run per cluster, [(figure label, unit, Figure or None per cluster)])
    drills: list[tuple[str, list, list[tuple[str, str, list[Figure | None]]]]]


def comparison(*, scorecards: list[Scorecard]) -> Comparison:
    """The comparison laid out as the page shows it: rows, then each scenario's figures."""
    from scorecard.catalog import Scenario

    clusters = compare(scorecards=scorecards)
    rows = [
        (RowKey(key).label, [(c.view.rows[i], c.row_ages[key]) for c in clusters])
        for i, key in enumerate(RowKey.values)
    ]
    drills = []
    for scenario in Scenario:
        if not any(scenario.value in c.drills for c in clusters):
            continue
        figures = [
            (label, unit, [c.figure(scenario.value, key, metric) for c in clusters])
            for key, metric, label, unit in COMPARED_FIGURES
        ]
        drills.append((scenario.label, [c.drills.get(scenario.value) for c in clusters], figures))
    return Comparison(clusters, rows, drills)


def compare(*, scorecards: list[Scorecard]) -> list[ComparedCluster]:
    """Two to four clusters side by side, in a fixed number of queries."""
    views = scorecard_views(scorecards=scorecards)
    drills = last_drills([s.cluster_id for s in scorecards])
    compared = []
    for view in views:
        ages, cost, unsupported = {}, {}, []
        for row in view.rows:
            ages[row.row.key] = row.oldest_evidence
            for check_view in row.checks:
                check, latest = check_view.check, check_view.latest
                if check.not_applicable:
                    unsupported.append(f"{check.get_kind_display()}: NOT APPLICABLE ({check.not_applicable_reason})")
                elif latest and latest.measurements.get("missing_api"):
                    unsupported.append(f"{check.get_kind_display()}: {latest.measurements['missing_api']} missing")
                if check.kind == "cost_model" and latest and "cost_total" in latest.measurements:
                    cost = {
                        "total": latest.measurements["cost_total"],
                        "budget": latest.measurements.get("monthly_budget"),
                    }
        runs = {run.scenario: run for run in drills.get(view.scorecard.cluster_id, [])}
        compared.append(ComparedCluster(view, ages, runs, cost, unsupported))
    return compared
