"""Celery tasks: thin adapters that take ids, claim the run and call services."""

import logging
import socket

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded

from drills import kafka
from drills import params as probe_params
from drills.probes import PROBES, ProbeContext, ProbeResult
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


def probe_context(cluster: Cluster) -> ProbeContext:
    standby = cluster.standby
    return ProbeContext(
        cluster_id=cluster.pk,
        connection=connection_settings(cluster),
        expected_brokers=cluster.expected_brokers,
        standby=connection_settings(standby) if standby else None,
        standby_name=standby.name if standby else None,
    )


def probe_run(check: Check) -> ProbeResult:
    """Run the check's probe; bad parameters and failed Kafka calls come back as ERROR."""
    try:
        params = probe_params.parse(check.kind, check.params)
    except probe_params.ParamError as exc:
        return ProbeResult(
            "ERROR", f"invalid parameters: {exc}"[:500], {"error": str(exc), "parameter": exc.name, **exc.errors}
        )
    try:
        return PROBES[check.kind](probe_context(check.row.scorecard.cluster), params)
    except kafka.UnsupportedApi as exc:
        return ProbeResult("ERROR", exc.reason[:500], {"error": exc.reason, "missing_api": exc.api})
    except kafka.KafkaCallError as exc:
        return ProbeResult("ERROR", exc.reason[:500], {"error": exc.reason})


def execute_run(run_id: int) -> None:
    """Claim the run, probe, append evidence. Shared by on-demand and scheduled runs."""
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


@shared_task(name="drills.tasks.run_check", acks_late=True)
def run_check(run_id: int) -> None:
    execute_run(run_id)


@shared_task(bind=True, name="drills.tasks.run_scheduled_check", acks_late=True)
def run_scheduled_check(self, check_id: int) -> None:
    """Sent by beat (drills.beat.CheckScheduler) to the cluster's queue."""
    run = services.check_run_for_schedule(check_id=check_id, task_id=self.request.id or "")
    if run is not None:
        execute_run(run.pk)
