"""Live probes (DESIGN.md section 4). Each takes connection settings and validated
parameters and returns a ProbeResult; a failing Kafka call becomes ERROR with its reason."""

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from drills import kafka
from drills.verify import percentile, verify_sequences

MAX_LISTED = 50
TOPIC_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


@dataclass(frozen=True)
class ProbeResult:
    status: str  # PASS, WARN, FAIL or ERROR
    summary: str
    measurements: dict


class ParamError(ValueError):
    """A probe parameter is invalid; names the parameter."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}")
        self.name = name


def _int_param(params: dict, name: str, default: int | None, *, minimum: int, maximum: int) -> int | None:
    value = params.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParamError(name, f"must be a whole number, not {value!r}")
    if not minimum <= value <= maximum:
        raise ParamError(name, f"must be between {minimum} and {maximum}")
    return value


@dataclass(frozen=True)
class ClusterHealthParams:
    expected_brokers: int | None
    min_insync_replicas: int
    timeout_seconds: int

    @classmethod
    def parse(cls, params: dict) -> "ClusterHealthParams":
        return cls(
            expected_brokers=_int_param(params, "expected_brokers", None, minimum=1, maximum=10_000),
            min_insync_replicas=_int_param(params, "min_insync_replicas", 2, minimum=1, maximum=100),
            timeout_seconds=_int_param(params, "timeout_seconds", 10, minimum=1, maximum=120),
        )


@dataclass(frozen=True)
class AckWriteParams:
    records: int
    topic: str
    timeout_seconds: int

    @classmethod
    def parse(cls, params: dict) -> "AckWriteParams":
        topic = params.get("topic", "__recovery_probe")
        if not isinstance(topic, str) or not 0 < len(topic) <= 249 or set(topic) - TOPIC_NAME_CHARS:
            raise ParamError("topic", "must be 1-249 characters of letters, digits, '.', '_' and '-'")
        return cls(
            records=_int_param(params, "records", 5000, minimum=1, maximum=1_000_000),
            topic=topic,
            timeout_seconds=_int_param(params, "timeout_seconds", 30, minimum=1, maximum=600),
        )


def _error(reason: str, **measurements) -> ProbeResult:
    return ProbeResult("ERROR", reason[:500], {"error": reason, **measurements})


def cluster_health(settings: kafka.ConnectionSettings, params: ClusterHealthParams) -> ProbeResult:
    """Brokers vs expected, controller, offline, under-replicated and under-min-ISR partitions."""
    started = time.monotonic()
    try:
        metadata = kafka.cluster_metadata(settings, timeout=params.timeout_seconds)
    except kafka.KafkaCallError as exc:
        return _error(exc.reason, elapsed_s=round(time.monotonic() - started, 3))
    requests = metadata.requests
    live = metadata.broker_ids
    min_isr_source = "topic config"
    min_isr: dict[str, int] = {}
    try:
        requests += 1
        configs = kafka.topic_configs(settings, sorted(metadata.topics), timeout=params.timeout_seconds)
        for topic, config in configs.items():
            if config.get("min.insync.replicas", "").isdigit():
                min_isr[topic] = int(config["min.insync.replicas"])
    except kafka.UnsupportedApi:
        min_isr_source = f"assumed {params.min_insync_replicas} (the cluster does not support DescribeConfigs)"
    except kafka.KafkaCallError as exc:
        min_isr_source = f"assumed {params.min_insync_replicas} (DescribeConfigs failed: {exc.reason})"

    offline, under_replicated, under_min_isr = [], [], []
    for p in metadata.partitions:
        name = f"{p.topic}[{p.id}]"
        if p.leader < 0 or p.leader not in live:
            offline.append(name)
            continue
        # A replica on a broker missing from metadata cannot be in sync, whatever the ISR says.
        in_sync = [r for r in p.isr if r in live]
        if len(in_sync) < len(p.replicas):
            under_replicated.append(name)
        if len(in_sync) < min_isr.get(p.topic, params.min_insync_replicas):
            under_min_isr.append(name)

    expected = params.expected_brokers
    findings = []
    status = "PASS"
    if metadata.controller_id is None:
        status = "FAIL"
        findings.append("no controller")
    if offline or under_min_isr:
        status = "FAIL"
    elif status == "PASS" and ((expected and len(live) < expected) or under_replicated):
        status = "WARN"
    summary = (
        f"{len(live)}{f'/{expected}' if expected else ''} brokers, controller "
        f"{metadata.controller_id if metadata.controller_id is not None else 'none'}, "
        f"{len(offline)} offline, {len(under_replicated)} under-replicated, "
        f"{len(under_min_isr)} under-min-ISR of {len(metadata.partitions)} partitions"
    )
    measurements = {
        "brokers": [{"id": b.id, "host": b.host, "port": b.port, "rack": b.rack} for b in metadata.brokers],
        "broker_count": len(live),
        "expected_brokers": expected,
        "missing_broker_count": max(0, (expected or 0) - len(live)),
        "controller_id": metadata.controller_id,
        "cluster_id": metadata.cluster_id,
        "topic_count": len(metadata.topics),
        "partition_count": len(metadata.partitions),
        "offline_partitions": len(offline),
        "under_replicated_partitions": len(under_replicated),
        "under_min_isr_partitions": len(under_min_isr),
        "offline": offline[:MAX_LISTED],
        "under_replicated": under_replicated[:MAX_LISTED],
        "under_min_isr": under_min_isr[:MAX_LISTED],
        "min_insync_replicas_source": min_isr_source,
        "findings": findings,
        "kafka_requests": requests,
        "elapsed_s": round(time.monotonic() - started, 3),
    }
    return ProbeResult(status, summary, measurements)


def _ms(ns: int) -> float:
    return round(ns / 1e6, 3)


def ack_write(settings: kafka.ConnectionSettings, params: AckWriteParams) -> ProbeResult:
    """Produce sequenced records with acks=all, read them back, verify per partition."""
    started = time.monotonic()
    timeout = params.timeout_seconds
    run = uuid.uuid4().hex[:12]
    try:
        metadata = kafka.cluster_metadata(settings, timeout=timeout, topic=params.topic)
        partitions = [p for p in metadata.topic_partitions(params.topic) if p.id >= 0]
        if not partitions:
            kafka.topic_create(
                settings,
                name=params.topic,
                partitions=max(3, len(metadata.brokers)),
                replication_factor=min(3, len(metadata.brokers)),
                timeout=timeout,
            )
            metadata = kafka.cluster_metadata(settings, timeout=timeout, topic=params.topic)
            partitions = [p for p in metadata.topic_partitions(params.topic) if p.id >= 0]
        if not partitions:
            return _error(f"probe topic {params.topic} has no partitions")
        start, unavailable = kafka.high_watermarks(
            settings, topic=params.topic, partitions=[p.id for p in partitions], timeout=timeout
        )
    except kafka.UnsupportedApi as exc:
        return _error(
            f"probe topic {params.topic} does not exist and {exc.reason}; create it with at least "
            f"{len(metadata.brokers)} partitions",
            missing_api=exc.api,
        )
    except kafka.KafkaCallError as exc:
        return _error(exc.reason, elapsed_s=round(time.monotonic() - started, 3))

    # Partitions whose leader does not answer cannot be probed; the rest still are.
    ids = sorted(start)
    if not ids:
        return _error(f"no partition of {params.topic} answered: {next(iter(unavailable.values()))}")
    leaders = {p.leader for p in partitions if p.leader >= 0}
    not_leading = sorted(metadata.broker_ids - leaders)
    ends: dict[int, int] | None = None
    consumed: list[kafka.ConsumedRecord] = []
    read_error: list[str] = []

    def reader():
        try:
            consumed.extend(
                kafka.read_range(settings, topic=params.topic, start=start, end=lambda: ends, timeout=2 * timeout)
            )
        except kafka.KafkaCallError as exc:
            read_error.append(exc.reason)

    thread = threading.Thread(target=reader, name="ack-write-reader", daemon=True)
    thread.start()
    try:
        produced = kafka.produce_sequenced(
            settings, topic=params.topic, partitions=ids, count=params.records, run=run, timeout=timeout
        )
        after, _ = kafka.high_watermarks(settings, topic=params.topic, partitions=ids, timeout=timeout)
    except kafka.KafkaCallError as exc:
        ends = start
        thread.join(timeout + 5)
        return _error(exc.reason, elapsed_s=round(time.monotonic() - started, 3))
    deliveries = produced.deliveries
    acked_offsets: dict[int, int] = {}
    for d in deliveries:
        if d.error is None and d.offset is not None:
            acked_offsets[d.partition] = max(acked_offsets.get(d.partition, -1), d.offset)
    ends = {p: max(after.get(p, 0), acked_offsets.get(p, -1) + 1) for p in ids}
    thread.join(2 * timeout + 5)
    result = _ack_write_result(params, run, deliveries, consumed, read_error, not_leading, unavailable, started)
    result.measurements["producer_init_ms"] = round(produced.producer_init_s * 1000, 1)
    return result


def _ack_write_result(
    params: AckWriteParams,
    run: str,
    deliveries: list[kafka.Delivery],
    consumed: list[kafka.ConsumedRecord],
    read_error: list[str],
    not_leading: list[int],
    unavailable: dict[int, str],
    started: float,
) -> ProbeResult:
    mine = [r for r in consumed if r.run == run]
    verdict = verify_sequences(
        deliveries=((d.partition, d.seq, d.error is None) for d in deliveries),
        consumed=((r.partition, r.offset, r.seq) for r in mine),
    )
    totals = verdict.as_dict()
    produce_ms = [_ms(d.acked_ns - d.sent_ns) for d in deliveries if d.error is None and d.acked_ns]
    first_read: dict[tuple[int, int], kafka.ConsumedRecord] = {}
    for r in mine:
        first_read.setdefault((r.partition, r.seq), r)
    e2e_ms = [_ms(r.consumed_ns - r.sent_ns) for r in first_read.values()]
    errors = Counter(d.error for d in deliveries if d.error)
    elapsed = time.monotonic() - started
    measurements = {
        **totals,
        "topic": params.topic,
        "run": run,
        "produce_ms_p50": percentile(produce_ms, 0.5),
        "produce_ms_p99": percentile(produce_ms, 0.99),
        "e2e_ms_p50": percentile(e2e_ms, 0.5),
        "e2e_ms_p99": percentile(e2e_ms, 0.99),
        "produce_errors": dict(errors.most_common(10)),
        "read_error": read_error[0] if read_error else None,
        "brokers_not_leading": not_leading,
        "unavailable_partitions": {str(p): reason for p, reason in sorted(unavailable.items())},
        "elapsed_s": round(elapsed, 3),
        "records_verified_per_s": round(totals["acked"] / elapsed, 1) if elapsed > 0 else None,
    }
    if totals["acked"] == 0:
        reason = errors.most_common(1)[0][0] if errors else "unknown"
        return ProbeResult("ERROR", f"no record acknowledged of {totals['sent']} sent ({reason})", measurements)
    summary = (
        f"{totals['acked']}/{totals['sent']} acknowledged, {totals['missing']} missing, "
        f"{totals['duplicates']} duplicated, {totals['reordered']} reordered; "
        f"produce p99 {measurements['produce_ms_p99']} ms"
        + (f"; {len(unavailable)} partitions unavailable" if unavailable else "")
    )
    if totals["missing"] or totals["reordered"]:
        status = "FAIL"
    elif totals["failed"] or totals["duplicates"] or not_leading or read_error or unavailable:
        status = "WARN"
    else:
        status = "PASS"
    return ProbeResult(status, summary, measurements)


PROBES: dict[str, tuple[Callable, Callable]] = {
    "cluster_health": (cluster_health, ClusterHealthParams.parse),
    "ack_write": (ack_write, AckWriteParams.parse),
}
