from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from drills import services
from drills.charts import timeline_figure
from drills.forms import DrillForm
from drills.models import DrillRun, DrillTimeline
from scorecard.catalog import Scenario
from scorecard.models import Check, Cluster, Scorecard


@login_required
@require_POST
def checks_run(request, cluster_id: int):
    """The scorecard page's "Run checks now": every runnable check, on the cluster's queue."""
    scorecard = get_object_or_404(Scorecard.objects.select_related("cluster"), cluster_id=cluster_id)
    try:
        runs = services.scorecard_run_checks(scorecard=scorecard, requested_by=request.user.get_username())
    except services.QueueUnavailable as exc:
        messages.error(request, f"The checks {exc}; they are marked failed. Try again once the broker is back.")
    else:
        messages.info(request, f"Queued {len(runs)} checks on queue {scorecard.cluster.worker_queue}.")
    return redirect("scorecard-detail", cluster_id=cluster_id)


@login_required
@require_POST
def check_run(request, check_id: int):
    """The check page's "Run now"."""
    check = get_object_or_404(Check.objects.runnable().select_related("row__scorecard__cluster"), pk=check_id)
    try:
        services.check_run_request(check=check, requested_by=request.user.get_username())
    except services.QueueUnavailable as exc:
        messages.error(request, f"The run {exc}; it is marked failed.")
    else:
        queue = check.row.scorecard.cluster.worker_queue
        messages.info(request, f"Queued {check.get_kind_display()} on queue {queue}.")
    return redirect("scorecard-check", check_id=check.pk)


@login_required
def drill_list(request, cluster_id: int):
    cluster = get_object_or_404(Cluster, pk=cluster_id)
    # Only what the cluster's actuator can perform is offered; the rest is listed with the reason.
    refusals = {s: services.scenario_refusal(cluster, s) for s in Scenario}
    offered = [s for s, reason in refusals.items() if not reason]
    form = DrillForm(request.POST or None, cluster=cluster, scenarios=offered)
    if request.method == "POST" and form.is_valid():
        try:
            run = services.drill_run_start(
                cluster=cluster,
                scenario=form.cleaned_data["scenario"],
                params=form.params,
                requested_by=request.user.get_username(),
            )
        except services.DrillRefused as exc:
            form.add_error(None, str(exc))
        except services.QueueUnavailable as exc:
            form.add_error(None, f"The drill {exc}; nothing was started.")
        else:
            messages.success(request, f"Queued the {run.get_scenario_display()} drill on {cluster.name}.")
            return redirect("drills-detail", run_id=run.pk)
    runs = DrillRun.objects.filter(cluster=cluster)[:50]
    not_offered = [(s.label, reason) for s, reason in refusals.items() if reason]
    context = {"cluster": cluster, "form": form, "runs": runs, "not_offered": not_offered}
    return render(request, "drills/list.html", context)


def _run(run_id: int) -> DrillRun:
    return get_object_or_404(DrillRun.objects.select_related("cluster"), pk=run_id)


@login_required
def drill_detail(request, run_id: int):
    run = _run(run_id)
    chart = None
    timeline = DrillTimeline.objects.filter(run=run).first()
    if timeline is not None:
        chart = timeline_figure(timeline.data, title=f"{run.get_scenario_display()} on {run.cluster.name}").to_json()
    return render(request, "drills/detail.html", {"run": run, "chart": chart})


@login_required
def drill_progress(request, run_id: int):
    run = _run(run_id)
    return JsonResponse(
        {
            "state": run.state,
            "phase": run.phase,
            "outcome": run.outcome,
            "progress": run.progress,
            "awaiting_step": run.awaiting_step,
            "tripped_guardrail": run.tripped_guardrail,
            "events": run.events[-15:],
            "active": run.active,
        }
    )


@login_required
@require_POST
def drill_abort(request, run_id: int):
    run = _run(run_id)
    services.drill_run_abort_request(run=run, user=request.user.get_username())
    messages.info(request, "Abort requested: the drill stops its fault and runs the recovery.")
    return redirect("drills-detail", run_id=run.pk)


@login_required
@require_POST
def drill_confirm_step(request, run_id: int):
    run = _run(run_id)
    if services.drill_step_confirm(run=run, user=request.user.get_username()):
        messages.success(request, f"Confirmed: {run.awaiting_step}")
    return redirect("drills-detail", run_id=run.pk)
