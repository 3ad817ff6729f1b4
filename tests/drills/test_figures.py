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
