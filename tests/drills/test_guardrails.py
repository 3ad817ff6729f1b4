"""Guardrails evaluated over time windows, at a cost that does not grow with the drill."""

from types import SimpleNamespace

import pytest

from drills.engine.guardrails import BUCKET_NS, ErrorWindow, Guardrails
from drills.kafka import Delivery

SECOND = 1_000_000_000


def test_the_error_rate_covers_the_whole_window_at_a_high_record_rate():
    """600 s at 2,000 records/s is 1.2 million records: errors in the first 30 s still count.
    (Counting only the last 20,000 records would have covered 10 s and seen none.)"""
    window = ErrorWindow(600)
    start = 1_000 * SECOND
    per_second = 2_000
    for second in range(600):
        for i in range(per_second):
            failed = second < 30 and i % 2 == 0
            window.add(start + second * SECOND + i * (SECOND // per_second), failed=failed)
    now = start + 599 * SECOND + SECOND // 2
    assert window.rate(now) == pytest.approx(30 * per_second / 2 / (600 * per_second))
    # The window holds buckets, not records: its size is bounded by window / bucket.
    assert len(window._buckets) <= 600 * SECOND // BUCKET_NS + 1
    # Once the erroring seconds leave the window, they stop counting.
    assert window.rate(now + 31 * SECOND) == 0.0


def test_a_window_with_nothing_completed_reports_not_observed_rather_than_zero():
    window = ErrorWindow(5)
    assert window.rate(10 * SECOND) is None
    window.add(10 * SECOND, failed=True)
    assert window.rate(11 * SECOND) == 1.0
    assert window.rate(20 * SECOND) is None


def config(**overrides):
    base = {
        "max_duration_seconds": 300,
        "max_error_rate": 0.05,
        "error_window_seconds": 30.0,
        "max_consumer_lag": None,
        "min_healthy_brokers": 2,
    }
    return SimpleNamespace(**{**base, **overrides})


def test_guardrails_trip_on_the_error_rate_of_reported_deliveries_and_on_missing_brokers():
    import time

    guardrails = Guardrails(config())
    now = time.time_ns()
    for seq in range(100):
        delivery = Delivery(
            partition=0, seq=seq, sent_ns=now, acked_ns=now, error="NOT_ENOUGH_REPLICAS" if seq < 10 else None
        )
        guardrails.record(delivery)
    state = guardrails.state(elapsed_s=12.0, consumer_lag=0, healthy_brokers=3)
    assert state["max_error_rate"] == {"limit": 0.05, "value": 0.1}
    assert guardrails.tripped(state) == "max_error_rate"
    calm = Guardrails(config())
    state = calm.state(elapsed_s=12.0, consumer_lag=0, healthy_brokers=1)
    assert state["max_error_rate"]["value"] is None  # nothing reported yet: not observed, never 0
    assert calm.tripped(state) == "min_healthy_brokers"
    assert calm.tripped(calm.state(elapsed_s=301, consumer_lag=0, healthy_brokers=None)) == "max_duration"
