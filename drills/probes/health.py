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

    offline, under_replicated, under_min_isr, under_assumed_min_isr, repeated = _classify(
        metadata, known_min_isr, params.min_insync_replicas
    )

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


def _classify(
    metadata: kafka.ClusterMetadata, known_min_isr: dict[str, int], assumed_min_isr: int
) -> tuple[list[str], list[str], list[str], list[str], list[str]]:
    """Offline, under-replicated, under-min-ISR (reported or assumed) and repeated-replica
    partitions, by name.

    On 200,000 partitions this is the probe's own cost: partitions that share a leader,
    replicas and ISR get the same answers, so each combination is judged once and a partition
    costs a dictionary lookup (a name is only formatted for a partition that is listed)."""
    live = metadata.broker_ids
    # (leader, replicas, isr) -> (offline, repeated, in sync, replica count)
    judged: dict[tuple, tuple[bool, bool, int, int]] = {}
    offline, under_replicated, under_min_isr, under_assumed, repeated = [], [], [], [], []
    for topic, partitions in metadata.by_topic.items():
        # Below the topic's own min.insync.replicas where it is known, else below the assumed one.
        min_isr = known_min_isr.get(topic, assumed_min_isr)
        short = under_min_isr if topic in known_min_isr else under_assumed
        for p in partitions:
            key = (p.leader, p.replicas, p.isr)
            answer = judged.get(key)
            if answer is None:
                replicas = set(p.replicas)
                answer = judged[key] = (
                    p.leader not in live,
                    len(replicas) < len(p.replicas),
                    kafka.in_sync_count(p, live),
                    len(replicas),
                )
            gone, twice, in_sync, count = answer
            if gone:
                offline.append(f"{topic}[{p.id}]")
                continue
            if twice:
                repeated.append(f"{topic}[{p.id}]")
            if in_sync < count:
                under_replicated.append(f"{topic}[{p.id}]")
            if in_sync < min_isr:
                short.append(f"{topic}[{p.id}]")
    return offline, under_replicated, under_min_isr, under_assumed, repeated
