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
