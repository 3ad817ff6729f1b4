"""Celery tasks: thin adapters that take ids, claim the run and call services."""

import logging
import socket
import threading
from types import SimpleNamespace

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from drills import kafka, scenarios
from drills import params as probe_params
from drills import services as drill_services
from drills.actuators import ActuatorError
from drills.engine import DrillEngine, Hooks
from drills.models import DrillRun
from drills.probes import PROBES, ProbeContext, ProbeResult
from drills.probes.base import error, unsupported
from scorecard import services
from scorecard.models import Check, Cluster

log = logging.getLogger(__name__)


def probe_context(cluster: Cluster) -> ProbeContext:
    standby = cluster.standby
    return ProbeContext(
        cluster_id=cluster.pk,
        connection=kafka.ConnectionSettings.for_cluster(cluster),
        expected_brokers=cluster.expected_brokers,
        standby=kafka.ConnectionSettings.for_cluster(standby) if standby else None,
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
        return unsupported(exc)
    except kafka.KafkaCallError as exc:
        return error(exc.reason)


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


# --- drills ---------------------------------------------------------------------------------


def _drill_hooks(run_id: int, brokers: dict[int, dict]) -> Hooks:
    abort = {"requested": False}

    def progress(state: dict) -> None:
        abort["requested"] = drill_services.drill_run_progress(run_id=run_id, progress=state)

    return Hooks(
        # The progress write (every 0.5 s) also reads the Abort flag; no second query needed.
        progress=progress,
        should_abort=lambda: abort["requested"],
        event=lambda kind, detail: drill_services.drill_run_event(run_id=run_id, kind=kind, detail=detail),
        recovery_plan=lambda actions: drill_services.drill_run_set_recovery_plan(
            run_id=run_id, plan={"actions": actions, "brokers": {str(k): v for k, v in brokers.items()}}
        ),
    )


class Heartbeat(threading.Thread):
    """Beats for the drill while this worker process lives, whatever the engine is waiting on."""

    def __init__(self, run_id: int, every: float = 2.0):
        super().__init__(name=f"drill-{run_id}-heartbeat", daemon=True)
        self.run_id, self.every, self.stopped = run_id, every, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            try:
                DrillRun.objects.filter(pk=self.run_id, state=DrillRun.State.RUNNING).update(
                    heartbeat_at=timezone.now()
                )
            except DatabaseError:
                log.warning("drill %s heartbeat failed", self.run_id)
        close_old_connections()


@shared_task(name="drills.tasks.run_drill", acks_late=True)
def run_drill(run_id: int) -> None:
    worker = f"celery@{socket.gethostname()}"
    run = drill_services.drill_run_claim(run_id=run_id, worker=worker)
    if run is None:
        log.info("drill %s already claimed or gone; nothing to do", run_id)
        return
    config = SimpleNamespace(**{**probe_params.defaults("drill"), **run.params})
    connection = kafka.ConnectionSettings.for_cluster(run.cluster)
    heartbeat = Heartbeat(run.pk)
    heartbeat.start()
    try:
        _run_drill(run, config, connection)
    finally:
        heartbeat.stopped.set()
        heartbeat.join(5)


def _run_drill(run: DrillRun, config: SimpleNamespace, connection: kafka.ConnectionSettings) -> None:
    try:
        metadata = kafka.cluster_metadata(connection, timeout=10, topic=config.topic)
        brokers = {b.id: {"host": b.host, "port": b.port, "rack": b.rack} for b in metadata.brokers}
        plan = scenarios.plan(run.scenario, metadata, topic=config.topic, broker=config.broker, zone=config.zone,
                              move_leaders=config.move_leaders)  # fmt: skip
        DrillRun.objects.filter(pk=run.pk).update(plan_description=plan.description[:500])
        result = DrillEngine(
            connection=connection,
            actuator=drill_services.build_actuator(run, brokers),
            plan=plan,
            config=config,
            hooks=_drill_hooks(run.pk, brokers),
            standby=kafka.ConnectionSettings.for_cluster(run.cluster.standby) if run.cluster.standby else None,
        ).run()
    except (kafka.KafkaCallError, scenarios.ScenarioError, ActuatorError) as exc:
        drill_services.drill_run_finish(run=run, outcome="aborted", figures={}, timeline=None, tripped="",
                                        error=str(exc), manual_steps=0)  # fmt: skip
        return
    except SoftTimeLimitExceeded:
        # The engine's finally already ran the recovery; record the deadline as the trip.
        drill_services.drill_run_finish(run=run, outcome="aborted", figures={}, timeline=None, tripped="deadline",
                                        error="the drill passed its deadline", manual_steps=0)  # fmt: skip
        return
    except Exception as exc:  # a bug must not leave the cluster disrupted or the run RUNNING
        log.exception("drill %s crashed", run.pk)
        run.refresh_from_db()
        errors = drill_services.drill_run_recovery_plan_execute(run=run, by="crash handler")
        drill_services.drill_run_finish(
            run=run, outcome="aborted", figures={}, timeline=None, tripped="",
            error=f"the drill engine crashed ({type(exc).__name__}); the recovery plan ran"
            + (f" with errors: {'; '.join(errors)}" if errors else ""),
            manual_steps=0,
        )  # fmt: skip
        return
    drill_services.drill_run_finish(
        run=run, outcome=result.outcome, figures=result.figures, timeline=result.timeline, tripped=result.tripped,
        error=result.error, manual_steps=result.manual_steps,
    )  # fmt: skip


@shared_task(name="drills.tasks.recover_drill", acks_late=True)
def recover_drill(run_id: int, stale_seconds: float | None = None) -> None:
    stale = settings.DRILL_HEARTBEAT_STALE_SECONDS if stale_seconds is None else stale_seconds
    drill_services.drill_run_recover_abandoned(
        run_id=run_id, stale_seconds=stale, worker=f"celery@{socket.gethostname()}"
    )


@shared_task(name="drills.tasks.drill_watchdog")
def drill_watchdog(stale_seconds: float | None = None) -> int:
    """Find drills whose worker died and send their recovery to the cluster's queue."""
    stale = settings.DRILL_HEARTBEAT_STALE_SECONDS if stale_seconds is None else stale_seconds
    abandoned = drill_services.drills_abandoned(stale_seconds=stale)
    for run in abandoned:
        log.warning("drill %s on %s lost its worker; sending its recovery", run.pk, run.cluster.name)
        recover_drill.apply_async(args=[run.pk, stale], queue=run.cluster.worker_queue)
    return len(abandoned)
