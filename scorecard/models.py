"""The record: clusters, their scorecards and rows, checks, runs and evidence."""

import re
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator, MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from scorecard import secrets
from scorecard.catalog import ProbeKind, RowKey
from scorecard.validators import (
    describe_ca,
    validate_bootstrap_servers,
    validate_ca_pem,
    validate_command_templates,
    validate_queue_name,
    validate_storable_json,
)

# Text people type into a text area (a row's test and rollback condition, a NOT APPLICABLE
# reason): a form, the API and YAML imports all refuse longer text with "at most N characters".
MAX_TEXT = 5000


def bounded_text(**kwargs) -> models.TextField:
    return models.TextField(max_length=MAX_TEXT, validators=[MaxLengthValidator(MAX_TEXT)], **kwargs)


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


LABEL_MESSAGE = "Use lower-case letters, digits, '-' or '_'."


class Team(models.Model):
    """The people who may see a team's clusters. A cluster without a team is shared: every
    role reads it; administrators see every cluster."""

    name = models.CharField(max_length=100, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def split_tags(text: str) -> list[str]:
    """Comma-separated tags, trimmed, empty ones dropped, each once."""
    return list(dict.fromkeys(tag.strip() for tag in text.split(",") if tag.strip()))


def validate_tags(value: str) -> None:
    tags = [tag.strip() for tag in value.split(",")]
    if value.strip() and (len(tags) > 20 or not all(re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,39}", t) for t in tags)):
        raise ValidationError(f"Up to 20 tags, comma separated. {LABEL_MESSAGE}")


class Cluster(models.Model):
    """A Kafka-compatible cluster under assessment; its secret never leaves this row."""

    name = models.CharField(
        max_length=100,
        unique=True,
        validators=[RegexValidator(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$", "Use letters, digits, spaces, '.', '_' or '-'.")],
    )
    bootstrap_servers = models.CharField(max_length=1000, validators=[validate_bootstrap_servers])
    # For the overview's filters: "production", "staging", "candidate"...; tags, comma separated.
    environment = models.CharField(
        max_length=40, blank=True, validators=[RegexValidator(r"^[a-z0-9][a-z0-9_-]*$", LABEL_MESSAGE)]
    )
    tags = models.CharField(max_length=300, blank=True, validators=[validate_tags])
    # PROTECT: deleting a team must not make its clusters (and their exports) shared.
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="clusters")
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
    actuator_commands = models.JSONField(default=dict, blank=True, validators=[validate_storable_json])
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
    def tag_list(self) -> list[str]:
        return split_tags(self.tags)

    @property
    def ca_description(self) -> list[str]:
        """The CA certificates' subjects and expiry dates, in words."""
        return describe_ca(self.ssl_ca_pem) if self.ssl_ca_pem.strip() else []

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
        if not isinstance(self.actuator_commands, dict):
            errors["actuator_commands"] = 'Command templates are a JSON object: {"broker_down": [...], ...}.'
        elif self.actuator == Actuator.COMMAND:
            if not self.actuator_commands:
                errors["actuator"] = "The command actuator needs command templates, set by an administrator."
            else:
                try:
                    validate_command_templates(self.actuator_commands)
                except ValueError as exc:
                    errors["actuator_commands"] = str(exc)
        if self.standby_id and self.standby_id == self.pk:
            errors["standby"] = "A cluster cannot be its own standby."
        elif self.standby_id and self.standby.team_id not in (None, self.team_id):
            errors["standby"] = "The standby belongs to another team: its people could not see this cluster's checks."
        if errors:
            raise ValidationError(errors)


GENESIS_HASH = "0" * 64


class Scorecard(models.Model):
    """One per cluster: the five rows and the evidence chain that backs them.

    The head (count and hash of the last link) is signed with the evidence key and moves in
    the same transaction as each append, so a deleted tail or a recomputed chain no longer
    matches it. The checkpoint is how far verification got, signed the same way."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="scorecard")
    created_at = models.DateTimeField(default=timezone.now)
    head_count = models.PositiveIntegerField(default=0)
    head_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    head_signature = models.CharField(max_length=64, blank=True)
    verified_count = models.PositiveIntegerField(default=0)
    verified_hash = models.CharField(max_length=64, default=GENESIS_HASH)
    verified_signature = models.CharField(max_length=64, blank=True)
    # The last full walk: when, and what it found broken ("" = the chain held).
    walked_at = models.DateTimeField(null=True, blank=True)
    broken_reason = models.CharField(max_length=500, blank=True)

    class Meta:
        permissions = [
            ("read", "Read scorecards, evidence, drills and the audit trail"),
            ("run_checks", "Run probes now"),
            ("edit_checks", "Edit checks' parameters and schedules; ask for NOT APPLICABLE"),
            ("edit_own_rows", "Edit and sign off the rows one owns"),
            ("start_drills", "Start drills inside the rows' guardrails; abort one's own"),
            ("approve_drills", "Loosen guardrails, schedule drills, abort and confirm any drill"),
            ("approve_not_applicable", "Approve another person's NOT APPLICABLE request"),
            ("manage_clusters", "Register and edit clusters, credentials, actuators and any row"),
            ("manage_roles", "Assign roles"),
        ]

    def __str__(self) -> str:
        return f"scorecard of {self.cluster.name}"


ROW_POSITIONS = {key: index for index, key in enumerate(RowKey.values)}


class Row(models.Model):
    """One operational claim of a scorecard with its owner, test, rollback condition and target."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="rows")
    key = models.CharField(max_length=32, choices=RowKey.choices)
    owner = models.CharField(max_length=200, blank=True)
    owner_contact = models.CharField(max_length=200, blank=True)
    # The person who signs the row off and may edit it.
    owner_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="owned_rows"
    )
    test_description = bounded_text(blank=True)
    # For people; the machine-readable parts below are a drill's guardrails.
    rollback_condition = bounded_text(blank=True)
    rollback_max_duration_seconds = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(5), MaxValueValidator(3600)]
    )
    rollback_max_error_rate = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(1)]
    )
    rollback_error_window_seconds = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.5), MaxValueValidator(600)]
    )
    rollback_max_consumer_lag = models.PositiveBigIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(10**9)]
    )
    rollback_min_healthy_brokers = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(10_000)]
    )
    # For people; `targets` are what verdicts are judged against:
    # {"default": {"write_rto_s": 30}, "broker_loss": {"write_rto_s": 10}} (scorecard.targets).
    target = models.CharField(max_length=300, blank=True)
    targets = models.JSONField(default=dict, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scorecard", "key"], name="row_unique_key")]

    def __str__(self) -> str:
        return f"{self.title} ({self.scorecard.cluster.name})"

    @property
    def title(self) -> str:
        return RowKey(self.key).label

    @property
    def position(self) -> int:
        return ROW_POSITIONS[self.key]


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
    not_applicable_reason = bounded_text(blank=True)
    # NOT APPLICABLE takes two people: who asked and when, then an approver who is someone else.
    # `not_applicable` is true only once approved.
    not_applicable_by = models.CharField(max_length=150, blank=True)
    not_applicable_at = models.DateTimeField(null=True, blank=True)
    not_applicable_approved_by = models.CharField(max_length=150, blank=True)
    not_applicable_approved_at = models.DateTimeField(null=True, blank=True)
    # When beat last sent this check; survives beat restarts so schedules do not all fire at once.
    last_scheduled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = CheckQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["row", "kind"], name="check_unique_kind")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} on {self.row}"

    @property
    def not_applicable_pending(self) -> bool:
        return bool(self.not_applicable_by) and not self.not_applicable

    def clean(self):
        if self.max_age_seconds is not None and self.interval_seconds and self.max_age_seconds < self.interval_seconds:
            raise ValidationError({"max_age_seconds": "The maximum evidence age must be at least the interval."})
        if (self.not_applicable or self.not_applicable_by) and not self.not_applicable_reason.strip():
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
    # When the claiming worker's hard task time limit ends this claim (the worker's own
    # setting, which beat's sweep of abandoned runs must not assume).
    time_limit_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["check_obj", "-created_at"]),
            # Beat's sweeps every few seconds read only the queued and the running runs.
            models.Index(fields=["created_at"], condition=Q(state="queued"), name="checkrun_queued_since"),
            models.Index(fields=["time_limit_at"], condition=Q(state="running"), name="checkrun_running_until"),
        ]

    def __str__(self) -> str:
        return f"run {self.pk} of {self.check_obj} ({self.state})"

    @classmethod
    def claim(cls, run_id: int, *, worker: str, abandoned_before: datetime, time_limit: timedelta) -> "CheckRun | None":
        """QUEUED -> RUNNING for one delivery; None if it is gone or another delivery has it.

        A run still RUNNING since before `abandoned_before` belonged to a worker that died,
        so a redelivery may claim it again. `time_limit`: the claiming worker's hard time limit.
        """
        claimable = Q(state=cls.State.QUEUED) | Q(state=cls.State.RUNNING, started_at__lt=abandoned_before)
        now = timezone.now()
        claimed = cls.objects.filter(claimable, pk=run_id).update(
            state=cls.State.RUNNING, started_at=now, worker=worker[:200], time_limit_at=now + time_limit
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

    @classmethod
    def fail_abandoned(cls, *, limit_ended_before: datetime, reason: str) -> int:
        """RUNNING -> FAILED for runs whose claim's hard time limit ended before the given time:
        their worker stopped without finishing them. Returns how many."""
        return cls.objects.filter(state=cls.State.RUNNING, time_limit_at__lt=limit_ended_before).update(
            state=cls.State.FAILED, finished_at=timezone.now(), error=reason[:2000]
        )

    def fail(self, reason: str) -> None:
        """RUNNING -> FAILED without evidence (the run was not allowed to proceed)."""
        now = timezone.now()
        CheckRun.objects.filter(pk=self.pk, state=self.State.RUNNING).update(
            state=self.State.FAILED, finished_at=now, error=reason[:2000]
        )
        self.state, self.finished_at, self.error = self.State.FAILED, now, reason[:2000]

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
        indexes = [
            # A check's latest evidence (every page's status), and its history.
            models.Index(fields=["check_obj", "-seq"], name="evidence_latest_per_check"),
            # A row's history, newest first, paged by seq.
            models.Index(fields=["scorecard", "row_key", "-seq"], name="evidence_row_history"),
            # A check's measurements over a period (trends).
            models.Index(fields=["check_obj", "collected_at"], name="evidence_check_by_time"),
            # The API's evidence of a period: without it the newest-first scan walks every
            # later item before reaching an old period.
            models.Index(fields=["scorecard", "collected_at"], name="evidence_scorecard_by_time"),
        ]

    def __str__(self) -> str:
        return f"evidence #{self.seq} {self.status} for {self.check_obj}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise TypeError("evidence is append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise TypeError("evidence is append-only")


class SignOff(models.Model):
    """A row owner's attestation "reviewed, accepted"; it holds while the row keeps the status
    it was given for, and for settings.SIGNOFF_VALID_DAYS."""

    row = models.ForeignKey(Row, on_delete=models.CASCADE, related_name="signoffs")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150)
    comment = models.TextField(max_length=2000)
    row_status = models.CharField(max_length=16, choices=Status.choices)
    signed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-signed_at", "-id"]
        indexes = [models.Index(fields=["row", "-signed_at"])]

    def __str__(self) -> str:
        return f"sign-off of {self.row} by {self.username}"


class AuditEvent(models.Model):
    """Who changed what, when, with the values before and after (secrets redacted).
    Kept when the object or its cluster is deleted: the names are copied in."""

    at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=150)
    action = models.CharField(max_length=40)
    object_type = models.CharField(max_length=40)
    object_id = models.CharField(max_length=40, blank=True)
    object_label = models.CharField(max_length=300, blank=True)
    cluster = models.ForeignKey(Cluster, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    cluster_name = models.CharField(max_length=100, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    comment = models.TextField(blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [
            models.Index(fields=["cluster", "-at"], name="audit_by_cluster"),
            models.Index(fields=["object_type", "object_id", "-at"], name="audit_by_object"),
            models.Index(fields=["actor", "-at"], name="audit_by_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.object_label}"


class ReadinessSample(models.Model):
    """A scorecard's readiness at one moment, taken by beat on a schedule: the readiness trend
    (status is derived, so it cannot be recomputed for the past from evidence alone)."""

    scorecard = models.ForeignKey(Scorecard, on_delete=models.CASCADE, related_name="readiness_samples")
    at = models.DateTimeField(default=timezone.now)
    proven = models.PositiveSmallIntegerField()
    ready = models.BooleanField()
    row_statuses = models.JSONField(default=dict)

    class Meta:
        ordering = ["at"]
        indexes = [models.Index(fields=["scorecard", "at"], name="readiness_by_time")]

    def __str__(self) -> str:
        return f"{self.scorecard}: {self.proven} of 5 proven at {self.at:%Y-%m-%d %H:%M}"


class AuditExport(models.Model):
    """An audit PDF asked for on a page: built by a worker on the default queue, then kept in
    the database (so every web process can serve it, whatever host built it) with its SHA-256."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    requested_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(default=timezone.now)
    scorecards = models.ManyToManyField(Scorecard, related_name="exports")
    cluster_names = models.CharField(max_length=500)  # kept after a cluster is deleted
    since = models.DateTimeField()
    until = models.DateTimeField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED)
    progress = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    pdf = models.BinaryField(null=True, blank=True, editable=False)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"audit PDF {self.pk} of {self.cluster_names}"
