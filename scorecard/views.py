from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from scorecard import services
from scorecard.forms import ClusterForm, RowForm
from scorecard.models import CheckRun, Row, Scorecard


def _scorecard(cluster_id: int) -> Scorecard:
    return get_object_or_404(Scorecard.objects.select_related("cluster"), cluster_id=cluster_id)


@login_required
def index(request):
    scorecards = list(Scorecard.objects.select_related("cluster").order_by("cluster__name"))
    views = services.scorecard_views(scorecards=scorecards)
    return render(request, "scorecard/index.html", {"views": views})


@login_required
def cluster_new(request):
    form = ClusterForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        scorecard = services.cluster_register(cluster=form.save(commit=False))
        messages.success(request, f"Registered {scorecard.cluster.name} with its five-row scorecard.")
        return redirect("scorecard-detail", cluster_id=scorecard.cluster_id)
    return render(request, "scorecard/cluster_form.html", {"form": form})


@login_required
def scorecard_detail(request, cluster_id: int):
    scorecard = _scorecard(cluster_id)
    (view,) = services.scorecard_views(scorecards=[scorecard])
    runs = CheckRun.objects.filter(check_obj__row__scorecard=scorecard).select_related("check_obj__row")[:10]
    chain = services.chain_verify(scorecard=scorecard)
    return render(request, "scorecard/detail.html", {"view": view, "runs": runs, "chain": chain})


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
