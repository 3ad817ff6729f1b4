"""Sustained traffic for drills: a producer that survives its fatal state, and the readers."""

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from drills.kafka.client import ConnectionSettings, _is_fatal, _translate
from drills.kafka.records import ConsumedRecord, Delivery, _reporter, decode_record, encode_record


class SustainedProducer:
    """An idempotent acks=all producer for drills that survives its own fatal state.

    `send` never raises for a fatal producer: the engine asks `fatal_error`, records it and
    calls `recreate()`, as an application would have to. `on_report` is called with every
    delivery once its outcome (ack or error) is known, from the thread that polls.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        topic: str,
        timeout: float,
        on_report: Callable[[Delivery], None] = lambda delivery: None,
    ):
        self.topic = topic
        self.on_report = on_report
        self.fatal_error: str | None = None
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

    def send(self, delivery: Delivery, run: str) -> None:
        value = encode_record(run, delivery.partition, delivery.seq, delivery.sent_ns)
        try:
            self._producer.produce(
                self.topic, value, partition=delivery.partition, on_delivery=_reporter(delivery, self.on_report)
            )
        except BufferError:
            delivery.error = "local queue full"
            delivery.acked_ns = time.time_ns()
            self.on_report(delivery)
        except KafkaException as exc:
            if _is_fatal(exc) and self.fatal_error is None:
                self.fatal_error = _translate(exc, "Produce").reason
            delivery.error = "producer fatal error" if _is_fatal(exc) else _translate(exc, "Produce").reason
            delivery.acked_ns = time.time_ns()
            self.on_report(delivery)

    def poll(self, timeout: float = 0) -> None:
        try:
            self._producer.poll(timeout)
        except KafkaException as exc:
            if _is_fatal(exc) and self.fatal_error is None:
                error = exc.args[0]
                self.fatal_error = f"{error.name()}: {error.str()}"

    def recreate(self) -> None:
        """Drop the fatal producer (its queued records fail) and start a new one."""
        try:
            self._producer.purge()
            self._producer.flush(1)
        except KafkaException:
            pass
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
    """Reads the drill's partitions from given offsets, as a consumer without a group commit."""

    def __init__(self, settings: ConnectionSettings, *, topic: str, start: dict[int, int], timeout: float):
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
