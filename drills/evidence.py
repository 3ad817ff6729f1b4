"""A finished drill's figures handed to the rows they prove (DESIGN.md section 5)."""

from drills.models import DrillRun, Outcome
from scorecard.catalog import CLUSTER_FAULTS, ProbeKind, RowKey, Scenario
from scorecard.evidence import evidence_append
from scorecard.models import Check, Row, Status
from scorecard.status import verdict


def _drill_check(run: DrillRun, key: str) -> Check:
    """The row's drill-results check: where drills record, never scheduled."""
    row = Row.objects.get(scorecard__cluster=run.cluster, key=key)
    check, _ = Check.objects.get_or_create(
        row=row,
        kind=ProbeKind.DRILL_RESULTS,
        defaults={"params": {}, "interval_seconds": 30 * 86400, "max_age_seconds": 30 * 86400},
    )
    return check


def _fmt(value, unit: str = " s", missing: str = "not observed") -> str:
    return missing if value is None else f"{value}{unit}"


def drill_row_verdicts(run: DrillRun) -> list[tuple[str, Status, str]]:
    """(row, status, summary) for each row the drill's figures bear on."""
    f, p, label = run.figures, run.params, f"{run.get_scenario_display()} drill {run.pk}"
    rows = []
    if "rpo_acked_lost" in f:
        status = verdict(fail=f["rpo_acked_lost"] > 0 or f.get("reordered", 0) > 0, warn=f.get("duplicates", 0) > 0)
        rows.append(
            (
                RowKey.DURABILITY,
                status,
                f"{label}: {f['rpo_acked_lost']} acknowledged records lost of {f.get('records_acked')}, "
                f"{f.get('duplicates', 0)} duplicated, {f.get('reordered', 0)} reordered",
            )
        )
    if f.get("fault_at_s") is not None and run.scenario in CLUSTER_FAULTS:
        reelect = f.get("reelection_s")
        slow = reelect is None or reelect > p.get("reelection_target_seconds", 30)
        rows.append(
            (
                RowKey.METADATA,
                verdict(fail=slow),
                f"{label}: leaders re-elected in {_fmt(reelect, missing='never')}, "
                f"replicas caught up in {_fmt(f.get('catchup_s'))}",
            )
        )
    if f.get("fault_at_s") is not None:
        rto = f.get("write_rto_s")
        fatal = len(f.get("producer_fatal_errors") or [])
        group = f.get(Scenario.CONSUMER_RESTART) or f.get(Scenario.STANDBY_CUTOVER) or {}
        gap = group.get("gap_records", 0)
        summary = f"{label}: write RTO {_fmt(rto, missing='not recovered')}, read RTO {_fmt(f.get('read_rto_s'))}"
        if fatal:
            summary += f"; the producer entered a fatal state {fatal} times and was recreated"
        if group:
            summary += (
                f"; {group.get('partitions_resumed', 0)} of {group.get('partitions_committed', 0)} partitions resumed"
                f" in {_fmt(f.get('consumer_resume_s'))} with a gap of {gap} records"
            )
        if "catch_up_s" in f:
            summary += f"; caught up {f.get('catch_up_records')} records in {f['catch_up_s']} s"
        unresumed = group.get("partitions_resumed", 0) < group.get("partitions_committed", 0)
        fail = rto is None or rto > p.get("write_rto_target_seconds", 30) or gap > 0 or unresumed
        rows.append((RowKey.CLIENT_CONTINUITY, verdict(fail=fail, warn=fatal), summary))
    automation_fail = run.outcome == Outcome.FAILED or (run.error and not run.tripped_guardrail)
    automation_summary = f"{label}: {run.outcome or run.state}"
    if run.tripped_guardrail:
        automation_summary += f", guardrail {run.tripped_guardrail} tripped and recovery ran"
    if run.manual_steps:
        automation_summary += f", {run.manual_steps} manual steps"
    if run.error:
        automation_summary += f"; {run.error[:200]}"
    status = verdict(fail=automation_fail, warn=run.tripped_guardrail or run.manual_steps)
    rows.append((RowKey.AUTOMATION, status, automation_summary))
    return rows


def drill_evidence_record(*, run: DrillRun) -> None:
    """Append one piece of evidence per row the drill bears on, each carrying the figures."""
    measurements = {
        "drill_run": run.pk,
        "scenario": run.scenario,
        "outcome": run.outcome,
        "figures": run.figures,
        "guardrails": run.guardrails,
        "tripped_guardrail": run.tripped_guardrail,
    }
    for key, status, summary in drill_row_verdicts(run):
        evidence_append(
            check=_drill_check(run, key),
            status=status,
            summary=summary,
            measurements=measurements,
            collected_by=f"drill {run.pk} ({run.requested_by})",
        )
