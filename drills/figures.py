"""Recovery figures computed from a drill's per-record timeline (DESIGN.md section 5).

A timeline row is one produced record: partition, sequence, and times in milliseconds since
the drill started: sent, acknowledged (None if never), consumed (None if never), and the
delivery error if any.
"""

from dataclasses import dataclass

from drills.verify import percentile


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
