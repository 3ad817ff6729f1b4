from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from drills.forms import ParamsForm
from drills.kafka import ConnectionSettings
from drills.params import SPECS as PARAM_SPECS
from scorecard import services
from scorecard.forms import ClusterForm, NotApplicableForm, RowForm, ScheduleForm
from scorecard.models import Check, CheckRun, Cluster, Evidence, Row, Scorecard

HISTORY_PAGE_SIZE = 20


def _scorecard(cluster_id: int) -> Scorecard:
    return get_object_or_404(Scorecard.objects.select_related("cluster"), cluster_id=cluster_id)


@login_required
def index(request):
    scorecards = list(Scorecard.objects.select_related("cluster").order_by("cluster__name"))
    views = services.scorecard_views(scorecards=scorecards)
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
    (view,) = services.scorecard_views(scorecards=[scorecard])
    runs = CheckRun.objects.filter(check_obj__row__scorecard=scorecard).select_related("check_obj__row")[:10]
    history = services.row_recent_evidence(scorecard=scorecard, per_row=5)
    chain = services.chain_verify(scorecard=scorecard)
    return render(request, "scorecard/detail.html", {"view": view, "runs": runs, "chain": chain, "history": history})


@login_required
@require_POST
def run_checks(request, cluster_id: int):
    scorecard = _scorecard(cluster_id)
    runs = services.scorecard_run_checks(scorecard=scorecard, requested_by=request.user.get_username())
    messages.info(request, f"Queued {len(runs)} checks on queue {scorecard.cluster.worker_queue}.")
    return redirect("scorecard-detail", cluster_id=cluster_id)


@login_required
def row_edit(request, row_id: int):
    row = get_object_or_404(Row.objects.select_related("scorecard__cluster"), pk=row_id)
    form = RowForm(request.POST or None, instance=row)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Saved {row.title}.")
        return redirect("scorecard-detail", cluster_id=row.scorecard.cluster_id)
    return render(request, "scorecard/row_form.html", {"form": form, "row": row})


@login_required
def row_evidence(request, row_id: int):
    row = get_object_or_404(Row.objects.select_related("scorecard__cluster"), pk=row_id)
    evidence = Evidence.objects.filter(scorecard=row.scorecard, row_key=row.key).select_related("check_obj")
    page = Paginator(evidence, HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "scorecard/row_evidence.html", {"row": row, "page": page})


@login_required
def check_detail(request, check_id: int):
    check = get_object_or_404(Check.objects.select_related("row__scorecard__cluster__standby"), pk=check_id)
    cluster = check.row.scorecard.cluster
    which = request.POST.get("form") if request.method == "POST" else None
    forms = {
        "params": ParamsForm(
            request.POST if which == "params" else None, check=check, connection=ConnectionSettings.for_cluster(cluster)
        )
        if check.kind in PARAM_SPECS
        else None,
        "schedule": ScheduleForm(request.POST if which == "schedule" else None, instance=check),
        "applicability": NotApplicableForm(request.POST if which == "applicability" else None, instance=check),
    }
    form = forms.get(which)
    if form is not None and form.is_valid():
        user = request.user.get_username()
        if which == "params":
            services.check_update(check=check, user=user, params=form.params())
        else:
            services.check_update(check=check, user=user, **{f: form.cleaned_data[f] for f in form.Meta.fields})
        messages.success(request, f"Saved the {which} of {check.get_kind_display()}.")
        return redirect("scorecard-check", check_id=check.pk)
    if which == "run" and forms["params"] is not None:
        services.check_run_request(check=check, requested_by=request.user.get_username())
        messages.info(request, f"Queued {check.get_kind_display()} on queue {cluster.worker_queue}.")
        return redirect("scorecard-check", check_id=check.pk)
    latest = Evidence.objects.filter(check_obj=check).first()
    return render(request, "scorecard/check.html", {"check": check, "forms": forms, "latest": latest})
