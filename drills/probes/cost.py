"""Cost model (cost row): what the resilient topology costs per month, from metadata and
measured throughput, against the monthly budget. The evidence shows the arithmetic."""

import time
from dataclasses import dataclass
from types import SimpleNamespace

from drills import kafka
from drills.probes.base import ProbeContext, ProbeResult, error, is_internal, listed
from scorecard.status import verdict

# One month for transfer and for hours: 8,760 h a year / 12.
HOURS_PER_MONTH = 730
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600
SIZE_SAMPLE_PARTITIONS = 20
SIZE_SAMPLE_RECORDS = 50


@dataclass(frozen=True)
class PartitionLoad:
    """One partition's bytes per second on the wire and where its replicas live."""

    name: str
    bytes_per_s: float
    leader_zone: str | None
    follower_zones: tuple[str | None, ...]


def share_elsewhere(zone: str | None, clients: list[str], zones: list[str]) -> float:
    """The share of clients outside `zone`: clients in the named zones (equal shares), or spread
    evenly over the brokers' zones when none are named."""
    where = clients or zones
    return sum(1 for z in where if z != zone) / len(where) if where else 0.0


def monthly_cost(
    loads: list[PartitionLoad],
    *,
    zones: list[str],
    brokers: int,
    standby_brokers: int,
    params: SimpleNamespace,
) -> dict:
    """Every cost line of the month with its arithmetic, in $ (DESIGN.md section 4)."""
    consumer_zones = params.consumer_zones or zones
    producer_bps = sum(
        load.bytes_per_s * share_elsewhere(load.leader_zone, params.producer_zones, zones) for load in loads
    )
    replication_bps = sum(
        load.bytes_per_s * sum(1 for z in load.follower_zones if z != load.leader_zone) for load in loads
    )
    consumer_bps = 0.0
    for load in loads:
        replicas = {load.leader_zone, *load.follower_zones}
        # With fetch-from-follower (KIP-392) a consumer reads a replica in its own zone when there is one.
        crossing = [
            z for z in consumer_zones if not (params.fetch_from_follower and z in replicas) and z != load.leader_zone
        ]
        consumer_bps += (
            load.bytes_per_s * params.consumer_fanout * (len(crossing) / len(consumer_zones) if consumer_zones else 0)
        )
    price_gb, price_hour = params.price_cross_zone_gb, params.price_broker_hour
    lines, costs = [], {}
    for key, label, bps in (
        ("producer_to_leader", "producer to leader", producer_bps),
        ("replication", "replication to followers", replication_bps),
        ("leader_to_consumer", "leader to consumers", consumer_bps),
    ):
        gb = bps * SECONDS_PER_MONTH / 1e9
        costs[key] = round(gb * price_gb, 2)
        lines.append(
            f"cross-zone {label}: {bps / 1e6:.6f} MB/s x {SECONDS_PER_MONTH:,} s = {gb:,.3f} GB x ${price_gb:g}/GB "
            f"= ${costs[key]:,.2f}"
        )
    for key, label, count in (("brokers", "brokers", brokers), ("standby", "standby brokers", standby_brokers)):
        costs[key] = round(count * HOURS_PER_MONTH * price_hour, 2)
        lines.append(f"{label}: {count} x {HOURS_PER_MONTH} h x ${price_hour:g}/h = ${costs[key]:,.2f}")
    costs["total"] = round(sum(costs.values()), 2)
    lines.append(f"total: ${costs['total']:,.2f} per month against a budget of ${params.monthly_budget:,.2f}")
    gb = {
        k: round(v * SECONDS_PER_MONTH / 1e9, 3)
        for k, v in (("producer", producer_bps), ("replication", replication_bps), ("consumer", consumer_bps))
    }
    return {"costs": costs, "lines": lines, "gb_month": gb}


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
    record_bytes = 0.0
    if busiest:
        try:
            sample = kafka.sample_wire_size(
                ctx.connection,
                starts={k: max(first[k], second[k] - SIZE_SAMPLE_RECORDS) for k in busiest},
                per_partition=SIZE_SAMPLE_RECORDS,
                timeout=timeout,
            )
            sizes = [s.size for s in sample.records]
            record_bytes = sample.wire_bytes_per_record or 0.0
        except kafka.KafkaCallError:
            pass  # no sample: the wire size stays unknown and a finding says so
    value_bytes = sum(sizes) / len(sizes) if sizes else 0.0
    ingress_bps = sum(rates.values()) * record_bytes

    zone_of = {b.id: b.rack for b in metadata.brokers}
    zones = sorted({z for z in zone_of.values() if z})
    single_zone, loads = [], []
    for p in partitions:
        replicas = set(p.replicas)
        replica_zones = {zone_of.get(r) for r in replicas} - {None}
        if len(replicas) > 1 and zones and len(replica_zones) < min(len(replicas), len(zones)):
            single_zone.append(f"{p.topic}[{p.id}]")
        loads.append(
            PartitionLoad(
                f"{p.topic}[{p.id}]",
                rates.get((p.topic, p.id), 0.0) * record_bytes,
                zone_of.get(p.leader),
                tuple(zone_of.get(r) for r in replicas - {p.leader}),
            )
        )

    standby_brokers, standby_source = params.standby_brokers, "parameter standby_brokers"
    if ctx.standby is not None:
        try:
            standby_brokers = len(kafka.cluster_metadata(ctx.standby, timeout=timeout).brokers)
            standby_source = f"brokers of standby {ctx.standby_name}"
        except kafka.KafkaCallError as exc:
            standby_source = f"parameter standby_brokers (standby unreachable: {exc.reason})"
    month = monthly_cost(
        loads, zones=zones, brokers=len(metadata.brokers), standby_brokers=standby_brokers, params=params
    )
    costs, total = month["costs"], month["costs"]["total"]
    arithmetic = [
        f"ingress: {sum(rates.values()):.1f} records/s x {record_bytes:.1f} B on the wire per record ("
        + (
            f"measured fetching {len(sizes)} of them as the producers batched and compressed them; "
            f"{value_bytes:.0f} B key and value"
            if sizes
            else "no record written in the sample to measure"
        )
        + f") = {ingress_bps / 1e6:.4f} MB/s (sampled over {interval:.1f} s)",
        *month["lines"][:-2],
        month["lines"][-2] + f" ({standby_source})",
        month["lines"][-1],
    ]
    findings = []
    if not zones:
        findings.append("brokers report no rack: zones unknown, cross-zone traffic cannot be placed")
    if single_zone:
        findings.append(f"{len(single_zone)} partitions keep replicas in fewer zones than they could")
    if rates and any(rates.values()) and not record_bytes:
        findings.append("bytes on the wire could not be measured: no record could be fetched; traffic costs left out")
    status = verdict(fail=total > params.monthly_budget, warn=findings or total > 0.8 * params.monthly_budget)
    share = f"{total / params.monthly_budget:.0%} of" if params.monthly_budget else "against"
    return ProbeResult(
        status,
        f"${total:,.2f}/month, {share} the ${params.monthly_budget:,.0f} budget; "
        f"{month['gb_month']['replication']:.1f} GB cross-zone replication, {len(zones)} zones",
        {
            "zones": zones,
            "brokers_per_zone": {z: sum(1 for v in zone_of.values() if v == z) for z in zones},
            "ingress_records_per_s": round(sum(rates.values()), 3),
            "record_bytes_avg": round(value_bytes, 1),
            "wire_bytes_per_record": round(record_bytes, 1),
            "ingress_bytes_per_s": round(ingress_bps, 1),
            "cross_zone_producer_gb_month": month["gb_month"]["producer"],
            "cross_zone_replication_gb_month": month["gb_month"]["replication"],
            "consumer_cross_zone_gb_month": month["gb_month"]["consumer"],
            "cost_producer_to_leader": costs["producer_to_leader"],
            "cost_replication": costs["replication"],
            "cost_consumer_fetch": costs["leader_to_consumer"],
            "cost_brokers": costs["brokers"],
            "cost_standby": costs["standby"],
            "cost_total": total,
            "monthly_budget": params.monthly_budget,
            "arithmetic": arithmetic,
            "partitions_not_spread_across_zones": listed(single_zone),
            "findings": findings,
            "sample_seconds": round(interval, 3),
            "elapsed_s": round(time.monotonic() - started, 3),
        },
    )
