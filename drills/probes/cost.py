"""Cost model (cost row): what the resilient topology costs per month, from metadata and
measured throughput, against the monthly budget. The evidence shows the arithmetic."""

import time
from types import SimpleNamespace

from drills import kafka
from drills.probes.base import ProbeContext, ProbeResult, error, is_internal, listed
from scorecard.status import verdict

SECONDS_PER_MONTH = 30 * 24 * 3600
HOURS_PER_MONTH = 730
SIZE_SAMPLE_PARTITIONS = 20
SIZE_SAMPLE_RECORDS = 50


def cost_model(ctx: ProbeContext, params: SimpleNamespace) -> ProbeResult:
    started = time.monotonic()
    timeout = params.timeout_seconds
    try:
        metadata = kafka.cluster_metadata(ctx.connection, timeout=timeout)
        partitions = [p for p in metadata.partitions if p.id >= 0 and not is_internal(p.topic)]
        keys = [(p.topic, p.id) for p in partitions]
        first, _ = kafka.list_offsets(ctx.connection, keys, timeout=timeout)
        t0 = time.monotonic()
        time.sleep(params.sample_seconds)
        second, _ = kafka.list_offsets(ctx.connection, keys, timeout=timeout)
        interval = time.monotonic() - t0
    except kafka.KafkaCallError as exc:
        return error(exc.reason, elapsed_s=round(time.monotonic() - started, 3))

    rates = {k: max(0, second[k] - first[k]) / interval for k in keys if k in first and k in second}
    busiest = sorted((k for k, r in rates.items() if r > 0), key=lambda k: -rates[k])[:SIZE_SAMPLE_PARTITIONS]
    sizes: list[int] = []
    if busiest:
        try:
            samples = kafka.sample_records(
                ctx.connection,
                starts={k: max(first[k], second[k] - SIZE_SAMPLE_RECORDS) for k in busiest},
                per_partition=SIZE_SAMPLE_RECORDS,
                timeout=timeout,
            )
            sizes = [s.size for s in samples]
        except kafka.KafkaCallError:
            sizes = []
    record_bytes = sum(sizes) / len(sizes) if sizes else 0.0
    ingress_bps = sum(rates.values()) * record_bytes

    zone_of = {b.id: b.rack for b in metadata.brokers}
    zones = sorted({z for z in zone_of.values() if z})
    single_zone, cross_zone_bps = [], 0.0
    per_partition_bps = {k: r * record_bytes for k, r in rates.items()}
    for p in partitions:
        replicas = set(p.replicas)
        replica_zones = {zone_of.get(r) for r in replicas} - {None}
        if len(replicas) > 1 and zones and len(replica_zones) < min(len(replicas), len(zones)):
            single_zone.append(f"{p.topic}[{p.id}]")
        leader_zone = zone_of.get(p.leader)
        followers_elsewhere = sum(1 for r in replicas - {p.leader} if zone_of.get(r) != leader_zone)
        cross_zone_bps += per_partition_bps.get((p.topic, p.id), 0.0) * followers_elsewhere
    zone_count = max(1, len(zones))
    consumer_share = 0.0 if params.fetch_from_follower else (zone_count - 1) / zone_count
    consumer_bps = ingress_bps * params.consumer_fanout * consumer_share

    standby_brokers, standby_source = params.standby_brokers, "parameter standby_brokers"
    if ctx.standby is not None:
        try:
            standby_brokers = len(kafka.cluster_metadata(ctx.standby, timeout=timeout).brokers)
            standby_source = f"brokers of standby {ctx.standby_name}"
        except kafka.KafkaCallError as exc:
            standby_source = f"parameter standby_brokers (standby unreachable: {exc.reason})"

    gb = 1e9
    replication_gb = cross_zone_bps * SECONDS_PER_MONTH / gb
    consumer_gb = consumer_bps * SECONDS_PER_MONTH / gb
    replication_cost = replication_gb * params.price_cross_zone_gb
    consumer_cost = consumer_gb * params.price_cross_zone_gb
    broker_hours = len(metadata.brokers) * HOURS_PER_MONTH
    standby_hours = standby_brokers * HOURS_PER_MONTH
    broker_cost = broker_hours * params.price_broker_hour
    standby_cost = standby_hours * params.price_broker_hour
    total = replication_cost + consumer_cost + broker_cost + standby_cost
    arithmetic = [
        f"ingress: {sum(rates.values()):.1f} records/s x {record_bytes:.0f} B = {ingress_bps / 1e6:.4f} MB/s "
        f"(sampled over {interval:.1f} s)",
        f"cross-zone replication: {cross_zone_bps / 1e6:.4f} MB/s x {SECONDS_PER_MONTH} s = {replication_gb:.2f} GB "
        f"x ${params.price_cross_zone_gb:g}/GB = ${replication_cost:.2f}",
        f"consumer cross-zone fetch: {ingress_bps / 1e6:.4f} MB/s x fan-out {params.consumer_fanout:g} x "
        f"{consumer_share:.2f} = {consumer_gb:.2f} GB/month x ${params.price_cross_zone_gb:g}/GB "
        f"= ${consumer_cost:.2f}",
        f"brokers: {len(metadata.brokers)} x {HOURS_PER_MONTH} h x ${params.price_broker_hour:g}/h "
        f"= ${broker_cost:.2f}",
        f"standby: {standby_brokers} x {HOURS_PER_MONTH} h x ${params.price_broker_hour:g}/h = ${standby_cost:.2f} "
        f"({standby_source})",
        f"total: ${total:.2f} per month against a budget of ${params.monthly_budget:.2f}",
    ]
    findings = []
    if not zones:
        findings.append("brokers report no rack: zones unknown, cross-zone traffic cannot be placed")
    if single_zone:
        findings.append(f"{len(single_zone)} partitions keep replicas in fewer zones than they could")
    if ingress_bps and not sizes:
        findings.append("record size could not be sampled")
    status = verdict(fail=total > params.monthly_budget, warn=findings or total > 0.8 * params.monthly_budget)
    share = f"{total / params.monthly_budget:.0%} of" if params.monthly_budget else "against"
    return ProbeResult(
        status,
        f"${total:,.2f}/month, {share} the ${params.monthly_budget:,.0f} budget; "
        f"{replication_gb:.1f} GB cross-zone replication, {len(zones)} zones",
        {
            "zones": zones,
            "brokers_per_zone": {z: sum(1 for v in zone_of.values() if v == z) for z in zones},
            "ingress_records_per_s": round(sum(rates.values()), 3),
            "record_bytes_avg": round(record_bytes, 1),
            "ingress_bytes_per_s": round(ingress_bps, 1),
            "cross_zone_replication_gb_month": round(replication_gb, 3),
            "consumer_cross_zone_gb_month": round(consumer_gb, 3),
            "cost_replication": round(replication_cost, 2),
            "cost_consumer_fetch": round(consumer_cost, 2),
            "cost_brokers": round(broker_cost, 2),
            "cost_standby": round(standby_cost, 2),
            "cost_total": round(total, 2),
            "monthly_budget": params.monthly_budget,
            "arithmetic": arithmetic,
            "partitions_not_spread_across_zones": listed(single_zone),
            "findings": findings,
            "sample_seconds": round(interval, 3),
            "elapsed_s": round(time.monotonic() - started, 3),
        },
    )
