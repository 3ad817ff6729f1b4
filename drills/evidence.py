"""A finished drill's figures handed to the rows they prove (DESIGN.md section 5)."""

from drills.engine.figures import group_figures
from drills.models import DrillRun, Outcome
from scorecard.catalog import CLUSTER_FAULTS, ProbeKind, RowKey
from scorecard.evidence import evidence_append
from scorecard.models import Check, Row, Status
from scorecard.status import verdict
from scorecard.targets import METRICS, describe

# Drills from before targets came from the rows carried these two in their parameters.
LEGACY_TARGET_PARAMS = {"write_rto_s": "write_rto_target_seconds", "reelection_s": "reelection_target_seconds"}


def _target(run: DrillRun, metric: str) -> dict:
    """The target the run was judged against: its snapshot from the rows when it started
    (older runs: the target they were started with, else the product default)."""
    if metric in run.targets:
        return run.targets[metric]
    legacy = run.params.get(LEGACY_TARGET_PARAMS.get(metric, ""))
    if legacy is not None:
        return {"value": legacy, "source": "the drill's own parameter"}
    return {"value": METRICS[metric].default, "source": "product default"}


def _drill_check(row: Row) -> Check:
    """The row's drill-results check: where drills record, never scheduled."""
    # Through the row's manager, so the check comes with its row (evidence_append reads it).
    check, _ = row.checks.get_or_create(
        kind=ProbeKind.DRILL_RESULTS,
        defaults={"params": {}, "interval_seconds": 30 * 86400, "max_age_seconds": 30 * 86400},
    )
    return check


def _fmt(value, unit: str = " s", missing: str = "not observed") -> str:
    return missing if value is None else f"{value}{unit}"


def _not_recovered(f: dict) -> str:
    after = f.get("observed_until_s", 0) - (f.get("fault_at_s") or 0)
    return f"not recovered within the drill ({max(0.0, after):.1f} s after the fault)"


def drill_row_verdicts(run: DrillRun) -> list[tuple[str, Status, str]]:
    """(row, status, summary) for each row the drill's figures bear on.

    Only a fault the actuator confirmed, and that had an effect, proves anything: an
    inconclusive drill reports to automation alone, so it can never turn a row green."""
    f, label = run.figures, f"{run.get_scenario_display()} drill {run.pk}"
    if run.outcome == Outcome.REFUSED:
        return [(RowKey.AUTOMATION, Status.WARN, f"{label}: refused, nothing injected: {f.get('refused', run.error)}")]
    if run.outcome == Outcome.INCONCLUSIVE:
        reason = f.get("inconclusive") or run.error or "the fault had no observable effect"
        status = Status.ERROR if f.get("fault_at_s") is None else Status.WARN
        return [(RowKey.AUTOMATION, status, f"{label}: inconclusive: {reason}: check the actuator")]
    rows = []
    if f.get("fault_at_s") is not None:
        rows.append((RowKey.DURABILITY, *_durability_verdict(f, run, label)))
        if run.scenario in CLUSTER_FAULTS:
            rows.append((RowKey.METADATA, *_metadata_verdict(f, run, label)))
        rows.append((RowKey.CLIENT_CONTINUITY, *_continuity_verdict(f, run, label)))
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


def _durability_verdict(f: dict, run: DrillRun, label: str) -> tuple[Status, str]:
    rpo = _target(run, "rpo_records")
    status = verdict(
        fail=f["rpo_acked_lost"] > rpo["value"] or f.get("reordered", 0) > 0, warn=f.get("duplicates", 0) > 0
    )
    return status, (
        f"{label}: {f['rpo_acked_lost']} acknowledged records lost of {f.get('records_acked')} "
        f"({describe(rpo, ' records')}), {f.get('duplicates', 0)} duplicated, {f.get('reordered', 0)} reordered"
    )


def _within(value, target: dict) -> bool:
    return value is not None and (target.get("value") is None or value <= target["value"])


def _continuity_verdict(f: dict, run: DrillRun, label: str) -> tuple[Status, str]:
    """Write and read RTO against the target, group resumption, and the live reader's anomalies."""
    rto, read_rto = f.get("write_rto_s"), f.get("read_rto_s")
    fatal = len(f.get("producer_fatal_errors") or [])
    group = group_figures(f)
    gap = group.get("gap_records", 0)
    write_target, read_target = _target(run, "write_rto_s"), _target(run, "read_rto_s")
    summary = (
        f"{label}: write RTO {_fmt(rto, missing=_not_recovered(f))} ({describe(write_target)}), "
        f"read RTO {_fmt(read_rto, missing=_not_recovered(f))} ({describe(read_target)})"
    )
    if fatal:
        summary += f"; the producer entered a fatal state {fatal} times and was recreated"
    resume_target = _target(run, "consumer_resume_s")
    resume_late = bool(group) and not _within(f.get("consumer_resume_s"), resume_target)
    if group:
        summary += (
            f"; {group.get('partitions_resumed', 0)} of {group.get('partitions_committed', 0)} partitions resumed"
            f" in {_fmt(f.get('consumer_resume_s'))} ({describe(resume_target)}) with a gap of {gap} records"
        )
    counts = f.get("consumer_anomalies", {}).get("counts", {})
    if any(counts.values()):
        summary += "; live reader: " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in counts.items() if n)
    catch_up_target = run.targets.get("lag_catch_up_s")
    catch_up_late = "catch_up_s" in f and catch_up_target and not _within(f["catch_up_s"], catch_up_target)
    if "catch_up_s" in f:
        summary += f"; caught up {f.get('catch_up_records')} records in {_fmt(f['catch_up_s'])}"
        if catch_up_target:
            summary += f" ({describe(catch_up_target)})"
    unresumed = group.get("partitions_resumed", 0) < group.get("partitions_committed", 0)
    if group.get("offset_problems"):
        first = group["offset_problems"][0]
        summary += f"; synced offset on partition {first['partition']} {first['problem']}"
    fail = (
        not _within(rto, write_target)
        or not _within(read_rto, read_target)
        or resume_late
        or catch_up_late
        or gap > 0
        or unresumed
        or group.get("offset_problems")
        or counts.get("poll_skips")
        or counts.get("unseen")
    )
    return verdict(fail=fail, warn=fatal or counts.get("non_monotonic_polls")), summary


def _metadata_verdict(f: dict, run: DrillRun, label: str) -> tuple[Status, str]:
    """Re-election from the observed loss; a loss never seen is not a fast re-election."""
    metadata = f.get("metadata", {})
    catch_up_target = run.targets.get("catch_up_s")
    caught_up = f"replicas caught up in {_fmt(f.get('catchup_s'))}"
    if catch_up_target:
        caught_up += f" ({describe(catch_up_target)})"
    # With a target, replicas that never caught up (not observed) miss it.
    catch_up_late = bool(catch_up_target) and not _within(f.get("catchup_s"), catch_up_target)
    if not metadata.get("loss_observed"):
        if metadata.get("leaders_moved") and not metadata.get("max_offline"):
            return verdict(fail=catch_up_late), f"{label}: leaders moved with no partition leaderless; {caught_up}"
        return Status.WARN, (
            f"{label}: no leader loss seen in {metadata.get('samples_after_fault', 0)} metadata samples "
            f"after the fault: re-election not observed; {caught_up}"
        )
    reelect = f.get("reelection_s")
    if reelect is None:
        return Status.FAIL, f"{label}: leaders {_not_recovered(f)}; {caught_up}"
    target = _target(run, "reelection_s")
    return verdict(fail=not _within(reelect, target) or catch_up_late), (
        f"{label}: leaders re-elected in {reelect} s after the loss ({describe(target)}); {caught_up}"
    )


def drill_evidence_record(*, run: DrillRun) -> None:
    """Append one piece of evidence per row the drill bears on, each carrying the figures."""
    measurements = {
        "drill_run": run.pk,
        "scenario": run.scenario,
        "outcome": run.outcome,
        "figures": run.figures,
        "guardrails": run.guardrails,
        "guardrail_sources": run.guardrail_sources,
        "targets": run.targets,
        "tripped_guardrail": run.tripped_guardrail,
    }
    rows = {row.key: row for row in Row.objects.filter(scorecard__cluster=run.cluster)}
    for key, status, summary in drill_row_verdicts(run):
        evidence_append(
            check=_drill_check(rows[key]),
            status=status,
            summary=summary,
            measurements=measurements,
            collected_by=f"drill {run.pk} ({run.requested_by})",
        )
