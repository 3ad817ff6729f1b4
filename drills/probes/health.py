"""Cluster health (metadata row): brokers, controller, offline / under-replicated / under-min-ISR."""

import time
from types import SimpleNamespace

from drills import kafka
from drills.probes.base import ProbeContext, ProbeResult, error, listed
from scorecard.status import verdict


def cluster_health(ctx: ProbeContext, params: SimpleNamespace) -> ProbeResult:
    started = time.monotonic()
    try:
        metadata = kafka.cluster_metadata(ctx.connection, timeout=params.timeout_seconds)
    except kafka.KafkaCallError as exc:
        return error(exc.reason, elapsed_s=round(time.monotonic() - started, 3))
    requests = metadata.requests + 1
    live = metadata.broker_ids
    known_min_isr: dict[str, int] = {}
    min_isr_source = "topic config"
    try:
        configs = kafka.topic_configs(ctx.connection, sorted(metadata.topics), timeout=params.timeout_seconds)
        known_min_isr = {
            topic: int(config["min.insync.replicas"])
            for topic, config in configs.items()
            if config.get("min.insync.replicas", "").isdigit()
        }
        if len(known_min_isr) < len(metadata.topics):
            min_isr_source = f"topic config where reported, else assumed {params.min_insync_replicas}"
    except kafka.UnsupportedApi:
        min_isr_source = f"assumed {params.min_insync_replicas} (the cluster does not support DescribeConfigs)"
    except kafka.KafkaCallError as exc:
        min_isr_source = f"assumed {params.min_insync_replicas} (DescribeConfigs failed: {exc.reason})"

    offline, under_replicated, under_min_isr, under_assumed_min_isr, repeated = [], [], [], [], []
    for p in metadata.partitions:
        name = f"{p.topic}[{p.id}]"
        if p.leader < 0 or p.leader not in live:
            offline.append(name)
            continue
        replicas = set(p.replicas)
        if len(replicas) < len(p.replicas):
            repeated.append(name)
        # A replica on a broker missing from metadata cannot be in sync, whatever the ISR says.
        in_sync = {r for r in p.isr if r in live}
        if len(in_sync) < len(replicas):
            under_replicated.append(name)
        if p.topic in known_min_isr:
            if len(in_sync) < known_min_isr[p.topic]:
                under_min_isr.append(name)
        elif len(in_sync) < params.min_insync_replicas:
            under_assumed_min_isr.append(name)

    expected = params.expected_brokers or ctx.expected_brokers
    findings = []
    if metadata.controller_id is None:
        findings.append("no controller")
    if expected and len(live) < expected:
        findings.append(f"{expected - len(live)} of {expected} expected brokers missing")
    if under_assumed_min_isr:
        findings.append(
            f"{len(under_assumed_min_isr)} partitions below the assumed min.insync.replicas="
            f"{params.min_insync_replicas} (the cluster does not report it)"
        )
    if repeated:
        findings.append(f"{len(repeated)} partitions list the same broker more than once as a replica")

    status = verdict(fail=metadata.controller_id is None or offline or under_min_isr, warn=findings or under_replicated)
    summary = (
        f"{len(live)}{f'/{expected}' if expected else ''} brokers, controller "
        f"{metadata.controller_id if metadata.controller_id is not None else 'none'}, "
        f"{len(offline)} offline, {len(under_replicated)} under-replicated, "
        f"{len(under_min_isr) + len(under_assumed_min_isr)} under-min-ISR of {len(metadata.partitions)} partitions"
    )
    return ProbeResult(
        status,
        summary,
        {
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
            "under_assumed_min_isr_partitions": len(under_assumed_min_isr),
            "offline": listed(offline),
            "under_replicated": listed(under_replicated),
            "under_min_isr": listed(under_min_isr + under_assumed_min_isr),
            "min_insync_replicas_source": min_isr_source,
            "findings": findings,
            "kafka_requests": requests,
            "elapsed_s": round(time.monotonic() - started, 3),
        },
    )
