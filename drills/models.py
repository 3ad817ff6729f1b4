"""Drill runs: executions of disruptive scenarios, kept as the record drill cadence reads."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone

from scorecard import catalog
from scorecard.catalog import Scenario
from scorecard.models import InvalidTransition

# After the guardrail deadline a drill still drains, reads back and writes evidence.
VALIDATION_MARGIN_SECONDS = 120
# Beyond a drill's soft time limit, the hard limit for a worker stuck in C code.
HARD_LIMIT_MARGIN_SECONDS = 30


def drill_hard_limit_max_seconds() -> int:
    """The hard time limit of the longest drill the parameters allow."""
    longest = next(p.maximum for p in catalog.SPECS["drill"] if p.name == "max_duration_seconds")
    return int(longest) + VALIDATION_MARGIN_SECONDS + HARD_LIMIT_MARGIN_SECONDS


class Outcome(models.TextChoices):
    NONE = "", "not finished"
    PASSED = "passed"
    FAILED = "failed"
    ABORTED = "aborted"
    # The fault could not be injected, or had no observable effect: it proves nothing.
    INCONCLUSIVE = "inconclusive"
    # The pre-flight check found the cluster unhealthy: nothing was injected.
    REFUSED = "refused"


class DrillRun(models.Model):
    """One execution of a scenario on a cluster: its state, outcome, guardrails and figures."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        RECOVERING = "recovering"
        DONE = "done"
        ABORTED = "aborted"

    Outcome = Outcome
    ACTIVE = (State.QUEUED, State.RUNNING, State.RECOVERING)

    cluster = models.ForeignKey("scorecard.Cluster", on_delete=models.PROTECT, related_name="drill_runs")
    scenario = models.CharField(max_length=32, choices=Scenario.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True, default=Outcome.NONE)
    phase = models.CharField(max_length=20, blank=True)
    actuator = models.CharField(max_length=20, blank=True)
    plan_description = models.CharField(max_length=500, blank=True)
    params = models.JSONField(default=dict, blank=True)
    guardrails = models.JSONField(default=dict, blank=True)
    # Where each guardrail came from: {"max_error_rate": "Data durability row"} or who changed it.
    guardrail_sources = models.JSONField(default=dict, blank=True)
    # The rows' targets for this scenario when it started: {"write_rto_s": {"value": 30, "source": "..."}}.
    targets = models.JSONField(default=dict, blank=True)
    schedule = models.ForeignKey("DrillSchedule", null=True, blank=True, on_delete=models.SET_NULL, related_name="runs")
    manual_steps = models.PositiveIntegerField(default=0)
    figures = models.JSONField(default=dict, blank=True)
    progress = models.JSONField(default=dict, blank=True)
    events = models.JSONField(default=list, blank=True)
    # Written before the fault is injected, so a watchdog can undo it if the worker dies.
    recovery_plan = models.JSONField(default=list, blank=True)
    tripped_guardrail = models.CharField(max_length=40, blank=True)
    abort_requested = models.BooleanField(default=False)
    awaiting_step = models.CharField(max_length=300, blank=True)
    step_confirmed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    requested_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["cluster", "scenario", "-finished_at"])]
        constraints = [
            # Only one drill at a time per cluster, enforced by the database itself.
            models.UniqueConstraint(
                fields=["cluster"],
                condition=models.Q(state__in=["queued", "running", "recovering"]),
                name="one_active_drill_per_cluster",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_scenario_display()} on {self.cluster} ({self.state})"

    @property
    def active(self) -> bool:
        return self.state in self.ACTIVE

    @property
    def time_limit_seconds(self) -> int:
        """The soft limit of its task: the guardrail deadline plus the time to validate and record."""
        return int(self.params.get("max_duration_seconds", 300)) + VALIDATION_MARGIN_SECONDS

    @property
    def hard_time_limit_seconds(self) -> int:
        return self.time_limit_seconds + HARD_LIMIT_MARGIN_SECONDS

    def _runs(self):
        return DrillRun.objects.filter(pk=self.pk)

    # --- transitions: each one a conditional update, so a stale object cannot undo another's work ---

    @classmethod
    def claim(cls, run_id: int, *, worker: str) -> "DrillRun | None":
        """QUEUED -> RUNNING for one delivery; None if it is gone or already claimed."""
        run = cls.objects.filter(pk=run_id, state=cls.State.QUEUED).first()
        if run is None:
            return None
        now = timezone.now()
        claimed = cls.objects.filter(pk=run_id, state=cls.State.QUEUED).update(
            state=cls.State.RUNNING,
            started_at=now,
            heartbeat_at=now,
            deadline_at=now + timedelta(seconds=run.time_limit_seconds),
            worker=worker[:200],
        )
        return cls.objects.select_related("cluster__standby").get(pk=run_id) if claimed else None

    @staticmethod
    def lost(stale_before: datetime) -> Q:
        """Runs whose worker stopped beating before `stale_before` or that passed their deadline."""
        return Q(heartbeat_at__lt=stale_before) | Q(deadline_at__lt=timezone.now())

    @classmethod
    def claim_abandoned(cls, run_id: int, *, worker: str, stale_before: datetime) -> "DrillRun | None":
        """RUNNING -> RECOVERING when its worker stopped beating or it passed its deadline.
        A run already RECOVERING (its rescuer died too) may be recovered again."""
        cls.objects.filter(cls.lost(stale_before), pk=run_id, state=cls.State.RUNNING).update(
            state=cls.State.RECOVERING, heartbeat_at=timezone.now(), worker=worker[:200]
        )
        return cls.objects.select_related("cluster").filter(pk=run_id, state=cls.State.RECOVERING).first()

    @classmethod
    def abort_unqueued(cls, run_ids: "Iterable[int] | models.QuerySet", *, reason: str) -> int:
        """QUEUED -> ABORTED for drills that never reached a worker (they would block the cluster)."""
        return cls.objects.filter(pk__in=run_ids, state=cls.State.QUEUED).update(
            state=cls.State.ABORTED, outcome=Outcome.ABORTED, finished_at=timezone.now(), error=reason[:5000]
        )

    def beat(self) -> None:
        self._runs().filter(state=self.State.RUNNING).update(heartbeat_at=timezone.now())

    def describe_plan(self, description: str) -> None:
        self.plan_description = description[:500]
        self._runs().filter(state=self.State.RUNNING).update(plan_description=self.plan_description)

    def store_recovery_plan(self, plan: dict) -> None:
        self.recovery_plan = plan
        self._runs().filter(state=self.State.RUNNING).update(recovery_plan=plan)

    def report_progress(self, progress: dict) -> bool:
        """Store live progress and beat the heart; returns whether a person asked to abort."""
        self._runs().filter(state=self.State.RUNNING).update(
            progress=progress, phase=progress.get("phase", ""), heartbeat_at=timezone.now()
        )
        return self._runs().filter(abort_requested=True).exists()

    @transaction.atomic
    def record_event(self, kind: str, detail: dict) -> None:
        run = DrillRun.objects.select_for_update().get(pk=self.pk)
        run.events = [*run.events, {"kind": kind, "at": timezone.now().isoformat(), **detail}]
        run.save(update_fields=["events"])

    def request_abort(self, *, user: str) -> bool:
        """Any active run may be asked to abort; the engine sees it within half a second."""
        if not self._runs().filter(state__in=self.ACTIVE).update(abort_requested=True):
            return False
        self.record_event("abort_requested", {"by": user})
        return True

    def await_step(self, description: str) -> None:
        """Manual actuator: show the step on the page until a person confirms it."""
        self._runs().update(awaiting_step=description[:300], step_confirmed_at=None)
        self.record_event("awaiting_person", {"step": description})

    def confirm_step(self, *, user: str) -> bool:
        updated = (
            self._runs()
            .filter(state=self.State.RUNNING)
            .exclude(awaiting_step="")
            .update(step_confirmed_at=timezone.now())
        )
        if updated:
            self.record_event("step_confirmed", {"by": user, "step": self.awaiting_step})
        return bool(updated)

    def clear_step(self) -> None:
        self._runs().update(awaiting_step="")

    def finish(self, *, outcome: str, figures: dict, tripped: str, error: str, manual_steps: int) -> None:
        """RUNNING or RECOVERING -> DONE (passed, failed) or ABORTED."""
        state = self.State.ABORTED if outcome == Outcome.ABORTED else self.State.DONE
        fields = {
            "state": state,
            "outcome": outcome,
            "figures": figures,
            "tripped_guardrail": tripped,
            "error": error[:5000],
            "manual_steps": manual_steps,
            "phase": "done",
            "finished_at": timezone.now(),
            "awaiting_step": "",
        }
        if not self._runs().filter(state__in=[self.State.RUNNING, self.State.RECOVERING]).update(**fields):
            raise InvalidTransition(f"drill {self.pk} is not running; it cannot finish as {outcome}")
        for name, value in fields.items():
            setattr(self, name, value)


class DrillTimeline(models.Model):
    """The per-record timeline of a drill run: kept apart because it is large."""

    run = models.OneToOneField(DrillRun, on_delete=models.CASCADE, related_name="timeline")
    data = models.JSONField()

    def __str__(self) -> str:
        return f"timeline of drill {self.run_id}"


class DrillSchedule(models.Model):
    """A scenario an approver scheduled on a cluster: started by beat inside the allowed window
    only (the days and hours in its time zone), with the same pre-flight and guardrails as a
    drill started by hand. One drill per window; a window that passes without one is recorded."""

    cluster = models.ForeignKey("scorecard.Cluster", on_delete=models.CASCADE, related_name="drill_schedules")
    scenario = models.CharField(max_length=32, choices=Scenario.choices)
    params = models.JSONField(default=dict, blank=True)
    # ISO weekdays, 1 = Monday .. 7 = Sunday.
    weekdays = models.JSONField(default=list)
    window_start = models.TimeField()
    window_end = models.TimeField()
    time_zone = models.CharField(max_length=64, default="UTC")
    enabled = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    # The start of the newest window beat has dealt with (ran, refused or missed).
    handled_window = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["cluster", "scenario", "id"]

    def __str__(self) -> str:
        return f"{self.get_scenario_display()} on {self.cluster} ({self.window_text})"

    @property
    def params_text(self) -> str:
        # The page lists every schedule: a value it did not expect (stored before imports were
        # checked like the form) is shown as it is, never an error page.
        def text(value) -> str:
            try:
                return f"{value:g}"
            except (TypeError, ValueError, OverflowError):  # text, null, a list; an int too large for a float
                return str(value)

        params = self.params if isinstance(self.params, dict) else {}
        return ", ".join(f"{name.replace('_', ' ')} {text(value)}" for name, value in sorted(params.items()))

    @property
    def window_text(self) -> str:
        days = ", ".join(WEEKDAY_NAMES[d - 1] for d in sorted(self.weekdays))
        return f"{days} {self.window_start:%H:%M}-{self.window_end:%H:%M} {self.time_zone}"


WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class ScheduledWindow(models.Model):
    """What happened in one window of a schedule: the drill it started, or why none ran."""

    schedule = models.ForeignKey(DrillSchedule, on_delete=models.CASCADE, related_name="windows")
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    run = models.ForeignKey(DrillRun, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    missed_reason = models.CharField(max_length=500, blank=True)
    recorded_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-window_start"]
        constraints = [
            models.UniqueConstraint(fields=["schedule", "window_start"], name="one_record_per_window"),
        ]

    def __str__(self) -> str:
        return f"window {self.window_start:%Y-%m-%d %H:%M} of {self.schedule}"
