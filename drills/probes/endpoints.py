"""Bootstrap endpoints (client continuity row): every listed address alone."""

import time
from types import SimpleNamespace

from drills import kafka
from drills.probes.base import ProbeContext, ProbeResult
from scorecard.status import verdict
from scorecard.validators import parse_bootstrap_servers


def bootstrap_endpoints(ctx: ProbeContext, params: SimpleNamespace) -> ProbeResult:
    started = time.monotonic()
    results = [
        kafka.endpoint_check(ctx.connection, host=host, port=port, timeout=params.timeout_seconds)
        for host, port in parse_bootstrap_servers(ctx.connection.bootstrap_servers)
    ]
    alive = [r for r in results if r.error is None]
    dead = [r for r in results if r.error is not None]
    findings = [f"{r.address}: {r.error}" for r in dead]
    # A refused certificate (expired, unknown CA, wrong host) fails every client that meets it:
    # not a dead broker that others stand in for.
    rejected = [r.address for r in dead if r.cert_rejected]
    expired, expiring, open_to_anonymous = [], [], []
    for r in alive:
        if r.cert_days_left is not None:
            if r.cert_days_left <= 0:
                expired.append(r.address)
                findings.append(f"{r.address}: TLS certificate expired {abs(r.cert_days_left):.0f} days ago")
            elif r.cert_days_left < params.cert_warn_days:
                expiring.append(r.address)
                findings.append(
                    f"{r.address}: TLS certificate expires in {r.cert_days_left:.1f} days "
                    f"(on {r.cert_not_after[:10]}; warning at {params.cert_warn_days} days; subject {r.cert_subject})"
                )
        if r.unauthenticated_refused is False:
            open_to_anonymous.append(r.address)
            findings.append(f"{r.address}: accepts unauthenticated clients on a SASL cluster")
    status = verdict(fail=not alive or rejected or expired or open_to_anonymous, warn=dead or expiring)
    connect = [r.connect_ms for r in alive if r.connect_ms is not None]
    summary = f"{len(alive)} of {len(results)} bootstrap addresses answer" + (
        f"; slowest connect {max(connect):.1f} ms" if connect else ""
    )
    if findings:
        summary += f"; {findings[0]}"
    return ProbeResult(
        status,
        summary,
        {
            "endpoints": [
                {
                    "address": r.address,
                    "connect_ms": r.connect_ms,
                    "metadata_ms": r.metadata_ms,
                    "brokers_in_answer": r.brokers,
                    "error": r.error,
                    "cert_days_left": None if r.cert_days_left is None else round(r.cert_days_left, 1),
                    "cert_subject": r.cert_subject,
                    "cert_not_after": r.cert_not_after,
                    "cert_names": list(r.cert_names),
                    "cert_rejected": r.cert_rejected,
                    "unauthenticated_refused": r.unauthenticated_refused,
                }
                for r in results
            ],
            "alive": len(alive),
            "dead": len(dead),
            "findings": findings,
            "cert_rejected": len(rejected),
            "security_protocol": ctx.connection.security_protocol,
            "elapsed_s": round(time.monotonic() - started, 3),
        },
    )
