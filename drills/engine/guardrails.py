"""Guardrails: machine-checked stop conditions evaluated every tick of a drill.

Each costs the same per tick however long the drill runs: the error rate is kept in time
buckets over its window, the other values are running counters.
"""

import threading
import time
from collections import deque
from types import SimpleNamespace

from drills.kafka import Delivery

BUCKET_NS = 100_000_000  # 0.1 s: the error-rate window's resolution


class ErrorWindow:
    """Produce outcomes reported over the last `seconds`: how many completed and how many failed."""

    def __init__(self, seconds: float):
        self.window_ns = int(seconds * 1e9)
        self._buckets: deque[list[int]] = deque()  # [bucket index, completed, failed]
        self.completed = 0
        self.failed = 0
        self._lock = threading.Lock()

    def add(self, at_ns: int, *, failed: bool) -> None:
        index = at_ns // BUCKET_NS
        with self._lock:
            # Reports arrive in time order from one thread; a late one joins the newest bucket.
            if not self._buckets or self._buckets[-1][0] < index:
                self._buckets.append([index, 0, 0])
            bucket = self._buckets[-1]
            bucket[1] += 1
            bucket[2] += failed
            self.completed += 1
            self.failed += failed

    def rate(self, now_ns: int | None = None) -> float | None:
        """Failed / completed within the window; None when nothing completed in it."""
        oldest = ((now_ns or time.time_ns()) - self.window_ns) // BUCKET_NS
        with self._lock:
            while self._buckets and self._buckets[0][0] < oldest:
                _, completed, failed = self._buckets.popleft()
                self.completed -= completed
                self.failed -= failed
            return self.failed / self.completed if self.completed else None


class Guardrails:
    """The configured limits of one drill and their current values."""

    def __init__(self, config: SimpleNamespace):
        self.config = config
        self.errors = ErrorWindow(config.error_window_seconds) if config.max_error_rate is not None else None

    def record(self, delivery: Delivery) -> None:
        """Called for every delivery report."""
        if delivery.acked_ns is not None:
            self.outcome(delivery.acked_ns, delivery.error is not None)

    def outcome(self, acked_ns: int, failed: bool) -> None:
        """record() for a report given as its time and whether it failed (the drill's traffic)."""
        if self.errors is not None:
            self.errors.add(acked_ns, failed=failed)

    def state(self, *, elapsed_s: float, consumer_lag: int, healthy_brokers: int | None) -> dict:
        """Each configured guardrail with its limit and current value (None: not observed yet)."""
        c = self.config
        state = {}
        if c.max_duration_seconds:
            state["max_duration"] = {"limit": c.max_duration_seconds, "value": round(elapsed_s, 1)}
        if self.errors is not None:
            rate = self.errors.rate()
            state["max_error_rate"] = {"limit": c.max_error_rate, "value": None if rate is None else round(rate, 4)}
        if c.max_consumer_lag is not None:
            state["max_consumer_lag"] = {"limit": c.max_consumer_lag, "value": consumer_lag}
        if c.min_healthy_brokers is not None:
            state["min_healthy_brokers"] = {"limit": c.min_healthy_brokers, "value": healthy_brokers}
        return state

    @staticmethod
    def tripped(state: dict) -> str:
        """The first guardrail past its limit, or ''."""
        for name, g in state.items():
            value = g["value"]
            if value is None:
                continue
            if (value < g["limit"]) if name == "min_healthy_brokers" else (value > g["limit"]):
                return name
        return ""

    def limits(self) -> dict:
        return {name: g["limit"] for name, g in self.state(elapsed_s=0, consumer_lag=0, healthy_brokers=None).items()}
