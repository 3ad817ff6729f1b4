"""The one seam to Kafka: confluent-kafka wrapped with a timeout on every call and typed results.

Nothing else in the project imports confluent_kafka. Tests that need a customer's cluster
to misbehave patch the functions of this module.
"""

import logging
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourcePatternType,
    ResourceType,
)

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

    @classmethod
    def for_cluster(cls, cluster) -> "ConnectionSettings":
        """From a registered Cluster (scorecard.models.Cluster)."""
        return cls(
            bootstrap_servers=cluster.bootstrap_servers,
            security_protocol=cluster.security_protocol,
            sasl_mechanism=cluster.sasl_mechanism,
            sasl_username=cluster.sasl_username,
            sasl_password=cluster.sasl_password,
            ssl_ca_pem=cluster.ssl_ca_pem,
        )

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


def _answer(api: str, timeout: float, send: Callable[[], Any]) -> Any:
    """Send an admin request (`send` returns its future) and wait for the answer within the
    timeout; a refusal, an unsupported API or the timeout becomes a typed error."""
    try:
        return send().result(timeout=timeout + 1)
    except KafkaException as exc:
        raise _translate(exc, api) from None
    except TimeoutError:
        raise KafkaCallError(f"{api} timed out") from None


def _config_values(entries: dict) -> dict[str, str]:
    return {name: entry.value for name, entry in entries.items() if entry.value is not None}


def admin_client(settings: ConnectionSettings, *, timeout: float) -> AdminClient:
    """A client to keep for repeated metadata polls (a drill's watcher)."""
    return AdminClient({**settings.client_config(timeout), "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200})


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


def cluster_metadata(
    settings: ConnectionSettings,
    *,
    timeout: float,
    topic: str | None = None,
    admin: AdminClient | None = None,
    racks: bool = True,
) -> ClusterMetadata:
    """Brokers, controller and every partition's leader, replicas and ISR, plus racks where known.

    Pass `admin` (from `admin_client`) to poll repeatedly over one set of connections."""
    admin = admin or _admin(settings, timeout)
    try:
        metadata = admin.list_topics(topic=topic, timeout=timeout)
    except KafkaException as exc:
        raise _translate(exc, "Metadata") from None
    requests = 1
    rack_of: dict[int, str | None] = {}
    racks_known = False
    try:
        if racks:
            description = admin.describe_cluster(request_timeout=timeout).result(timeout=timeout + 1)
            rack_of = {node.id: node.rack for node in description.nodes}
            racks_known = True
            requests += 1
    except KafkaException as exc:
        log.info("describe_cluster unavailable: %s", _translate(exc, "DescribeCluster").reason)
    except TimeoutError:
        log.info("describe_cluster timed out")
    brokers = tuple(
        sorted(
            (BrokerInfo(b.id, b.host, b.port, rack_of.get(b.id)) for b in metadata.brokers.values()),
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
    return {
        resource.name: _config_values(_answer("DescribeConfigs", timeout, lambda f=future: f))
        for resource, future in futures.items()
    }


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


def _reporter(delivery: Delivery):
    """The delivery callback of one record: when it was reported, with its offset or error.

    A successful report without an offset is kept as such: the sandbox's injected errors produce
    them for records that never reached the log, and the verifier must be able to tell."""

    def callback(err, msg):
        delivery.acked_ns = time.time_ns()
        if err is not None:
            delivery.error = err.name()
        else:
            offset = msg.offset()
            delivery.offset = offset if offset is not None and offset >= 0 else None

    return callback


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


TopicPartitionKey = tuple[str, int]


def list_offsets(
    settings: ConnectionSettings, partitions: Iterable[TopicPartitionKey], *, timeout: float, earliest: bool = False
) -> tuple[dict[TopicPartitionKey, int], dict[TopicPartitionKey, str]]:
    """Latest (or earliest) offset of each partition in one batched ListOffsets call.

    Returns the offsets and, for partitions whose leader gave none, the reason.
    """
    keys = list(partitions)
    if not keys:
        return {}, {}
    spec = OffsetSpec.earliest() if earliest else OffsetSpec.latest()
    admin = _admin(settings, timeout)
    try:
        futures = admin.list_offsets({TopicPartition(t, p): spec for t, p in keys}, request_timeout=timeout)
    except KafkaException as exc:
        raise _translate(exc, "ListOffsets") from None
    offsets: dict[TopicPartitionKey, int] = {}
    failures: dict[TopicPartitionKey, str] = {}
    for tp, future in futures.items():
        key = (tp.topic, tp.partition)
        try:
            offsets[key] = _answer("ListOffsets", timeout, lambda f=future: f).offset
        except KafkaCallError as exc:
            failures[key] = exc.reason
    return offsets, failures


@dataclass(frozen=True)
class ProduceResult:
    deliveries: list[Delivery]
    producer_init_s: float
    fatal_error: str | None = None


def _is_fatal(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    return error is not None and (error.fatal() or error.code() == KafkaError._FATAL)


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
    deliveries: list[Delivery] = []

    try:
        for seq in range(count):
            if fatal_errors:
                break
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
                        on_delivery=_reporter(delivery),
                    )
                    break
                except BufferError:
                    producer.poll(0.05)
                if time.monotonic() > deadline:
                    delivery.error = "local queue full until the deadline"
                    break
            producer.poll(0)
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
    for delivery in deliveries:
        if delivery.acked_ns is None and delivery.error is None:
            delivery.error = "producer fatal error" if fatal else "no delivery report before the deadline"
    return ProduceResult(deliveries=deliveries, producer_init_s=init_s, fatal_error=fatal)


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


# --- configuration, groups, ACLs ------------------------------------------------------------


def broker_configs(settings: ConnectionSettings, broker_ids: Iterable[int], *, timeout: float) -> dict[int, dict]:
    """Effective configs of the given brokers; UnsupportedApi when DescribeConfigs is missing."""
    admin = _admin(settings, timeout)
    result: dict[int, dict] = {}
    # librdkafka allows one BROKER resource per DescribeConfigs call.
    for broker_id in broker_ids:
        resource = ConfigResource(ConfigResource.Type.BROKER, str(broker_id))
        entries = _answer(
            "DescribeConfigs", timeout, lambda r=resource: admin.describe_configs([r], request_timeout=timeout)[r]
        )
        result[broker_id] = _config_values(entries)
    return result


def committed_offsets(
    settings: ConnectionSettings, *, group: str, partitions: Iterable[TopicPartitionKey], timeout: float
) -> dict[TopicPartitionKey, int | None]:
    """The group's committed offset on each partition (None where it never committed)."""
    keys = list(partitions)
    if not keys:
        return {}
    admin = _admin(settings, timeout)
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in keys])
    answer = _answer(
        "OffsetFetch", timeout, lambda: admin.list_consumer_group_offsets([request], request_timeout=timeout)[group]
    )
    return {(tp.topic, tp.partition): (tp.offset if tp.offset >= 0 else None) for tp in answer.topic_partitions}


def commit_offsets(
    settings: ConnectionSettings, *, group: str, offsets: dict[TopicPartitionKey, int], timeout: float
) -> None:
    """Commit offsets for a group that has no active members (demo data and tests)."""
    admin = _admin(settings, timeout)
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(t, p, o) for (t, p), o in offsets.items()])
    try:
        _answer(
            "OffsetCommit",
            timeout,
            lambda: admin.alter_consumer_group_offsets([request], request_timeout=timeout)[group],
        )
    except UnsupportedApi:
        # Some platforms lack the admin route (AlterConsumerGroupOffsets); a consumer commit works.
        consumer = Consumer({**settings.client_config(timeout), "group.id": group, "enable.auto.commit": False})
        try:
            consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()], asynchronous=False)
        except KafkaException as exc:
            raise _translate(exc, "OffsetCommit") from None
        finally:
            consumer.close()


def acl_bindings(settings: ConnectionSettings, *, timeout: float) -> list[str]:
    """Every ACL binding as a readable string; UnsupportedApi where the cluster has no ACL API."""
    admin = _admin(settings, timeout)
    any_binding = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    bindings = _answer("DescribeAcls", timeout, lambda: admin.describe_acls(any_binding, request_timeout=timeout))
    return sorted(
        f"{b.restype.name}:{b.name}:{b.resource_pattern_type.name}:{b.principal}:{b.host}:"
        f"{b.operation.name}:{b.permission_type.name}"
        for b in bindings
    )


def produce_values(
    settings: ConnectionSettings, *, topic: str, values: Iterable[tuple[int | None, bytes]], timeout: float
) -> int:
    """Produce (partition, value) pairs with acks=all; returns how many were acknowledged."""
    producer = Producer({**settings.client_config(timeout), "acks": "all", "linger.ms": 5})
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


def sample_records(
    settings: ConnectionSettings, *, starts: dict[TopicPartitionKey, int], per_partition: int, timeout: float
) -> list[SampledRecord]:
    """Read up to `per_partition` records from each given offset (timestamps and sizes only)."""
    if not starts:
        return []
    consumer = Consumer(
        {
            **settings.client_config(timeout),
            "group.id": f"krs-sample-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "fetch.wait.max.ms": 50,
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
    except KafkaException as exc:
        raise _translate(exc, "Fetch") from None
    finally:
        consumer.close()
    return records


# --- one bootstrap address at a time -----------------------------------------------------------


@dataclass(frozen=True)
class EndpointResult:
    address: str
    connect_ms: float | None
    metadata_ms: float | None
    brokers: int | None
    error: str | None
    cert_days_left: float | None = None
    cert_subject: str | None = None
    unauthenticated_refused: bool | None = None


def _tls_certificate(host: str, port: int, settings: ConnectionSettings, timeout: float) -> tuple[float, str]:
    """Days until the listener's certificate expires, and its subject."""
    context = ssl.create_default_context(cadata=settings.ssl_ca_pem or None)
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        cert = tls.getpeercert()
    expires = ssl.cert_time_to_seconds(cert["notAfter"])
    subject = ",".join("=".join(pair) for rdn in cert.get("subject", ()) for pair in rdn)
    return (expires - time.time()) / 86400, subject


def endpoint_check(settings: ConnectionSettings, *, host: str, port: int, timeout: float) -> EndpointResult:
    """Connect to one bootstrap address alone: TCP connect time, a metadata answer, TLS expiry,
    and for SASL listeners whether an unauthenticated client is refused."""
    address = f"{host}:{port}"
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            connect_ms = (time.perf_counter() - started) * 1000
    except OSError as exc:
        return EndpointResult(address, None, None, None, f"connect failed: {exc.strerror or exc}")
    cert_days = subject = None
    if settings.security_protocol.endswith("SSL"):
        try:
            cert_days, subject = _tls_certificate(host, port, settings, timeout)
        except (OSError, ssl.SSLError, ValueError, KeyError) as exc:
            return EndpointResult(address, round(connect_ms, 3), None, None, f"TLS handshake failed: {exc}")
    single = replace(settings, bootstrap_servers=address)
    started = time.perf_counter()
    try:
        metadata = _admin(single, timeout).list_topics(timeout=timeout)
    except KafkaException as exc:
        return EndpointResult(address, round(connect_ms, 3), None, None, _translate(exc, "Metadata").reason,
                              cert_days, subject)  # fmt: skip
    metadata_ms = (time.perf_counter() - started) * 1000
    refused = None
    if settings.security_protocol.startswith("SASL"):
        anonymous = ConnectionSettings(
            address, "SSL" if settings.security_protocol == "SASL_SSL" else "PLAINTEXT", ssl_ca_pem=settings.ssl_ca_pem
        )
        try:
            _admin(anonymous, timeout).list_topics(timeout=timeout)
            refused = False
        except KafkaException:
            refused = True
    return EndpointResult(
        address, round(connect_ms, 3), round(metadata_ms, 3), len(metadata.brokers), None, cert_days, subject, refused
    )


def group_state(settings: ConnectionSettings, *, group: str, timeout: float) -> tuple[str, int]:
    """The group's state and member count (DescribeGroups)."""
    admin = _admin(settings, timeout)
    description = _answer(
        "DescribeGroups", timeout, lambda: admin.describe_consumer_groups([group], request_timeout=timeout)[group]
    )
    return description.state.name, len(description.members)


# --- sustained traffic for drills -----------------------------------------------------------


class SustainedProducer:
    """An idempotent acks=all producer for drills that survives its own fatal state.

    `send` never raises for a fatal producer: the engine asks `fatal_error`, records it and
    calls `recreate()`, as an application would have to.
    """

    def __init__(self, settings: ConnectionSettings, *, topic: str, timeout: float):
        self.topic = topic
        self.fatal_error: str | None = None
        self._config = {
            **settings.client_config(timeout),
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 0,
            "message.timeout.ms": max(1000, int(timeout * 1000)),
            # React to a broker coming back within ~0.2 s: librdkafka's default backoffs (reconnect
            # up to 10 s, retry up to 1 s) would be measured as outage.
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 200,
            "retry.backoff.ms": 50,
            "retry.backoff.max.ms": 200,
            # The sandbox drops a stopped broker from metadata and the client forgets it; without a
            # frequent refresh it only learns of its return up to a second later.
            "topic.metadata.refresh.interval.ms": 200,
            "error_cb": self._on_error,
        }
        self._producer = Producer(self._config)

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal() and self.fatal_error is None:
            self.fatal_error = f"{error.name()}: {error.str()}"

    def send(self, delivery: Delivery, run: str) -> None:
        value = encode_record(run, delivery.partition, delivery.seq, delivery.sent_ns)
        try:
            self._producer.produce(self.topic, value, partition=delivery.partition, on_delivery=_reporter(delivery))
        except BufferError:
            delivery.error = "local queue full"
            delivery.acked_ns = time.time_ns()
        except KafkaException as exc:
            if _is_fatal(exc) and self.fatal_error is None:
                self.fatal_error = _translate(exc, "Produce").reason
            delivery.error = "producer fatal error" if _is_fatal(exc) else _translate(exc, "Produce").reason
            delivery.acked_ns = time.time_ns()

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
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 200,
                "topic.metadata.refresh.interval.ms": 200,
            }
        )
        self._consumer.assign([TopicPartition(topic, p, o) for p, o in start.items()])


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
