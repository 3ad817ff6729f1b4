"""Standby parity (client continuity row): does the standby hold what a failover needs?"""

import time
from types import SimpleNamespace

from drills import kafka
from drills.offsets import synced_offset_problem
from drills.probes.base import ProbeContext, ProbeResult, error, is_internal, listed
from scorecard.status import verdict


def _unverified(check, what: str, unverified: list[str]):
    try:
        return check()
    except kafka.UnsupportedApi as exc:
        unverified.append(f"{what}: {exc.reason}")
    except kafka.KafkaCallError as exc:
        unverified.append(f"{what}: {exc.reason}")
    return None


def standby_parity(ctx: ProbeContext, params: SimpleNamespace) -> ProbeResult:
    started = time.monotonic()
    if ctx.standby is None:
        return error(
            "this cluster has no standby registered: set one on the cluster, or mark this check not applicable"
        )
    timeout = params.timeout_seconds
    try:
        primary = kafka.cluster_metadata(ctx.connection, timeout=timeout)
    except kafka.KafkaCallError as exc:
        return error(f"primary: {exc.reason}")
    try:
        standby = kafka.cluster_metadata(ctx.standby, timeout=timeout)
    except kafka.KafkaCallError as exc:
        return error(f"standby {ctx.standby_name}: {exc.reason}")

    topics = sorted(t for t in primary.topics if not is_internal(t))
    missing_topics = [t for t in topics if t not in standby.topics]
    partition_mismatch = [
        {"topic": t, "primary": len(primary.topic_partitions(t)), "standby": len(standby.topic_partitions(t))}
        for t in topics
        if t in standby.topics and len(primary.topic_partitions(t)) != len(standby.topic_partitions(t))
    ]
    shared = [(p.topic, p.id) for p in primary.partitions if p.topic in standby.topics and not is_internal(p.topic)]
    shared = [key for key in shared if key[1] < len(standby.topic_partitions(key[0]))]
    unverified: list[str] = []

    config_mismatch = []
    compared = [t for t in topics if t in standby.topics]
    primary_configs = _unverified(
        lambda: kafka.topic_configs(ctx.connection, compared, timeout=timeout), "durability configs", unverified
    )
    standby_configs = primary_configs and _unverified(
        lambda: kafka.topic_configs(ctx.standby, compared, timeout=timeout), "durability configs", unverified
    )
    if primary_configs and standby_configs:
        for topic in compared:
            for key in ("min.insync.replicas", "unclean.leader.election.enable", "retention.ms"):
                a, b = primary_configs.get(topic, {}).get(key), standby_configs.get(topic, {}).get(key)
                if a != b:
                    config_mismatch.append({"topic": topic, "config": key, "primary": a, "standby": b})

    primary_acls = _unverified(lambda: kafka.acl_bindings(ctx.connection, timeout=timeout), "ACLs", unverified)
    standby_acls = primary_acls is not None and _unverified(
        lambda: kafka.acl_bindings(ctx.standby, timeout=timeout), "ACLs", unverified
    )
    missing_acls = sorted(set(primary_acls) - set(standby_acls)) if primary_acls and standby_acls else []

    try:
        primary_ends, _ = kafka.list_offsets(ctx.connection, shared, timeout=timeout)
        standby_ends, _ = kafka.list_offsets(ctx.standby, shared, timeout=timeout)
        group_gaps, group_rows = [], []
        for group in params.groups:
            on_primary = kafka.committed_offsets(ctx.connection, group=group, partitions=shared, timeout=timeout)
            on_standby = kafka.committed_offsets(ctx.standby, group=group, partitions=shared, timeout=timeout)
            for key, offset in sorted(on_primary.items()):
                if offset is None:
                    continue
                theirs = on_standby.get(key)
                gap = None if theirs is None else offset - theirs
                row = {
                    "group": group,
                    "partition": f"{key[0]}[{key[1]}]",
                    "primary": offset,
                    "standby": theirs,
                    "gap": gap,
                }
                group_rows.append(row)
                problem = synced_offset_problem(offset, theirs, max_lag=params.max_offset_lag)
                if problem:
                    group_gaps.append({**row, "problem": problem})
    except kafka.KafkaCallError as exc:
        return error(exc.reason)

    lag = {key: primary_ends[key] - standby_ends.get(key, 0) for key in primary_ends if key in standby_ends}
    replication_lag = sum(max(0, v) for v in lag.values())
    worst = sorted(lag.items(), key=lambda kv: -kv[1])[:10]

    fail = []
    if missing_topics:
        fail.append(f"{len(missing_topics)} topics missing on the standby")
    if partition_mismatch:
        fail.append(f"{len(partition_mismatch)} topics with a different partition count")
    if group_gaps:
        fail.append(f"{len(group_gaps)} committed offsets unusable on the standby ({group_gaps[0]['problem']})")
    warn = []
    if config_mismatch:
        warn.append(f"{len(config_mismatch)} topic configs differ")
    if missing_acls:
        warn.append(f"{len(missing_acls)} ACLs missing on the standby")
    if replication_lag > params.max_replication_lag:
        warn.append(f"replication lag {replication_lag} records > {params.max_replication_lag}")
    if unverified:
        warn.append(f"not verifiable: {'; '.join(unverified)}")
    status = verdict(fail=fail, warn=warn)
    summary = "; ".join(fail + warn) or (
        f"standby {ctx.standby_name} matches {len(topics)} topics; replication lag {replication_lag} records"
    )
    return ProbeResult(
        status,
        summary[:500],
        {
            "standby": ctx.standby_name,
            "topics_compared": len(topics),
            "missing_topics": listed(missing_topics),
            "partition_count_mismatch": listed(partition_mismatch),
            "config_mismatch": listed(config_mismatch),
            "missing_acls": listed(missing_acls),
            "group_offsets": listed(group_rows),
            "group_offset_gaps": listed(group_gaps),
            "replication_lag_records": replication_lag,
            "largest_partition_lag": [{"partition": f"{t}[{p}]", "records": v} for (t, p), v in worst if v > 0],
            "unverified": unverified,
            "elapsed_s": round(time.monotonic() - started, 3),
        },
    )
