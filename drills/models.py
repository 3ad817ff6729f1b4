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

    cluster = models.ForeignKey("scorecard.Cluster", on_delete=models.PROTECT, related_name="drill_runs")
    scenario = models.CharField(max_length=32, choices=Scenario.choices)
    state = models.CharField(max_length=12, choices=State.choices, default=State.QUEUED)
    outcome = models.CharField(max_length=12, choices=Outcome.choices, blank=True, default=Outcome.NONE)
    params = models.JSONField(default=dict, blank=True)
    guardrails = models.JSONField(default=dict, blank=True)
    manual_steps = models.PositiveIntegerField(default=0)
    figures = models.JSONField(default=dict, blank=True)
    requested_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["cluster", "scenario", "-finished_at"])]

    def __str__(self) -> str:
        return f"{self.get_scenario_display()} on {self.cluster} ({self.state})"
