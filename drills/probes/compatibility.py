"""Client compatibility (client continuity row): API versions each broker advertises, read with
the protocol's ApiVersions request, against what the configured client features need."""

import time
from types import SimpleNamespace

from drills import kafka
from drills.probes.base import ProbeContext, ProbeResult, error
from drills.protocol import API_KEYS, ProtocolError, api_versions
from scorecard.status import verdict

# feature -> (API name, lowest version the feature needs)
REQUIREMENTS: dict[str, tuple[tuple[str, int], ...]] = {
    "idempotent_producer": (("InitProducerId", 0), ("Produce", 3)),
    "transactions": (
        ("InitProducerId", 0),
        ("AddPartitionsToTxn", 0),
        ("AddOffsetsToTxn", 0),
        ("EndTxn", 0),
        ("TxnOffsetCommit", 0),
        ("FindCoordinator", 1),
    ),
    "consumer_groups": (
        ("FindCoordinator", 0),
        ("JoinGroup", 0),
        ("SyncGroup", 0),
        ("Heartbeat", 0),
        ("LeaveGroup", 0),
        ("OffsetCommit", 2),
        ("OffsetFetch", 1),
    ),
    "kip848_consumer_protocol": (("ConsumerGroupHeartbeat", 0),),
}
# APIs the scorecard's own probes use, reported so an ERROR elsewhere is explained here.
PROBE_APIS = ("CreateTopics", "DescribeConfigs", "DescribeAcls", "ListGroups", "DescribeGroups", "DescribeCluster")


def client_compatibility(ctx: ProbeContext, params: SimpleNamespace) -> ProbeResult:
    started = time.monotonic()
    try:
        metadata = kafka.cluster_metadata(ctx.connection, timeout=params.timeout_seconds)
    except kafka.KafkaCallError as exc:
        return error(exc.reason)
    tls = ctx.connection.security_protocol.endswith("SSL")
    advertised: dict[int, dict[str, tuple[int, int]]] = {}
    unreachable = {}
    for broker in metadata.brokers:
        try:
            ranges = api_versions(
                broker.host, broker.port, timeout=params.timeout_seconds, tls=tls, ca_pem=ctx.connection.ssl_ca_pem
            )
        except (OSError, ProtocolError) as exc:
            unreachable[broker.id] = f"ApiVersions failed: {exc}"
            continue
        advertised[broker.id] = {r.name: (r.min_version, r.max_version) for r in ranges}
    if not advertised:
        return error(f"no broker answered ApiVersions: {next(iter(unreachable.values()), 'no brokers')}")

    gaps = []
    for feature in params.features:
        for api, needed in REQUIREMENTS[feature]:
            for broker_id, apis in sorted(advertised.items()):
                versions = apis.get(api)
                if versions is None:
                    gaps.append({"feature": feature, "broker": broker_id, "api": api, "problem": "not advertised"})
                elif versions[1] < needed:
                    gaps.append(
                        {
                            "feature": feature,
                            "broker": broker_id,
                            "api": api,
                            "problem": f"max version {versions[1]} < {needed}",
                        }
                    )
    lacking = sorted({api for apis in advertised.values() for api in PROBE_APIS if api not in apis})
    features_ok = sorted(set(params.features) - {g["feature"] for g in gaps})
    status = verdict(fail=gaps, warn=unreachable)
    summary = (
        f"{len(features_ok)} of {len(params.features)} client features supported by all {len(advertised)} brokers"
        + (f"; missing: {', '.join(sorted({g['api'] for g in gaps}))}" if gaps else "")
        + (f"; {len(unreachable)} brokers did not answer" if unreachable else "")
    )
    return ProbeResult(
        status,
        summary,
        {
            "features": params.features,
            "features_supported": features_ok,
            "gaps": gaps,
            "unreachable_brokers": unreachable,
            "apis_lacking_for_probes": lacking,
            "advertised": {
                str(b): {api: list(v) for api, v in sorted(apis.items(), key=lambda kv: API_KEYS.get(kv[0], 999))}
                for b, apis in advertised.items()
            },
            "elapsed_s": round(time.monotonic() - started, 3),
        },
    )
