"""Recovery figures computed from a drill's per-record timeline (DESIGN.md section 5).

A timeline row is one produced record: partition, sequence, and times in milliseconds since
the drill started: sent, acknowledged (None if never), consumed (None if never), and the
delivery error if any.
"""

from collections import Counter
from dataclasses import dataclass
from types import SimpleNamespace

from drills.engine.base import Clock
from drills.kafka import ConsumedRecord, Delivery
from drills.models import Outcome
from drills.verify import percentile, verify_sequences
from scorecard.catalog import CLIENT_FAULTS, Scenario


@dataclass(frozen=True)
class TimelineRecord:
    partition: int
    seq: int
    sent_ms: float
    acked_ms: float | None
    consumed_ms: float | None
    error: str | None = None

    @property
    def acked(self) -> bool:
        return self.acked_ms is not None and self.error is None


def _rto(records: list[TimelineRecord], fault_ms: float, slo_ms: float, window_ms: float, *, read: bool):
    """Fault to recovery, where recovery is the first run of records that all completed within
    the SLO for the stability window. It is the completion of the run's first record, or later
    if records stuck before the run completed later (writes were still stalled until then).
    0 when no record after the fault missed the SLO; None when the records never settled."""

    def done_ms(r: TimelineRecord) -> float | None:
        return r.consumed_ms if read else (r.acked_ms if r.acked else None)

    def good(r: TimelineRecord) -> bool:
        done = done_ms(r)
        return done is not None and done - r.sent_ms <= slo_ms

    after = sorted((r for r in records if r.sent_ms >= fault_ms), key=lambda r: (r.sent_ms, r.partition))
    if not after:
        return None
    if all(good(r) for r in after):
        return 0.0
    last_sent = after[-1].sent_ms
    # bad_from[i]: the earliest send time of a bad record at or after i.
    next_bad = float("inf")
    bad_from = [0.0] * len(after)
    for i in range(len(after) - 1, -1, -1):
        if not good(after[i]):
            next_bad = after[i].sent_ms
        bad_from[i] = next_bad
    stuck_done = 0.0  # latest completion of a slow record sent before the candidate run
    for i, record in enumerate(after):
        if not good(record):
            stuck_done = max(stuck_done, done_ms(record) or 0.0)
            continue
        window_end = record.sent_ms + window_ms
        if window_end > last_sent:
            return None  # not enough traffic after this point to call it stable
        if bad_from[i] > window_end:
            return round(max(done_ms(record), stuck_done) - fault_ms, 1)
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
    return {
        "records": len(chosen),
        "produce_ms_p50": percentile(produce, 0.5),
        "produce_ms_p99": percentile(produce, 0.99),
        "e2e_ms_p50": percentile(e2e, 0.5),
        "e2e_ms_p99": percentile(e2e, 0.99),
    }


@dataclass
class Observed:
    """Everything a drill saw, handed to the figures once traffic stopped."""

    run_id: str
    clock: Clock
    deliveries: list[Delivery]
    consumed: dict[tuple[int, int], int]
    read_back: list[ConsumedRecord]
    samples: list[dict]
    fault_ns: int | None
    recover_ns: int | None
    tripped_ns: int | None
    client_fault: str
    group_figures: dict
    resume_ns: int | None
    fatal_errors: list[dict]
    manual_steps: int
    guardrails: dict


def first_clear_after(samples: list[dict], t_ms: float, key: str, *, since: float | None = None) -> float | None:
    """Seconds from t_ms to the first metadata sample with no `key` partitions."""
    for sample in samples:
        if sample.get("t_ms", 0) >= (since or t_ms) and sample.get(key) == 0:
            return round(max(0.0, sample["t_ms"] - t_ms) / 1000, 3)
    return None


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


def drill_figures(o: Observed, config: SimpleNamespace) -> tuple[dict, dict]:
    """The drill's figures (DESIGN.md section 5) and its per-record timeline."""
    ms = o.clock.ms
    checked = verify_sequences(
        deliveries=((d.partition, d.seq, bool(d.acked_ns) and not d.error) for d in o.deliveries),
        consumed=((r.partition, r.offset, r.seq) for r in o.read_back if r.run == o.run_id),
    ).as_dict()
    records = [
        TimelineRecord(
            d.partition,
            d.seq,
            ms(d.sent_ns),
            ms(d.acked_ns) if d.acked_ns else None,
            ms(o.consumed.get((d.partition, d.seq))),
            d.error,
        )
        for d in o.deliveries
    ]
    fault_ms, recover_ms = ms(o.fault_ns), ms(o.recover_ns)
    slo, window = config.latency_slo_ms, config.stability_window_seconds * 1000
    figures = {
        "records_sent": checked["sent"],
        "records_acked": checked["acked"],
        "records_failed": checked["failed"],
        "rpo_acked_lost": checked["missing"],
        "missing_records": {p: v["missing_seqs"] for p, v in checked["partitions"].items() if v["missing_seqs"]},
        "acked_without_offset": sum(1 for d in o.deliveries if d.acked_ns and not d.error and d.offset is None),
        "duplicates": checked["duplicates"],
        "reordered": checked["reordered"],
        "fault_at_s": None if fault_ms is None else round(fault_ms / 1000, 3),
        "recovery_at_s": None if recover_ms is None else round(recover_ms / 1000, 3),
        "producer_fatal_errors": o.fatal_errors,
        "produce_errors": dict(Counter(d.error for d in o.deliveries if d.error).most_common(10)),
        "manual_steps": o.manual_steps,
    }
    if fault_ms is not None:
        w = write_rto_ms(records, fault_ms=fault_ms, slo_ms=slo, window_ms=window)
        r = read_rto_ms(records, fault_ms=fault_ms, slo_ms=slo, window_ms=window)
        figures["write_rto_s"] = None if w is None else round(w / 1000, 3)
        figures["read_rto_s"] = None if r is None else round(r / 1000, 3)
        figures["reelection_s"] = first_clear_after(o.samples, fault_ms, "offline")
        if recover_ms is not None:
            figures["catchup_s"] = first_clear_after(o.samples, recover_ms, "under_replicated", since=recover_ms)
        figures["latency_before"] = latency_summary(records, 0, fault_ms)
        figures["latency_during"] = latency_summary(records, fault_ms, recover_ms or fault_ms)
        if o.client_fault == Scenario.LAG_CATCH_UP:
            figures.update(catch_up(records, recover_ms))
    if o.group_figures:
        figures[o.client_fault] = o.group_figures
        if o.resume_ns and o.fault_ns:
            figures["consumer_resume_s"] = round((o.resume_ns - o.fault_ns) / 1e9, 3)
    figures["guardrails"] = o.guardrails
    timeline = {
        "fields": ["partition", "seq", "sent_ms", "acked_ms", "consumed_ms", "error"],
        "records": [[r.partition, r.seq, r.sent_ms, r.acked_ms, r.consumed_ms, r.error] for r in records],
        "metadata": o.samples,
        "fault_ms": fault_ms,
        "recovery_ms": recover_ms,
        "tripped_ms": ms(o.tripped_ns),
    }
    return figures, timeline


def drill_outcome(figures: dict, *, tripped: str, error: str) -> Outcome:
    """Aborted when stopped early or broken; failed when a record was lost, writes never
    recovered or a group did not resume cleanly; passed otherwise."""
    if tripped or error:
        return Outcome.ABORTED
    group = next((figures[k] for k in CLIENT_FAULTS if k in figures), {})
    if (
        figures["rpo_acked_lost"]
        or (figures["fault_at_s"] is not None and figures.get("write_rto_s") is None)
        or group.get("gap_records")
        or group.get("partitions_resumed", 0) < group.get("partitions_committed", 0)
    ):
        return Outcome.FAILED
    return Outcome.PASSED
