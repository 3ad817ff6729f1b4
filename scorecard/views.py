from dataclasses import asdict
from datetime import timedelta
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from scorecard import audit, catalog, roles, selectors, services
from scorecard.evidence import chain_verify
from scorecard.forms import (
    AuditFilterForm,
    ClusterForm,
    CompareForm,
    ExportForm,
    NotApplicableForm,
    OverviewFilterForm,
    ParamsForm,
    RowForm,
    ScheduleForm,
    SignOffForm,
    may_loosen,
)
from scorecard.models import AuditEvent, AuditExport, Check, Cluster, Row, Scorecard
from scorecard.report import ExportBusy, export_request, export_response, visible_exports
from scorecard.trends import PERIODS as TREND_PERIODS
from scorecard.trends import trends as trend_charts

HISTORY_PAGE_SIZE = 20
AUDIT_PAGE_SIZE = 50


def role_required(codename: str):
    """Logged in (else the login page) and holding the permission (else 403 saying which role
    it needs)."""

    def decorate(view):
        @wraps(view)
        def checked(request, *args, **kwargs):
            roles.require(request.user, codename)
            return view(request, *args, **kwargs)

        return login_required(checked)

    return decorate


# Each object is looked up among those the user may see (roles.visible): another team's cluster
# is "not found", not "forbidden", so its existence is not disclosed either.


def _scorecard(request, cluster_id: int) -> Scorecard:
    scorecards = Scorecard.objects.select_related("cluster").filter(roles.visible(request.user, "cluster__"))
    return get_object_or_404(scorecards, cluster_id=cluster_id)


def _check(request, check_id: int) -> Check:
    checks = Check.objects.select_related("row__scorecard__cluster__standby")
    return get_object_or_404(checks.filter(roles.visible(request.user, "row__scorecard__cluster__")), pk=check_id)


def _row(request, row_id: int) -> Row:
    rows = Row.objects.select_related("scorecard__cluster", "owner_user")
    return get_object_or_404(rows.filter(roles.visible(request.user, "scorecard__cluster__")), pk=row_id)


@role_required("read")
def index(request):
    """The overview: every cluster by its five rows, filtered, and what needs attention."""
    form = OverviewFilterForm(request.GET or None, user=request.user)
    filters = form.cleaned_data if form.is_valid() else {}
    lines, attention = selectors.overview(user=request.user, **{k: v for k, v in filters.items() if v})
    return render(request, "scorecard/index.html", {"lines": lines, "attention": attention, "form": form})


@role_required("manage_clusters")
def cluster_new(request):
    form = ClusterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        scorecard = services.cluster_register(cluster=form.save(commit=False))
        messages.success(request, f"Registered {scorecard.cluster.name} with its five-row scorecard.")
        return redirect("scorecard-detail", cluster_id=scorecard.cluster_id)
    return render(request, "scorecard/cluster_form.html", {"form": form})


@role_required("manage_clusters")
def cluster_edit(request, cluster_id: int):
    cluster = get_object_or_404(Cluster, pk=cluster_id)
    form = ClusterForm(request.POST or None, instance=cluster)
    if request.method == "POST" and form.is_valid():
        services.cluster_update(cluster=form.save(commit=False))
        messages.success(request, f"Saved {cluster.name}.")
        return redirect("scorecard-detail", cluster_id=cluster.pk)
    return render(request, "scorecard/cluster_form.html", {"form": form, "cluster": cluster})


@role_required("read")
def scorecard_detail(request, cluster_id: int):
    scorecard = _scorecard(request, cluster_id)
    chain = chain_verify(scorecard=scorecard)
    (view,) = selectors.scorecard_views(scorecards=[scorecard], chains={scorecard.pk: chain})
    return render(
        request,
        "scorecard/detail.html",
        {
            "view": view,
            "runs": selectors.scorecard_recent_runs(scorecard=scorecard),
            "chain": chain,
            "history": selectors.row_recent_evidence(scorecard=scorecard, per_row=5),
            "audit": AuditEvent.objects.filter(cluster=scorecard.cluster)[:10],
            "may_edit_rows": {r.row.pk for r in view.rows if services.row_may_edit(request.user, r.row)},
            "export_since": timezone.now() - timedelta(days=30),
            "export_until": timezone.now(),
        },
    )


@role_required("edit_own_rows")
def row_edit(request, row_id: int):
    row = _row(request, row_id)
    if not services.row_may_edit(request.user, row):
        raise PermissionDenied(f"{row.title} is owned by someone else: its owner or an administrator edits it")
    form = RowForm(request.POST or None, instance=row, user=request.user)
    if request.method == "POST" and form.is_valid():
        services.row_update(row=row, may_loosen=may_loosen(request.user), **form.changes())
        messages.success(request, f"Saved {row.title}.")
        return redirect("scorecard-detail", cluster_id=row.scorecard.cluster_id)
    return render(request, "scorecard/row_form.html", {"form": form, "row": row})


@role_required("edit_own_rows")
@require_POST
def row_sign_off(request, row_id: int):
    row = _row(request, row_id)
    form = SignOffForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A sign-off needs a comment saying what was reviewed and accepted.")
        return redirect("scorecard-detail", cluster_id=row.scorecard.cluster_id)
    (view,) = selectors.scorecard_views(scorecards=[row.scorecard])
    row_view = next(r for r in view.rows if r.row.pk == row.pk)
    if not row_view.trusted:
        messages.error(request, "The evidence chain is broken: a row cannot be signed off on untrusted evidence.")
        return redirect("scorecard-detail", cluster_id=row.scorecard.cluster_id)
    services.row_sign_off(row=row, user=request.user, comment=form.cleaned_data["comment"], status=row_view.status)
    messages.success(request, f"Signed off {row.title} at {row_view.status}.")
    return redirect("scorecard-detail", cluster_id=row.scorecard.cluster_id)


@role_required("read")
def row_evidence(request, row_id: int):
    row = _row(request, row_id)
    before = request.GET.get("before", "")
    page = selectors.row_evidence_page(
        row=row, before=int(before) if before.isdecimal() and len(before) < 12 else None, per_page=HISTORY_PAGE_SIZE
    )
    return render(request, "scorecard/row_evidence.html", {"row": row, "page": page, "audit": audit.events_for(row)})


def _check_page(request, check: Check, **bound):
    """The check page; a form that failed validation is shown bound, with its errors."""
    forms = {
        "params": ParamsForm(check=check) if check.kind in catalog.SPECS else None,
        "schedule": ScheduleForm(instance=check),
        "applicability": NotApplicableForm(),
        **bound,
    }
    view = selectors.check_view(check=check)
    context = {"check": check, "forms": forms, "view": view, "audit": audit.events_for(check)}
    return render(request, "scorecard/check.html", context)


@role_required("read")
def check_detail(request, check_id: int):
    return _check_page(request, _check(request, check_id))


@role_required("edit_checks")
@require_POST
def check_params(request, check_id: int):
    check = _check(request, check_id)
    if check.kind not in catalog.SPECS:
        messages.error(request, f"{check.get_kind_display()} has no parameters.")
        return redirect("scorecard-check", check_id=check.pk)
    form = ParamsForm(request.POST, check=check)
    if not form.is_valid():
        return _check_page(request, check, params=form)
    services.check_update(check=check, params=form.params())
    saved = f"Saved the parameters of {check.get_kind_display()}."
    if form.params().get("groups"):
        saved += " Whether the groups exist is checked on the cluster by the next run."
    messages.success(request, saved)
    return redirect("scorecard-check", check_id=check.pk)


@role_required("edit_checks")
@require_POST
def check_schedule(request, check_id: int):
    check = _check(request, check_id)
    form = ScheduleForm(request.POST, instance=check)
    if not form.is_valid():
        return _check_page(request, check, schedule=form)
    services.check_update(check=check, **form.cleaned_data)
    messages.success(request, f"Saved the schedule of {check.get_kind_display()}.")
    return redirect("scorecard-check", check_id=check.pk)


@role_required("edit_checks")
@require_POST
def check_applicability(request, check_id: int):
    """Ask for NOT APPLICABLE, or withdraw it (a mark or a pending request)."""
    check = _check(request, check_id)
    if request.POST.get("withdraw"):
        services.not_applicable_withdraw(check=check)
        messages.success(request, f"{check.get_kind_display()} applies again.")
        return redirect("scorecard-check", check_id=check.pk)
    form = NotApplicableForm(request.POST)
    if not form.is_valid():
        return _check_page(request, check, applicability=form)
    try:
        services.not_applicable_request(check=check, by=request.user.get_username(), reason=form.cleaned_data["reason"])
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, "Asked for NOT APPLICABLE: a drill approver other than you must approve it.")
    return redirect("scorecard-check", check_id=check.pk)


@role_required("approve_not_applicable")
@require_POST
def check_applicability_approve(request, check_id: int):
    check = _check(request, check_id)
    try:
        services.not_applicable_approve(check=check, by=request.user.get_username())
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
    else:
        messages.success(request, f"{check.get_kind_display()} is NOT APPLICABLE on {check.row.scorecard.cluster}.")
    return redirect("scorecard-check", check_id=check.pk)


@role_required("read")
def audit_list(request):
    """The whole audit trail, newest first, filtered by cluster, person, action or period."""
    form = AuditFilterForm(request.GET or None)
    # Events about another team's clusters stay with that team; events about no cluster (roles)
    # are for every reader.
    events = AuditEvent.objects.filter(Q(cluster__isnull=True) | roles.visible(request.user, "cluster__"))
    if form.is_valid():
        events = form.filter(events)
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "scorecard/audit.html", {"form": form, "page": page, "query": query.urlencode()})


def csrf_failure(request, reason: str = ""):
    """A refused form explained in words (a bare 403 otherwise), above all the Secure cookie
    that never came back over plain HTTP."""
    messages = {
        "CSRF cookie not set.": "The browser did not send the form's security cookie back.",
        "CSRF token missing.": "The form's security token is missing.",
    }
    return render(request, "403_csrf.html", {"reason": messages.get(reason, reason)}, status=403)


@role_required("read")
def compare(request):
    """Clusters side by side: the page a platform team brings to an architecture decision."""
    form = CompareForm(request.GET or None, user=request.user)
    comparison = None
    if form.is_valid():
        scorecards = Scorecard.objects.select_related("cluster").filter(cluster__in=form.cleaned_data["clusters"])
        comparison = selectors.comparison(scorecards=list(scorecards.order_by("cluster__name")))
    context = {
        "form": form,
        "comparison": comparison,
        "export_since": timezone.now() - timedelta(days=30),
        "export_until": timezone.now(),
    }
    return render(request, "scorecard/compare.html", context)


@role_required("read")
def trends(request, cluster_id: int):
    """Each row's key measurements and the readiness over a chosen period."""
    scorecard = _scorecard(request, cluster_id)
    days = request.GET.get("days", "30")
    days = int(days) if days.isdecimal() and len(days) < 4 and int(days) in TREND_PERIODS else 30
    now = timezone.now()
    charts = trend_charts(scorecard=scorecard, days=days, now=now)
    # Every chart spans the whole period, however few its points.
    period = [(now - timedelta(days=days)).isoformat(timespec="minutes"), now.isoformat(timespec="minutes")]
    data = {"period": period, "charts": [asdict(chart) for chart in charts]}
    context = {"scorecard": scorecard, "charts": charts, "data": data, "days": days, "periods": TREND_PERIODS}
    return render(request, "scorecard/trends.html", context)


@role_required("read")
def exports(request):
    """Audit PDFs asked for, newest first; a POST from a scorecard page asks for one."""
    if request.method == "POST":
        ids = [int(c) for c in request.POST.getlist("cluster") if c.isdecimal() and len(c) < 12][:10]
        visible = Scorecard.objects.select_related("cluster").filter(roles.visible(request.user, "cluster__"))
        scorecards = list(visible.filter(cluster_id__in=ids).order_by("cluster__name"))
        if not scorecards or len(scorecards) != len(set(ids)):
            raise Http404("no such cluster")
        form = ExportForm(request.POST)
        if not form.is_valid():
            problems = [" ".join(errors) for errors in form.errors.values()]
            messages.error(request, "The audit PDF needs a valid period: " + " ".join(problems))
            return redirect("scorecard-detail", cluster_id=scorecards[0].cluster_id)
        try:
            export = export_request(scorecards=scorecards, by=request.user.get_username(), **form.cleaned_data)
        except ExportBusy as exc:
            messages.error(request, str(exc))
            return redirect("scorecard-exports")
        messages.success(request, f"Building the audit PDF of {export.cluster_names}: it appears below when ready.")
        return redirect("scorecard-exports")
    listing = list(visible_exports(request.user).defer("pdf")[:100])
    building = any(export.state in (AuditExport.State.QUEUED, AuditExport.State.RUNNING) for export in listing)
    return render(request, "scorecard/exports.html", {"exports": listing, "building": building})


@role_required("read")
def export_download(request, export_id: int):
    return export_response(get_object_or_404(visible_exports(request.user), pk=export_id, state=AuditExport.State.DONE))
