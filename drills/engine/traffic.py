"""The drill's sustained traffic on the probe topic and what it observes: every produced record
with its ack or error, every consumed record, and metadata samples of the cluster."""

import threading
import time
from collections.abc import Callable
from types import SimpleNamespace

from drills import kafka
from drills.engine.base import Clock
from drills.verify import PollWatch

METADATA_EVERY = 0.25
METADATA_TIMEOUT = 0.5
DRAIN_SECONDS = 10.0
STALL_CHECK_EVERY = 0.5
# A batch returns when it is full or this has passed: records are stamped as read within a few
# milliseconds of reaching the client (read RTO, end-to-end latency, catch-up), and a pause or
# resume takes effect as quickly.
READ_POLL_SECONDS = 0.005


class Traffic:
    """One producer thread sending a sequenced record per partition every interval, and one
    reader thread consuming them; counters are kept as reports arrive, so reading them is O(1)."""

    def __init__(
        self,
        connection: kafka.ConnectionSettings,
        *,
        config: SimpleNamespace,
        partitions: list[int],
        start: dict[int, int],
        run_id: str,
        clock: Clock,
        event: Callable[..., None],
        on_report: Callable[[kafka.Delivery], None],
    ):
        self.connection = connection
        self.config = config
        self.partitions = partitions
        self.start = start
        self.run_id = run_id
        self.clock = clock
        self.event = event
        self.on_report = on_report
        self.lock = threading.Lock()
        self.deliveries: list[kafka.Delivery] = []
        self.consumed: dict[tuple[int, int], int] = {}
        self.polls = PollWatch()  # offsets in the order the live reader got them
        self._unseen: set[tuple[int, int]] = set()  # acknowledged, not consumed yet
        self.acked = self.failed = 0
        self.last_ack_ns = 0
        self.fatal_errors: list[dict] = []
        self.recovered_ns: int | None = None  # set by the engine once recovery ran: stalls count from then
        self.resumed_ns: int | None = None  # when the paused reader was resumed (lag catch-up)
        self._reading = threading.Event()  # cleared while the reader is paused
        self._reading.set()
        self._stop_producing = threading.Event()
        self._stop_consuming = threading.Event()
        self._threads = [
            threading.Thread(target=self._produce, name="drill-producer", daemon=True),
            threading.Thread(target=self._consume, name="drill-consumer", daemon=True),
        ]

    def begin(self) -> None:
        for thread in self._threads:
            thread.start()

    def end(self) -> None:
        """Stop producing, wait for the reader to see every acknowledged record, stop reading."""
        self._stop_producing.set()
        self._threads[0].join(DRAIN_SECONDS + 5)
        deadline = time.monotonic() + DRAIN_SECONDS
        while self._unseen and time.monotonic() < deadline:
            time.sleep(0.1)
        self._stop_consuming.set()
        self._threads[1].join(10)

    def pause_reading(self) -> None:
        """Pause the reader with the client's own pause (lag catch-up): polling goes on,
        fetching stops, so the backlog stays on the cluster."""
        self._reading.clear()

    def resume_reading(self) -> None:
        self._reading.set()

    @property
    def consumer_lag(self) -> int:
        """Acknowledged records the reader has not read yet."""
        return len(self._unseen)

    def counts(self) -> dict:
        sent = len(self.deliveries)
        return {"sent": sent, "acked": self.acked, "failed": self.failed, "consumed": len(self.consumed)}

    def _reported(self, delivery: kafka.Delivery) -> None:
        if delivery.error:
            self.failed += 1
        else:
            self.acked += 1
            self.last_ack_ns = delivery.acked_ns or self.last_ack_ns
            key = (delivery.partition, delivery.seq)
            with self.lock:
                if key not in self.consumed:
                    self._unseen.add(key)
        self.on_report(delivery)

    def _produce(self) -> None:
        c = self.config
        producer = kafka.SustainedProducer(
            self.connection,
            topic=c.topic,
            timeout=c.fault_seconds + c.settle_seconds + 30,
            on_report=self._reported,
        )
        seqs = dict.fromkeys(self.partitions, 0)
        recreated_ns = 0
        next_stall_check = 0.0
        interval = c.interval_ms / 1000
        next_tick = time.monotonic()
        try:
            while not self._stop_producing.is_set():
                for p in self.partitions:
                    delivery = kafka.Delivery(partition=p, seq=seqs[p], sent_ns=time.time_ns())
                    seqs[p] += 1
                    with self.lock:
                        self.deliveries.append(delivery)
                    producer.send(delivery, self.run_id)
                producer.poll(0)
                reason = producer.fatal_error
                if reason is None and time.monotonic() >= next_stall_check:
                    next_stall_check = time.monotonic() + STALL_CHECK_EVERY
                    reason = self._stalled(since_ns=recreated_ns)
                if reason:
                    # A producer in a fatal state never recovers: record it, replace it, go on.
                    self.fatal_errors.append({"at_s": round(self.clock.elapsed(), 3), "error": reason})
                    self.event("producer_fatal", error=reason)
                    producer.recreate()
                    recreated_ns = time.time_ns()
                    self.event("producer_recreated")
                next_tick += interval
                delay = next_tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_tick = time.monotonic()
        finally:
            unreported = producer.close(DRAIN_SECONDS)
            if unreported:
                self.event("producer_unreported", records=unreported)

    def _stalled(self, *, since_ns: int) -> str | None:
        """After recovery, a producer with records outstanding and no acknowledgement for a while
        is stuck (an idempotent producer whose broker forgot its id keeps retrying forever)."""
        if self.recovered_ns is None:
            return None
        stall_ns = int(max(2.0, 3 * self.config.latency_slo_ms / 1000) * 1e9)
        now = time.time_ns()
        if now - max(self.recovered_ns, since_ns) < stall_ns or now - self.last_ack_ns < stall_ns:
            return None
        with self.lock:
            recent = self.deliveries[-5000:]
        if any(d.acked_ns is None and d.sent_ns < now - stall_ns for d in recent):
            return f"no acknowledgement for {stall_ns / 1e9:.1f} s after recovery while records wait (producer stuck)"
        return None

    def _consume(self) -> None:
        reader = kafka.LiveReader(self.connection, topic=self.config.topic, start=self.start, timeout=10)
        try:
            while not self._stop_consuming.is_set():
                # The client's pause and resume are called from this thread: called from another
                # while this one is inside consume(), resume blocks.
                if self._reading.is_set() == reader.paused:
                    self._pause_or_resume(reader)
                batch = reader.poll(READ_POLL_SECONDS)
                for record in batch:
                    self.polls.observe(record.partition, record.offset)
                ours = [((r.partition, r.seq), r.consumed_ns) for r in batch if r.run == self.run_id]
                with self.lock:
                    for key, consumed_ns in ours:
                        self.consumed.setdefault(key, consumed_ns)
                        self._unseen.discard(key)
        finally:
            reader.close()

    def _pause_or_resume(self, reader: kafka.LiveReader) -> None:
        if reader.paused:
            reader.resume()
            self.resumed_ns = time.time_ns()
            self.event("reader_resumed")
        else:
            reader.pause()
            self.event("reader_paused")

    def read_back(self) -> list[kafka.ConsumedRecord]:
        """Every partition read again from the start after the drill: what the cluster kept."""
        topic = self.config.topic
        ends: dict[int, int] = {}
        with self.lock:
            for d in self.deliveries:
                if d.offset is not None and not d.error:
                    ends[d.partition] = max(ends.get(d.partition, 0), d.offset + 1)
        after, _ = kafka.list_offsets(self.connection, [(topic, p) for p in self.partitions], timeout=10)
        for (_, p), o in after.items():
            ends[p] = max(ends.get(p, 0), o)
        return kafka.read_range(self.connection, topic=topic, start=self.start, end=lambda: ends, timeout=30)


class MetadataWatcher:
    """Samples brokers, offline and under-replicated partitions every quarter second."""

    def __init__(self, connection: kafka.ConnectionSettings, *, topic: str, clock: Clock):
        self.connection = connection
        self.topic = topic
        self.clock = clock
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="drill-metadata", daemon=True)

    def begin(self) -> None:
        self._thread.start()

    def end(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def healthy_brokers(self) -> int | None:
        latest = next((s for s in reversed(self.samples) if "brokers" in s), None)
        return latest["brokers"] if latest else None

    def _watch(self) -> None:
        # A short timeout: a request stuck on a stopped broker must not blind the watcher for long.
        admin = kafka.admin_client(self.connection, timeout=METADATA_TIMEOUT)
        while not self._stop.wait(METADATA_EVERY):
            try:
                md = kafka.cluster_metadata(self.connection, timeout=METADATA_TIMEOUT, admin=admin, racks=False)
            except kafka.KafkaCallError as exc:
                self.samples.append({"t_ms": self.clock.ms(time.time_ns()), "error": exc.reason})
                continue
            self.samples.append(
                {
                    "t_ms": self.clock.ms(time.time_ns()),
                    "brokers": len(md.brokers),
                    "offline": len(md.leaderless()),
                    "under_replicated": len(md.under_replicated()),
                    # The probe topic's leaders: a leader change shows here even when nothing stalls.
                    "leaders": {str(p.id): p.leader for p in md.topic_partitions(self.topic)},
                }
            )
