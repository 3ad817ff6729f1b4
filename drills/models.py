"""Drill runs: executions of disruptive scenarios, kept as the record drill cadence reads."""

from django.db import models
from django.utils import timezone


class Scenario(models.TextChoices):
    BROKER_LOSS = "broker_loss", "Broker loss"
    ZONE_LOSS = "zone_loss", "Zone loss"
    LEADER_CHANGE = "leader_change", "Leader change"
    CONSUMER_RESTART = "consumer_restart", "Consumer restart"
    LAG_CATCH_UP = "lag_catch_up", "Lag catch-up"
    STANDBY_CUTOVER = "standby_cutover", "Standby cutover rehearsal"


class DrillRun(models.Model):
    """One execution of a scenario on a cluster: its state, outcome, guardrails and figures."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        RECOVERING = "recovering"
        DONE = "done"
        ABORTED = "aborted"

    class Outcome(models.TextChoices):
        NONE = "", "not finished"
        PASSED = "passed"
        FAILED = "failed"
        ABORTED = "aborted"

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


class DrillTimeline(models.Model):
    """The per-record timeline of a drill run: kept apart because it is large."""

    run = models.OneToOneField(DrillRun, on_delete=models.CASCADE, related_name="timeline")
    data = models.JSONField()

    def __str__(self) -> str:
        return f"timeline of drill {self.run_id}"
