"""The drill's sustained traffic on the probe topic and what it observes: every produced record
with its ack or error, every consumed record, and metadata samples of the cluster."""

import threading
import time
from array import array
from collections.abc import Callable
from types import SimpleNamespace

from drills import kafka
from drills.engine.base import Clock
from drills.engine.figures import Sent
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
    reader thread consuming them; counters are kept as reports arrive, so reading them is O(1).

    Every record is a position in arrays, not an object: record i went to partition
    `partitions[i % width]` with sequence `i // width` (each round sends one record to every
    partition, in order), was sent at `sent_ns[i]`, reported at `acked_ns[i]` (0 until then)
    with offset `offsets[i]` (-1: none) or the error `errors[i]`, and first read by the live
    reader at `consumed_ns[i]` (0: not yet). At thousands of records a second, an object and a
    lock per record cost more CPU than the cluster's clients do.
    """

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
        on_report: Callable[[int, bool], None],
    ):
        self.connection = connection
        self.config = config
        self.partitions = partitions
        self.width = len(partitions)
        self._position = {p: k for k, p in enumerate(partitions)}
        self.start = start
        self.run_id = run_id
        self.clock = clock
        self.event = event
        self.on_report = on_report  # (acked_ns, failed) of every delivery report
        # Guards the arrays' growth and the acknowledged-but-unread count, which the producer's
        # reports and the reader's batches both change.
        self.lock = threading.Lock()
        self.sent_ns = array("q")
        self.acked_ns = array("q")
        self.offsets = array("q")
        self.consumed_ns = array("q")
        self.errors: dict[int, str] = {}
        self.polls = PollWatch()  # offsets in the order the live reader got them
        self._unseen = 0  # acknowledged, not consumed yet
        self.acked = self.failed = self.consumed = 0
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
        return self._unseen

    def counts(self) -> dict:
        return {"sent": len(self.sent_ns), "acked": self.acked, "failed": self.failed, "consumed": self.consumed}

    def snapshot(self) -> "Sent":
        """A copy of every record's columns so far."""
        with self.lock:
            count = len(self.sent_ns)
            return Sent(
                self.partitions,
                self.sent_ns[:count],
                self.acked_ns[:count],
                self.offsets[:count],
                dict(self.errors),
                self.consumed_ns[:count],
            )

    def _reported(self, outcomes: list[tuple[int, int, int, str | None]]) -> None:
        """Delivery outcomes (index, acked_ns, offset, error) served by one poll."""
        acked_ns, offsets, errors, consumed_ns = self.acked_ns, self.offsets, self.errors, self.consumed_ns
        acked = unseen = 0
        last_ack_ns = self.last_ack_ns
        with self.lock:
            for index, at_ns, offset, error in outcomes:
                acked_ns[index] = at_ns
                if error is None:
                    offsets[index] = offset
                    acked += 1
                    last_ack_ns = at_ns
                    if not consumed_ns[index]:
                        unseen += 1
                else:
                    errors[index] = error
            self._unseen += unseen
        self.acked += acked
        self.failed += len(outcomes) - acked
        self.last_ack_ns = last_ack_ns
        on_report = self.on_report
        for _, at_ns, _, error in outcomes:
            on_report(at_ns, error is not None)

    def _produce(self) -> None:
        c = self.config
        producer = kafka.SustainedProducer(
            self.connection,
            topic=c.topic,
            run=self.run_id,
            timeout=c.fault_seconds + c.settle_seconds + 30,
            on_report=self._reported,
        )
        partitions, width = self.partitions, self.width
        unreported = array("q", bytes(8 * width))  # zeros
        no_offsets = array("q", [-1]) * width
        seq = 0
        recreated_ns = 0
        next_stall_check = 0.0
        interval = c.interval_ms / 1000
        next_tick = time.monotonic()
        try:
            while not self._stop_producing.is_set():
                with self.lock:
                    first = len(self.acked_ns)
                    self.acked_ns.extend(unreported)
                    self.offsets.extend(no_offsets)
                    self.consumed_ns.extend(unreported)
                producer.send_round(first, partitions, seq, self.sent_ns)
                seq += 1
                # Delivery reports are served (and stamped) once a round, as before the arrays:
                # a poll per response would stamp them sooner but wakes the thread for each.
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
            unreported_count = producer.close(DRAIN_SECONDS)
            if unreported_count:
                self.event("producer_unreported", records=unreported_count)

    def _stalled(self, *, since_ns: int) -> str | None:
        """After recovery, a producer with records outstanding and no acknowledgement for a while
        is stuck (an idempotent producer whose broker forgot its id keeps retrying forever)."""
        if self.recovered_ns is None:
            return None
        stall_ns = int(max(2.0, 3 * self.config.latency_slo_ms / 1000) * 1e9)
        now = time.time_ns()
        if now - max(self.recovered_ns, since_ns) < stall_ns or now - self.last_ack_ns < stall_ns:
            return None
        cutoff = now - stall_ns
        with self.lock:
            count = len(self.sent_ns)
            recent = range(max(0, count - 5000), count)
            waiting = any(not self.acked_ns[i] and self.sent_ns[i] < cutoff for i in recent)
        if waiting:
            return f"no acknowledgement for {stall_ns / 1e9:.1f} s after recovery while records wait (producer stuck)"
        return None

    def _consume(self) -> None:
        reader = kafka.LiveReader(
            self.connection, topic=self.config.topic, run=self.run_id, start=self.start, timeout=10
        )
        position, width = self._position, self.width
        try:
            while not self._stop_consuming.is_set():
                # The client's pause and resume are called from this thread: called from another
                # while this one is inside consume(), resume blocks.
                if self._reading.is_set() == reader.paused:
                    self._pause_or_resume(reader)
                now, partitions, offsets, seqs = reader.read(READ_POLL_SECONDS)
                if not partitions:
                    continue
                self.polls.observe_many(partitions, offsets)
                with self.lock:
                    consumed_ns, acked_ns, errors, count = (
                        self.consumed_ns,
                        self.acked_ns,
                        self.errors,
                        len(self.consumed_ns),
                    )
                    first_reads = acked_unread = 0
                    for partition, seq in zip(partitions, seqs, strict=True):
                        if seq < 0 or partition not in position:
                            continue
                        index = seq * width + position[partition]
                        if index < count and not consumed_ns[index]:
                            consumed_ns[index] = now
                            first_reads += 1
                            if acked_ns[index] and index not in errors:
                                acked_unread += 1
                    self.consumed += first_reads
                    self._unseen -= acked_unread
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

    def read_back(self, sent: "Sent") -> kafka.ReadRecords:
        """Every partition read again from the start after the drill: what the cluster kept."""
        topic = self.config.topic
        width = self.width
        # Record k, k + width, ... went to partitions[k]; an offset is -1 where there was none.
        ends = {p: max(sent.offsets[k::width], default=-1) + 1 for k, p in enumerate(self.partitions)}
        after, _ = kafka.list_offsets(self.connection, [(topic, p) for p in self.partitions], timeout=10)
        for (_, p), o in after.items():
            ends[p] = max(ends.get(p, 0), o)
        return kafka.read_range(
            self.connection, topic=topic, run=self.run_id, start=self.start, end=lambda: ends, timeout=30
        )


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
        pause = METADATA_EVERY
        while not self._stop.wait(pause):
            asked = time.monotonic()
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
            # On a big cluster one sample costs much (about 1.5 s of CPU for 200,000 partitions):
            # wait three times what it took, so the watcher uses at most a quarter of a core.
            pause = max(METADATA_EVERY, 3 * (time.monotonic() - asked))
