"""What the API answers and accepts, as OpenAPI schemas. Bodies are checked twice: for shape here,
then by the same Django forms and services the pages use, so the rules cannot drift apart."""

from datetime import datetime
from typing import Any

from ninja import Field, Schema
from pydantic import model_validator

from scorecard.validators import storable_problem


class Body(Schema):
    """A request body: refused whole (422) when a string in it cannot be stored."""

    @model_validator(mode="after")
    def storable(self):
        # A lone surrogate ("\ud800") only JSON can carry: form posts are decoded with replacement.
        if where := storable_problem(self.model_dump()):
            raise ValueError(f"{where}: a NUL character or a lone surrogate cannot be stored")
        return self


class Error(Schema):
    detail: str | list[dict[str, Any]] = Field(
        description="Why the request was refused: a sentence, or a list of {loc, msg} per bad field."
    )


class Me(Schema):
    username: str
    roles: list[str] = Field(description="viewer, operator, drill approver, admin: each includes the ones before it.")
    teams: list[str]


class ClusterOut(Schema):
    id: int
    name: str
    environment: str
    tags: list[str]
    team: str | None
    bootstrap_servers: str
    security_protocol: str
    sasl_mechanism: str
    sasl_username: str
    sasl_password_set: bool = Field(description="The password itself is write-only and never returned.")
    ssl_ca_pem: str
    expected_brokers: int | None
    worker_queue: str
    standby: str | None
    drills_allowed: bool
    actuator: str
    actuator_commands: dict[str, Any]
    created_at: datetime


class ClusterIn(Body):
    """A new cluster. Fields as on the cluster form; `sasl_password` is write-only."""

    name: str
    bootstrap_servers: str
    environment: str = ""
    tags: list[str] = []
    team: int | None = Field(None, description="Team id; none: every role sees the cluster.")
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = Field("", description="Write-only.")
    ssl_ca_pem: str = ""
    expected_brokers: int | None = None
    worker_queue: str = "default"
    standby: int | None = Field(None, description="Cluster id of the standby.")
    drills_allowed: bool = False
    actuator: str = "none"
    actuator_commands: dict[str, Any] = {}


class ClusterPatch(Body):
    """Only the fields given change. An empty or missing `sasl_password` keeps the stored one
    while the cluster is reached at the same endpoint."""

    name: str | None = None
    bootstrap_servers: str | None = None
    environment: str | None = None
    tags: list[str] | None = None
    team: int | None = None
    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = Field(None, description="Write-only.")
    ssl_ca_pem: str | None = None
    expected_brokers: int | None = None
    worker_queue: str | None = None
    standby: int | None = None
    drills_allowed: bool | None = None
    actuator: str | None = None
    actuator_commands: dict[str, Any] | None = None


class EvidenceOut(Schema):
    id: int
    seq: int = Field(description="Position in the scorecard's evidence chain.")
    row: str
    check: int
    kind: str
    status: str
    summary: str
    measurements: dict[str, Any]
    collected_by: str
    collected_at: datetime
    hash: str


class CheckOut(Schema):
    id: int
    row: str
    kind: str
    title: str
    status: str = Field(description="PASS, WARN, FAIL, ERROR, UNKNOWN (never run or stale) or NOT_APPLICABLE.")
    params: dict[str, Any]
    interval_seconds: int
    max_age_seconds: int
    not_applicable: bool
    not_applicable_reason: str
    not_applicable_by: str
    not_applicable_approved_by: str
    latest: EvidenceOut | None


class SignOffOut(Schema):
    by: str
    at: datetime
    comment: str
    row_status: str
    lapsed: str = Field(description="Why it no longer holds; empty while it holds.")


class RowOut(Schema):
    id: int
    key: str
    title: str
    status: str
    proven: bool
    trusted: bool = Field(description="False while the evidence chain is broken.")
    owner: str
    owner_contact: str
    owner_user: str | None
    test_description: str
    rollback_condition: str
    guardrails: dict[str, float | int | None]
    target: str
    targets: dict[str, dict[str, float]]
    oldest_evidence_at: datetime | None
    signoff: SignOffOut | None
    awaiting_signoff: str
    checks: list[CheckOut]


class RowPatch(Body):
    """Only the fields given change; the row page's rules apply (its owner or an administrator
    edits it; only a drill approver loosens a guardrail or a target)."""

    owner: str | None = None
    owner_contact: str | None = None
    owner_user: str | None = Field(None, description="Username; administrators only. Empty string unlinks.")
    test_description: str | None = None
    rollback_condition: str | None = None
    rollback_max_duration_seconds: int | None = None
    rollback_max_error_rate: float | None = None
    rollback_error_window_seconds: float | None = None
    rollback_max_consumer_lag: int | None = None
    rollback_min_healthy_brokers: int | None = None
    target: str | None = None
    targets: dict[str, dict[str, float]] | None = Field(
        None, description='{"default": {metric: number}, scenario: {metric: number}}; replaces all targets.'
    )


class ChainOut(Schema):
    ok: bool
    count: int
    head: str
    reason: str


class ScorecardOut(Schema):
    cluster: ClusterOut
    ready: bool
    proven: int = Field(description="Rows proven (PASS on trusted evidence), of 5.")
    chain: ChainOut
    rows: list[RowOut]


class ReadinessRow(Schema):
    row: str
    status: str
    evidence_age_s: float | None = Field(description="Age of the oldest latest evidence; null: nothing observed.")
    signed_off: bool
    trusted: bool
    reasons: list[str]


class ReadinessOut(Schema):
    cluster: str
    ready: bool
    proven: int
    chain: ChainOut
    rows: list[ReadinessRow]
    reasons: list[str]


class CheckPatch(Body):
    params: dict[str, Any] | None = Field(None, description="The probe's parameters; omitted ones take defaults.")
    interval_seconds: int | None = None
    max_age_seconds: int | None = None


class CheckRunOut(Schema):
    id: int
    check: int
    kind: str
    state: str
    queue: str
    requested_by: str
    created_at: datetime
    error: str


class DrillOut(Schema):
    id: int
    cluster: str
    scenario: str
    state: str
    outcome: str
    phase: str
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    params: dict[str, Any]
    guardrails: dict[str, Any]
    guardrail_sources: dict[str, Any]
    targets: dict[str, Any]
    figures: dict[str, Any] = Field(description="Measured figures (write_rto_s, read_rto_s, rpo_acked_lost...).")
    tripped_guardrail: str
    manual_steps: int
    awaiting_step: str
    abort_requested: bool
    error: str


class DrillIn(Body):
    """Start a drill: the drill form's fields. Guardrails left out take the rows' values; only a
    drill approver may loosen them. `confirm` must be the cluster's name."""

    scenario: str
    confirm: str
    params: dict[str, Any] = {}


class ExportOut(Schema):
    id: int
    clusters: str
    since: datetime
    until: datetime
    state: str
    progress: str
    requested_by: str
    created_at: datetime
    finished_at: datetime | None
    sha256: str
    size: int
    error: str


class ExportIn(Body):
    clusters: list[int] = Field(description="Cluster ids, 1 to 10.")
    since: datetime
    until: datetime


class TokenOut(Schema):
    id: int
    user: str
    name: str
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenIn(Body):
    name: str
    days: int | None = Field(None, description="Expiry in days (1-731); none: until revoked.")
    user: str | None = Field(None, description="Username; administrators make tokens for others.")


class TokenMade(TokenOut):
    token: str = Field(description="Shown this once: store it now.")


class Page(Schema):
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class ClusterPage(Page):
    items: list[ClusterOut]


class EvidencePage(Page):
    items: list[EvidenceOut]


class DrillPage(Page):
    items: list[DrillOut]


class ExportPage(Page):
    items: list[ExportOut]


class ConfigChange(Schema):
    path: str
    line: int = Field(description="The YAML line the change comes from.")
    before: Any
    after: Any


class ConfigRefusal(Schema):
    line: int
    message: str


class ConfigPlanOut(Schema):
    cluster: str
    cluster_id: int | None = Field(description="null until a new cluster is registered by applying.")
    new: bool
    changes: list[ConfigChange]
    refusals: list[ConfigRefusal] = Field(description="Changes the token's roles may not make; nothing applies.")
    warnings: list[str]
    allowed: bool
    digest: str = Field(description="Pass back as `digest` with apply=true to apply exactly the diff reviewed.")
    applied: bool
