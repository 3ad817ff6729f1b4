"""Sustained traffic for drills: a producer that survives its fatal state, and the readers."""

import time
import uuid
from array import array
from collections.abc import Callable, Sequence
from functools import partial

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from drills.kafka.client import ConnectionSettings, _is_fatal, _translate
from drills.kafka.records import ConsumedRecord, decode_record, record_prefix


class SustainedProducer:
    """An idempotent acks=all producer for drills that survives its own fatal state.

    Sending never raises for a fatal producer: the engine asks `fatal_error`, records it and
    calls `recreate()`, as an application would have to. Every record's outcome, once known,
    reaches `on_report` as an (index, acked_ns, offset, error) tuple (offset -1 where the report
    gave none, error None for an acknowledgement), in one list per poll, from the thread that
    polls: a call per poll, not per record.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        topic: str,
        run: str,
        timeout: float,
        on_report: Callable[[list[tuple[int, int, int, str | None]]], None],
    ):
        self.topic = topic
        self.on_report = on_report
        self._outcomes: list[tuple[int, int, int, str | None]] = []  # since the last poll
        self.fatal_error: str | None = None
        self._prefix = record_prefix(run)
        self._config = {
            **settings.client_config(timeout),
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 0,
            "message.timeout.ms": max(1000, int(timeout * 1000)),
            # React to a broker coming back within ~50 ms, so the figure measures the cluster and
            # not this client: librdkafka's default backoffs (reconnect up to 10 s, retry up to 1 s)
            # would be measured as outage (docs/drills.md, "The drill's own clients").
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 50,
            "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 50,
            # A cluster may drop a stopped broker from metadata and the client then forgets it;
            # refreshing the probe topic's metadata every 50 ms learns of its return at once.
            "topic.metadata.refresh.interval.ms": 50,
            "error_cb": self._on_error,
        }
        self._producer = Producer(self._config)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal() and self.fatal_error is None:
            self.fatal_error = f"{error.name()}: {error.str()}"

    def _delivered(self, index: int, err, msg) -> None:
        acked_ns = time.time_ns()
        if err is not None:
            self._outcomes.append((index, acked_ns, -1, err.name()))
        else:
            offset = msg.offset()
            # A successful report without an offset is kept as such: the sandbox's injected
            # errors produce them for records that never reached the log.
            self._outcomes.append((index, acked_ns, offset if offset is not None and offset >= 0 else -1, None))

    def _report(self) -> None:
        if self._outcomes:
            outcomes, self._outcomes = self._outcomes, []
            self.on_report(outcomes)

    def send_round(self, first: int, partitions: Sequence[int], seq: int, sent_ns: array) -> None:
        """Produce record `first + k` to `partitions[k]`, each with sequence `seq`, appending
        each one's send time to `sent_ns` just before it goes to the client."""
        # produce_batch would hand the round over in one call, but confluent-kafka 2.16.1 ignores
        # its per-message partition (records land where the partitioner puts them).
        produce, topic, prefix, now = self._producer.produce, self.topic, self._prefix, time.time_ns
        delivered = self._delivered
        for index, partition in enumerate(partitions, first):
            stamp = now()
            sent_ns.append(stamp)
            try:
                produce(
                    topic,
                    b"%s%d|%d|%d" % (prefix, partition, seq, stamp),
                    partition=partition,
                    on_delivery=partial(delivered, index),
                )
            except BufferError:
                self._outcomes.append((index, now(), -1, "local queue full"))
            except KafkaException as exc:
                fatal = _is_fatal(exc)
                if fatal and self.fatal_error is None:
                    self.fatal_error = _translate(exc, "Produce").reason
                reason = "producer fatal error" if fatal else _translate(exc, "Produce").reason
                self._outcomes.append((index, now(), -1, reason))

    def poll(self, timeout: float = 0) -> None:
        """Serve delivery reports (waiting up to `timeout` for the first) and pass them on."""
        try:
            self._producer.poll(timeout)
        except KafkaException as exc:
            if _is_fatal(exc) and self.fatal_error is None:
                error = exc.args[0]
                self.fatal_error = f"{error.name()}: {error.str()}"
        self._report()

    def recreate(self) -> None:
        """Drop the fatal producer (its queued records fail) and start a new one."""
        try:
            self._producer.purge()
            self._producer.flush(1)
        except KafkaException:
            pass
        self._report()
        self._producer = Producer(self._config)
        self.fatal_error = None

    def close(self, timeout: float) -> int:
        """Wait up to `timeout` for outstanding delivery reports; returns how many never came."""
        try:
            remaining = self._producer.flush(timeout)
            if remaining:
                self._producer.purge()
                self._producer.flush(1)
            return remaining
        except KafkaException:
            return -1
        finally:
            self._report()


class _Reader:
    """What the drill's readers share: batches of records, probe records decoded, positions kept."""

    _consumer: Consumer

    def __init__(self):
        self.positions: dict[int, int] = {}

    def poll(self, timeout: float) -> list[ConsumedRecord]:
        try:
            batch = self._consumer.consume(num_messages=2000, timeout=timeout)
        except KafkaException:
            return []
        now = time.time_ns()
        records = []
        for msg in batch:
            if msg.error():
                continue
            self.positions[msg.partition()] = msg.offset() + 1
            # Every record counts (a canary group reads business records); probe records carry
            # their run, sequence and send time.
            run, _partition, seq, sent_ns = decode_record(msg.value()) or ("", msg.partition(), -1, 0)
            records.append(ConsumedRecord(msg.partition(), msg.offset(), run, seq, sent_ns, now))
        return records

    def close(self) -> None:
        self._consumer.close()


class LiveReader(_Reader):
    """Reads the drill's partitions from given offsets, as a consumer without a group commit,
    picking out the probe records of the drill's run."""

    def __init__(self, settings: ConnectionSettings, *, topic: str, run: str, start: dict[int, int], timeout: float):
        super().__init__()
        self._consumer = Consumer(
            {
                **settings.client_config(timeout),
                "group.id": f"krs-drill-{uuid.uuid4().hex}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 20,
                # librdkafka waits this long before fetching a partition again after an error or
                # a fetch made stale by a pause (500 ms by default): a client timer, not the cluster.
                "fetch.error.backoff.ms": 20,
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 50,
                "topic.metadata.refresh.interval.ms": 50,
            }
        )
        self._assignment = [TopicPartition(topic, p, o) for p, o in start.items()]
        self._consumer.assign(self._assignment)
        self.paused = False
        self._prefix = record_prefix(run)

    def read(self, timeout: float) -> tuple[int, list[int], list[int], list[int]]:
        """One batch as columns: when it was read, and each record's partition, offset and
        sequence (-1 for a record that is not one of the run's probe records)."""
        try:
            batch = self._consumer.consume(num_messages=10_000, timeout=timeout)
        except KafkaException:
            return 0, [], [], []
        now = time.time_ns()
        prefix, skip, positions = self._prefix, len(self._prefix), self.positions
        partitions: list[int] = []
        offsets: list[int] = []
        seqs: list[int] = []
        for msg in batch:
            if msg.error() is not None:
                continue
            partition, offset, value = msg.partition(), msg.offset(), msg.value()
            positions[partition] = offset + 1
            partitions.append(partition)
            offsets.append(offset)
            seq = -1
            if value and value.startswith(prefix):
                fields = value[skip:].split(b"|")
                if len(fields) == 3 and fields[1].isdigit():
                    seq = int(fields[1])
            seqs.append(seq)
        return now, partitions, offsets, seqs

    def pause(self) -> None:
        """Stop fetching with the client's own pause: nothing is prefetched meanwhile, so the
        backlog stays on the cluster and a resume fetches it from there."""
        self._consumer.pause(self._assignment)
        self.paused = True

    def resume(self) -> None:
        self._consumer.resume(self._assignment)
        self.paused = False


class GroupReader(_Reader):
    """A consumer group member with manual commits (consumer restart, standby cutover)."""

    def __init__(self, settings: ConnectionSettings, *, topic: str, group: str, timeout: float):
        super().__init__()
        self._consumer = Consumer(
            {
                **settings.client_config(timeout),
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "fetch.wait.max.ms": 20,
                # A member that vanishes is noticed after this long; keep drills short.
                "session.timeout.ms": 6000,
                "heartbeat.interval.ms": 1000,
            }
        )
        self._consumer.subscribe([topic])

    def commit(self, topic: str) -> dict[int, int]:
        """Commit what was consumed so far; returns the committed offsets."""
        offsets = dict(self.positions)
        if offsets:
            try:
                self._consumer.commit(
                    offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False
                )
            except KafkaException as exc:
                raise _translate(exc, "OffsetCommit") from None
        return offsets
