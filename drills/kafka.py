"""The one seam to Kafka: confluent-kafka wrapped with a timeout on every call and typed results.

Nothing else in the project imports confluent_kafka. Tests that need a customer's cluster
to misbehave patch the functions of this module.
"""

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

log = logging.getLogger(__name__)
librdkafka_log = logging.getLogger("drills.kafka.librdkafka")

PROBE_HEADER = b"krs1"


class KafkaCallError(Exception):
    """A Kafka call failed; `reason` is safe to show (it never holds a secret)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class UnsupportedApi(KafkaCallError):
    """The cluster does not implement an API a probe needs."""

    def __init__(self, api: str, detail: str = ""):
        super().__init__(f"the cluster does not support the {api} API" + (f" ({detail})" if detail else ""))
        self.api = api


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach a cluster. repr hides the secret so it cannot leak through logs."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_ca_pem: str = field(default="", repr=False)

    def client_config(self, timeout: float) -> dict:
        timeout_ms = str(max(1000, int(timeout * 1000)))
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "socket.timeout.ms": timeout_ms,
            "socket.connection.setup.timeout.ms": timeout_ms,
            "reconnect.backoff.max.ms": "1000",
            "logger": librdkafka_log,
            "log_level": 3,
        }
        if self.security_protocol.startswith("SASL"):
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = self.sasl_password
        if self.ssl_ca_pem and self.security_protocol.endswith("SSL"):
            config["ssl.ca.pem"] = self.ssl_ca_pem
        return config


def _translate(exc: KafkaException, api: str) -> KafkaCallError:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    if error is None:
        return KafkaCallError(f"{api} failed: {exc}")
    code = error.code()
    if code in (KafkaError._UNSUPPORTED_FEATURE, KafkaError.UNSUPPORTED_VERSION, KafkaError.INVALID_REQUEST):
        return UnsupportedApi(api, error.str())
    if code in (KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT):
        return KafkaCallError(f"{api} timed out: {error.str()}")
    if code in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE):
        return KafkaCallError(f"{api}: cluster unreachable or not answering ({error.str()})")
    if code in (KafkaError.SASL_AUTHENTICATION_FAILED, KafkaError._AUTHENTICATION, KafkaError._SSL):
        return KafkaCallError(f"{api}: authentication failed ({error.name()})")
    return KafkaCallError(f"{api} failed: {error.name()}: {error.str()}")


def _admin(settings: ConnectionSettings, timeout: float) -> AdminClient:
    return AdminClient(settings.client_config(timeout))


# --- metadata -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerInfo:
    id: int
    host: str
    port: int
    rack: str | None


@dataclass(frozen=True)
class PartitionInfo:
    topic: str
    id: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    error: str | None


@dataclass(frozen=True)
class ClusterMetadata:
    cluster_id: str | None
    controller_id: int | None
    brokers: tuple[BrokerInfo, ...]
    partitions: tuple[PartitionInfo, ...]
    racks_known: bool
    requests: int

    @property
    def broker_ids(self) -> set[int]:
        return {b.id for b in self.brokers}

    @property
    def topics(self) -> set[str]:
        return {p.topic for p in self.partitions}

    def topic_partitions(self, topic: str) -> list[PartitionInfo]:
        return sorted((p for p in self.partitions if p.topic == topic), key=lambda p: p.id)


def cluster_metadata(settings: ConnectionSettings, *, timeout: float, topic: str | None = None) -> ClusterMetadata:
    """Brokers, controller and every partition's leader, replicas and ISR, plus racks where known."""
    admin = _admin(settings, timeout)
    try:
        metadata = admin.list_topics(topic=topic, timeout=timeout)
    except KafkaException as exc:
        raise _translate(exc, "Metadata") from None
    requests = 1
    racks: dict[int, str | None] = {}
    racks_known = False
    try:
        description = admin.describe_cluster(request_timeout=timeout).result(timeout=timeout + 1)
        racks = {node.id: node.rack for node in description.nodes}
        racks_known = True
        requests += 1
    except KafkaException as exc:
        log.info("describe_cluster unavailable: %s", _translate(exc, "DescribeCluster").reason)
    except TimeoutError:
        log.info("describe_cluster timed out")
    brokers = tuple(
        sorted(
            (BrokerInfo(b.id, b.host, b.port, racks.get(b.id)) for b in metadata.brokers.values()),
            key=lambda b: b.id,
        )
    )
    partitions = []
    for name, topic_md in metadata.topics.items():
        if topic_md.error is not None and not topic_md.partitions:
            partitions.append(PartitionInfo(name, -1, -1, (), (), topic_md.error.name()))
            continue
        for p in topic_md.partitions.values():
            partitions.append(
                PartitionInfo(
                    name, p.id, p.leader, tuple(p.replicas), tuple(p.isrs), p.error.name() if p.error else None
                )
            )
    controller = metadata.controller_id if metadata.controller_id is not None and metadata.controller_id >= 0 else None
    return ClusterMetadata(
        cluster_id=metadata.cluster_id,
        controller_id=controller,
        brokers=brokers,
        partitions=tuple(partitions),
        racks_known=racks_known,
        requests=requests,
    )


def topic_configs(settings: ConnectionSettings, topics: Iterable[str], *, timeout: float) -> dict[str, dict[str, str]]:
    """Effective configs of the given topics; UnsupportedApi when DescribeConfigs is missing."""
    names = list(topics)
    if not names:
        return {}
    admin = _admin(settings, timeout)
    futures = admin.describe_configs(
        [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names], request_timeout=timeout
    )
    result: dict[str, dict[str, str]] = {}
    for resource, future in futures.items():
        try:
            entries = future.result(timeout=timeout + 1)
        except KafkaException as exc:
            raise _translate(exc, "DescribeConfigs") from None
        except TimeoutError:
            raise KafkaCallError("DescribeConfigs timed out") from None
        result[resource.name] = {name: entry.value for name, entry in entries.items() if entry.value is not None}
    return result


def topic_create(
    settings: ConnectionSettings, *, name: str, partitions: int, replication_factor: int, timeout: float
) -> None:
    admin = _admin(settings, timeout)
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=replication_factor)],
        request_timeout=timeout,
        operation_timeout=timeout,
    )
    try:
        futures[name].result(timeout=timeout + 1)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        if isinstance(error, KafkaError) and error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
            return
        raise _translate(exc, "CreateTopics") from None
    except TimeoutError:
        raise KafkaCallError("CreateTopics timed out") from None


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


def encode_record(run: str, partition: int, seq: int, sent_ns: int) -> bytes:
    return b"|".join([PROBE_HEADER, run.encode(), str(partition).encode(), str(seq).encode(), str(sent_ns).encode()])


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


def high_watermarks(
    settings: ConnectionSettings, *, topic: str, partitions: Iterable[int], timeout: float
) -> tuple[dict[int, int], dict[int, str]]:
    """High watermark of each partition, and the reason for each partition that gave none."""
    consumer = Consumer(
        {**settings.client_config(timeout), "group.id": f"krs-wm-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    marks: dict[int, int] = {}
    failures: dict[int, str] = {}
    deadline = time.monotonic() + timeout
    try:
        for p in partitions:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                failures[p] = "ListOffsets timed out"
                continue
            try:
                _, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=remaining, cached=False)
                marks[p] = high
            except KafkaException as exc:
                failures[p] = _translate(exc, "ListOffsets").reason
        return marks, failures
    finally:
        consumer.close()


@dataclass(frozen=True)
class ProduceResult:
    deliveries: list[Delivery]
    producer_init_s: float


def produce_sequenced(
    settings: ConnectionSettings, *, topic: str, partitions: list[int], count: int, run: str, timeout: float
) -> ProduceResult:
    """Produce `count` records round-robin over the partitions with acks=all and idempotence.

    Each record carries (run, partition, sequence, send time); every delivery report is
    kept. Records not reported within `timeout` are marked with an error, never dropped.
    """
    producer = Producer(
        {
            **settings.client_config(timeout),
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": max(1000, int(timeout * 1000)),
            "queue.buffering.max.messages": max(100_000, count),
        }
    )
    deadline = time.monotonic() + timeout
    # The idempotent producer acquires its producer id before the first ack (about 0.5 s on
    # the sandbox); one warm-up record keeps that out of the latency of the measured records.
    warmup_started = time.monotonic()
    try:
        producer.produce(
            topic, encode_record(f"{run}-warmup", partitions[0], 0, time.time_ns()), partition=partitions[0]
        )
    except KafkaException as exc:
        raise _translate(exc, "Produce") from None
    producer.flush(timeout / 2)
    init_s = time.monotonic() - warmup_started
    deliveries: list[Delivery] = []

    def report(delivery: Delivery):
        def callback(err, msg):
            delivery.acked_ns = time.time_ns()
            if err is not None:
                delivery.error = err.name()
            else:
                offset = msg.offset()
                delivery.offset = offset if offset is not None and offset >= 0 else None

        return callback

    for seq in range(count):
        partition = partitions[seq % len(partitions)]
        sent_ns = time.time_ns()
        delivery = Delivery(partition=partition, seq=seq, sent_ns=sent_ns)
        deliveries.append(delivery)
        while True:
            try:
                producer.produce(
                    topic,
                    encode_record(run, partition, seq, sent_ns),
                    partition=partition,
                    on_delivery=report(delivery),
                )
                break
            except BufferError:
                producer.poll(0.05)
            except KafkaException as exc:
                delivery.error = _translate(exc, "Produce").reason
                break
            if time.monotonic() > deadline:
                delivery.error = "local queue full until the deadline"
                break
        producer.poll(0)
    remaining = producer.flush(max(0.1, deadline - time.monotonic()))
    if remaining:
        producer.purge()
        producer.flush(1)
    for delivery in deliveries:
        if delivery.acked_ns is None and delivery.error is None:
            delivery.error = "no delivery report before the deadline"
    return ProduceResult(deliveries=deliveries, producer_init_s=init_s)


def read_range(
    settings: ConnectionSettings,
    *,
    topic: str,
    start: dict[int, int],
    end: Callable[[], dict[int, int] | None],
    timeout: float,
) -> list[ConsumedRecord]:
    """Read each partition from `start` until `end()` offsets are reached or the deadline passes.

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
    records: list[ConsumedRecord] = []
    position = dict(start)
    try:
        consumer.assign([TopicPartition(topic, p, offset) for p, offset in start.items()])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ends = end()
            if ends is not None and all(position.get(p, 0) >= offset for p, offset in ends.items()):
                break
            batch = consumer.consume(num_messages=1000, timeout=min(0.2, max(0.01, deadline - time.monotonic())))
            now = time.time_ns()
            for msg in batch:
                if msg.error():
                    if msg.error().fatal():
                        raise KafkaCallError(f"Fetch failed: {msg.error().name()}")
                    continue
                position[msg.partition()] = msg.offset() + 1
                decoded = decode_record(msg.value())
                if decoded is not None:
                    run, _partition, seq, sent_ns = decoded
                    records.append(ConsumedRecord(msg.partition(), msg.offset(), run, seq, sent_ns, now))
    except KafkaException as exc:
        raise _translate(exc, "Fetch") from None
    finally:
        consumer.close()
    return records
