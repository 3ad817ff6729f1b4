"""Trends: each row's key measurements and the readiness over a period, downsampled in the
database to at most about 400 points a series, however much evidence the period holds."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.apps import apps
from django.db import connection
from django.db.models import Avg, FloatField, Max, Min
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, TruncDay, TruncHour
from django.utils import timezone

from scorecard.catalog import ProbeKind, Scenario
from scorecard.models import Check, Evidence, ReadinessSample, Scorecard
from scorecard.selectors import MEASURED_OUTCOMES, scorecard_views

# The periods a trend page offers, in days.
PERIODS = (1, 7, 30, 90, 365)


@dataclass
class Series:
    name: str
    x: list[str] = field(default_factory=list)
    y: list[float | None] = field(default_factory=list)


@dataclass
class Chart:
    key: str
    title: str
    unit: str
    row: str
    series: list[Series]
    note: str = ""

    @property
    def points(self) -> int:
        return sum(len(s.x) for s in self.series)


def _bucket(days: int):
    """Hours up to two weeks (at most 336 points), days beyond (at most 365)."""
    return TruncHour if days <= 14 else TruncDay


# (chart key, title, unit, row, probe kind, measurement, aggregate, what the aggregate means)
MEASURED = (
    ("produce_p99", "Produce p99 (acknowledged write)", "ms", "Data durability", ProbeKind.ACK_WRITE,
     "produce_ms_p99", Max, "worst per interval"),
    ("consumer_lag", "Consumer lag, worst critical group", "records", "Client continuity", ProbeKind.CONSUMER_GROUPS,
     "max_lag_records", Max, "worst per interval"),
    ("cost", "Monthly cost estimate", "$", "Cost sustainability", ProbeKind.COST_MODEL, "cost_total", Avg,
     "average per interval"),
)  # fmt: skip
DRILL_FIGURES = (
    ("write_rto", "Write RTO per scenario", "s", "Client continuity", "write_rto_s"),
    ("read_rto", "Read RTO per scenario", "s", "Client continuity", "read_rto_s"),
    ("rpo", "Acknowledged records lost per scenario", "records", "Data durability", "rpo_acked_lost"),
)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="minutes")


def trends(*, scorecard: Scorecard, days: int, now: datetime | None = None) -> list[Chart]:
    """The charts of one scorecard over the last `days`: a fixed number of queries, each
    returning at most one point per hour or day."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    charts = []
    checks = {c.kind: c for c in Check.objects.filter(row__scorecard=scorecard)}
    for key, title, unit, row, kind, measurement, aggregate, meaning in MEASURED:
        series = Series(title)
        check = checks.get(kind)
        if check is not None:
            evidence = Evidence.objects.filter(check_obj=check, collected_at__gte=since).exclude(status="ERROR")
            if connection.vendor == "sqlite":
                # SQLite gives JSON null as the text 'null', which casts to 0: leave it out.
                # (PostgreSQL gives SQL NULL, which aggregates skip, at no extra cost.)
                evidence = evidence.exclude(**{f"measurements__{measurement}": None})
            points = (
                evidence.annotate(bucket=_bucket(days)("collected_at"))
                .values("bucket")
                .annotate(value=aggregate(Cast(KT(f"measurements__{measurement}"), FloatField())))
                .order_by("bucket")
            )
            for point in points:
                if point["value"] is not None:
                    series.x.append(_iso(point["bucket"]))
                    series.y.append(round(point["value"], 3))
        charts.append(Chart(key, title, unit, row, [series], f"{meaning} ({'hour' if days <= 14 else 'day'})"))
    newest = (
        apps.get_model("drills", "DrillRun")
        .objects.filter(cluster_id=scorecard.cluster_id, finished_at__gte=since, outcome__in=MEASURED_OUTCOMES)
        .order_by("-finished_at")
        .only("scenario", "figures", "finished_at")[:2000]
    )
    runs = list(reversed(newest))  # the newest 2,000, oldest first
    for key, title, unit, row, figure in DRILL_FIGURES:
        by_scenario: dict[str, Series] = {}
        for run in runs:
            if figure in run.figures:
                line = by_scenario.setdefault(run.scenario, Series(Scenario(run.scenario).label))
                line.x.append(_iso(run.finished_at))
                line.y.append(run.figures[figure])  # None: not observed, a gap in the line
        charts.append(Chart(key, title, unit, row, list(by_scenario.values()), "each finished drill"))
    readiness = Series("rows proven")
    samples = (
        ReadinessSample.objects.filter(scorecard=scorecard, at__gte=since)
        .annotate(bucket=_bucket(days)("at"))
        .values("bucket")
        .annotate(value=Min("proven"))
        .order_by("bucket")
    )
    for point in samples:
        readiness.x.append(_iso(point["bucket"]))
        readiness.y.append(point["value"])
    charts.append(Chart("readiness", "Readiness: rows proven (of 5)", "rows", "Scorecard", [readiness],
                        f"lowest per {'hour' if days <= 14 else 'day'}, sampled by beat"))  # fmt: skip
    return charts


def readiness_sample_all() -> int:
    """Record every scorecard's readiness now (beat, every READINESS_SAMPLE_SECONDS)."""
    scorecards = list(Scorecard.objects.select_related("cluster"))
    samples = [
        ReadinessSample(
            scorecard=view.scorecard,
            proven=view.proven,
            ready=view.ready,
            row_statuses={row.row.key: str(row.status) for row in view.rows},
        )
        for view in scorecard_views(scorecards=scorecards, detail=False)
    ]
    ReadinessSample.objects.bulk_create(samples)
    return len(samples)
