"""Recovery figures on crafted timelines."""

from drills.engine.figures import TimelineRecord, latency_summary, read_rto_ms, write_rto_ms

SLO, WINDOW = 500, 2000


def steady(start_ms, end_ms, *, latency=5, partitions=2, every=10, e2e=20):
    records, seq = [], 0
    t = start_ms
    while t < end_ms:
        for p in range(partitions):
            records.append(TimelineRecord(p, seq, t, t + latency, t + e2e))
        seq += 1
        t += every
    return records


def test_write_rto_is_zero_when_no_record_after_the_fault_missed_the_slo():
    records = steady(0, 10_000)
    assert write_rto_ms(records, fault_ms=3000, slo_ms=SLO, window_ms=WINDOW) == 0.0
    assert read_rto_ms(records, fault_ms=3000, slo_ms=SLO, window_ms=WINDOW) == 0.0


def test_write_rto_runs_to_the_first_record_of_the_first_stable_window():
    # Partition 1 is stuck from 3.0 s to 6.0 s: its records are acknowledged at 6.2 s.
    records = []
    for r in steady(0, 12_000):
        if r.partition == 1 and 3000 <= r.sent_ms < 6000:
            r = TimelineRecord(r.partition, r.seq, r.sent_ms, 6200, 6250)
        records.append(r)
    rto = write_rto_ms(records, fault_ms=3000, slo_ms=SLO, window_ms=WINDOW)
    # Records sent from 5.7 s on meet the 500 ms SLO, but the stuck ones complete only at 6.2 s:
    # writes stalled until then.
    assert rto == 3200.0
    assert read_rto_ms(records, fault_ms=3000, slo_ms=SLO, window_ms=WINDOW) == 3250.0


def test_failed_records_keep_the_window_open_and_recovery_is_the_first_good_record():
    records = []
    for r in steady(0, 12_000):
        if 3000 <= r.sent_ms < 5000:
            r = TimelineRecord(r.partition, r.seq, r.sent_ms, r.sent_ms + 900, None, "NOT_ENOUGH_REPLICAS")
        records.append(r)
    assert write_rto_ms(records, fault_ms=3000, slo_ms=SLO, window_ms=WINDOW) == 2005.0


def test_a_cluster_that_never_settles_has_no_rto():
    records = [TimelineRecord(0, i, t, t + 800, None) for i, t in enumerate(range(0, 10_000, 10))]
    assert write_rto_ms(records, fault_ms=1000, slo_ms=SLO, window_ms=WINDOW) is None
    # A stable run that ends before a full window is not recovery either.
    short = steady(0, 3000) + [TimelineRecord(0, 999, 3000, 3900, None)] + steady(3010, 4000)
    assert write_rto_ms(short, fault_ms=2900, slo_ms=SLO, window_ms=WINDOW) is None


def test_latency_summary_takes_the_records_sent_in_the_interval():
    records = steady(0, 1000, latency=5) + steady(1000, 2000, latency=50)
    summary = latency_summary(records, 1000, 2000)
    assert summary["records"] == 200 and summary["produce_ms_p50"] == 50


def observed(sent, read_back, clock):
    from drills.engine.base import Window
    from drills.engine.figures import Observed

    return Observed(
        run_id="run",
        clock=clock,
        sent=sent,
        read_back=read_back,
        samples=[],
        fault=Window(clock.start_ns + 8_000_000, clock.start_ns + 8_000_000),
        recovery=Window(clock.start_ns + 12_000_000, clock.start_ns + 12_000_000),
        baseline={},
        scenario="",
        tripped_ns=None,
        client_fault="",
        group_figures={},
        resume_ns=None,
        fatal_errors=[],
        manual_steps=0,
        guardrails={},
        polls={"poll_skips": {}, "non_monotonic_polls": {}},
    )


def test_figures_from_the_engines_columns_find_lost_failed_unseen_and_duplicated_records():
    """Record i of the engine's arrays is partition i % 2, sequence i // 2: sent at i ms, acknowledged
    2 ms later at offset i // 2, read live 5 ms later, and read back afterwards; except record 5
    (acknowledged without an offset and gone), 7 (failed), 8 (never read live) and 2 (read back twice)."""
    from array import array

    from drills import kafka
    from drills.engine.base import Clock
    from drills.engine.figures import Sent, drill_figures
    from scorecard import catalog

    clock = Clock(start_ns=10**18)
    t0, n = clock.start_ns, 20
    sent = Sent(
        partitions=[0, 1],
        sent_ns=array("q", (t0 + i * 1_000_000 for i in range(n))),
        acked_ns=array("q", (t0 + (i + 2) * 1_000_000 for i in range(n))),
        offsets=array("q", (-1 if i == 5 else i // 2 for i in range(n))),
        errors={7: "NOT_ENOUGH_REPLICAS"},
        consumed_ns=array("q", (0 if i in (7, 8) else t0 + (i + 5) * 1_000_000 for i in range(n))),
    )
    kept = [i for i in range(n) if i not in (5, 7)] + [2]
    read_back = kafka.ReadRecords(
        partition=[i % 2 for i in kept],
        offset=[i // 2 for i in kept],
        seq=[i // 2 for i in kept],
        sent_ns=[sent.sent_ns[i] for i in kept],
        consumed_ns=[0 for _ in kept],
    )
    figures, timeline = drill_figures(observed(sent, read_back, clock), catalog.parse("drill", {}))
    assert (figures["records_sent"], figures["records_acked"], figures["records_failed"]) == (20, 19, 1)
    assert figures["rpo_acked_lost"] == 1 and figures["missing_records"] == {"1": [2]}
    assert figures["acked_without_offset"] == 1
    assert figures["duplicates"] == 1 and figures["reordered"] == 0
    assert figures["produce_errors"] == {"NOT_ENOUGH_REPLICAS": 1}
    assert figures["consumer_anomalies"]["unseen"] == {"0": {"count": 1, "examples": [4]}}
    assert figures["consumer_anomalies"]["worst_lag_ms"] == {"0": 3.0, "1": 3.0}
    rows = timeline["records"]
    assert len(rows) == n
    assert rows[3] == [1, 1, 3.0, 5.0, 8.0, None]
    assert rows[7] == [1, 3, 7.0, 9.0, None, "NOT_ENOUGH_REPLICAS"]
    assert rows[8] == [0, 4, 8.0, 10.0, None, None]
    assert [r[2] for r in rows] == [float(i) for i in range(n)]
