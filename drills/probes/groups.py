"""Consumer groups (client continuity row): committed offsets of the critical groups, lag in
records and seconds, and committed offsets still inside retention."""

import time
from types import SimpleNamespace

from drills import kafka
from drills.probes.base import ProbeContext, ProbeResult, error, is_internal, listed
from scorecard.status import verdict

LAG_SECONDS_SAMPLE = 50  # partitions whose lag age is measured by reading one record


def group_partitions(
    connection: kafka.ConnectionSettings, topics: list[str], *, timeout: float
) -> list[kafka.TopicPartitionKey]:
    """The partitions to look at: of the given topics, or of every non-internal topic."""
    metadata = kafka.cluster_metadata(connection, timeout=timeout)
    names = set(topics or (t for t in metadata.topics if not is_internal(t)))
    return [(p.topic, p.id) for p in metadata.partitions if p.topic in names and p.id >= 0]


def consumer_groups(ctx: ProbeContext, params: SimpleNamespace) -> ProbeResult:
    started = time.monotonic()
    if not params.groups:
        return error("no critical consumer groups configured: name them on this check, or mark it not applicable")
    timeout = params.timeout_seconds
    try:
        partitions = group_partitions(ctx.connection, params.topics, timeout=timeout)
        ends, end_failures = kafka.list_offsets(ctx.connection, partitions, timeout=timeout)
        starts, _ = kafka.list_offsets(ctx.connection, partitions, timeout=timeout, earliest=True)
        committed = {
            group: kafka.committed_offsets(ctx.connection, group=group, partitions=partitions, timeout=timeout)
            for group in params.groups
        }
    except kafka.KafkaCallError as exc:
        return error(exc.reason, elapsed_s=round(time.monotonic() - started, 3))

    now_ms = time.time() * 1000
    groups, fail, warn = [], [], []
    for group, offsets in committed.items():
        rows = []
        for key, offset in sorted(offsets.items()):
            if offset is None:
                continue
            end, log_start = ends.get(key), starts.get(key)
            rows.append(
                {
                    "partition": f"{key[0]}[{key[1]}]",
                    "committed": offset,
                    "log_start": log_start,
                    "end": end,
                    "lag": None if end is None else max(0, end - offset),
                    "below_log_start": log_start is not None and offset < log_start,
                }
            )
        if not rows:
            fail.append(f"{group}: no committed offset on any partition (consumers would reset)")
        # The age of the oldest unconsumed record is the lag in seconds.
        lagging = sorted((r for r in rows if r["lag"]), key=lambda r: -r["lag"])[:LAG_SECONDS_SAMPLE]
        if lagging:
            to_read = {}
            for r in lagging:
                topic, partition = r["partition"][:-1].rsplit("[", 1)
                to_read[(topic, int(partition))] = max(r["committed"], r["log_start"] or 0)
            try:
                samples = kafka.sample_records(ctx.connection, starts=to_read, per_partition=1, timeout=timeout)
            except kafka.KafkaCallError:
                samples = []
            ages = {f"{s.topic}[{s.partition}]": s.timestamp_ms for s in samples if s.timestamp_ms}
            for r in lagging:
                if r["partition"] in ages:
                    r["lag_seconds"] = round(max(0.0, (now_ms - ages[r["partition"]]) / 1000), 1)
        try:
            state, members = kafka.group_state(ctx.connection, group=group, timeout=timeout)
        except kafka.UnsupportedApi:
            state, members = "unknown (the cluster does not support DescribeGroups)", None
        except kafka.KafkaCallError as exc:
            state, members = f"unknown ({exc.reason})", None
        stale = [r["partition"] for r in rows if r["below_log_start"]]
        if stale:
            fail.append(f"{group}: committed offset below the log start on {', '.join(stale[:5])} (silent reset)")
        max_lag = max((r["lag"] or 0 for r in rows), default=0)
        max_lag_seconds = max((r.get("lag_seconds", 0) for r in rows), default=0)
        if max_lag > params.max_lag_records:
            warn.append(f"{group}: lag {max_lag} records > {params.max_lag_records}")
        if max_lag_seconds > params.max_lag_seconds:
            warn.append(f"{group}: lag {max_lag_seconds:.0f} s > {params.max_lag_seconds:g} s")
        groups.append(
            {
                "group": group,
                "state": state,
                "members": members,
                "committed_partitions": len(rows),
                "total_lag": sum(r["lag"] or 0 for r in rows),
                "max_lag": max_lag,
                "max_lag_seconds": max_lag_seconds,
                "partitions_below_log_start": stale,
                "partitions": listed(rows),
            }
        )
    status = verdict(fail=fail, warn=warn or end_failures)
    summary = "; ".join(fail + warn) or ", ".join(
        f"{g['group']}: {g['committed_partitions']} partitions, lag {g['total_lag']}" for g in groups
    )
    return ProbeResult(
        status,
        summary[:500],
        {
            "groups": groups,
            # The worst group's lag, for the trend.
            "max_lag_records": max((g["max_lag"] for g in groups), default=0),
            "findings": fail + warn,
            "unavailable_partitions": {f"{t}[{p}]": r for (t, p), r in end_failures.items()},
            "elapsed_s": round(time.monotonic() - started, 3),
        },
    )
