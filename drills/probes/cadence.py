"""Drill cadence (automation row): computed from stored drill runs, no cluster traffic."""

from datetime import timedelta
from types import SimpleNamespace

from django.utils import timezone

from drills.models import DrillRun, Outcome
from drills.probes.base import ProbeContext, ProbeResult
from scorecard.catalog import Scenario
from scorecard.status import verdict


def drill_cadence(ctx: ProbeContext, params: SimpleNamespace) -> ProbeResult:
    since = timezone.now() - timedelta(days=params.window_days)
    scenarios, overdue, manual, unguarded = [], [], [], []
    for scenario in params.scenarios:
        last_pass = (
            DrillRun.objects.filter(
                cluster_id=ctx.cluster_id,
                scenario=scenario,
                outcome=Outcome.PASSED,
                finished_at__gte=since,
            )
            .order_by("-finished_at")
            .first()
        )
        last_any = DrillRun.objects.filter(cluster_id=ctx.cluster_id, scenario=scenario).order_by("-created_at").first()
        label = Scenario(scenario).label
        if last_pass is None:
            overdue.append(label)
        else:
            if last_pass.manual_steps:
                manual.append(f"{label} ({last_pass.manual_steps} manual steps)")
            if not last_pass.guardrails:
                unguarded.append(label)
        scenarios.append(
            {
                "scenario": scenario,
                "last_passed_at": last_pass.finished_at.isoformat() if last_pass else None,
                "last_passed_run": last_pass.pk if last_pass else None,
                "manual_steps": last_pass.manual_steps if last_pass else None,
                "guardrails": sorted(last_pass.guardrails) if last_pass else [],
                "last_run_outcome": last_any.outcome or last_any.state if last_any else None,
            }
        )
    findings = []
    if overdue:
        findings.append(f"not passed within {params.window_days} days: {', '.join(overdue)}")
    if manual:
        findings.append(f"recovery needed manual steps: {', '.join(manual)}")
    if unguarded:
        findings.append(f"passed without guardrails: {', '.join(unguarded)}")
    status = verdict(fail=overdue, warn=manual or unguarded)
    passed = len(params.scenarios) - len(overdue)
    summary = f"{passed} of {len(params.scenarios)} scenarios passed within {params.window_days} days"
    if findings:
        summary += f"; {findings[0]}"
    return ProbeResult(
        status, summary[:500], {"window_days": params.window_days, "scenarios": scenarios, "findings": findings}
    )
