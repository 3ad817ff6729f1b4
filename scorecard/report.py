"""The audit PDF (DESIGN.md section 9): one or more scorecards over a period, from stored rows
only (no Kafka call), as HTML and CSS printed to PDF by WeasyPrint.

The same inputs give the same document, apart from its generation time: the command and the
page build it with this one function.
"""

import hashlib
import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import timezone
from kombu.exceptions import OperationalError

from scorecard import audit, roles, selectors, svgchart
from scorecard.evidence import ChainVerification, chain_walk
from scorecard.models import AuditEvent, AuditExport, Evidence, Scorecard, SignOff, Status
from scorecard.presentation import event_rows, figure_rows
from scorecard.targets import METRICS, guardrail_words, row_metrics, target_for
from scorecard.trends import trends as trend_charts

log = logging.getLogger(__name__)

# The evidence list is the period's evidence, newest first, at most this many items.
EVIDENCE_LIMIT = 10_000
EVIDENCE_BLOCK = 40
AUDIT_LIMIT = 5_000


@dataclass
class ClusterReport:
    scorecard: Scorecard
    view: selectors.ScorecardView
    chain: ChainVerification
    rows: list[dict] = field(default_factory=list)
    drills: list[dict] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    evidence_total: int = 0
    evidence_lines: list[str] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)
    appendix: list[dict] = field(default_factory=list)
    trends: list[tuple[str, str, str]] = field(default_factory=list)  # (title, what, svg)


def _row_report(row_view, since: datetime, until: datetime, chain_ok: bool) -> dict:
    row = row_view.row
    guardrails = guardrail_words(row)
    targets = []
    for metric in row_metrics(row.key):
        value, source = target_for(row, metric)
        if value is not None:
            targets.append(f"{METRICS[metric].label} <= {value:g} {METRICS[metric].unit} ({source})")
    for scope, values in row.targets.items():
        if scope != "default":
            targets += [f"{scope}: {METRICS[m].label} <= {v:g} {METRICS[m].unit}" for m, v in values.items()]
    signoffs = list(SignOff.objects.filter(row=row, signed_at__range=(since, until)).order_by("-signed_at")[:50])
    not_applicable = [c.check for c in row_view.checks if c.check.not_applicable]
    return {
        "view": row_view,
        "guardrails": guardrails,
        "targets": targets,
        "signoffs": signoffs,
        "not_applicable": not_applicable,
        "untrusted": not chain_ok,
    }


def timeline_svg(data: dict) -> str:
    """A drill's availability timeline: each record's produce and end-to-end latency against its
    send time (log scale), the fault shaded, the confirmed fault and recovery marked."""
    records = data.get("records", [])
    keys = ("fault_started_ms", "fault_ms", "recovery_started_ms", "recovery_ms", "tripped_ms")
    seconds = {key: data[key] / 1000 for key in keys if data.get(key) is not None}
    acked = [r for r in records if r[3] is not None and not r[5]]
    consumed = [r for r in records if r[4] is not None]
    marks = (
        ("fault_ms", "fault confirmed"),
        ("recovery_ms", "recovery confirmed"),
        ("tripped_ms", "guardrail tripped"),
    )
    chart = svgchart.Chart(
        lines=[
            svgchart.Line("produce latency", [r[2] / 1000 for r in acked], [r[3] - r[2] for r in acked], True),
            svgchart.Line("end-to-end", [r[2] / 1000 for r in consumed], [r[4] - r[2] for r in consumed], True),
        ],
        y_label="ms (log)",
        x_time=False,
        log_y=True,
        marks=[(seconds[key], label) for key, label in marks if key in seconds],
    )
    if "fault_started_ms" in seconds:
        end = seconds.get("recovery_started_ms", seconds.get("fault_ms", seconds["fault_started_ms"]))
        chart.bands.append((seconds["fault_started_ms"], end, "fault"))
    return svgchart.render(chart)


def _drills(scorecard: Scorecard, since: datetime, until: datetime) -> list[dict]:
    runs = list(
        apps.get_model("drills", "DrillRun")
        .objects.filter(cluster_id=scorecard.cluster_id, created_at__range=(since, until))
        .order_by("created_at")
    )
    timelines = apps.get_model("drills", "DrillTimeline").objects.filter(run__in=runs)
    timelines = dict(timelines.values_list("run_id", "data"))
    return [
        {
            "run": run,
            "figures": figure_rows(run),
            "events": event_rows(run.events),
            "guardrails": [
                f"{name} {value}: {run.guardrail_sources.get(name, '')}" for name, value in run.guardrails.items()
            ],
            "timeline": timeline_svg(timelines[run.pk]) if run.pk in timelines else "",
        }
        for run in runs
    ]


def _trends(scorecard: Scorecard, since: datetime, until: datetime) -> list[tuple[str, str, str]]:
    """The trend charts of the period, as on the trends page, drawn as SVG."""
    days = max(1, math.ceil((until - since).total_seconds() / 86400))
    charts = []
    for chart in trend_charts(scorecard=scorecard, days=days, now=until):
        lines = [svgchart.Line(s.name, [svgchart.epoch(x) for x in s.x], s.y) for s in chart.series]
        period = (since.timestamp(), until.timestamp())
        svg = svgchart.render(svgchart.Chart(lines, chart.unit, x_range=period))
        charts.append((chart.title, f"{chart.row} · {chart.note}", svg))
    return charts


def cluster_report(scorecard: Scorecard, since: datetime, until: datetime) -> ClusterReport:
    """Everything the PDF says of one scorecard; the chain is walked in full."""
    chain = chain_walk(scorecard=scorecard)
    (view,) = selectors.scorecard_views(scorecards=[scorecard], chains={scorecard.pk: chain})
    period = Evidence.objects.filter(scorecard=scorecard, collected_at__range=(since, until))
    report = ClusterReport(scorecard, view, chain)
    report.rows = [_row_report(row_view, since, until, chain.ok) for row_view in view.rows]
    report.drills = _drills(scorecard, since, until)
    report.trends = _trends(scorecard, since, until)
    report.evidence_total = period.count()
    report.evidence = list(period.select_related("check_obj").order_by("-seq")[:EVIDENCE_LIMIT])
    lines = [
        f"#{e.seq} · {e.collected_at:%Y-%m-%d %H:%M:%S} · {e.get_row_key_display()} · "
        f"{e.check_obj.get_kind_display()} · {e.status} · {e.summary}"
        for e in report.evidence
    ]
    # Blocks of lines, not one per item nor one for all: what lays out fastest in WeasyPrint.
    report.evidence_lines = ["\n".join(lines[i : i + EVIDENCE_BLOCK]) for i in range(0, len(lines), EVIDENCE_BLOCK)]
    report.audit = list(
        AuditEvent.objects.filter(cluster_name=scorecard.cluster.name, at__range=(since, until))[:AUDIT_LIMIT]
    )
    report.appendix = [
        {"check": check_view.check, "evidence": check_view.latest}
        for row_view in view.rows
        for check_view in row_view.checks
    ]
    return report


def report_context(*, scorecards: list[Scorecard], since: datetime, until: datetime, generated_by: str) -> dict:
    clusters = [cluster_report(scorecard, since, until) for scorecard in scorecards]
    names = ", ".join(c.scorecard.cluster.name for c in clusters) or "no cluster"
    return {
        "clusters": clusters,
        "since": since,
        "until": until,
        "generated_by": generated_by,
        "generated_at": timezone.now(),
        "title": f"Recovery readiness audit: {names}",
        "statuses": [Status.PASS, Status.WARN, Status.FAIL, Status.ERROR, Status.STALE, Status.UNKNOWN],
        "all_chains_ok": all(c.chain.ok for c in clusters),
    }


def render_pdf(context: dict) -> bytes:
    """The PDF of a report context: fonts embedded, metadata from the document's head."""
    from weasyprint import HTML

    html = render_to_string("report/audit.html", context)
    return HTML(string=html).write_pdf(pdf_identifier=b"recovery-readiness-audit")


def audit_pdf(*, scorecards: list[Scorecard], since: datetime, until: datetime, generated_by: str) -> bytes:
    return render_pdf(report_context(scorecards=scorecards, since=since, until=until, generated_by=generated_by))


# --- exports: asked for on a page, built by a worker -------------------------------------------


def visible_exports(user):
    """Exports whose every scorecard the user may see (page and API)."""
    hidden = Scorecard.objects.exclude(roles.visible(user, "cluster__"))
    return AuditExport.objects.exclude(scorecards__in=hidden)


def export_response(export: AuditExport) -> HttpResponse:
    """A finished export as a download, with its SHA-256 for the recipient to check."""
    response = HttpResponse(bytes(export.pdf), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="audit-{export.pk}.pdf"'
    response["X-Content-SHA256"] = export.sha256
    return response


class ExportBusy(Exception):
    """The person's previous audit PDF is still being built."""


def export_request(*, scorecards: list[Scorecard], since: datetime, until: datetime, by: str):
    """Record the export and queue its building on AUDIT_EXPORT_QUEUE once committed; one export
    at a time per person (each holds a worker for seconds and a PDF in memory)."""
    with transaction.atomic():
        busy = AuditExport.objects.filter(
            requested_by=by, state__in=[AuditExport.State.QUEUED, AuditExport.State.RUNNING]
        )
        if busy.exists():
            raise ExportBusy("Your previous audit PDF is still being built: wait for it first.")
        export = AuditExport.objects.create(
            requested_by=by,
            since=since,
            until=until,
            cluster_names=", ".join(s.cluster.name for s in scorecards)[:500],
        )
        export.scorecards.set(scorecards)
        period = {"since": since.isoformat(), "until": until.isoformat()}
        for scorecard in scorecards:  # one event per cluster: each stays with its cluster's team
            audit.record("export.request", export, cluster=scorecard.cluster, after=period)

        def send():
            from scorecard.tasks import build_audit_export  # tasks imports this module

            try:
                build_audit_export.apply_async(args=[export.pk], queue=settings.AUDIT_EXPORT_QUEUE)
            except OperationalError as exc:  # the broker refused: said on the export, not a 500
                AuditExport.objects.filter(pk=export.pk).update(
                    state=AuditExport.State.FAILED, error=f"could not be queued: {exc}"[:2000]
                )

        transaction.on_commit(send)
    return export


def export_build(*, export_id: int) -> None:
    """A worker builds the PDF: claimed once, progress on the row, the file and its SHA-256 kept."""
    # A RUNNING export that started before the task's hard time limit lost its worker: a
    # redelivery of its message (acks-late) builds it again (exports_expire fails the others).
    abandoned = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    claimable = Q(state=AuditExport.State.QUEUED) | Q(state=AuditExport.State.RUNNING, started_at__lt=abandoned)
    claimed = AuditExport.objects.filter(claimable, pk=export_id).update(
        state=AuditExport.State.RUNNING, progress="collecting the evidence", started_at=timezone.now()
    )
    if not claimed:
        return
    export = AuditExport.objects.get(pk=export_id)
    try:
        scorecards = list(export.scorecards.select_related("cluster").order_by("cluster__name"))
        context = report_context(
            scorecards=scorecards, since=export.since, until=export.until, generated_by=export.requested_by
        )
        AuditExport.objects.filter(pk=export_id).update(progress="rendering the PDF")
        pdf = render_pdf(context)
    except Exception as exc:  # recorded on the export for the page, and logged
        log.exception("audit export %s failed", export_id)
        AuditExport.objects.filter(pk=export_id).update(
            state=AuditExport.State.FAILED, error=f"{type(exc).__name__}: {exc}"[:2000], finished_at=timezone.now()
        )
        return
    AuditExport.objects.filter(pk=export_id).update(
        state=AuditExport.State.DONE,
        progress="",
        pdf=pdf,
        sha256=hashlib.sha256(pdf).hexdigest(),
        size=len(pdf),
        finished_at=timezone.now(),
    )


def exports_expire() -> int:
    """Beat, every few seconds: exports no worker picked up, or whose worker was lost, are
    failed with the reason instead of showing "running" for ever. Returns how many."""
    now = timezone.now()
    lost = AuditExport.objects.filter(
        state=AuditExport.State.RUNNING, started_at__lt=now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    ).update(state=AuditExport.State.FAILED, finished_at=now, progress="", error="the worker building it was lost")
    never = AuditExport.objects.filter(
        state=AuditExport.State.QUEUED, created_at__lt=now - timedelta(seconds=settings.RUN_QUEUE_TIMEOUT_SECONDS)
    ).update(
        state=AuditExport.State.FAILED,
        finished_at=now,
        error=f"not picked up by a worker on queue {settings.AUDIT_EXPORT_QUEUE} in time: is one serving it?",
    )
    return lost + never
