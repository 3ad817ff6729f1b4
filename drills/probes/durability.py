"""Durability config (durability row): replication factor, min.insync.replicas and unclean
leader election of every topic, and the broker defaults new topics inherit."""

import time
from types import SimpleNamespace

from drills import kafka
from drills.probes.base import ProbeContext, ProbeResult, error, is_internal, listed, unsupported
from scorecard.status import verdict


def _problems(rf: int, config: dict, params: SimpleNamespace, *, prefix: str = "") -> list[str]:
    problems = []
    if rf < params.min_replication_factor:
        problems.append(f"{prefix}replication factor {rf} < {params.min_replication_factor}")
    min_isr = config.get("min.insync.replicas")
    if min_isr is None or not str(min_isr).isdigit():
        problems.append(f"{prefix}min.insync.replicas not reported")
    else:
        if int(min_isr) < params.min_insync_replicas:
            problems.append(f"{prefix}min.insync.replicas {min_isr} < {params.min_insync_replicas}")
        if int(min_isr) >= rf:
            problems.append(
                f"{prefix}min.insync.replicas {min_isr} >= replication factor {rf}: one lost replica stops writes"
            )
    unclean = str(config.get("unclean.leader.election.enable", "")).lower()
    if unclean == "true":
        problems.append(f"{prefix}unclean.leader.election.enable is true")
    elif unclean != "false":
        problems.append(f"{prefix}unclean.leader.election.enable not reported")
    return problems


def durability_config(ctx: ProbeContext, params: SimpleNamespace) -> ProbeResult:
    started = time.monotonic()
    timeout = params.timeout_seconds
    try:
        metadata = kafka.cluster_metadata(ctx.connection, timeout=timeout)
        topics = sorted(t for t in metadata.topics if params.include_internal or not is_internal(t))
        topic_configs = kafka.topic_configs(ctx.connection, topics, timeout=timeout)
        broker_configs = kafka.broker_configs(ctx.connection, sorted(metadata.broker_ids), timeout=timeout)
    except kafka.UnsupportedApi as exc:
        return unsupported(exc)
    except kafka.KafkaCallError as exc:
        return error(exc.reason, elapsed_s=round(time.monotonic() - started, 3))
    if topics and not any(topic_configs.get(t) for t in topics):
        # Some platforms answer DescribeConfigs with no entries at all: nothing can be judged.
        return unsupported(kafka.UnsupportedApi("DescribeConfigs", "the cluster answered with no config entries"))

    violations = []
    by_topic = metadata.by_topic
    distinct: dict[tuple[int, ...], int] = {}  # replica tuples are shared: count each one's brokers once
    for topic in topics:
        rf = min(
            (
                distinct.get(p.replicas) or distinct.setdefault(p.replicas, len(set(p.replicas)))
                for p in by_topic[topic]
            ),
            default=0,
        )
        problems = _problems(rf, topic_configs.get(topic, {}), params)
        if problems:
            violations.append({"topic": topic, "replication_factor": rf, "problems": problems})
    broker_violations = []
    for broker_id, config in sorted(broker_configs.items()):
        rf = int(config.get("default.replication.factor", "0") or 0)
        problems = _problems(rf, config, params, prefix="default ")
        if problems:
            broker_violations.append({"broker": broker_id, "problems": problems})

    status = verdict(fail=violations or broker_violations)
    summary = f"{len(violations)} of {len(topics)} topics violate the durability policy" + (
        f"; broker defaults violate it on {len(broker_violations)} brokers" if broker_violations else ""
    )
    return ProbeResult(
        status,
        summary,
        {
            "policy": {
                "min_replication_factor": params.min_replication_factor,
                "min_insync_replicas": params.min_insync_replicas,
                "unclean_leader_election": False,
            },
            "topics_checked": len(topics),
            "violating_topics": len(violations),
            "violations": listed(violations),
            "broker_violations": broker_violations,
            "kafka_requests": metadata.requests + 1 + len(metadata.brokers),
            "elapsed_s": round(time.monotonic() - started, 3),
        },
    )
