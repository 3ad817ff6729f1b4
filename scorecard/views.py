from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from scorecard import catalog, selectors, services
from scorecard.evidence import chain_verify
from scorecard.forms import ClusterForm, NotApplicableForm, ParamsForm, RowForm, ScheduleForm
from scorecard.models import Check, Cluster, Row, Scorecard

HISTORY_PAGE_SIZE = 20


def _scorecard(cluster_id: int) -> Scorecard:
    return get_object_or_404(Scorecard.objects.select_related("cluster"), cluster_id=cluster_id)


def _check(check_id: int) -> Check:
    return get_object_or_404(Check.objects.select_related("row__scorecard__cluster__standby"), pk=check_id)


def _row(row_id: int) -> Row:
    return get_object_or_404(Row.objects.select_related("scorecard__cluster"), pk=row_id)


@login_required
def index(request):
    views = selectors.scorecard_views(scorecards=selectors.scorecards_all())
    return render(request, "scorecard/index.html", {"views": views})


@login_required
def cluster_new(request):
    form = ClusterForm(request.POST or None, user=request.user)
    if request.method == "POST" and form.is_valid():
        scorecard = services.cluster_register(cluster=form.save(commit=False))
        messages.success(request, f"Registered {scorecard.cluster.name} with its five-row scorecard.")
        return redirect("scorecard-detail", cluster_id=scorecard.cluster_id)
    return render(request, "scorecard/cluster_form.html", {"form": form})


@login_required
def cluster_edit(request, cluster_id: int):
    cluster = get_object_or_404(Cluster, pk=cluster_id)
    form = ClusterForm(request.POST or None, instance=cluster, user=request.user)
    if request.method == "POST" and form.is_valid():
        services.cluster_update(cluster=form.save(commit=False))
        messages.success(request, f"Saved {cluster.name}.")
        return redirect("scorecard-detail", cluster_id=cluster.pk)
    return render(request, "scorecard/cluster_form.html", {"form": form, "cluster": cluster})


@login_required
def scorecard_detail(request, cluster_id: int):
    scorecard = _scorecard(cluster_id)
    (view,) = selectors.scorecard_views(scorecards=[scorecard])
    return render(
        request,
        "scorecard/detail.html",
        {
            "view": view,
            "runs": selectors.scorecard_recent_runs(scorecard=scorecard),
            "chain": chain_verify(scorecard=scorecard),
            "history": selectors.row_recent_evidence(scorecard=scorecard, per_row=5),
        },
    )


@login_required
def row_edit(request, row_id: int):
    row = _row(row_id)
    form = RowForm(request.POST or None, instance=row)
    if request.method == "POST" and form.is_valid():
        services.row_update(row=row, **form.cleaned_data)
        messages.success(request, f"Saved {row.title}.")
        return redirect("scorecard-detail", cluster_id=row.scorecard.cluster_id)
    return render(request, "scorecard/row_form.html", {"form": form, "row": row})


@login_required
def row_evidence(request, row_id: int):
    row = _row(row_id)
    page = selectors.row_evidence_page(row=row, page=request.GET.get("page"), per_page=HISTORY_PAGE_SIZE)
    return render(request, "scorecard/row_evidence.html", {"row": row, "page": page})


def _check_page(request, check: Check, **bound):
    """The check page; a form that failed validation is shown bound, with its errors."""
    forms = {
        "params": ParamsForm(check=check) if check.kind in catalog.SPECS else None,
        "schedule": ScheduleForm(instance=check),
        "applicability": NotApplicableForm(instance=check),
        **bound,
    }
    view = selectors.check_view(check=check)
    return render(request, "scorecard/check.html", {"check": check, "forms": forms, "view": view})


@login_required
def check_detail(request, check_id: int):
    return _check_page(request, _check(check_id))


@login_required
@require_POST
def check_params(request, check_id: int):
    check = _check(check_id)
    if check.kind not in catalog.SPECS:
        messages.error(request, f"{check.get_kind_display()} has no parameters.")
        return redirect("scorecard-check", check_id=check.pk)
    form = ParamsForm(request.POST, check=check)
    if not form.is_valid():
        return _check_page(request, check, params=form)
    services.check_update(check=check, user=request.user.get_username(), params=form.params())
    saved = f"Saved the parameters of {check.get_kind_display()}."
    if form.params().get("groups"):
        saved += " Whether the groups exist is checked on the cluster by the next run."
    messages.success(request, saved)
    return redirect("scorecard-check", check_id=check.pk)


def _check_fields_save(request, check_id: int, form_class, name: str):
    """Save one of the check page's model forms, or show the page with its errors."""
    check = _check(check_id)
    form = form_class(request.POST, instance=check)
    if not form.is_valid():
        return _check_page(request, check, **{name: form})
    services.check_update(check=check, user=request.user.get_username(), **form.cleaned_data)
    messages.success(request, f"Saved the {name} of {check.get_kind_display()}.")
    return redirect("scorecard-check", check_id=check.pk)


@login_required
@require_POST
def check_schedule(request, check_id: int):
    return _check_fields_save(request, check_id, ScheduleForm, "schedule")


@login_required
@require_POST
def check_applicability(request, check_id: int):
    return _check_fields_save(request, check_id, NotApplicableForm, "applicability")
