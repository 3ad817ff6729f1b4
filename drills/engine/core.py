"""The drill engine: sustained writes and reads on the probe topic while a fault is injected,
then recovery, then validation (produce-consume-validate, DESIGN.md section 5).

The engine knows nothing of the database: the runner gives it hooks to report progress, to
ask whether a person pressed Abort, to persist the recovery plan before the fault, and to
record events. Recovery runs in a `finally`: no path leaves the cluster disrupted.
"""

import contextlib
import logging
import time
import uuid
from types import SimpleNamespace

from drills import kafka
from drills.actuators import Action, ActuatorError
from drills.engine.base import Clock, DrillAborted, DrillResult, Hooks, PreflightRefused, Window
from drills.engine.client_faults import ConsumerRestart, standby_cutover
from drills.engine.figures import Observed, drill_figures, drill_outcome
from drills.engine.guardrails import Guardrails
from drills.engine.traffic import MetadataWatcher, Traffic
from drills.models import Outcome
from drills.probe_topic import probe_topic_ready
from drills.scenarios import FaultPlan
from drills.verify import percentile
from scorecard.catalog import Scenario

log = logging.getLogger(__name__)

TICK = 0.1  # seconds between guardrail evaluations
PROGRESS_EVERY = 0.5
ABORT_CHECK_EVERY = 0.5


class DrillEngine:
    """Runs one fault plan: baseline, fault, hold under guardrails, recovery, settle, validate."""

    def __init__(
        self,
        *,
        connection: kafka.ConnectionSettings,
        actuator,
        plan: FaultPlan,
        config: SimpleNamespace,
        hooks: Hooks,
        standby: kafka.ConnectionSettings | None = None,
        expected_brokers: int | None = None,
    ):
        self.connection = connection
        self.expected_brokers = expected_brokers
        self.standby = standby
        self.actuator = actuator
        self.plan = plan
        self.config = config
        self.hooks = hooks
        self.run_id = uuid.uuid4().hex[:12]
        self.clock = Clock()
        self.guardrails = Guardrails(config)
        self.phase = "setup"
        self.fault = Window()
        self.recovery = Window()
        self.tripped = ""
        self.tripped_ns: int | None = None
        self.manual_steps = 0
        self.group_figures: dict = {}
        self.resume_ns: int | None = None
        self.traffic: Traffic | None = None
        self.watcher: MetadataWatcher | None = None
        self.probe_topic: dict = {}
        self.baseline: dict = {}  # brokers and probe-topic leaders before the fault

    def event(self, kind: str, **detail) -> None:
        detail["at_s"] = round(self.clock.elapsed(), 3)
        self.hooks.event(kind, detail)

    # --- guardrails and progress ----------------------------------------------------------

    def guardrail_state(self) -> dict:
        return self.guardrails.state(
            elapsed_s=self.clock.elapsed(),
            consumer_lag=self.traffic.consumer_lag,
            healthy_brokers=self.watcher.healthy_brokers(),
        )

    def _progress(self, guardrail_state: dict) -> None:
        self.hooks.progress(
            {
                "phase": self.phase,
                "elapsed_s": round(self.clock.elapsed(), 1),
                **self.traffic.counts(),
                "guardrails": guardrail_state,
                "tripped": self.tripped,
                "producer_fatal_errors": len(self.traffic.fatal_errors),
            }
        )

    def hold(self, seconds: float) -> None:
        """Wait while evaluating guardrails; raise DrillAborted when one trips."""
        until = time.monotonic() + seconds
        last_progress = last_abort_check = 0.0
        while time.monotonic() < until:
            state = self.guardrail_state()
            tripped = self.guardrails.tripped(state)
            now = time.monotonic()
            if not tripped and now - last_abort_check >= ABORT_CHECK_EVERY:
                last_abort_check = now
                if self.hooks.should_abort():
                    tripped = "abort"
            if tripped:
                self.tripped, self.tripped_ns = tripped, time.time_ns()
                self.event("guardrail_tripped", guardrail=tripped, state=state.get(tripped))
                self._progress(state)
                raise DrillAborted(tripped)
            if now - last_progress >= PROGRESS_EVERY:
                last_progress = now
                self._progress(state)
            time.sleep(TICK)

    # --- faults and recovery ----------------------------------------------------------------

    def perform(self, action: Action) -> None:
        """Run one actuator step; the event records when its command started and returned."""
        started = time.time_ns()
        try:
            detail = self.actuator.perform(action) or {}
        except ActuatorError as exc:
            self.event(
                "action_failed",
                action=action.as_dict(),
                description=action.describe(),
                started_at_s=self.clock.seconds(started),
                returned_at_s=self.clock.seconds(time.time_ns()),
                error=str(exc),
            )
            raise
        returned = time.time_ns()
        if getattr(self.actuator, "kind", "") == "manual":
            self.manual_steps += 1
        self.event(
            "action",
            action=action.as_dict(),
            description=action.describe(),
            started_at_s=self.clock.seconds(started),
            returned_at_s=self.clock.seconds(returned),
            seconds=round((returned - started) / 1e9, 3),
            **detail,
        )

    def inject(self, restart: ConsumerRestart | None) -> None:
        """Apply the fault. It counts from when the actuator confirmed it: the last command
        returned successfully (a client fault is confirmed as soon as the engine applied it)."""
        self.phase = "fault"
        self.hooks.recovery_plan([a.as_dict() for a in self.plan.recover])
        self.fault.started_ns = time.time_ns()
        self.event("fault", description=self.plan.description)
        if self.plan.client_fault == Scenario.LAG_CATCH_UP:
            self.traffic.pause_reading()
        elif self.plan.client_fault == Scenario.CONSUMER_RESTART:
            restart.kill()
        elif self.plan.client_fault == Scenario.STANDBY_CUTOVER:
            self.group_figures, self.resume_ns = standby_cutover(self.connection, self.standby, self.config)
            self.event(Scenario.STANDBY_CUTOVER, **self.group_figures)
        for action in self.plan.inject:
            self.perform(action)
        self.fault.confirmed_ns = time.time_ns()
        self.event("fault_confirmed")

    def recover(self) -> None:
        """Undo every injected action, in plan order; keep going past a failing step. The
        recovery is confirmed when every step returned successfully."""
        if self.recovery.started_ns is not None or self.fault.started_ns is None:
            return
        self.phase = "recovery"
        self.recovery.started_ns = time.time_ns()
        self.traffic.recovered_ns = self.recovery.started_ns
        self.traffic.resume_reading()
        errors = []
        for action in self.plan.recover:
            try:
                self.perform(action)
            except ActuatorError as exc:
                errors.append(f"{action.describe()}: {exc}")
                self.event("recovery_failed", action=action.as_dict(), error=str(exc))
        if errors:
            raise ActuatorError("; ".join(errors))
        self.recovery.confirmed_ns = time.time_ns()
        self.event("recovery_confirmed")

    # --- pre-flight ---------------------------------------------------------------------------

    def preflight_cluster(self) -> None:
        """Refuse to disrupt a cluster that is already unhealthy: missing brokers, leaderless
        or under-replicated partitions."""
        metadata = kafka.cluster_metadata(self.connection, timeout=10, racks=False)
        offline = [f"{p.topic}[{p.id}]" for p in metadata.leaderless()]
        under = [f"{p.topic}[{p.id}]" for p in metadata.under_replicated()]
        problems = []
        if self.expected_brokers and len(metadata.brokers) < self.expected_brokers:
            problems.append(f"{len(metadata.brokers)} of {self.expected_brokers} expected brokers answer")
        if offline:
            problems.append(f"{len(offline)} partitions without a live leader ({', '.join(offline[:3])})")
        if under:
            problems.append(f"{len(under)} under-replicated partitions ({', '.join(under[:3])})")
        if problems:
            raise PreflightRefused("the cluster is unhealthy before the fault: " + "; ".join(problems))

    def preflight_baseline(self) -> None:
        """Refuse when baseline writes, once the producer is up (after its first acknowledgement),
        failed or ran beyond the SLO (p99): a fault on top would measure the wrong thing."""
        sent = self.traffic.snapshot()
        reported = [i for i, acked_ns in enumerate(sent.acked_ns) if acked_ns]
        first_ack = min((sent.acked_ns[i] for i in reported if i not in sent.errors), default=None)
        if first_ack is None:
            raise PreflightRefused("no baseline write was acknowledged")
        steady = [i for i in reported if sent.sent_ns[i] >= first_ack]
        failed = sum(1 for i in steady if i in sent.errors)
        p99 = percentile([(sent.acked_ns[i] - sent.sent_ns[i]) / 1e6 for i in steady if i not in sent.errors], 0.99)
        slo = self.config.latency_slo_ms
        if failed or p99 is None or p99 > slo:
            raise PreflightRefused(
                f"baseline writes are not healthy: {failed} failed and produce p99 {p99} ms against the "
                f"{slo:g} ms SLO, over {len(steady)} records"
            )
        self.event("preflight_passed", records=len(steady), produce_p99_ms=round(p99, 1))

    # --- the run ----------------------------------------------------------------------------

    def run(self) -> DrillResult:
        c = self.config
        self.clock = Clock()
        try:
            self.preflight_cluster()
        except PreflightRefused as exc:
            self.event("refused", reason=str(exc))
            return DrillResult.refused(str(exc))
        topic = probe_topic_ready(self.connection, name=c.topic, replication_factor=c.replication_factor, timeout=10)
        self.probe_topic = topic.as_dict()
        self.event("probe_topic", **self.probe_topic)
        partitions = [p.id for p in topic.partitions]
        self.baseline = {"brokers": len(topic.metadata.brokers), "leaders": self.probe_topic["leaders"]}
        start_keys, failures = kafka.list_offsets(self.connection, [(c.topic, p) for p in partitions], timeout=10)
        if failures:
            raise kafka.KafkaCallError(f"partitions without an answering leader before the fault: {failures}")
        self.traffic = Traffic(
            self.connection,
            config=c,
            partitions=partitions,
            start={p: o for (_, p), o in start_keys.items()},
            run_id=self.run_id,
            clock=self.clock,
            event=self.event,
            on_report=self.guardrails.outcome,
        )
        self.watcher = MetadataWatcher(self.connection, topic=c.topic, clock=self.clock)
        self.traffic.begin()
        self.watcher.begin()
        restart = None
        if self.plan.client_fault == Scenario.CONSUMER_RESTART:
            restart = ConsumerRestart(
                self.connection, topic=c.topic, group=f"krs-drill-{self.run_id}", event=self.event
            )
        error = refused = ""
        try:
            try:
                self.phase = "baseline"
                self.event("phase", phase="baseline")
                if restart is not None:
                    restart.start()
                self.hold(c.baseline_seconds)
                self.preflight_baseline()
                self.inject(restart)
                self.hold(c.fault_seconds)
            except DrillAborted:
                pass
            except PreflightRefused as exc:
                refused = str(exc)
                self.event("refused", reason=refused)
            except (ActuatorError, kafka.KafkaCallError) as exc:
                error = str(exc)
                self.event("error", error=error)
            finally:
                try:
                    self.recover()
                except ActuatorError as exc:
                    error = error or f"recovery failed: {exc}"
            if restart is not None and self.fault.confirmed_ns is not None:
                restart.resume(within=c.settle_seconds + 15)
                self.group_figures, self.resume_ns = restart.figures, restart.resume_ns
            self.phase = "settle"
            self.event("phase", phase="settle")
            # Recovery already ran: an abort during settling only shortens the observation.
            with contextlib.suppress(DrillAborted):
                self.hold(c.settle_seconds)
        finally:
            if restart is not None:
                restart.close()
            self.phase = "validate"
            self.traffic.end()
            self.watcher.end()
        return self._result(error, refused)

    def _result(self, error: str, refused: str = "") -> DrillResult:
        sent = self.traffic.snapshot()
        try:
            read_back = self.traffic.read_back(sent)
        except kafka.KafkaCallError as exc:
            read_back = kafka.ReadRecords()
            error = error or f"validation read failed: {exc.reason}"
        figures, timeline = drill_figures(
            Observed(
                run_id=self.run_id,
                clock=self.clock,
                sent=sent,
                read_back=read_back,
                samples=self.watcher.samples,
                fault=self.fault,
                recovery=self.recovery,
                baseline=self.baseline,
                scenario=self.plan.scenario,
                tripped_ns=self.tripped_ns,
                client_fault=self.plan.client_fault,
                group_figures=self.group_figures,
                resume_ns=self.resume_ns or self.traffic.resumed_ns,
                fatal_errors=self.traffic.fatal_errors,
                manual_steps=self.manual_steps,
                guardrails=self.guardrails.limits(),
                polls=self.traffic.polls.as_dict(),
            ),
            self.config,
        )
        figures["probe_topic"] = self.probe_topic
        if refused:
            figures["refused"] = refused
            return DrillResult(Outcome.REFUSED, figures, timeline, "", "", self.manual_steps)
        outcome, reason = drill_outcome(figures, tripped=self.tripped, error=error)
        if reason:
            figures["inconclusive"] = reason
            self.event("inconclusive", reason=reason)
        return DrillResult(outcome, figures, timeline, self.tripped, error, self.manual_steps)
