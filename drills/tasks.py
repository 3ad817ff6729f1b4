"""Celery tasks: thin adapters that take ids, claim the run and call services."""

import logging
import socket

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from drills import kafka
from drills.probes import PROBES, ParamError, ProbeResult
from scorecard import services
from scorecard.models import Check, Cluster

log = logging.getLogger(__name__)


def connection_settings(cluster: Cluster) -> kafka.ConnectionSettings:
    return kafka.ConnectionSettings(
        bootstrap_servers=cluster.bootstrap_servers,
        security_protocol=cluster.security_protocol,
        sasl_mechanism=cluster.sasl_mechanism,
        sasl_username=cluster.sasl_username,
        sasl_password=cluster.sasl_password,
        ssl_ca_pem=cluster.ssl_ca_pem,
    )


def probe_run(check: Check) -> ProbeResult:
    """Run the check's probe; bad parameters and failed Kafka calls come back as ERROR."""
    cluster = check.row.scorecard.cluster
    probe, parse = PROBES[check.kind]
    params = dict(check.params)
    if check.kind == "cluster_health" and cluster.expected_brokers:
        params.setdefault("expected_brokers", cluster.expected_brokers)
    try:
        parsed = parse(params)
    except ParamError as exc:
        return ProbeResult("ERROR", f"invalid parameter {exc}", {"error": str(exc), "parameter": exc.name})
    try:
        return probe(connection_settings(cluster), parsed)
    except kafka.KafkaCallError as exc:
        return ProbeResult("ERROR", exc.reason[:500], {"error": exc.reason})


@shared_task(name="drills.tasks.run_check", acks_late=True)
def run_check(run_id: int) -> None:
    worker = f"celery@{socket.gethostname()}"
    run = services.check_run_claim(run_id=run_id, worker=worker)
    if run is None:
        log.info("run %s already claimed or gone; nothing to do", run_id)
        return
    try:
        result = probe_run(run.check_obj)
    except SoftTimeLimitExceeded:
        result = ProbeResult("ERROR", "the probe exceeded the task time limit", {"error": "task time limit"})
    except Exception as exc:  # a bug must still leave evidence, not a run stuck in RUNNING
        log.exception("probe of run %s crashed", run_id)
        result = ProbeResult("ERROR", f"the probe crashed: {type(exc).__name__}", {"error": type(exc).__name__})
    services.check_run_finish(
        run=run,
        status=result.status,
        summary=result.summary,
        measurements=result.measurements,
        collected_by=f"{worker} ({run.requested_by})",
    )


@shared_task(name="drills.tasks.enqueue_due_checks")
def enqueue_due_checks() -> int:
    """Beat calls this every tick: queue every check whose interval has passed."""
    return len(services.checks_enqueue_due(requested_by="schedule"))
