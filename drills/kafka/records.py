"""Records: probe record encoding, sequenced produce with delivery reports, reading back."""

import json
import logging
import time
import uuid
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from drills.kafka.admin import TopicPartitionKey
from drills.kafka.client import ConnectionSettings, KafkaCallError, _is_fatal, _translate

log = logging.getLogger(__name__)

PROBE_HEADER = b"krs1"


# --- sequenced produce and read-back --------------------------------------------------------


@dataclass
class Delivery:
    """One produced record: where it went, when it was sent and acknowledged, or why not."""

    partition: int
    seq: int
    sent_ns: int
    acked_ns: int | None = None
    offset: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class ConsumedRecord:
    partition: int
    offset: int
    run: str
    seq: int
    sent_ns: int
    consumed_ns: int


def record_prefix(run: str) -> bytes:
    """What every probe record of a run starts with: the header and the run."""
    return PROBE_HEADER + b"|" + run.encode() + b"|"


def encode_record(run: str, partition: int, seq: int, sent_ns: int) -> bytes:
    return b"%s%d|%d|%d" % (record_prefix(run), partition, seq, sent_ns)


def decode_record(value: bytes | None) -> tuple[str, int, int, int] | None:
    """(run, partition, seq, sent_ns) of a probe record, or None for anything else."""
    if not value or not value.startswith(PROBE_HEADER + b"|"):
        return None
    parts = value.split(b"|")
    if len(parts) != 5:
        return None
    try:
        return parts[1].decode(), int(parts[2]), int(parts[3]), int(parts[4])
    except (UnicodeDecodeError, ValueError):
        return None


def zeros(count: int) -> array:
    """`count` signed 64-bit zeros."""
    return array("q", bytes(8 * count))


@dataclass(frozen=True)
class ProduceResult:
    """Every record produced, one array per field: record `seq` went to partition
    `partitions[seq]`, was sent at `sent_ns[seq]`, reported at `acked_ns[seq]` (0: no report)
    with offset `offsets[seq]` (-1: none, as a report without an offset gives) or the error
    `errors[seq]`. Columns, not an object per record: a probe verifies hundreds of thousands."""

    partitions: list[int]
    sent_ns: array
    acked_ns: array
    offsets: array
    errors: dict[int, str]
    producer_init_s: float
    fatal_error: str | None = None

    def __len__(self) -> int:
        return len(self.sent_ns)


# Delivery reports are served (and stamped) every this many records: often enough that a
# stamp is late by well under a millisecond, rarely enough that polling costs little.
POLL_EVERY = 32


def produce_sequenced(
    settings: ConnectionSettings, *, topic: str, partitions: list[int], count: int, run: str, timeout: float
) -> ProduceResult:
    """Produce `count` records round-robin over the partitions with acks=all and idempotence.

    Each record carries (run, partition, sequence, send time); every delivery report is
    kept. Records not reported within `timeout` are marked with an error, never dropped.
    A producer in a fatal state (an idempotent producer whose broker forgot its id) stops
    the run; the reason is returned and every record it never acknowledged is marked.
    """
    config = {
        **settings.client_config(timeout),
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
        "message.timeout.ms": max(1000, int(timeout * 1000)),
        "queue.buffering.max.messages": max(100_000, count),
    }
    deadline = time.monotonic() + timeout
    fatal_errors: list[str] = []

    def on_error(error: KafkaError) -> None:
        if error.fatal() and not fatal_errors:
            fatal_errors.append(f"{error.name()}: {error.str()}")

    producer = Producer({**config, "error_cb": on_error})
    # The idempotent producer acquires its producer id before the first ack (about 0.5 s on
    # the sandbox); one warm-up record keeps that out of the latency of the measured records.
    warmup_started = time.monotonic()
    try:
        producer.produce(
            topic, encode_record(f"{run}-warmup", partitions[0], 0, time.time_ns()), partition=partitions[0]
        )
        producer.flush(timeout / 2)
    except KafkaException as exc:
        raise _translate(exc, "Produce") from None
    init_s = time.monotonic() - warmup_started

    targets = [partitions[seq % len(partitions)] for seq in range(count)]
    sent_ns = array("q")
    acked_ns = zeros(count)
    offsets = array("q", [-1]) * count
    errors: dict[int, str] = {}
    now = time.time_ns

    def report(seq: int, err, msg) -> None:
        acked_ns[seq] = now()
        if err is not None:
            errors[seq] = err.name()
        else:
            # A successful report without an offset is kept as such: the sandbox's injected
            # errors produce them for records that never reached the log.
            offset = msg.offset()
            if offset is not None and offset >= 0:
                offsets[seq] = offset

    prefix = record_prefix(run)
    produce, poll, sent = producer.produce, producer.poll, sent_ns.append
    try:
        for seq, partition in enumerate(targets):
            if fatal_errors:
                break
            stamp = now()
            sent(stamp)
            value = b"%s%d|%d|%d" % (prefix, partition, seq, stamp)
            try:
                produce(topic, value, partition=partition, on_delivery=partial(report, seq))
            except BufferError:
                if not _produce_when_room(producer, topic, value, partition, partial(report, seq), deadline):
                    errors[seq] = "local queue full until the deadline"
            if not seq % POLL_EVERY:
                poll(0)
        remaining = producer.flush(max(0.1, deadline - time.monotonic()))
        if remaining:
            producer.purge()
            producer.flush(1)
    except KafkaException as exc:
        if not _is_fatal(exc):
            raise _translate(exc, "Produce") from None
        try:
            producer.poll(0)  # delivers the underlying fatal error, through error_cb or raised
        except KafkaException as underlying:
            if not fatal_errors and underlying.args and isinstance(underlying.args[0], KafkaError):
                fatal_errors.append(f"{underlying.args[0].name()}: {underlying.args[0].str()}")
        if not fatal_errors:
            fatal_errors.append(_translate(exc, "Produce").reason)
    fatal = fatal_errors[0] if fatal_errors else None
    if fatal:
        log.warning("producer entered a fatal state: %s", fatal)
    sent_count = len(sent_ns)
    unreported = "producer fatal error" if fatal else "no delivery report before the deadline"
    for seq in range(sent_count):
        if not acked_ns[seq] and seq not in errors:
            errors[seq] = unreported
    del acked_ns[sent_count:], offsets[sent_count:], targets[sent_count:]
    return ProduceResult(targets, sent_ns, acked_ns, offsets, errors, init_s, fatal)


def _produce_when_room(producer: Producer, topic: str, value: bytes, partition: int, on_delivery, deadline) -> bool:
    """The local queue is full: serve reports until there is room; False at the deadline."""
    while time.monotonic() <= deadline:
        producer.poll(0.05)
        try:
            producer.produce(topic, value, partition=partition, on_delivery=on_delivery)
            return True
        except BufferError:
            continue
    return False


@dataclass
class ReadRecords:
    """A run's probe records as read, one list per field: record i was at partition[i],
    offset[i], with sequence seq[i], sent at sent_ns[i] and read at consumed_ns[i]. Records
    of anything else are skipped. Columns, not an object per record."""

    partition: list[int] = field(default_factory=list)
    offset: list[int] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    sent_ns: list[int] = field(default_factory=list)
    consumed_ns: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.seq)


def read_range(
    settings: ConnectionSettings,
    *,
    topic: str,
    run: str,
    start: dict[int, int],
    end: Callable[[], dict[int, int] | None],
    timeout: float,
) -> ReadRecords:
    """Read each partition from `start` until `end()` offsets are reached or the deadline passes,
    keeping the probe records of `run`.

    `end` returns None while the end is not yet known, so the reader can run while records
    are still being produced and measure end-to-end latency. No consumer group commits.
    """
    consumer = Consumer(
        {
            **settings.client_config(timeout),
            "group.id": f"krs-probe-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
        }
    )
    found = ReadRecords()
    prefix = record_prefix(run)
    position = dict(start)
    try:
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in start.items()])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ends = end()
            if ends is not None and all(position.get(p, 0) >= offset for p, offset in ends.items()):
                break
            batch = consumer.consume(num_messages=10_000, timeout=min(0.2, max(0.01, deadline - time.monotonic())))
            _keep(batch, prefix, position, found, time.time_ns())
    except KafkaException as exc:
        raise _translate(exc, "Fetch") from None
    finally:
        consumer.close()
    return found


def _keep(batch: list, prefix: bytes, position: dict[int, int], found: ReadRecords, now: int) -> None:
    """The run's records of one batch into `found`; every record moves its partition's position."""
    skip = len(prefix)
    partitions, offsets, seqs, sent, consumed = (
        found.partition.append,
        found.offset.append,
        found.seq.append,
        found.sent_ns.append,
        found.consumed_ns.append,
    )
    for msg in batch:
        error = msg.error()
        if error is not None:
            if error.fatal():
                raise KafkaCallError(f"Fetch failed: {error.name()}")
            continue
        partition, offset, value = msg.partition(), msg.offset(), msg.value()
        position[partition] = offset + 1
        if not value or not value.startswith(prefix):
            continue
        fields = value[skip:].split(b"|")
        if len(fields) != 3:
            continue
        try:
            seq, sent_at = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        partitions(partition)
        offsets(offset)
        seqs(seq)
        sent(sent_at)
        consumed(now)


def produce_values(
    settings: ConnectionSettings,
    *,
    topic: str,
    values: Iterable[tuple[int | None, bytes]],
    timeout: float,
    compression: str = "none",
) -> int:
    """Produce (partition, value) pairs with acks=all, batched and compressed as an application
    would; returns how many were acknowledged."""
    producer = Producer(
        {**settings.client_config(timeout), "acks": "all", "linger.ms": 5, "compression.type": compression}
    )
    acked = 0

    def report(err, _msg):
        nonlocal acked
        if err is None:
            acked += 1

    try:
        for partition, value in values:
            kwargs = {} if partition is None else {"partition": partition}
            while True:
                try:
                    producer.produce(topic, value, on_delivery=report, **kwargs)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.flush(timeout)
    except KafkaException as exc:
        raise _translate(exc, "Produce") from None
    return acked


@dataclass(frozen=True)
class SampledRecord:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    size: int


@dataclass(frozen=True)
class RecordSample:
    """Sampled records, and what fetching them cost on the wire: bytes received from the
    brokers (record and batch framing, compression as the producers sent it, fetch framing)
    per record fetched; None when librdkafka reported no statistics."""

    records: list[SampledRecord]
    wire_bytes_per_record: float | None


def sample_records(
    settings: ConnectionSettings, *, starts: dict[TopicPartitionKey, int], per_partition: int, timeout: float
) -> list[SampledRecord]:
    """Read up to `per_partition` records from each given offset (timestamps and sizes only)."""
    return _sample(settings, starts=starts, per_partition=per_partition, timeout=timeout).records


def sample_wire_size(
    settings: ConnectionSettings, *, starts: dict[TopicPartitionKey, int], per_partition: int, timeout: float
) -> RecordSample:
    """As sample_records, with the bytes on the wire per record from the client's statistics:
    brokers keep the producers' batches as they were sent, so a fetch carries the same bytes
    a produce and a replication did."""
    return _sample(settings, starts=starts, per_partition=per_partition, timeout=timeout, statistics=True)


def _wire_bytes(report: str) -> float | None:
    stats = json.loads(report)
    received = sum(b.get("rxbytes", 0) for b in stats.get("brokers", {}).values())
    records = sum(
        p.get("rxmsgs", 0) for t in stats.get("topics", {}).values() for p in t.get("partitions", {}).values()
    )
    return received / records if records else None


def _sample(
    settings: ConnectionSettings,
    *,
    starts: dict[TopicPartitionKey, int],
    per_partition: int,
    timeout: float,
    statistics: bool = False,
) -> RecordSample:
    if not starts:
        return RecordSample([], None)
    reports: list[str] = []
    extra = {"statistics.interval.ms": 100, "stats_cb": reports.append} if statistics else {}
    consumer = Consumer(
        {
            **settings.client_config(timeout),
            "group.id": f"krs-sample-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
            **extra,
        }
    )
    wanted = dict.fromkeys(starts, per_partition)
    records: list[SampledRecord] = []
    try:
        consumer.assign([TopicPartition(t, p, o) for (t, p), o in starts.items()])
        deadline = time.monotonic() + timeout
        while any(wanted.values()) and time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=500, timeout=0.2):
                key = (msg.topic(), msg.partition())
                if msg.error() or not wanted.get(key):
                    continue
                wanted[key] -= 1
                kind, stamp = msg.timestamp()
                size = len(msg.value() or b"") + len(msg.key() or b"")
                records.append(SampledRecord(key[0], key[1], msg.offset(), stamp if kind else None, size))
        if statistics and records:
            # One more report, taken once everything read so far is counted.
            seen = len(reports)
            end = time.monotonic() + 1.0
            while len(reports) == seen and time.monotonic() < end:
                consumer.consume(num_messages=1, timeout=0.05)
    except KafkaException as exc:
        raise _translate(exc, "Fetch") from None
    finally:
        consumer.close()
    wire = next((w for w in map(_wire_bytes, reversed(reports)) if w), None) if records else None
    return RecordSample(records, wire)
