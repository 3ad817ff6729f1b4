"""The record: clusters, their scorecards and rows, checks, runs and evidence."""

from collections.abc import Iterable
from datetime import datetime

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from scorecard import secrets
from scorecard.catalog import ProbeKind, RowKey
from scorecard.validators import (
    validate_bootstrap_servers,
    validate_ca_pem,
    validate_command_templates,
    validate_queue_name,
)


class Status(models.TextChoices):
    PASS = "PASS", "PASS"
    WARN = "WARN", "WARN"
    FAIL = "FAIL", "FAIL"
    ERROR = "ERROR", "ERROR"
    STALE = "STALE", "STALE"
    UNKNOWN = "UNKNOWN", "UNKNOWN"
    NOT_APPLICABLE = "NOT_APPLICABLE", "NOT APPLICABLE"


# A probe may only report these; STALE, UNKNOWN and NOT APPLICABLE are derived.
EVIDENCE_STATUSES = (Status.PASS, Status.WARN, Status.FAIL, Status.ERROR)


class SecurityProtocol(models.TextChoices):
    PLAINTEXT = "PLAINTEXT", "PLAINTEXT"
    SSL = "SSL", "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT", "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL", "SASL_SSL"


class SaslMechanism(models.TextChoices):
    NONE = "", "none"
    PLAIN = "PLAIN", "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256", "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512", "SCRAM-SHA-512"


class Actuator(models.TextChoices):
    NONE = "none", "none (probes only)"
    SANDBOX = "sandbox", "sandbox control channel"
    COMMAND = "command", "command template"
    MANUAL = "manual", "manual steps"


class Cluster(models.Model):
    """A Kafka-compatible cluster under assessment; its secret never leaves this row."""

    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$", "Use letters, digits, spaces, '.', '_' or '-'.")],
    )
    bootstrap_servers = models.CharField(max_length=1000, validators=[validate_bootstrap_servers])
    security_protocol = models.CharField(
        max_length=20, choices=SecurityProtocol.choices, default=SecurityProtocol.PLAINTEXT
    )
    sasl_mechanism = models.CharField(max_length=20, choices=SaslMechanism.choices, blank=True)
    sasl_username = models.CharField(max_length=200, blank=True)
    # Encrypted (scorecard.secrets); read and set through `sasl_password`.
    sasl_password_token = models.TextField(blank=True, editable=False)
    ssl_ca_pem = models.TextField(blank=True, validators=[validate_ca_pem])
    expected_brokers = models.PositiveIntegerField(null=True, blank=True)
    worker_queue = models.CharField(max_length=64, default="default", validators=[validate_queue_name])
    drills_allowed = models.BooleanField(default=False)
    actuator = models.CharField(max_length=20, choices=Actuator.choices, default=Actuator.NONE)
    sandbox_control = models.CharField(max_length=500, blank=True)
    standby = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="primaries")
    # Command actuator: {"broker_down": [argv...], "broker_up": [argv...], "timeout_seconds": 60}
    actuator_commands = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs):
        self._forget_moved_secret()
        super().save(*args, **kwargs)
        self._loaded_endpoint, self._secret_typed = self._endpoint(), False

    # A stored secret is bound to the endpoint it was entered for: changing any of these
    # without typing the password again clears it, so it is never sent to an address its
    # owner did not type it for.
    SECRET_BOUND_TO = ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_username")

    @classmethod
    def from_db(cls, db, field_names, values, **kwargs):
        cluster = super().from_db(db, field_names, values, **kwargs)
        if all(f in field_names for f in cls.SECRET_BOUND_TO):
            cluster._loaded_endpoint = cluster._endpoint()
        return cluster

    def _endpoint(self) -> tuple[str, ...]:
        return tuple(getattr(self, f) for f in self.SECRET_BOUND_TO)

    def _forget_moved_secret(self) -> bool:
        """Clear a stored secret whose endpoint changed since it was loaded; True if it did."""
        loaded = getattr(self, "_loaded_endpoint", None)
        if loaded is None or loaded == self._endpoint() or getattr(self, "_secret_typed", False):
            return False
        self.sasl_password_token = ""
        return True

    @property
    def sasl_password(self) -> str:
        return secrets.decrypt(self.sasl_password_token)

    @sasl_password.setter
    def sasl_password(self, plain: str) -> None:
        self.sasl_password_token = secrets.encrypt(plain)
        self._secret_typed = True

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL")

    def clean(self):
        errors = {}
        moved = self._forget_moved_secret()
        if self.uses_sasl:
            if not self.sasl_mechanism:
                errors["sasl_mechanism"] = "SASL needs a mechanism."
            if not self.sasl_username:
                errors["sasl_username"] = "SASL needs a username."
            if not self.sasl_password_token:
                errors["sasl_password"] = (
                    "The address, protocol, mechanism or user changed: enter the password again "
                    "(a stored password is only sent where it was entered for)."
                    if moved
                    else "SASL needs a password."
                )
        elif self.sasl_mechanism or self.sasl_username or self.sasl_password_token:
            errors["security_protocol"] = "SASL credentials were given but the protocol does not use SASL."
        if self.ssl_ca_pem.strip() and not self.security_protocol.endswith("SSL"):
            errors["ssl_ca_pem"] = "A CA certificate only applies to SSL or SASL_SSL."
        if self.actuator == Actuator.SANDBOX and not self.sandbox_control:
            errors["actuator"] = "The sandbox actuator needs the sandbox control socket."
        if self.actuator == Actuator.COMMAND:
            if not self.actuator_commands:
                errors["actuator"] = "The command actuator needs command templates, set by an administrator."
            else:
                try:
                    validate_command_templates(self.actuator_commands)
                except ValueError as exc:
                    errors["actuator_commands"] = str(exc)
        if self.standby_id and self.standby_id == self.pk:
            errors["standby"] = "A cluster cannot be its own standby."
        if errors:
            raise ValidationError(errors)


class Scorecard(models.Model):
    """One per cluster: the five rows and the evidence chain that backs them."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="scorecard")
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"scorecard of {self.cluster.name}"


class Row(models.Model):
    """One operational claim of a scorecard with its owner, test, rollback condition and target."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="rows")
    key = models.CharField(max_length=32, choices=RowKey.choices)
    owner = models.CharField(max_length=200, blank=True)
    owner_contact = models.CharField(max_length=200, blank=True)
    test_description = models.TextField(blank=True)
    rollback_condition = models.TextField(blank=True)
    target = models.CharField(max_length=300, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scorecard", "key"], name="row_unique_key")]

    def __str__(self) -> str:
        return f"{self.title} ({self.scorecard.cluster.name})"

    @property
    def title(self) -> str:
        return RowKey(self.key).label

    @property
    def position(self) -> int:
        return list(RowKey.values).index(self.key)


class InvalidTransition(Exception):
    """A run was asked to move to a state its current state does not allow."""


class CheckQuerySet(models.QuerySet):
    def runnable(self) -> "CheckQuerySet":
        """Checks a probe can run: applicable, and not the drill-results records drills write."""
        return self.filter(not_applicable=False).exclude(kind=ProbeKind.DRILL_RESULTS)


class Check(models.Model):
    """One configured test on a row: a probe with parameters, a schedule and a maximum evidence age."""

    row = models.ForeignKey(Row, on_delete=models.CASCADE, related_name="checks")
    kind = models.CharField(max_length=40, choices=ProbeKind.choices)
    params = models.JSONField(default=dict, blank=True)
    interval_seconds = models.PositiveIntegerField(
        default=900, validators=[MinValueValidator(10), MaxValueValidator(30 * 86400)]
    )
    max_age_seconds = models.PositiveIntegerField(
        default=3600, validators=[MinValueValidator(10), MaxValueValidator(365 * 86400)]
    )
    not_applicable = models.BooleanField(default=False)
    not_applicable_reason = models.TextField(blank=True)
    not_applicable_by = models.CharField(max_length=150, blank=True)
    not_applicable_at = models.DateTimeField(null=True, blank=True)
    # When beat last sent this check; survives beat restarts so schedules do not all fire at once.
    last_scheduled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = CheckQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["row", "kind"], name="check_unique_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.row}"

    def clean(self):
        if self.max_age_seconds is not None and self.interval_seconds and self.max_age_seconds < self.interval_seconds:
            raise ValidationError({"max_age_seconds": "The maximum evidence age must be at least the interval."})
        if self.not_applicable and not self.not_applicable_reason.strip():
            raise ValidationError({"not_applicable_reason": "Say why the check does not apply."})


class CheckRun(models.Model):
    """One queued execution of a check; a worker claims it once, so redelivery is harmless."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    check_obj = models.ForeignKey(Check, on_delete=models.CASCADE, related_name="runs", db_column="check_id")
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    requested_by = models.CharField(max_length=150)
    # The Celery task id of a scheduled run: a redelivered beat message finds its run again.
    task_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["check_obj", "-created_at"])]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.check_obj} ({self.state})"

    @classmethod
    def claim(cls, run_id: int, *, worker: str, abandoned_before: datetime) -> "CheckRun | None":
        """QUEUED -> RUNNING for one delivery; None if it is gone or another delivery has it.

        A run still RUNNING since before `abandoned_before` belonged to a worker that died,
        so a redelivery may claim it again.
        """
        claimable = Q(state=cls.State.QUEUED) | Q(state=cls.State.RUNNING, started_at__lt=abandoned_before)
        claimed = cls.objects.filter(claimable, pk=run_id).update(
            state=cls.State.RUNNING, started_at=timezone.now(), worker=worker[:200]
        )
        if not claimed:
            return None
        return cls.objects.select_related("check_obj__row__scorecard__cluster__standby").get(pk=run_id)

    @classmethod
    def fail_unqueued(cls, run_ids: "Iterable[int] | models.QuerySet", *, reason: str) -> int:
        """QUEUED -> FAILED for runs that never reached a worker; returns how many."""
        return cls.objects.filter(pk__in=run_ids, state=cls.State.QUEUED).update(
            state=cls.State.FAILED, finished_at=timezone.now(), error=reason[:2000]
        )

    def mark_done(self) -> None:
        """RUNNING -> DONE, only for the claim this object holds: a second delivery that
        reclaimed the run makes this one fail, so its evidence is not written twice."""
        now = timezone.now()
        updated = CheckRun.objects.filter(pk=self.pk, state=self.State.RUNNING, started_at=self.started_at).update(
            state=self.State.DONE, finished_at=now
        )
        if not updated:
            raise InvalidTransition(f"run {self.pk} is no longer held by this delivery")
        self.state, self.finished_at = self.State.DONE, now


class EvidenceQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise TypeError("evidence is append-only")

    def delete(self):
        raise TypeError("evidence is append-only")


class Evidence(models.Model):
    """The immutable result of one check run, hash-chained per scorecard."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.PROTECT, related_name="evidence")
    seq = models.PositiveIntegerField()
    check_obj = models.ForeignKey(Check, on_delete=models.PROTECT, related_name="evidence", db_column="check_id")
    run = models.OneToOneField(CheckRun, null=True, blank=True, on_delete=models.PROTECT, related_name="evidence")
    row_key = models.CharField(max_length=32, choices=RowKey.choices)
    status = models.CharField(max_length=16, choices=Status.choices)
    summary = models.CharField(max_length=500)
    measurements = models.JSONField(default=dict)
    collected_by = models.CharField(max_length=200)
    collected_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = EvidenceQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        constraints = [models.UniqueConstraint(fields=["scorecard", "seq"], name="evidence_unique_seq")]
        indexes = [models.Index(fields=["check_obj", "-collected_at"])]

    def __str__(self) -> str:
        return f"evidence #{self.seq} {self.status} for {self.check_obj}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("evidence is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("evidence is append-only")
