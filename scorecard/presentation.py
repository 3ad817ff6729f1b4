"""Drill runs in words: events as sentences, and what each figure means with its target."""

from scorecard.targets import describe

EVENT_WORDS = {
    "fault": "Fault: {description}",
    "fault_confirmed": "The actuator confirmed the fault",
    "action": "{description}: the command returned after {seconds} s",
    "action_failed": "{description} failed: {error}",
    "recovery_confirmed": "The actuator confirmed the recovery",
    "recovery_failed": "A recovery step failed: {error}",
    "guardrail_tripped": "Guardrail {guardrail} tripped: the fault is stopped and the recovery runs",
    "phase": "Phase: {phase}",
    "preflight_passed": "Pre-flight passed: {records} baseline records, produce p99 {produce_p99_ms} ms",
    "refused": "Refused, nothing injected: {reason}",
    "error": "Error: {error}",
    "inconclusive": "Inconclusive: {reason}",
    "probe_topic": "Probe topic {name}: {partitions} partitions, replication factor {replication_factor}",
    "producer_fatal": "The producer entered a fatal state ({error}); a new one is created",
    "producer_recreated": "A new producer took over",
    "producer_unreported": "{records} records never got a delivery report",
    "reader_paused": "The live reader paused: the backlog builds",
    "reader_resumed": "The live reader resumed: catch-up timed from here",
    "consumer_killed": "A group member died without committing",
    "consumer_resumed": "A new group member resumed from the committed offsets",
    "standby_cutover": "The canary group resumed on the standby from the synced offsets",
    "abort_requested": "Abort requested by {by}",
    "awaiting_person": "Waiting for a person: {step}",
    "step_confirmed": "{by} confirmed: {step}",
    "worker_lost": "The drill's worker was lost; {recovered_by} ran the recovery",
    "watchdog_recovery": "Recovery by the watchdog ({by})",
}


class _Missing(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def event_text(event: dict) -> str:
    """One event as a sentence; unknown kinds by their name."""
    kind = str(event.get("kind", ""))
    template = EVENT_WORDS.get(kind)
    if template is None:
        return kind.replace("_", " ").capitalize()
    return template.format_map(_Missing({k: v for k, v in event.items() if v is not None}))


def event_rows(events: list[dict]) -> list[dict]:
    """Events for the page and the live feed: when (seconds into the drill) and what."""
    return [{"at_s": event.get("at_s"), "kind": event.get("kind", ""), "text": event_text(event)} for event in events]


# figure -> (label, one-line explanation, target metric or "")
FIGURES = (
    ("write_rto_s", "Write RTO", "From the confirmed fault until writes were all acknowledged within the latency "
     "SLO for the stability window.", "write_rto_s"),
    ("read_rto_s", "Read RTO", "The same on end-to-end latency: send time to the time the live reader read it.",
     "read_rto_s"),
    ("reelection_s", "Leader re-election", "From the first metadata sample showing the loss to every partition "
     "having a live leader.", "reelection_s"),
    ("catchup_s", "Replica catch-up", "From the recovery until no partition was under-replicated.", "catch_up_s"),
    ("rpo_acked_lost", "RPO (acknowledged records lost)", "Acknowledged records missing when every partition was "
     "read back from the start after recovery.", "rpo_records"),
    ("consumer_resume_s", "Consumer resume", "From the member's death (or the cutover) until the new member read "
     "again from the committed offsets.", "consumer_resume_s"),
    ("catch_up_s", "Lag catch-up", "From the reader's resume until the last record sent before it was read.",
     "lag_catch_up_s"),
)  # fmt: skip
UNITS = {"rpo_acked_lost": " records"}


def figure_rows(run) -> list[dict]:
    """Each figure the drill measured, with what it means, its target and whether it was met.
    A figure that was not observed says so; it is never shown as 0."""
    rows = []
    for key, label, meaning, metric in FIGURES:
        if key not in run.figures:
            continue
        value = run.figures.get(key)
        target = run.targets.get(metric)
        unit = UNITS.get(key, " s")
        met = None if value is None or not target else value <= target["value"]
        rows.append(
            {
                "label": label,
                "value": f"{value}{unit}" if value is not None else _missing(run.figures, key),
                "observed": value is not None,
                "meaning": meaning,
                "target": describe(target, unit) if target else "no target",
                "met": met,
            }
        )
    return rows


def _missing(figures: dict, key: str) -> str:
    """Why a figure has no value: it never recovered within the drill, or it was not observed."""
    if key in ("write_rto_s", "read_rto_s") and figures.get("fault_at_s") is not None:
        return "not recovered within the drill"
    if key == "reelection_s" and figures.get("metadata", {}).get("loss_observed"):
        return "not recovered within the drill"
    return "not observed"
