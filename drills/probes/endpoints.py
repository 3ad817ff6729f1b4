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
    expired, expiring, open_to_anonymous = [], [], []
    for r in alive:
        if r.cert_days_left is not None:
            if r.cert_days_left <= 0:
                expired.append(r.address)
                findings.append(f"{r.address}: certificate expired {abs(r.cert_days_left):.0f} days ago")
            elif r.cert_days_left < params.cert_warn_days:
                expiring.append(r.address)
                findings.append(f"{r.address}: certificate expires in {r.cert_days_left:.1f} days")
        if r.unauthenticated_refused is False:
            open_to_anonymous.append(r.address)
            findings.append(f"{r.address}: accepts unauthenticated clients on a SASL cluster")
    status = verdict(fail=not alive or expired or open_to_anonymous, warn=dead or expiring)
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
                    "unauthenticated_refused": r.unauthenticated_refused,
                }
                for r in results
            ],
            "alive": len(alive),
            "dead": len(dead),
            "findings": findings,
            "security_protocol": ctx.connection.security_protocol,
            "elapsed_s": round(time.monotonic() - started, 3),
        },
    )
