"""Guardrail benchmark: the cost of one guardrail tick as a drill grows, and what the
error-rate window covers.

A drill evaluates its guardrails every 0.1 s. This feeds N delivery reports (one record per
partition every 10 ms on 6 partitions: 600 records/s, the drill default) into the guardrails,
then times one tick (error rate over the window, consumer lag, duration, brokers). For
comparison it times the previous evaluation, which scanned the last 20,000 deliveries for the
error rate and every delivery for the consumer lag.

    SCORECARD_MODE=demo .venv/bin/python bench/guardrails.py
"""

import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SCORECARD_MODE", "demo")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # noqa: E402

django.setup()

from drills.engine.guardrails import Guardrails  # noqa: E402
from drills.kafka import Delivery  # noqa: E402

RATE = 600  # records per second
SECOND = 1_000_000_000


def previous_tick(deliveries: list[Delivery], consumed: int, window_s: float, now: int) -> tuple[float, int]:
    """The evaluation before this change, kept here only to compare costs."""
    start = now - int(window_s * 1e9)
    recent = [d for d in deliveries[-20000:] if d.acked_ns and d.acked_ns >= start]
    rate = sum(1 for d in recent if d.error) / len(recent) if recent else 0
    lag = max(0, sum(1 for d in deliveries if d.acked_ns and not d.error) - consumed)
    return rate, lag


def main() -> None:
    window = 600.0
    config = SimpleNamespace(
        max_duration_seconds=3600, max_error_rate=0.05, error_window_seconds=window, max_consumer_lag=10**9,
        min_healthy_brokers=None,
    )  # fmt: skip
    print(f"window {window:.0f} s, {RATE} records/s, first 30 s at 10 % errors")
    print(f"{'drill s':>8} {'records':>10} {'tick us':>9} {'previous us':>12} {'rate':>8} {'previous rate':>14}")
    for seconds in (10, 60, 600, 3600):
        guardrails = Guardrails(config)
        start = time.time_ns() - seconds * SECOND  # the drill began `seconds` ago
        deliveries = []
        for i in range(seconds * RATE):
            at = start + i * SECOND // RATE
            failed = at < start + 30 * SECOND and i % 10 == 0
            delivery = Delivery(0, i, at, acked_ns=at, error="NOT_ENOUGH_REPLICAS" if failed else None)
            deliveries.append(delivery)
            guardrails.record(delivery)
        ticks = 200
        began = time.perf_counter()
        for _ in range(ticks):
            state = guardrails.state(elapsed_s=seconds, consumer_lag=0, healthy_brokers=None)
        tick_us = (time.perf_counter() - began) / ticks * 1e6
        rate = state["max_error_rate"]["value"]
        now = time.time_ns()
        began = time.perf_counter()
        for _ in range(5):
            old_rate, _ = previous_tick(deliveries, len(deliveries), window, now)
        old_us = (time.perf_counter() - began) / 5 * 1e6
        print(f"{seconds:>8} {len(deliveries):>10} {tick_us:>9.1f} {old_us:>12.0f} {rate:>8.4f} {old_rate:>14.4f}")


if __name__ == "__main__":
    main()
