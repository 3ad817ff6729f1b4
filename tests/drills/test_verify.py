from drills.verify import percentile, verify_sequences


def acked(partition, seqs):
    return [(partition, s, True) for s in seqs]


def test_a_complete_in_order_read_back_has_nothing_missing():
    verdict = verify_sequences(deliveries=acked(0, range(5)), consumed=[(0, 10 + s, s) for s in range(5)])
    assert verdict.as_dict() | {"partitions": None} == {
        "sent": 5,
        "acked": 5,
        "failed": 0,
        "consumed": 5,
        "missing": 0,
        "duplicates": 0,
        "reordered": 0,
        "partitions": None,
    }


def test_it_counts_acknowledged_records_never_read_as_missing_per_partition():
    deliveries = acked(0, range(5)) + acked(1, range(3))
    consumed = [(0, 0, 0), (0, 1, 1), (0, 2, 4), (1, 0, 0), (1, 1, 1), (1, 2, 2)]
    verdict = verify_sequences(deliveries=deliveries, consumed=consumed)
    assert verdict.total("missing") == 2
    assert verdict.partitions[0].missing_seqs == [2, 3]
    assert verdict.partitions[1].missing == 0


def test_records_that_failed_to_deliver_are_not_missing():
    deliveries = acked(0, [0, 1]) + [(0, 2, False)]
    verdict = verify_sequences(deliveries=deliveries, consumed=[(0, 0, 0), (0, 1, 1)])
    assert verdict.total("missing") == 0 and verdict.total("failed") == 1


def test_it_counts_duplicates():
    consumed = [(0, 0, 0), (0, 1, 1), (0, 2, 1), (0, 3, 2), (0, 4, 2), (0, 5, 2)]
    verdict = verify_sequences(deliveries=acked(0, range(3)), consumed=consumed)
    assert verdict.total("duplicates") == 3
    assert verdict.total("missing") == 0 and verdict.total("reordered") == 0


def test_it_counts_reordered_records_by_offset_order():
    # Read in offset order: seq 0, 2, 1, 3 -> seq 1 came after 2.
    consumed = [(0, 3, 3), (0, 0, 0), (0, 2, 1), (0, 1, 2)]
    verdict = verify_sequences(deliveries=acked(0, range(4)), consumed=consumed)
    assert verdict.total("reordered") == 1
    assert verdict.total("duplicates") == 0 and verdict.total("missing") == 0


def test_a_duplicate_out_of_order_counts_once_as_a_duplicate():
    consumed = [(0, 0, 0), (0, 1, 1), (0, 2, 2), (0, 3, 1)]
    verdict = verify_sequences(deliveries=acked(0, range(3)), consumed=consumed)
    assert (verdict.total("duplicates"), verdict.total("reordered")) == (1, 0)


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.99) == 99
    assert percentile([], 0.5) is None
    assert percentile([7.0], 0.99) == 7.0


def test_a_live_reader_that_jumps_over_offsets_shows_poll_skips_with_examples():
    from drills.verify import PollWatch

    watch = PollWatch()
    for partition, offset in [(0, 10), (0, 11), (0, 14), (1, 3), (0, 15), (1, 4), (1, 9)]:
        watch.observe(partition, offset)
    found = watch.as_dict()
    assert found["poll_skips"] == {"0": {"count": 1, "examples": [[11, 14]]}, "1": {"count": 1, "examples": [[4, 9]]}}
    assert found["non_monotonic_polls"] == {}


def test_a_live_reader_that_goes_back_without_a_restart_shows_non_monotonic_polls():
    from drills.verify import PollWatch

    watch = PollWatch()
    for offset in [5, 6, 7, 3, 4, 8]:
        watch.observe(2, offset)
    found = watch.as_dict()
    # 7 -> 3 goes back; 3 and 4 are at or below what was already read; 8 continues without a skip.
    assert found["non_monotonic_polls"] == {"2": {"count": 2, "examples": [[7, 3], [7, 4]]}}
    assert found["poll_skips"] == {}


def test_acknowledged_records_the_reader_never_saw_are_unseen_per_partition():
    from drills.verify import unseen_by_reader

    acked = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    consumed = {(0, 0), (0, 2), (1, 0), (1, 1)}
    assert unseen_by_reader(acked, consumed) == {"0": {"count": 1, "examples": [1]}}


# --- the columnar verification agrees with the plain definition --------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from drills.verify import PollWatch, by_partition, verify_partitions  # noqa: E402


def reference(deliveries, consumed):
    """The definition, record by record: what verify_sequences must compute however it is built."""
    out = {}
    for p, _seq, ok in deliveries:
        v = out.setdefault(p, dict.fromkeys(("sent", "acked", "failed", "consumed", "dup", "reord"), 0))
        v["sent"] += 1
        v["acked" if ok else "failed"] += 1
    seen, highest = {}, {}
    for p, _offset, seq in sorted(consumed, key=lambda r: (r[0], r[1])):
        v = out.setdefault(p, dict.fromkeys(("sent", "acked", "failed", "consumed", "dup", "reord"), 0))
        v["consumed"] += 1
        if seq in seen.setdefault(p, set()):
            v["dup"] += 1
            continue
        if p in highest and seq < highest[p]:
            v["reord"] += 1
        seen[p].add(seq)
        highest[p] = max(seq, highest.get(p, seq))
    for p, v in out.items():
        acked = {s for q, s, ok in deliveries if q == p and ok}
        v["missing"] = sorted(acked - seen.get(p, set()))
    return out


records = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), st.booleans()), max_size=60)
reads = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 80), st.integers(0, 40)), max_size=80)


@settings(max_examples=300, deadline=None)
@given(deliveries=records, consumed=reads)
def test_verification_counts_as_the_definition_does_on_any_input(deliveries, consumed):
    verdict = verify_sequences(deliveries=deliveries, consumed=consumed)
    expected = reference(deliveries, consumed)
    assert set(verdict.partitions) == set(expected)
    for p, v in verdict.partitions.items():
        e = expected[p]
        assert (v.sent, v.acked, v.failed, v.consumed) == (e["sent"], e["acked"], e["failed"], e["consumed"])
        assert (v.duplicates, v.reordered, v.missing) == (e["dup"], e["reord"], len(e["missing"]))
        assert v.missing_seqs == e["missing"][:20]


def test_columns_by_partition_verify_like_tuples():
    deliveries = [(p, s, True) for s in range(6) for p in (0, 1)]
    consumed = [(0, 10 + i, s) for i, s in enumerate((0, 1, 3, 2, 3))] + [(1, s, s) for s in range(5)]
    partitions, offsets, seqs = zip(*consumed, strict=True)
    verdict = verify_partitions(
        sent={0: 6, 1: 6}, acked={0: range(6), 1: range(6)}, read=by_partition(partitions, offsets, seqs)
    )
    assert verdict.as_dict() == verify_sequences(deliveries=deliveries, consumed=consumed).as_dict()
    assert verdict.partitions[0].missing_seqs == [4, 5] and verdict.partitions[0].duplicates == 1
    assert verdict.partitions[0].reordered == 1 and verdict.partitions[1].missing_seqs == [5]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 30)), max_size=60))
def test_a_batch_observed_at_once_shows_what_record_by_record_shows(polled):
    one_by_one, batched = PollWatch(), PollWatch()
    for partition, offset in polled:
        one_by_one.observe(partition, offset)
    batched.observe_many([p for p, _ in polled], [o for _, o in polled])
    assert batched.as_dict() == one_by_one.as_dict() and batched.last == one_by_one.last
