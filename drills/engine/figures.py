"""Recovery figures computed from a drill's per-record timeline (DESIGN.md section 5).

A timeline row is one produced record: partition, sequence, and times in milliseconds since
the drill started: sent, acknowledged (None if never), consumed (None if never), and the
delivery error if any.
"""

from array import array
from collections import Counter
from dataclasses import dataclass
from functools import partial
from operator import itemgetter
from types import SimpleNamespace
from typing import NamedTuple

from drills.engine.base import Clock, Window
from drills.kafka import ReadRecords
from drills.models import Outcome
from drills.verify import by_partition, percentile, unseen_by_reader, verify_partitions
from scorecard.catalog import CLIENT_FAULTS, Scenario


class TimelineRecord(NamedTuple):
    """One row of the timeline; a tuple in the timeline's field order (a drill has hundreds of
    thousands, and the stored timeline is these rows as lists)."""

    partition: int
    seq: int
    sent_ms: float
    acked_ms: float | None
    consumed_ms: float | None
    error: str | None = None

    @property
    def acked(self) -> bool:
        return self.acked_ms is not None and self.error is None


@dataclass(frozen=True)
class Sent:
    """Every record the drill produced, one array per field (the layout of the engine's
    Traffic): record i went to partition `partitions[i % len(partitions)]` with sequence
    `i // len(partitions)`, was sent at `sent_ns[i]`, reported at `acked_ns[i]` (0: never) with
    offset `offsets[i]` (-1: none) or the error `errors[i]`, and first read live at
    `consumed_ns[i]` (0: never)."""

    partitions: list[int]
    sent_ns: array
    acked_ns: array
    offsets: array
    errors: dict[int, str]
    consumed_ns: array

    def acknowledged(self, index: int) -> bool:
        return self.acked_ns[index] != 0 and index not in self.errors


_SEND_ORDER = itemgetter(2, 0)  # (sent_ms, partition)
_as_timeline_record = partial(tuple.__new__, TimelineRecord)


def _rto(records: list[TimelineRecord], fault_ms: float, slo_ms: float, window_ms: float, *, read: bool):
    """Fault to recovery, where recovery is the first run of records that all completed within
    the SLO for the stability window. It is the completion of the run's first record, or later
    if records stuck before the run completed later (writes were still stalled until then).
    0 when no record after the fault missed the SLO; None when the records never settled."""

    after = sorted((r for r in records if r.sent_ms >= fault_ms), key=_SEND_ORDER)
    if not after:
        return None
    sent = [r.sent_ms for r in after]
    done = [r.consumed_ms if read else (r.acked_ms if r.error is None else None) for r in after]
    good = [d is not None and d - s <= slo_ms for d, s in zip(done, sent, strict=True)]
    if all(good):
        return 0.0
    last_sent = sent[-1]
    # bad_from[i]: the earliest send time of a bad record at or after i.
    next_bad = float("inf")
    bad_from = [0.0] * len(after)
    for i in range(len(after) - 1, -1, -1):
        if not good[i]:
            next_bad = sent[i]
        bad_from[i] = next_bad
    stuck_done = 0.0  # latest completion of a slow record sent before the candidate run
    for i, ok in enumerate(good):
        if not ok:
            stuck_done = max(stuck_done, done[i] or 0.0)
            continue
        window_end = sent[i] + window_ms
        if window_end > last_sent:
            return None  # not enough traffic after this point to call it stable
        if bad_from[i] > window_end:
            return round(max(done[i], stuck_done) - fault_ms, 1)
    return None


def write_rto_ms(records, *, fault_ms: float, slo_ms: float, window_ms: float) -> float | None:
    return _rto(records, fault_ms, slo_ms, window_ms, read=False)


def read_rto_ms(records, *, fault_ms: float, slo_ms: float, window_ms: float) -> float | None:
    return _rto(records, fault_ms, slo_ms, window_ms, read=True)


def latency_summary(records: list[TimelineRecord], start_ms: float, end_ms: float) -> dict:
    """p50/p99 produce and end-to-end latency of records sent in [start_ms, end_ms)."""
    chosen = [r for r in records if start_ms <= r.sent_ms < end_ms]
    produce = [r.acked_ms - r.sent_ms for r in chosen if r.acked]
    e2e = [r.consumed_ms - r.sent_ms for r in chosen if r.consumed_ms is not None]

    def ms(values: list[float], fraction: float) -> float | None:
        value = percentile(values, fraction)  # differences of float times: 10.527000000000044
        return None if value is None else round(value, 3)

    return {
        "records": len(chosen),
        "produce_ms_p50": ms(produce, 0.5),
        "produce_ms_p99": ms(produce, 0.99),
        "e2e_ms_p50": ms(e2e, 0.5),
        "e2e_ms_p99": ms(e2e, 0.99),
    }


@dataclass
class Observed:
    """Everything a drill saw, handed to the figures once traffic stopped."""

    run_id: str
    clock: Clock
    sent: Sent
    read_back: ReadRecords  # the run's records, read again after the drill
    samples: list[dict]
    fault: Window
    recovery: Window
    baseline: dict  # brokers and probe-topic leaders before the fault
    scenario: str
    tripped_ns: int | None
    client_fault: str
    group_figures: dict
    resume_ns: int | None
    fatal_errors: list[dict]
    manual_steps: int
    guardrails: dict
    polls: dict  # PollWatch.as_dict() of the live reader


def first_clear_after(samples: list[dict], t_ms: float, key: str) -> float | None:
    """Seconds from t_ms to the first metadata sample with no `key` partitions."""
    for sample in samples:
        if sample.get("t_ms", 0) >= t_ms and sample.get(key) == 0:
            return round(max(0.0, sample["t_ms"] - t_ms) / 1000, 3)
    return None


def _led(sample: dict, baseline: dict) -> bool:
    """Answered, every partition led by a live broker, and every partition of the probe topic
    still there (a broker that restarts empty forgets its topics)."""
    if "error" in sample or sample["offline"] > 0:
        return False
    return set(baseline.get("leaders", {})) <= set(sample.get("leaders", {}))


def _loss(sample: dict, baseline: dict) -> str:
    """'certain' for a loss no healthy cluster shows (a refused connection, a leaderless or
    missing partition, fewer brokers), 'maybe' for a metadata request that timed out (a slow
    answer under load looks the same), '' for none."""
    if "error" in sample:
        return "maybe" if "timed out" in sample["error"] else "certain"
    if not _led(sample, baseline) or sample["brokers"] < baseline.get("brokers", 0):
        return "certain"
    return ""


def leadership(samples: list[dict], fault_ms: float, baseline: dict) -> dict:
    """What the metadata samples taken after the confirmed fault show.

    Re-election runs from the first sample showing the loss (a timed-out request only when the
    next sample shows it too) to the first sample after it in which every partition has a live
    leader (a stopped broker may still be gone). It
    is None with `loss_observed` False when no loss was seen (not observed, never a small
    number), and None with it True when leaders never came back within the drill."""
    after = [s for s in samples if s.get("t_ms", 0) >= fault_ms]
    loss = [_loss(s, baseline) for s in after]
    # A timed-out request counts only when the next sample shows a loss too.
    lost = next(
        (i for i, kind in enumerate(loss) if kind == "certain" or (kind and i + 1 < len(loss) and loss[i + 1])),
        None,
    )
    answered = [s for s in after if "error" not in s]
    result = {
        "samples_after_fault": len(after),
        "loss_observed": lost is not None,
        "leaders_moved": any(s.get("leaders") and s["leaders"] != baseline.get("leaders") for s in answered),
        "unanswered_samples": len(after) - len(answered),
        "max_offline": max((s["offline"] for s in answered), default=None),
        "reelection_s": None,
    }
    if lost is not None:
        first = after[lost]["t_ms"]
        cleared = next((s["t_ms"] for s in after[lost:] if _led(s, baseline)), None)
        result["loss_seen_at_s"] = round(first / 1000, 3)
        result["reelection_s"] = None if cleared is None else round((cleared - first) / 1000, 3)
    return result


def group_figures(figures: dict) -> dict:
    """The figures of the drill's consumer group (consumer restart or standby cutover), if any."""
    return next((figures[k] for k in CLIENT_FAULTS if k in figures), {})


def observed_effect(
    figures: dict, records: list[TimelineRecord], *, scenario: str, fault_ms: float, slo_ms: float
) -> str:
    """What shows the fault bit, in the terms the scenario expects; '' when nothing did."""
    metadata = figures.get("metadata", {})
    group = group_figures(figures)
    if scenario in (Scenario.BROKER_LOSS, Scenario.ZONE_LOSS):
        return "the loss showed in the cluster metadata" if metadata.get("loss_observed") else ""
    if scenario == Scenario.LEADER_CHANGE:
        return "leaders moved in the cluster metadata" if metadata.get("leaders_moved") else ""
    if scenario == Scenario.CONSUMER_RESTART:
        committed = group.get("partitions_committed", 0)
        return f"the group member died holding {committed} partitions" if committed else ""
    if scenario == Scenario.LAG_CATCH_UP:
        backlog = figures.get("catch_up_records", 0)
        return f"a backlog of {backlog} records built up" if backlog else ""
    if scenario == Scenario.STANDBY_CUTOVER:
        return "the canary group moved to the standby"
    # A plan without a scenario (tests): any disturbance of the traffic or the metadata.
    late = sum(1 for r in records if r.sent_ms >= fault_ms and (not r.acked or r.acked_ms - r.sent_ms > slo_ms))
    if late or metadata.get("loss_observed") or metadata.get("leaders_moved"):
        return f"{late} writes beyond the SLO or a metadata change"
    return ""


def catch_up(records: list[TimelineRecord], resume_ms: float | None) -> dict:
    """How fast the paused reader worked off its backlog, and write latency meanwhile."""
    if resume_ms is None:
        return {}
    backlog = [r for r in records if r.sent_ms < resume_ms and r.consumed_ms is not None and r.consumed_ms >= resume_ms]
    if not backlog:
        return {"catch_up_s": 0.0, "catch_up_records": 0}
    done_ms = max(r.consumed_ms for r in backlog)
    seconds = max(0.001, (done_ms - resume_ms) / 1000)
    return {
        "catch_up_s": round(seconds, 3),
        "catch_up_records": len(backlog),
        "catch_up_rate_per_s": round(len(backlog) / seconds, 1),
        "latency_during_catch_up": latency_summary(records, resume_ms, done_ms),
    }


def timeline_records(sent: Sent, clock: Clock) -> list[TimelineRecord]:
    """The timeline's rows, in the order the records were sent; times as Clock.ms gives them."""
    start, width, count = clock.start_ns, len(sent.partitions), len(sent.sent_ns)

    def ms(values: array) -> list[float | None]:
        return [round((ns - start) / 1e6, 3) if ns else None for ns in values]

    errors = sent.errors
    rows = zip(
        sent.partitions * (count // width) + sent.partitions[: count % width],
        [i // width for i in range(count)],
        ms(sent.sent_ns),
        ms(sent.acked_ns),
        ms(sent.consumed_ns),
        [errors.get(i) for i in range(count)] if errors else [None] * count,
        strict=True,
    )
    return list(map(_as_timeline_record, rows))  # tuple.__new__ in C: no Python call per row


def drill_figures(o: Observed, config: SimpleNamespace) -> tuple[dict, dict]:
    """The drill's figures (DESIGN.md section 5) and its per-record timeline."""
    ms = o.clock.ms
    sent, width = o.sent, len(o.sent.partitions)
    count = len(sent.sent_ns)
    acked_ns, errors = sent.acked_ns, sent.errors
    checked = verify_partitions(
        sent={p: len(range(k, count, width)) for k, p in enumerate(sent.partitions)},
        acked={
            p: [i // width for i in range(k, count, width) if acked_ns[i] and i not in errors]
            for k, p in enumerate(sent.partitions)
        },
        read=by_partition(o.read_back.partition, o.read_back.offset, o.read_back.seq),
    ).as_dict()
    records = timeline_records(sent, o.clock)
    fault_ms, recover_ms = ms(o.fault.confirmed_ns), ms(o.recovery.confirmed_ns)
    slo, window = config.latency_slo_ms, config.stability_window_seconds * 1000
    figures = {
        "records_sent": checked["sent"],
        "records_acked": checked["acked"],
        "records_failed": checked["failed"],
        "rpo_acked_lost": checked["missing"],
        "missing_records": {p: v["missing_seqs"] for p, v in checked["partitions"].items() if v["missing_seqs"]},
        "acked_without_offset": sum(
            1 for i, offset in enumerate(sent.offsets) if offset < 0 and acked_ns[i] and i not in errors
        )
        if sent.offsets.count(-1)
        else 0,
        "duplicates": checked["duplicates"],
        "reordered": checked["reordered"],
        # Confirmed times: when the actuator's last command returned (see docs/drills.md).
        "fault_started_at_s": o.clock.seconds(o.fault.started_ns),
        "fault_at_s": o.clock.seconds(o.fault.confirmed_ns),
        "recovery_started_at_s": o.clock.seconds(o.recovery.started_ns),
        "recovery_at_s": o.clock.seconds(o.recovery.confirmed_ns),
        "observed_until_s": round(max((r.sent_ms for r in records), default=0) / 1000, 3),
        "producer_fatal_errors": o.fatal_errors,
        "produce_errors": dict(Counter(errors.values()).most_common(10)),
        "manual_steps": o.manual_steps,
    }
    if fault_ms is not None:
        w = write_rto_ms(records, fault_ms=fault_ms, slo_ms=slo, window_ms=window)
        r = read_rto_ms(records, fault_ms=fault_ms, slo_ms=slo, window_ms=window)
        figures["write_rto_s"] = None if w is None else round(w / 1000, 3)
        figures["read_rto_s"] = None if r is None else round(r / 1000, 3)
        figures["metadata"] = leadership(o.samples, fault_ms, o.baseline)
        figures["reelection_s"] = figures["metadata"]["reelection_s"]
        if recover_ms is not None:
            figures["catchup_s"] = first_clear_after(o.samples, recover_ms, "under_replicated")
        # "Before" is steady state: records sent once the producer had its first acknowledgement
        # and the reader its first record, so start-up costs do not pass for the baseline.
        first_ack = min((r.acked_ms for r in records if r.acked), default=None)
        first_read = min((r.consumed_ms for r in records if r.consumed_ms is not None), default=None)
        steady_ms = max(first_ack, first_read) if first_ack is not None and first_read is not None else 0.0
        figures["steady_from_s"] = round(steady_ms / 1000, 3)
        figures["latency_before"] = latency_summary(records, steady_ms, fault_ms)
        figures["latency_during"] = latency_summary(records, fault_ms, recover_ms or fault_ms)
        if o.client_fault == Scenario.LAG_CATCH_UP:
            figures.update(catch_up(records, ms(o.resume_ns)))
    if o.group_figures:
        figures[o.client_fault] = o.group_figures
        if o.resume_ns and o.fault.started_ns:
            figures["consumer_resume_s"] = round((o.resume_ns - o.fault.started_ns) / 1e9, 3)
    figures["consumer_anomalies"] = consumer_anomalies(o, records)
    if fault_ms is not None:
        figures["effect"] = observed_effect(figures, records, scenario=o.scenario, fault_ms=fault_ms, slo_ms=slo)
    figures["guardrails"] = o.guardrails
    timeline = {
        "fields": ["partition", "seq", "sent_ms", "acked_ms", "consumed_ms", "error"],
        "records": list(map(list, records)),
        "metadata": o.samples,
        "fault_started_ms": ms(o.fault.started_ns),
        "fault_ms": fault_ms,
        "recovery_started_ms": ms(o.recovery.started_ns),
        "recovery_ms": recover_ms,
        "tripped_ms": ms(o.tripped_ns),
    }
    return figures, timeline


def consumer_anomalies(o: Observed, records: list[TimelineRecord]) -> dict:
    """The live reader's view: poll skips and non-monotonic polls, acknowledged records it never
    read by the end of the settle phase, and the worst real-time lag (ack to read) per partition."""
    # Unseen: acknowledged and still in the log afterwards (lost records are the RPO's), yet never
    # read by the live reader.
    sent, width = o.sent, len(o.sent.partitions)
    position = {p: k for k, p in enumerate(sent.partitions)}
    count = len(sent.sent_ns)
    consumed_ns, acked_ns, errors = sent.consumed_ns, sent.acked_ns, sent.errors
    unread = set()
    for p, seq in zip(o.read_back.partition, o.read_back.seq, strict=True):
        k = position.get(p)
        i = -1 if k is None else seq * width + k
        if 0 <= i < count and not consumed_ns[i] and acked_ns[i] and i not in errors:
            unread.add((p, seq))
    worst: dict[int, float] = {}
    for r in records:
        if r.consumed_ms is not None and r.acked_ms is not None and r.error is None:
            worst[r.partition] = max(worst.get(r.partition, 0.0), r.consumed_ms - r.acked_ms)
    anomalies = {**o.polls, "unseen": unseen_by_reader(unread, set())}
    anomalies["worst_lag_ms"] = {str(p): round(v, 1) for p, v in sorted(worst.items())}
    anomalies["counts"] = {
        name: sum(v["count"] for v in anomalies[name].values())
        for name in ("poll_skips", "non_monotonic_polls", "unseen")
    }
    return anomalies


def drill_failures(figures: dict) -> list[str]:
    """Why a drill whose fault bit failed: lost records, figures that never recovered, a
    group that did not resume cleanly."""
    if figures.get("fault_at_s") is None:
        return []
    group = group_figures(figures)
    metadata = figures.get("metadata", {})
    failures = [
        f"{figures['rpo_acked_lost']} acknowledged records lost" if figures["rpo_acked_lost"] else "",
        "writes not recovered" if figures.get("write_rto_s") is None else "",
        "reads not recovered" if figures.get("read_rto_s") is None else "",
        "leaders not re-elected" if metadata.get("loss_observed") and figures.get("reelection_s") is None else "",
        f"a gap of {group['gap_records']} records" if group.get("gap_records") else "",
        *(
            f"{n} {name.replace('_', ' ')} by the live reader"
            for name, n in figures.get("consumer_anomalies", {}).get("counts", {}).items()
            if n and name != "non_monotonic_polls"
        ),
        "partitions not resumed" if group.get("partitions_resumed", 0) < group.get("partitions_committed", 0) else "",
        f"synced offsets unusable on {len(group['offset_problems'])} partitions"
        if group.get("offset_problems")
        else "",
    ]
    return [f for f in failures if f]


def drill_outcome(figures: dict, *, tripped: str, error: str) -> tuple[Outcome, str]:
    """The outcome, and for an inconclusive drill the reason.

    A fault that was never confirmed proves nothing: aborted when a guardrail or a person
    stopped the drill first, inconclusive when the actuator failed. A confirmed fault that
    had no observable effect is inconclusive too."""
    if figures.get("fault_at_s") is None:
        if tripped:
            return Outcome.ABORTED, ""
        return Outcome.INCONCLUSIVE, f"the fault could not be injected ({error or 'no action confirmed'})"
    if tripped or error:
        return Outcome.ABORTED, ""
    # A failure is never hidden as inconclusive: lost records are lost whatever caused them.
    if drill_failures(figures):
        return Outcome.FAILED, ""
    if not figures.get("effect"):
        return Outcome.INCONCLUSIVE, "the fault had no observable effect"
    return Outcome.PASSED, ""
