from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from drills import schedules, services
from drills.charts import timeline_figure
from drills.forms import DrillScheduleForm, drill_start_form, scenarios_offered
from drills.models import DrillRun, DrillSchedule, DrillTimeline
from scorecard import audit, roles
from scorecard.models import Check, Cluster, Row
from scorecard.presentation import event_rows, figure_rows
from scorecard.targets import METRICS, targets_snapshot
from scorecard.views import _scorecard, role_required


@role_required("run_checks")
@require_POST
def checks_run(request, cluster_id: int):
    """The scorecard page's "Run checks now": every runnable check, on the cluster's queue."""
    scorecard = _scorecard(request, cluster_id)
    try:
        runs = services.scorecard_run_checks(scorecard=scorecard, requested_by=request.user.get_username())
    except services.QueueUnavailable as exc:
        messages.error(request, f"The checks {exc}; they are marked failed. Try again once the broker is back.")
    else:
        messages.info(request, f"Queued {len(runs)} checks on queue {scorecard.cluster.worker_queue}.")
    return redirect("scorecard-detail", cluster_id=cluster_id)


@role_required("run_checks")
@require_POST
def check_run(request, check_id: int):
    """The check page's "Run now"."""
    checks = Check.objects.runnable().filter(roles.visible(request.user, "row__scorecard__cluster__"))
    check = get_object_or_404(checks.select_related("row__scorecard__cluster"), pk=check_id)
    try:
        services.check_run_request(check=check, requested_by=request.user.get_username())
    except services.QueueUnavailable as exc:
        messages.error(request, f"The run {exc}; it is marked failed.")
    else:
        queue = check.row.scorecard.cluster.worker_queue
        messages.info(request, f"Queued {check.get_kind_display()} on queue {queue}.")
    return redirect("scorecard-check", check_id=check.pk)


@role_required("read")
def drill_list(request, cluster_id: int):
    cluster = get_object_or_404(Cluster.objects.filter(roles.visible(request.user)), pk=cluster_id)
    if request.method != "POST":
        return _drill_page(request, cluster)
    roles.require(request.user, "start_drills")
    form = drill_start_form(cluster, data=request.POST)
    if form.is_valid():
        try:
            run = form.start(request.user)
        except services.DrillRefused as exc:
            form.add_error(None, str(exc))
        except services.QueueUnavailable as exc:
            form.add_error(None, f"The drill {exc}; nothing was started.")
        else:
            messages.success(request, f"Queued the {run.get_scenario_display()} drill on {cluster.name}.")
            return redirect("drills-detail", run_id=run.pk)
    return _drill_page(request, cluster, form=form)


def _drill_page(request, cluster: Cluster, *, form=None, schedule_form=None):
    refusals = scenarios_offered(cluster)
    offered = [s for s, reason in refusals.items() if not reason]
    context = {
        "cluster": cluster,
        "form": form or drill_start_form(cluster, refusals),
        "schedule_form": schedule_form or DrillScheduleForm(scenarios=offered),
        "runs": DrillRun.objects.filter(cluster=cluster)[:50],
        "schedules": DrillSchedule.objects.filter(cluster=cluster).prefetch_related("windows"),
        "not_offered": [(s.label, reason) for s, reason in refusals.items() if reason],
        "offered": offered,
        "targets": _targets_by_scenario(cluster, offered),
    }
    return render(request, "drills/list.html", context)


def _targets_by_scenario(cluster: Cluster, scenarios: list) -> list[tuple[str, list]]:
    """What a drill of each offered scenario would be judged against, from the rows."""
    rows = list(Row.objects.filter(scorecard__cluster=cluster))
    snapshots = [
        targets_snapshot({r.key: r for r in rows if r.key in services.drill_rows(scenario)}, scenario)
        for scenario in scenarios
    ]
    table = []
    for metric, spec in METRICS.items():
        cells = [snapshot.get(metric) for snapshot in snapshots]
        if any(cells):
            table.append((f"{spec.label} ({spec.unit})", cells))
    return table


@role_required("approve_drills")
@require_POST
def schedule_new(request, cluster_id: int):
    cluster = get_object_or_404(Cluster.objects.filter(roles.visible(request.user)), pk=cluster_id)
    form = DrillScheduleForm(
        request.POST, scenarios=[s for s, reason in scenarios_offered(cluster).items() if not reason]
    )
    if form.is_valid():
        data = form.cleaned_data
        try:
            schedule = schedules.schedule_create(
                cluster=cluster,
                by=request.user.get_username(),
                scenario=data["scenario"],
                weekdays=data["weekdays"],
                window_start=data["window_start"],
                window_end=data["window_end"],
                time_zone=data["time_zone"],
                params=form.params(),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(request, f"Scheduled {schedule}.")
            return redirect("drills-list", cluster_id=cluster.pk)
    return _drill_page(request, cluster, schedule_form=form)


@role_required("approve_drills")
@require_POST
def schedule_delete(request, schedule_id: int):
    visible = DrillSchedule.objects.select_related("cluster").filter(roles.visible(request.user, "cluster__"))
    schedule = get_object_or_404(visible, pk=schedule_id)
    schedules.schedule_delete(schedule=schedule)
    messages.success(request, f"Removed the schedule {schedule}.")
    return redirect("drills-list", cluster_id=schedule.cluster_id)


def _run(request, run_id: int) -> DrillRun:
    runs = DrillRun.objects.select_related("cluster").filter(roles.visible(request.user, "cluster__"))
    return get_object_or_404(runs, pk=run_id)


@role_required("read")
def drill_detail(request, run_id: int):
    run = _run(request, run_id)
    chart = None
    timeline = DrillTimeline.objects.filter(run=run).first()
    if timeline is not None:
        chart = timeline_figure(timeline.data, title=f"{run.get_scenario_display()} on {run.cluster.name}").to_json()
    context = {
        "run": run,
        "chart": chart,
        "may_act": services.may_act_on(request.user, run),
        "audit": audit.events_for(run),
        "events": event_rows(run.events),
        "figure_rows": figure_rows(run),
    }
    return render(request, "drills/detail.html", context)


@role_required("read")
def drill_progress(request, run_id: int):
    run = _run(request, run_id)
    return JsonResponse(
        {
            "state": run.state,
            "phase": run.phase,
            "outcome": run.outcome,
            "progress": run.progress,
            "awaiting_step": run.awaiting_step,
            "tripped_guardrail": run.tripped_guardrail,
            "events": event_rows(run.events),
            "active": run.active,
        }
    )


@role_required("start_drills")
@require_POST
def drill_abort(request, run_id: int):
    run = _run(request, run_id)
    services.may_act_require(request.user, run, "abort")
    services.drill_run_abort_request(run=run, user=request.user.get_username())
    messages.info(request, "Abort requested: the drill stops its fault and runs the recovery.")
    return redirect("drills-detail", run_id=run.pk)


@role_required("start_drills")
@require_POST
def drill_confirm_step(request, run_id: int):
    run = _run(request, run_id)
    services.may_act_require(request.user, run, "confirm a step of")
    if services.drill_step_confirm(run=run, user=request.user.get_username()):
        messages.success(request, f"Confirmed: {run.awaiting_step}")
    return redirect("drills-detail", run_id=run.pk)
