"""The drill engine: sustained writes and reads on the probe topic while a fault is injected,
then recovery, then validation (produce-consume-validate, DESIGN.md section 5).

The engine knows nothing of the database: the task gives it hooks to report progress, to
ask whether a person pressed Abort, to persist the recovery plan before the fault, and to
record events. Recovery runs in a `finally`: no path leaves the cluster disrupted.
"""

import contextlib
import logging
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

from drills import kafka
from drills.actuators import Action, ActuatorError
from drills.figures import TimelineRecord, latency_summary, read_rto_ms, write_rto_ms
from drills.scenarios import FaultPlan
from drills.verify import verify_sequences

log = logging.getLogger(__name__)

TICK = 0.1  # seconds between guardrail evaluations
METADATA_EVERY = 0.25
METADATA_TIMEOUT = 0.5
PROGRESS_EVERY = 0.5
DRAIN_SECONDS = 10.0


class DrillAborted(Exception):
    pass


@dataclass
class Hooks:
    progress: Callable[[dict], None] = lambda state: None
    should_abort: Callable[[], bool] = lambda: False
    event: Callable[[str, dict], None] = lambda kind, detail: None
    recovery_plan: Callable[[list[dict]], None] = lambda actions: None


@dataclass
class DrillResult:
    outcome: str  # passed, failed, aborted
    figures: dict
    timeline: dict
    tripped: str = ""
    error: str = ""
    manual_steps: int = 0


class DrillEngine:
    def __init__(self, *, connection: kafka.ConnectionSettings, actuator, plan: FaultPlan,
                 config: SimpleNamespace, hooks: Hooks, standby: kafka.ConnectionSettings | None = None):  # fmt: skip
        self.connection = connection
        self.standby = standby
        self.actuator = actuator
        self.plan = plan
        self.config = config
        self.hooks = hooks
        self.run_id = uuid.uuid4().hex[:12]
        self.start_ns = 0
        self.deliveries: list[kafka.Delivery] = []
        self.consumed: dict[tuple[int, int], int] = {}
        self.lock = threading.Lock()
        self.stop_producing = threading.Event()
        self.stop_consuming = threading.Event()
        self.stop_metadata = threading.Event()
        self.consumer_paused = threading.Event()
        self.phase = "setup"
        self.fault_ns: int | None = None
        self.recover_ns: int | None = None
        self.tripped = ""
        self.tripped_ns: int | None = None
        self.injected: list[Action] = []
        self.fatal_errors: list[dict] = []
        self.samples: list[dict] = []
        self.manual_steps = 0
        self.group_figures: dict = {}
        self.resume_ns: int | None = None

    # --- time ---------------------------------------------------------------------------

    def ms(self, ns: int | None) -> float | None:
        return None if ns is None else round((ns - self.start_ns) / 1e6, 3)

    def elapsed(self) -> float:
        return (time.time_ns() - self.start_ns) / 1e9

    def event(self, kind: str, **detail) -> None:
        detail["at_s"] = round(self.elapsed(), 3)
        self.hooks.event(kind, detail)

    # --- traffic threads ----------------------------------------------------------------

    def _produce(self, partitions: list[int]) -> None:
        producer = kafka.SustainedProducer(self.connection, topic=self.config.topic, timeout=self.config.fault_seconds
                                           + self.config.settle_seconds + 30)  # fmt: skip
        seqs = dict.fromkeys(partitions, 0)
        recreated_ns = 0
        next_stall_check = 0.0
        interval = self.config.interval_ms / 1000
        next_tick = time.monotonic()
        try:
            while not self.stop_producing.is_set():
                for p in partitions:
                    delivery = kafka.Delivery(partition=p, seq=seqs[p], sent_ns=time.time_ns())
                    seqs[p] += 1
                    with self.lock:
                        self.deliveries.append(delivery)
                    producer.send(delivery, self.run_id)
                producer.poll(0)
                reason = producer.fatal_error
                if reason is None and time.monotonic() >= next_stall_check:
                    next_stall_check = time.monotonic() + 0.5
                    reason = self._stalled(since_ns=recreated_ns)
                if reason:
                    # A producer in a fatal state never recovers: record it, replace it, go on.
                    self.fatal_errors.append({"at_s": round(self.elapsed(), 3), "error": reason})
                    self.event("producer_fatal", error=reason)
                    producer.recreate()
                    recreated_ns = time.time_ns()
                    self.event("producer_recreated")
                next_tick += interval
                delay = next_tick - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_tick = time.monotonic()
        finally:
            unreported = producer.close(DRAIN_SECONDS)
            if unreported:
                self.event("producer_unreported", records=unreported)

    def _stalled(self, *, since_ns: int) -> str | None:
        """After recovery, a producer with records outstanding and no acknowledgement for a while
        is stuck (an idempotent producer whose broker forgot its id keeps retrying forever)."""
        if self.recover_ns is None:
            return None
        stall_ns = int(max(2.0, 3 * self.config.latency_slo_ms / 1000) * 1e9)
        now = time.time_ns()
        if now - max(self.recover_ns, since_ns) < stall_ns:
            return None
        with self.lock:
            recent = self.deliveries[-5000:]
        last_ack = max((d.acked_ns for d in recent if d.acked_ns and not d.error), default=0)
        outstanding = any(d.acked_ns is None and d.sent_ns < now - stall_ns for d in recent)
        if outstanding and now - last_ack >= stall_ns:
            return f"no acknowledgement for {stall_ns / 1e9:.1f} s after recovery while records wait (producer stuck)"
        return None

    def _consume(self, start: dict[int, int]) -> None:
        reader = kafka.LiveReader(self.connection, topic=self.config.topic, start=start, timeout=10)
        try:
            while not self.stop_consuming.is_set():
                if self.consumer_paused.is_set():
                    time.sleep(0.02)
                    continue
                for record in reader.poll(0.05):
                    if record.run == self.run_id:
                        with self.lock:
                            self.consumed.setdefault((record.partition, record.seq), record.consumed_ns)
        finally:
            reader.close()

    def _watch_metadata(self) -> None:
        # A short timeout: a request stuck on a stopped broker must not blind the watcher for long.
        admin = kafka.admin_client(self.connection, timeout=METADATA_TIMEOUT)
        while not self.stop_metadata.wait(METADATA_EVERY):
            try:
                md = kafka.cluster_metadata(self.connection, timeout=METADATA_TIMEOUT, admin=admin, racks=False)
            except kafka.KafkaCallError as exc:
                self.samples.append({"t_ms": self.ms(time.time_ns()), "error": exc.reason})
                continue
            live = md.broker_ids
            offline = sum(1 for p in md.partitions if p.leader < 0 or p.leader not in live)
            under = sum(
                1
                for p in md.partitions
                if p.leader in live and len({r for r in p.isr if r in live}) < len(set(p.replicas))
            )
            self.samples.append({"t_ms": self.ms(time.time_ns()), "brokers": len(live), "offline": offline,
                                 "under_replicated": under})  # fmt: skip

    # --- guardrails ---------------------------------------------------------------------

    def guardrails(self) -> dict:
        """Each configured guardrail with its limit and current value."""
        c = self.config
        state = {}
        if c.max_duration_seconds:
            state["max_duration"] = {"limit": c.max_duration_seconds, "value": round(self.elapsed(), 1)}
        if c.max_error_rate is not None:
            window_start = time.time_ns() - int(c.error_window_seconds * 1e9)
            with self.lock:
                recent = [d for d in self.deliveries[-20000:] if d.acked_ns and d.acked_ns >= window_start]
            errors = sum(1 for d in recent if d.error)
            state["max_error_rate"] = {
                "limit": c.max_error_rate,
                "value": round(errors / len(recent), 4) if recent else 0,
            }
        if c.max_consumer_lag is not None:
            with self.lock:
                acked = sum(1 for d in self.deliveries if d.acked_ns and not d.error)
                lag = max(0, acked - len(self.consumed))
            state["max_consumer_lag"] = {"limit": c.max_consumer_lag, "value": lag}
        if c.min_healthy_brokers is not None:
            latest = next((s for s in reversed(self.samples) if "brokers" in s), None)
            state["min_healthy_brokers"] = {
                "limit": c.min_healthy_brokers,
                "value": latest["brokers"] if latest else None,
            }
        return state

    def _tripped_guardrail(self, state: dict) -> str:
        for name, g in state.items():
            value = g["value"]
            if value is None:
                continue
            if name == "min_healthy_brokers":
                if value < g["limit"]:
                    return name
            elif value > g["limit"]:
                return name
        return ""

    # --- the run ------------------------------------------------------------------------

    def _progress(self, guardrail_state: dict) -> None:
        with self.lock:
            sent = len(self.deliveries)
            acked = sum(1 for d in self.deliveries if d.acked_ns and not d.error)
            failed = sum(1 for d in self.deliveries if d.error)
            consumed = len(self.consumed)
        self.hooks.progress({
            "phase": self.phase, "elapsed_s": round(self.elapsed(), 1), "sent": sent, "acked": acked,
            "failed": failed, "consumed": consumed, "guardrails": guardrail_state,
            "tripped": self.tripped, "producer_fatal_errors": len(self.fatal_errors),
        })  # fmt: skip

    def hold(self, seconds: float) -> None:
        """Wait while evaluating guardrails; raise DrillAborted when one trips."""
        until = time.monotonic() + seconds
        last_progress = 0.0
        last_abort_check = 0.0
        while time.monotonic() < until:
            state = self.guardrails()
            tripped = self._tripped_guardrail(state)
            now = time.monotonic()
            if not tripped and now - last_abort_check >= 0.5:
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

    def perform(self, action: Action) -> None:
        started = time.time_ns()
        detail = self.actuator.perform(action) or {}
        if getattr(self.actuator, "kind", "") == "manual":
            self.manual_steps += 1
        self.event("action", action=action.as_dict(), description=action.describe(),
                   seconds=round((time.time_ns() - started) / 1e9, 3), **detail)  # fmt: skip

    def recover(self) -> None:
        """Undo every injected action, in plan order; keep going past a failing step."""
        if self.recover_ns is not None or not (self.injected or self.plan.client_fault):
            return
        self.phase = "recovery"
        self.recover_ns = time.time_ns()
        self.consumer_paused.clear()
        errors = []
        for action in self.plan.recover:
            try:
                self.perform(action)
            except ActuatorError as exc:
                errors.append(f"{action.describe()}: {exc}")
                self.event("recovery_failed", action=action.as_dict(), error=str(exc))
        if errors:
            raise ActuatorError("; ".join(errors))

    def run(self) -> DrillResult:
        c = self.config
        self.start_ns = time.time_ns()
        metadata = kafka.cluster_metadata(self.connection, timeout=10, topic=c.topic)
        partitions = [p.id for p in metadata.topic_partitions(c.topic) if p.id >= 0]
        if not partitions:
            raise kafka.KafkaCallError(f"the probe topic {c.topic} does not exist")
        start_keys, failures = kafka.list_offsets(self.connection, [(c.topic, p) for p in partitions], timeout=10)
        if failures:
            raise kafka.KafkaCallError(f"partitions without an answering leader before the fault: {failures}")
        start = {p: o for (_, p), o in start_keys.items()}
        threads = [
            threading.Thread(target=self._produce, args=(partitions,), name="drill-producer", daemon=True),
            threading.Thread(target=self._consume, args=(start,), name="drill-consumer", daemon=True),
            threading.Thread(target=self._watch_metadata, name="drill-metadata", daemon=True),
        ]
        for thread in threads:
            thread.start()
        group = None
        error = ""
        try:
            self.phase = "baseline"
            self.event("phase", phase="baseline")
            if self.plan.client_fault == "consumer_restart":
                group = self._group_start()
            self.hold(c.baseline_seconds)
            self.phase = "fault"
            self.hooks.recovery_plan([a.as_dict() for a in self.plan.recover])
            self.fault_ns = time.time_ns()
            self.event("fault", description=self.plan.description)
            if self.plan.client_fault == "lag_catch_up":
                self.consumer_paused.set()
            elif self.plan.client_fault == "consumer_restart":
                self._group_kill(group)
                group = None
            elif self.plan.client_fault == "standby_cutover":
                self._cutover()
            for action in self.plan.inject:
                self.injected.append(action)
                self.perform(action)
            self.hold(c.fault_seconds)
        except DrillAborted:
            pass
        except (ActuatorError, kafka.KafkaCallError) as exc:
            error = str(exc)
            self.event("error", error=error)
        finally:
            try:
                self.recover()
            except ActuatorError as exc:
                error = error or f"recovery failed: {exc}"
        try:
            if self.plan.client_fault == "consumer_restart" and self.fault_ns is not None:
                group = self._group_resume()
            self.phase = "settle"
            self.event("phase", phase="settle")
            # Recovery already ran: an abort during settling only shortens the observation.
            with contextlib.suppress(DrillAborted):
                self.hold(c.settle_seconds)
        finally:
            if group is not None:
                group.close()
            self.phase = "validate"
            self.stop_producing.set()
            threads[0].join(DRAIN_SECONDS + 5)
            self._drain()
            self.stop_consuming.set()
            self.stop_metadata.set()
            for thread in threads[1:]:
                thread.join(10)
        return self._result(partitions, start, error)

    def _drain(self) -> None:
        """Give the live reader time to see every acknowledged record."""
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            with self.lock:
                acked = {(d.partition, d.seq) for d in self.deliveries if d.acked_ns and not d.error}
                if acked <= self.consumed.keys():
                    return
            time.sleep(0.1)

    # --- consumer restart -----------------------------------------------------------------

    def _group_start(self) -> kafka.GroupReader:
        self.group_name = f"krs-drill-{self.run_id}"
        self.group_committed: dict[int, int] = {}
        group = kafka.GroupReader(self.connection, topic=self.config.topic, group=self.group_name, timeout=10)
        self._group_thread_stop = threading.Event()

        def consume():
            last_commit = time.monotonic()
            while not self._group_thread_stop.is_set():
                group.poll(0.05)
                if time.monotonic() - last_commit >= 1.0:
                    self.group_committed = group.commit(self.config.topic)
                    last_commit = time.monotonic()

        self._group_thread = threading.Thread(target=consume, name="drill-group", daemon=True)
        self._group_thread.start()
        return group

    def _group_kill(self, group: kafka.GroupReader) -> None:
        self._group_thread_stop.set()
        self._group_thread.join(5)
        consumed_to = dict(group.positions)
        group.close()  # no commit: whatever it read since the last commit is not recorded
        self.group_figures = {
            "committed": {str(p): o for p, o in self.group_committed.items()},
            "consumed_before_death": {str(p): o for p, o in consumed_to.items()},
            "reconsumed": sum(max(0, o - self.group_committed.get(p, o)) for p, o in consumed_to.items()),
        }
        self.event("consumer_killed", **self.group_figures)

    def _group_resume(self) -> kafka.GroupReader:
        group = kafka.GroupReader(self.connection, topic=self.config.topic, group=self.group_name, timeout=10)
        first: dict[int, int] = {}
        deadline = time.monotonic() + self.config.settle_seconds + 15
        while time.monotonic() < deadline and len(first) < len(self.group_committed):
            for record in group.poll(0.1):
                if record.partition not in first:
                    first[record.partition] = record.offset
                    self.resume_ns = self.resume_ns or record.consumed_ns
        gaps = {str(p): first[p] - o for p, o in self.group_committed.items() if p in first}
        self.group_figures.update({
            "first_offset_after_restart": {str(p): o for p, o in first.items()},
            "gap_records": sum(max(0, g) for g in gaps.values()),
            "partitions_resumed": len(first),
            "partitions_committed": len(self.group_committed),
        })  # fmt: skip
        self.event("consumer_resumed", **self.group_figures)
        return group

    # --- standby cutover --------------------------------------------------------------------

    def _cutover(self) -> None:
        """A canary group moves to the standby: its synced offsets must exist and resume with no gap."""
        c = self.config
        partitions = [(c.canary_topic, p.id) for p in kafka.cluster_metadata(
            self.standby, timeout=10, topic=c.canary_topic).topic_partitions(c.canary_topic) if p.id >= 0]  # fmt: skip
        on_standby = kafka.committed_offsets(self.standby, group=c.canary_group, partitions=partitions, timeout=10)
        on_primary = kafka.committed_offsets(self.connection, group=c.canary_group, partitions=partitions, timeout=10)
        synced = {p: o for (_, p), o in on_standby.items() if o is not None}
        reader = kafka.GroupReader(self.standby, topic=c.canary_topic, group=c.canary_group, timeout=10)
        first: dict[int, int] = {}
        try:
            deadline = time.monotonic() + max(10.0, c.fault_seconds)
            while synced and time.monotonic() < deadline and len(first) < len(synced):
                for record in reader.poll(0.1):
                    if record.partition not in first:
                        first[record.partition] = record.offset
                        self.resume_ns = self.resume_ns or record.consumed_ns
        finally:
            reader.close()  # no commit: a rehearsal leaves the canary group's offsets where they were
        self.group_figures = {
            "canary_group": c.canary_group,
            "committed": {str(p): o for p, o in synced.items()},
            "partitions_committed": len(synced),
            "partitions_without_synced_offsets": sorted(p for (_, p), o in on_standby.items() if o is None),
            "offset_lag_vs_primary": {
                str(p): (on_primary.get((c.canary_topic, p)) or 0) - o for p, o in synced.items()
            },
            "first_offset_after_restart": {str(p): o for p, o in first.items()},
            "gap_records": sum(max(0, first[p] - o) for p, o in synced.items() if p in first),
            "partitions_resumed": len(first),
        }
        if not synced:
            self.group_figures["partitions_committed"] = len(partitions)  # none synced: nothing resumed
        self.event("standby_cutover", **self.group_figures)

    # --- figures --------------------------------------------------------------------------

    def _result(self, partitions: list[int], start: dict[int, int], error: str) -> DrillResult:
        c = self.config
        with self.lock:
            deliveries = list(self.deliveries)
            consumed = dict(self.consumed)
        ends: dict[int, int] = {}
        for d in deliveries:
            if d.offset is not None and not d.error:
                ends[d.partition] = max(ends.get(d.partition, 0), d.offset + 1)
        try:
            after, _ = kafka.list_offsets(self.connection, [(c.topic, p) for p in partitions], timeout=10)
            for (_, p), o in after.items():
                ends[p] = max(ends.get(p, 0), o)
            read_back = kafka.read_range(self.connection, topic=c.topic, start=start, end=lambda: ends, timeout=30)
        except kafka.KafkaCallError as exc:
            read_back = []
            error = error or f"validation read failed: {exc.reason}"
        verdict = verify_sequences(
            deliveries=((d.partition, d.seq, bool(d.acked_ns) and not d.error) for d in deliveries),
            consumed=((r.partition, r.offset, r.seq) for r in read_back if r.run == self.run_id),
        ).as_dict()
        records = [
            TimelineRecord(
                d.partition,
                d.seq,
                self.ms(d.sent_ns),
                self.ms(d.acked_ns) if d.acked_ns else None,
                self.ms(consumed.get((d.partition, d.seq))),
                d.error,
            )  # fmt: skip
            for d in deliveries
        ]
        fault_ms, recover_ms = self.ms(self.fault_ns), self.ms(self.recover_ns)
        slo, window = c.latency_slo_ms, c.stability_window_seconds * 1000
        missing = {p: v["missing_seqs"] for p, v in verdict["partitions"].items() if v["missing_seqs"]}
        figures = {
            "records_sent": verdict["sent"],
            "records_acked": verdict["acked"],
            "records_failed": verdict["failed"],
            "rpo_acked_lost": verdict["missing"],
            "missing_records": missing,
            "acked_without_offset": sum(1 for d in deliveries if d.acked_ns and not d.error and d.offset is None),
            "duplicates": verdict["duplicates"],
            "reordered": verdict["reordered"],
            "fault_at_s": None if fault_ms is None else round(fault_ms / 1000, 3),
            "recovery_at_s": None if recover_ms is None else round(recover_ms / 1000, 3),
            "producer_fatal_errors": self.fatal_errors,
            "produce_errors": dict(Counter(d.error for d in deliveries if d.error).most_common(10)),
            "manual_steps": self.manual_steps,
        }
        if fault_ms is not None:
            w = write_rto_ms(records, fault_ms=fault_ms, slo_ms=slo, window_ms=window)
            r = read_rto_ms(records, fault_ms=fault_ms, slo_ms=slo, window_ms=window)
            figures["write_rto_s"] = None if w is None else round(w / 1000, 3)
            figures["read_rto_s"] = None if r is None else round(r / 1000, 3)
            figures["reelection_s"] = self._first_after(fault_ms, "offline")
            if recover_ms is not None:
                figures["catchup_s"] = self._first_after(recover_ms, "under_replicated", since=recover_ms)
            figures["latency_before"] = latency_summary(records, 0, fault_ms)
            figures["latency_during"] = latency_summary(records, fault_ms, recover_ms or fault_ms)
            if self.plan.client_fault == "lag_catch_up":
                figures.update(self._catch_up(records, recover_ms))
        if self.group_figures:
            figures[self.plan.client_fault] = self.group_figures
            if self.resume_ns and self.fault_ns:
                figures["consumer_resume_s"] = round((self.resume_ns - self.fault_ns) / 1e9, 3)
        figures["guardrails"] = {name: g["limit"] for name, g in self.guardrails().items()}
        if self.tripped or error:
            outcome = "aborted"
        elif (
            verdict["missing"]
            or (figures.get("write_rto_s") is None and fault_ms is not None)
            or self.group_figures.get("gap_records")
            or self.group_figures.get("partitions_resumed", 0) < self.group_figures.get("partitions_committed", 0)
        ):
            outcome = "failed"
        else:
            outcome = "passed"
        timeline = {
            "fields": ["partition", "seq", "sent_ms", "acked_ms", "consumed_ms", "error"],
            "records": [[r.partition, r.seq, r.sent_ms, r.acked_ms, r.consumed_ms, r.error] for r in records],
            "metadata": self.samples,
            "fault_ms": fault_ms,
            "recovery_ms": recover_ms,
            "tripped_ms": self.ms(self.tripped_ns),
        }
        return DrillResult(outcome, figures, timeline, self.tripped, error, self.manual_steps)

    def _first_after(self, t_ms: float, key: str, since: float | None = None) -> float | None:
        """Seconds from t_ms to the first metadata sample with no `key` partitions."""
        for sample in self.samples:
            if sample.get("t_ms", 0) >= (since or t_ms) and sample.get(key) == 0:
                return round(max(0.0, sample["t_ms"] - t_ms) / 1000, 3)
        return None

    def _catch_up(self, records: list[TimelineRecord], resume_ms: float | None) -> dict:
        if resume_ms is None:
            return {}
        backlog = [
            r for r in records if r.sent_ms < resume_ms and r.consumed_ms is not None and r.consumed_ms >= resume_ms
        ]
        if not backlog:
            return {"catch_up_s": 0.0, "catch_up_records": 0}
        done_ms = max(r.consumed_ms for r in backlog)
        seconds = max(0.001, (done_ms - resume_ms) / 1000)
        return {
            "catch_up_s": round(seconds, 3),
            "catch_up_records": len(backlog),
            "catch_up_rate_per_s": round(len(backlog) / seconds, 1),
            "latency_during_catch_up": latency_summary(records, resume_ms, done_ms),
        }
