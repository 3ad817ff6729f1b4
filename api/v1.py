"""The REST API, /api/v1/: what the pages show and do, for pipelines and scripts.

Built on django-ninja: the OpenAPI 3 description comes from the typed signatures and schemas,
and its reference page is served from the app's own static files. Every operation authenticates
a bearer token (api.tokens), checks the role the matching page checks, looks objects up among
those the caller's teams may see (another team's cluster is 404, as on the pages), and changes
things only through the pages' forms and services, so guardrails, refusals and the audit trail
are the same whichever way a change comes in.
"""

import json
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, RequestDataTooBig, ValidationError
from django.forms import Form
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from ninja import NinjaAPI, Query, Router, Status
from ninja.errors import HttpError
from ninja.parser import Parser
from ninja.security import HttpBearer

from api import schemas as s
from api import tokens
from api.models import ApiToken
from drills import services as drill_services
from drills.forms import drill_start_form
from drills.models import DrillRun
from scorecard import audit, roles, selectors, services
from scorecard.catalog import RowKey
from scorecard.config_code import ConfigError, ConfigRefused, ConfigStale, config_apply, config_export, config_plan
from scorecard.evidence import chain_verify
from scorecard.forms import ClusterForm, ExportForm, ParamsForm, RowForm, ScheduleForm, may_loosen
from scorecard.models import AuditExport, Check, Cluster, Evidence, Row, Scorecard
from scorecard.models import Status as EvidenceStatus
from scorecard.readiness import readiness as readiness_answer
from scorecard.report import ExportBusy, export_request, export_response, visible_exports
from scorecard.targets import GUARDRAILS
from scorecard.validators import json_nesting_problem

MAX_PAGE = 500
MAX_AGE_LIMIT = 10 * 365 * 86400
# A JSON body: the largest one the schemas need is a cluster with its CA certificates (at most
# 100,000 characters); the deepest, a check's or a drill's parameters. Both are checked before
# json.loads, so a huge or 100,000-deep body is a 422, never memory or a RecursionError.
MAX_JSON_BODY_BYTES = 500_000
MAX_JSON_BODY_DEPTH = 20


class BodyRefused(ValueError):
    """A JSON body refused before (or while) it is parsed; ninja wraps it in a 400 HttpError."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class BoundedParser(Parser):
    """JSON bodies checked for size and nesting before they are parsed."""

    def parse_body(self, request):
        # request.body raises RequestDataTooBig above DATA_UPLOAD_MAX_MEMORY_SIZE (a 413 below).
        try:
            text = request.body.decode()
        except UnicodeDecodeError:
            raise BodyRefused("the body is not UTF-8 text") from None
        if len(request.body) > MAX_JSON_BODY_BYTES:
            raise BodyRefused(f"a JSON body of at most {MAX_JSON_BODY_BYTES:,} bytes", status=413)
        if problem := json_nesting_problem(text, max_bytes=MAX_JSON_BODY_BYTES, max_depth=MAX_JSON_BODY_DEPTH):
            raise BodyRefused(f"the body was refused before parsing: {problem}")
        try:
            return json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise BodyRefused(f"the body is not valid JSON: {exc}") from None


class BearerToken(HttpBearer):
    """`Authorization: Bearer rrs_…`: the token's user, holding (now) the permission the
    operation needs. Checked before the body is read, so a caller without the role is refused
    whatever it sent."""

    openapi_description = "An API token (made on the Tokens page or with `manage.py api_token create`)."

    def __init__(self, permission: str = "read"):
        super().__init__()
        self.permission = permission

    def authenticate(self, request, token):
        row = tokens.token_row(f"Bearer {token}")
        if row is None:
            return None
        request.user, request.api_token = row.user, row
        audit.act(row.user.get_username())
        roles.require(row.user, self.permission)  # PermissionDenied: 403 saying which role
        return row.user


api = NinjaAPI(
    title="Kafka recovery readiness scorecard",
    version="1",
    description=(
        "Scorecards, evidence, drills and audit exports, with the roles, guardrails and refusals of the pages. "
        "Authenticate with `Authorization: Bearer <token>`. Lists are paged by an opaque `cursor`."
    ),
    auth=BearerToken(),
    urls_namespace="api-v1",
    docs_url="/docs",
    parser=BoundedParser(),
)


def _error(request, status: int, detail):
    return api.create_response(request, {"detail": detail}, status=status)


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return _error(request, 403, str(exc) or "forbidden")


@api.exception_handler(Http404)
def _not_found(request, exc):
    return _error(request, 404, str(exc) or "not found")


@api.exception_handler(ValidationError)
def _invalid(request, exc):
    if hasattr(exc, "error_dict"):
        return _error(request, 422, [{"loc": ["body", f], "msg": " ".join(m)} for f, m in exc.message_dict.items()])
    return _error(request, 422, [{"loc": ["body"], "msg": m} for m in exc.messages])


@api.exception_handler(HttpError)
def _http_error(request, exc):
    # Ninja answers any failure to parse a body "Cannot parse request body": say why instead.
    if isinstance(exc.__cause__, BodyRefused):
        return _error(request, exc.__cause__.status, str(exc.__cause__))
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(RequestDataTooBig)
def _too_big(request, exc):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return _error(request, 413, f"the request body is larger than the {limit:,} bytes accepted")


@api.exception_handler(ConfigError)
def _config_refused(request, exc):
    status = 409 if isinstance(exc, ConfigStale) else 403 if isinstance(exc, ConfigRefused) else 422
    return _error(request, status, [{"loc": ["body"], "line": line, "msg": m} for line, m in exc.errors])


@api.exception_handler(drill_services.DrillRefused)
def _refused(request, exc):
    return _error(request, 409, str(exc))


@api.exception_handler(drill_services.QueueUnavailable)
def _unavailable(request, exc):
    return _error(request, 503, f"the work {exc}; nothing was started")


def _form_errors(form: Form) -> ValidationError:
    return ValidationError({field if field != "__all__" else "body": errors for field, errors in form.errors.items()})


def needs(permission: str) -> BearerToken:
    return BearerToken(permission)


REFUSALS = {401: s.Error, 403: s.Error, 404: s.Error}
WRITE_REFUSALS = {**REFUSALS, 409: s.Error, 422: s.Error, 503: s.Error}


# Lookups among what the caller may see.


def _cluster(request, cluster_id: int) -> Cluster:
    clusters = Cluster.objects.select_related("team", "standby", "scorecard")
    return get_object_or_404(clusters.filter(roles.visible(request.user)), pk=cluster_id)


def _scorecard(request, cluster_id: int) -> Scorecard:
    scorecards = Scorecard.objects.select_related("cluster__team", "cluster__standby")
    return get_object_or_404(scorecards.filter(roles.visible(request.user, "cluster__")), cluster_id=cluster_id)


def _row(request, row_id: int) -> Row:
    rows = Row.objects.select_related("scorecard__cluster", "owner_user")
    return get_object_or_404(rows.filter(roles.visible(request.user, "scorecard__cluster__")), pk=row_id)


def _check(request, check_id: int) -> Check:
    checks = Check.objects.select_related("row__scorecard__cluster__standby")
    return get_object_or_404(checks.filter(roles.visible(request.user, "row__scorecard__cluster__")), pk=check_id)


def _drill(request, run_id: int) -> DrillRun:
    runs = DrillRun.objects.select_related("cluster").filter(roles.visible(request.user, "cluster__"))
    return get_object_or_404(runs, pk=run_id)


# Answers.


def _cluster_out(cluster: Cluster) -> dict:
    return {
        **{f: getattr(cluster, f) for f in s.ClusterOut.model_fields if hasattr(cluster, f) and f not in ("team",)},
        "tags": cluster.tag_list,
        "team": cluster.team.name if cluster.team_id else None,
        "standby": cluster.standby.name if cluster.standby_id else None,
        "sasl_password_set": bool(cluster.sasl_password_token),
    }


def _evidence_out(evidence: Evidence, kind: str = "") -> dict:
    return {
        "id": evidence.pk, "seq": evidence.seq, "row": evidence.row_key, "check": evidence.check_obj_id,
        "kind": kind or evidence.check_obj.kind, "status": evidence.status, "summary": evidence.summary,
        "measurements": evidence.measurements, "collected_by": evidence.collected_by,
        "collected_at": evidence.collected_at, "hash": evidence.hash,
    }  # fmt: skip


def _check_out(view: selectors.CheckView, row_key: str) -> dict:
    check = view.check
    return {
        "id": check.pk, "row": row_key,
        "kind": check.kind, "title": check.get_kind_display(), "status": view.status, "params": check.params,
        "interval_seconds": check.interval_seconds, "max_age_seconds": check.max_age_seconds,
        "not_applicable": check.not_applicable, "not_applicable_reason": check.not_applicable_reason,
        "not_applicable_by": check.not_applicable_by, "not_applicable_approved_by": check.not_applicable_approved_by,
        "latest": _evidence_out(view.latest, check.kind) if view.latest else None,
    }  # fmt: skip


def _row_out(view: selectors.RowView) -> dict:
    row = view.row
    signoff = view.signoff
    checks = [_check_out(c, row.key) for c in view.checks]
    return {
        "id": row.pk, "key": row.key, "title": row.title, "status": view.status, "proven": view.proven,
        "trusted": view.trusted, "owner": row.owner, "owner_contact": row.owner_contact,
        "owner_user": row.owner_user.get_username() if row.owner_user_id else None,
        "test_description": row.test_description, "rollback_condition": row.rollback_condition,
        "guardrails": {name: getattr(row, field) for name, (field, _, _) in GUARDRAILS.items()},
        "target": row.target, "targets": row.targets, "oldest_evidence_at": view.oldest_evidence,
        "signoff": None if signoff is None else {
            "by": signoff.username, "at": signoff.signed_at, "comment": signoff.comment,
            "row_status": signoff.row_status, "lapsed": view.signoff_lapsed,
        },
        "awaiting_signoff": view.awaiting_signoff, "checks": checks,
    }  # fmt: skip


def _chain_out(chain) -> dict:
    return {"ok": chain.ok, "count": chain.count, "head": chain.head_hash, "reason": chain.reason}


def _view(scorecard: Scorecard) -> selectors.ScorecardView:
    """The scorecard as its page shows it: chain checked the way the page checks it."""
    chain = chain_verify(scorecard=scorecard)
    (view,) = selectors.scorecard_views(scorecards=[scorecard], chains={scorecard.pk: chain})
    return view


def _run_out(run) -> dict:
    cluster = run.check_obj.row.scorecard.cluster
    return {
        "id": run.pk, "check": run.check_obj_id, "kind": run.check_obj.kind, "state": run.state,
        "queue": cluster.worker_queue, "requested_by": run.requested_by, "created_at": run.created_at,
        "error": run.error,
    }  # fmt: skip


def _drill_out(run: DrillRun) -> dict:
    fields = set(s.DrillOut.model_fields) - {"cluster"}
    return {**{f: getattr(run, f) for f in fields}, "cluster": run.cluster.name}


def _export_out(export: AuditExport) -> dict:
    fields = set(s.ExportOut.model_fields) - {"clusters"}
    return {**{f: getattr(export, f) for f in fields}, "clusters": export.cluster_names}


def _token_out(token: ApiToken) -> dict:
    fields = set(s.TokenOut.model_fields) - {"user"}
    return {**{f: getattr(token, f) for f in fields}, "user": token.user.get_username()}


def _cursor(cursor: str | None) -> int | None:
    if cursor is None or cursor == "":
        return None
    if not cursor.isdecimal() or len(cursor) > 12:
        raise ValidationError({"cursor": ["not a cursor this API gave: pass next_cursor unchanged"]})
    return int(cursor)


def _page(queryset, *, key: str, cursor: str | None, limit: int, out) -> dict:
    """Keyset paging on `key` (descending when it starts with "-"): no count, no offset, so the
    hundredth page costs what the first does."""
    field = key.lstrip("-")
    after = _cursor(cursor)
    if after is not None:
        queryset = queryset.filter(**{f"{field}__{'lt' if key.startswith('-') else 'gt'}": after})
    items = list(queryset.order_by(key)[: limit + 1])
    more = len(items) > limit
    items = items[:limit]
    return {"items": [out(item) for item in items], "next_cursor": str(getattr(items[-1], field)) if more else None}


# Operations.

me = Router(tags=["tokens"])


@me.get("/me", response={200: s.Me, **REFUSALS}, summary="Who the token acts as")
def whoami(request):
    user = request.user
    return {
        "username": user.get_username(),
        "roles": roles.user_roles(user),
        "teams": list(user.teams.values_list("name", flat=True)),
    }


@me.get("/tokens", response={200: list[s.TokenOut], **REFUSALS}, summary="Tokens: your own, or everyone's (admin)")
def token_list(request, user: str | None = Query(None, max_length=150, pattern=r"^[\w.@+-]+$")):
    listing = ApiToken.objects.select_related("user")
    if roles.can(request.user, "manage_roles"):
        listing = listing.filter(user__username=user) if user else listing
    elif user and user != request.user.get_username():
        raise PermissionDenied("only an administrator lists other people's tokens")
    else:
        listing = listing.filter(user=request.user)
    return [_token_out(t) for t in listing[:200]]


@me.post("/tokens", response={201: s.TokenMade, **WRITE_REFUSALS}, summary="Make a token (shown once)")
def token_make(request, body: s.TokenIn):
    owner = request.user
    if body.user and body.user != request.user.get_username():
        owner = get_user_model().objects.filter(username=body.user, is_active=True).first()
        if owner is None or not roles.can(request.user, "manage_roles"):
            raise PermissionDenied("only an administrator makes tokens for an existing, active user")
    made_with = request.api_token
    if made_with.expires_at is not None:  # a token cannot outlive the one that made it
        left = (made_with.expires_at - timezone.now()).days
        if body.days is None or body.days > left:
            raise ValidationError({"days": [f"at most {left} days: the token making it expires then"]})
    row, token = tokens.token_create(actor=request.user, owner=owner, name=body.name, days=body.days)
    return Status(201, {**_token_out(row), "token": token})


@me.delete("/tokens/{token_id}", response={200: s.TokenOut, **REFUSALS}, summary="Revoke a token")
def token_revoke(request, token_id: int):
    token = get_object_or_404(ApiToken.objects.select_related("user"), pk=token_id)
    if not tokens.may_manage(request.user, token.user):
        raise Http404("no such token")
    return _token_out(tokens.token_revoke(actor=request.user, token=token))


clusters = Router(tags=["clusters"])


@clusters.get("", response={200: s.ClusterPage, **REFUSALS}, summary="Clusters you may see")
def cluster_list(
    request,
    name: str | None = Query(
        None, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$", description="Only the cluster of this name."
    ),
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=MAX_PAGE),
):
    visible = Cluster.objects.select_related("team", "standby").filter(roles.visible(request.user))
    if name is not None:
        visible = visible.filter(name=name)
    return _page(visible, key="id", cursor=cursor, limit=limit, out=_cluster_out)


def _cluster_form(body: dict, *, instance: Cluster | None = None) -> ClusterForm:
    """The cluster form, bound to what is stored overlaid with what was sent."""
    current = {}
    if instance is not None:
        current = {name: value for name, value in ClusterForm(instance=instance).initial.items()}
    data = {**current, **body}
    if data.get("actuator_commands") is None:  # null: none, as the form's empty field means
        data["actuator_commands"] = {}
    if isinstance(data.get("tags"), list):
        data["tags"] = ", ".join(data["tags"])
    # As a browser would send them: JSON as text ({} is "empty" to a form field, "{}" is not).
    data = {k: "" if v is None else json.dumps(v) if isinstance(v, dict) else v for k, v in data.items()}
    return ClusterForm(data, instance=instance)


@clusters.post(
    "",
    response={201: s.ClusterOut, **WRITE_REFUSALS},
    summary="Register a cluster (admin)",
    auth=needs("manage_clusters"),
)
def cluster_create(request, body: s.ClusterIn):
    form = _cluster_form(body.dict())
    if not form.is_valid():
        raise _form_errors(form)
    scorecard = services.cluster_register(cluster=form.save(commit=False))
    return Status(201, _cluster_out(scorecard.cluster))


@clusters.get("/{cluster_id}", response={200: s.ClusterOut, **REFUSALS}, summary="One cluster")
def cluster_get(request, cluster_id: int):
    return _cluster_out(_cluster(request, cluster_id))


@clusters.patch(
    "/{cluster_id}",
    response={200: s.ClusterOut, **WRITE_REFUSALS},
    summary="Change a cluster (admin)",
    auth=needs("manage_clusters"),
)
def cluster_patch(request, cluster_id: int, body: s.ClusterPatch):
    cluster = _cluster(request, cluster_id)
    form = _cluster_form(body.dict(exclude_unset=True), instance=cluster)
    if not form.is_valid():
        raise _form_errors(form)
    return _cluster_out(services.cluster_update(cluster=form.save(commit=False)))


@clusters.get("/{cluster_id}/scorecard", response={200: s.ScorecardOut, **REFUSALS}, summary="The scorecard")
def scorecard_get(request, cluster_id: int):
    """Every row with its status, checks, latest evidence and sign-off, as the scorecard page
    shows them."""
    view = _view(_scorecard(request, cluster_id))
    return {
        "cluster": _cluster_out(view.scorecard.cluster),
        "ready": view.ready,
        "proven": view.proven,
        "chain": _chain_out(view.chain),
        "rows": [_row_out(row) for row in view.rows],
    }


@clusters.get("/{cluster_id}/readiness", response={200: s.ReadinessOut, **REFUSALS}, summary="The readiness gate")
def readiness(request, cluster_id: int, max_age: int | None = Query(None, ge=1, le=MAX_AGE_LIMIT)):
    """Ready exactly when the scorecard page says READY: five rows proven on a whole evidence
    chain and signed off. `max_age` (seconds) also makes older evidence a reason not to be
    ready. The answer is 200 either way: read `ready`."""
    scorecard = _scorecard(request, cluster_id)
    return readiness_answer(scorecard=scorecard, max_age=timedelta(seconds=max_age) if max_age else None)


@clusters.post(
    "/{cluster_id}/run-checks",
    response={202: list[s.CheckRunOut], **WRITE_REFUSALS},
    summary="Run every check",
    auth=needs("run_checks"),
)
def checks_run(request, cluster_id: int):
    scorecard = _scorecard(request, cluster_id)
    runs = drill_services.scorecard_run_checks(scorecard=scorecard, requested_by=request.user.get_username())
    return Status(202, [_run_out(run) for run in runs])


@clusters.get("/{cluster_id}/evidence", response={200: s.EvidencePage, **REFUSALS}, summary="Evidence, newest first")
def evidence_list(
    request,
    cluster_id: int,
    row: RowKey | None = None,
    check: int | None = None,
    status: EvidenceStatus | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = Query(50, ge=1, le=MAX_PAGE),
):
    """The scorecard's evidence chain, newest first, paged by cursor; filtered by row, check id,
    status and the period it was collected in (ISO 8601; without a zone, UTC)."""
    scorecard = _scorecard(request, cluster_id)
    evidence = Evidence.objects.filter(scorecard=scorecard).select_related("check_obj")
    filters = {"row_key": row, "check_obj_id": check, "status": status}
    evidence = evidence.filter(**{k: v for k, v in filters.items() if v is not None})
    if since is not None or until is not None:
        evidence = _period(evidence, scorecard, since and _aware(since), until and _aware(until))
    return _page(evidence, key="-seq", cursor=cursor, limit=limit, out=_evidence_out)


# Evidence is appended under a lock on its scorecard and stamped with the appending process's
# clock: collected_at follows seq, but for the skew between hosts' clocks (assumed below this).
CLOCK_SKEW = timedelta(minutes=5)


def _period(evidence, scorecard: Scorecard, since: datetime | None, until: datetime | None):
    """The period as a filter on collected_at, plus a seq range that holds it, found with the
    (scorecard, collected_at) index, so the newest-first scan starts at the period instead of
    walking every later item. Items before (in seq) one stamped more than the skew before
    `since` are before `since`; items from one stamped more than the skew after `until` on are
    after `until`."""
    stamps = Evidence.objects.filter(scorecard=scorecard).values_list("seq", flat=True)
    if since is not None:
        evidence = evidence.filter(collected_at__gte=since)
        before = (
            None
            if since < datetime.min.replace(tzinfo=UTC) + CLOCK_SKEW
            else (stamps.filter(collected_at__lt=since - CLOCK_SKEW).order_by("-collected_at").first())
        )
        if before is not None:
            evidence = evidence.filter(seq__gt=before)
    if until is not None:
        evidence = evidence.filter(collected_at__lt=until)
        after = (
            None
            if until > datetime.max.replace(tzinfo=UTC) - CLOCK_SKEW
            else (stamps.filter(collected_at__gte=until + CLOCK_SKEW).order_by("collected_at").first())
        )
        if after is not None:
            evidence = evidence.filter(seq__lt=after)
    return evidence


def _aware(moment: datetime) -> datetime:
    return moment if timezone.is_aware(moment) else timezone.make_aware(moment, timezone.UTC)


@clusters.get("/{cluster_id}/drills", response={200: s.DrillPage, **REFUSALS}, summary="Drills, newest first")
def drill_list(request, cluster_id: int, cursor: str | None = None, limit: int = Query(50, ge=1, le=MAX_PAGE)):
    cluster = _cluster(request, cluster_id)
    runs = DrillRun.objects.filter(cluster=cluster).select_related("cluster")
    return _page(runs, key="-id", cursor=cursor, limit=limit, out=_drill_out)


@clusters.post(
    "/{cluster_id}/drills",
    response={201: s.DrillOut, **WRITE_REFUSALS},
    summary="Start a drill",
    auth=needs("start_drills"),
)
def drill_start(request, cluster_id: int, body: s.DrillIn):
    """Validated by the drill form: only scenarios the cluster's actuator can perform, guardrails
    from the rows (tighten freely; loosening needs a drill approver), one drill at a time."""
    cluster = _cluster(request, cluster_id)
    data = {**{k: v for k, v in body.params.items() if v is not None}, "scenario": body.scenario}
    form = drill_start_form(cluster, data={**data, "confirm": body.confirm})
    if not form.is_valid():
        raise _form_errors(form)
    return Status(201, _drill_out(form.start(request.user)))


rows = Router(tags=["rows and checks"])


@rows.get("/rows/{row_id}", response={200: s.RowOut, **REFUSALS}, summary="One row")
def row_get(request, row_id: int):
    row = _row(request, row_id)
    return _row_out(next(r for r in _view(row.scorecard).rows if r.row.pk == row.pk))


@rows.patch(
    "/rows/{row_id}", response={200: s.RowOut, **WRITE_REFUSALS}, summary="Change a row", auth=needs("edit_own_rows")
)
def row_patch(request, row_id: int, body: s.RowPatch):
    row = _row(request, row_id)
    if not services.row_may_edit(request.user, row):
        raise PermissionDenied(f"{row.title} is owned by someone else: its owner or an administrator edits it")
    sent = body.dict(exclude_unset=True)
    if "owner_user" in sent and not roles.can(request.user, "manage_clusters"):
        raise PermissionDenied("only an administrator links a row to its owner's login")
    form = RowForm(instance=row, user=request.user)
    data = {name: form[name].value() for name in form.fields}
    targets = sent.pop("targets", None)
    if "owner_user" in sent:
        username = sent.pop("owner_user") or ""
        owner = get_user_model().objects.filter(username=username, is_active=True).first() if username else None
        if username and owner is None:
            raise ValidationError({"owner_user": [f"no active user {username!r}"]})
        data["owner_user"] = owner.pk if owner else ""
    data.update({k: "" if v is None else v for k, v in sent.items()})
    if targets is not None:
        defaults = targets.get("default", {})
        unknown = [name for name in defaults if f"target_{name}" not in data]
        if unknown:
            raise ValidationError({"targets": [f"{', '.join(unknown)}: not a target of the {row.title} row"]})
        data.update({name: "" for name in data if name.startswith("target_")})
        data.update({f"target_{name}": value for name, value in defaults.items()})
        data["target_overrides"] = "\n".join(
            f"{scope}.{name} = {value}" for scope, values in targets.items() if scope != "default"
            for name, value in values.items()
        )  # fmt: skip
    form = RowForm(data, instance=row, user=request.user)
    if not form.is_valid():
        # The form's target fields are one `targets` object here.
        errors = {"targets" if f.startswith("target_") else f: e for f, e in _form_errors(form).message_dict.items()}
        raise ValidationError(errors)
    services.row_update(row=row, may_loosen=may_loosen(request.user), **form.changes())
    return row_get(request, row_id)


@rows.get("/checks/{check_id}", response={200: s.CheckOut, **REFUSALS}, summary="One check")
def check_get(request, check_id: int):
    check = _check(request, check_id)
    return _check_out(selectors.check_view(check=check), check.row.key)


@rows.patch(
    "/checks/{check_id}",
    response={200: s.CheckOut, **WRITE_REFUSALS},
    summary="Change a check",
    auth=needs("edit_checks"),
)
def check_patch(request, check_id: int, body: s.CheckPatch):
    """Parameters as on the check page (validated by the probe's declared parameters) and its
    schedule (interval and the age beyond which evidence is stale)."""
    check = _check(request, check_id)
    sent = body.dict(exclude_unset=True)
    changes = {}
    if sent.get("params") is not None:
        form = ParamsForm(check=check)
        data = {name: form[name].value() for name in form.fields}
        given = {k: ", ".join(map(str, v)) if isinstance(v, list) and k in data and not _choices(form, k) else v
                 for k, v in sent["params"].items()}  # fmt: skip
        unknown = sorted(set(given) - set(data))
        if unknown:
            raise ValidationError({"params": [f"{', '.join(unknown)}: not a parameter of {check.get_kind_display()}"]})
        form = ParamsForm({**data, **given}, check=check)
        if not form.is_valid():
            raise _form_errors(form)
        changes["params"] = form.params()
    schedule = {k: sent[k] for k in ("interval_seconds", "max_age_seconds") if sent.get(k) is not None}
    if schedule:
        form = ScheduleForm({**ScheduleForm(instance=check).initial, **schedule}, instance=check)
        if not form.is_valid():
            raise _form_errors(form)
        changes.update(form.cleaned_data)
    if changes:
        services.check_update(check=check, **changes)
    return check_get(request, check_id)


def _choices(form: ParamsForm, name: str) -> bool:
    return hasattr(form.fields[name], "choices")


@rows.post(
    "/checks/{check_id}/run",
    response={202: s.CheckRunOut, **WRITE_REFUSALS},
    summary="Run one check",
    auth=needs("run_checks"),
)
def check_run(request, check_id: int):
    check = _check(request, check_id)
    if not Check.objects.runnable().filter(pk=check.pk).exists():
        raise drill_services.DrillRefused(f"{check.get_kind_display()} is not run by a probe (or is NOT APPLICABLE)")
    run = drill_services.check_run_request(check=check, requested_by=request.user.get_username())
    return Status(202, _run_out(run))


drills = Router(tags=["drills"])


@drills.get("/drills/{run_id}", response={200: s.DrillOut, **REFUSALS}, summary="One drill, with its figures")
def drill_get(request, run_id: int):
    return _drill_out(_drill(request, run_id))


@drills.post(
    "/drills/{run_id}/abort",
    response={200: s.DrillOut, **WRITE_REFUSALS},
    summary="Abort a drill",
    auth=needs("start_drills"),
)
def drill_abort(request, run_id: int):
    """The drill stops its fault and runs its recovery; an abort of a finished drill changes nothing."""
    run = _drill(request, run_id)
    drill_services.may_act_require(request.user, run, "abort")
    drill_services.drill_run_abort_request(run=run, user=request.user.get_username())
    run.refresh_from_db()
    return _drill_out(run)


@drills.post(
    "/drills/{run_id}/confirm",
    response={200: s.DrillOut, **WRITE_REFUSALS},
    summary="Confirm a manual step",
    auth=needs("start_drills"),
)
def drill_confirm(request, run_id: int):
    run = _drill(request, run_id)
    drill_services.may_act_require(request.user, run, "confirm a step of")
    if not drill_services.drill_step_confirm(run=run, user=request.user.get_username()):
        raise drill_services.DrillRefused(f"drill {run.pk} is not waiting for a manual step")
    run.refresh_from_db()
    return _drill_out(run)


exports = Router(tags=["audit exports"])


@exports.get("/exports", response={200: s.ExportPage, **REFUSALS}, summary="Audit PDFs, newest first")
def export_list(request, cursor: str | None = None, limit: int = Query(50, ge=1, le=MAX_PAGE)):
    return _page(visible_exports(request.user).defer("pdf"), key="-id", cursor=cursor, limit=limit, out=_export_out)


@exports.post("/exports", response={202: s.ExportOut, **WRITE_REFUSALS}, summary="Ask for an audit PDF")
def export_make(request, body: s.ExportIn):
    ids = list(dict.fromkeys(body.clusters))
    if not 1 <= len(ids) <= 10:
        raise ValidationError({"clusters": ["one to ten cluster ids"]})
    visible = Scorecard.objects.select_related("cluster").filter(roles.visible(request.user, "cluster__"))
    scorecards = list(visible.filter(cluster_id__in=ids).order_by("cluster__name"))
    if len(scorecards) != len(ids):
        raise Http404("no such cluster")
    form = ExportForm({"since": _aware(body.since), "until": _aware(body.until)})
    if not form.is_valid():
        raise _form_errors(form)
    try:
        export = export_request(scorecards=scorecards, by=request.user.get_username(), **form.cleaned_data)
    except ExportBusy as exc:
        raise drill_services.DrillRefused(str(exc)) from None
    return Status(202, _export_out(export))


@exports.get("/exports/{export_id}", response={200: s.ExportOut, **REFUSALS}, summary="One audit PDF's state")
def export_get(request, export_id: int):
    return _export_out(get_object_or_404(visible_exports(request.user).defer("pdf"), pk=export_id))


@exports.get(
    "/exports/{export_id}/download",
    response={200: None, **REFUSALS},
    summary="Download a finished audit PDF",
    openapi_extra={"responses": {200: {"description": "The PDF", "content": {"application/pdf": {}}}}},
)
def export_download(request, export_id: int):
    return export_response(get_object_or_404(visible_exports(request.user), pk=export_id, state=AuditExport.State.DONE))


as_code = Router(tags=["scorecard as code"])
YAML_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/yaml": {"schema": {"type": "string"}}},
        "description": "The scorecard as YAML (docs/config-as-code.md), at most 1 MB.",
    }
}
YAML_ANSWER = {"responses": {200: {"description": "The YAML", "content": {"application/yaml": {}}}}}


def _import(request, cluster: Cluster | None, apply: bool, digest: str | None) -> dict:
    try:
        text = request.body.decode()
    except UnicodeDecodeError:
        raise ValidationError({"body": ["the YAML is not UTF-8 text"]}) from None
    if apply:
        plan = config_apply(text=text, user=request.user, cluster=cluster, expected_digest=digest or None)
    else:
        plan = config_plan(text=text, user=request.user, cluster=cluster)
    return {**plan.as_dict(), "applied": apply and bool(plan.changes)}


@as_code.get(
    "/clusters/{cluster_id}/config", response={200: None, **REFUSALS}, summary="The scorecard as YAML",
    openapi_extra=YAML_ANSWER,
)  # fmt: skip
def config_get(request, cluster_id: int):
    """Owners, rollback conditions and guardrails, targets, checks and their parameters and
    schedules, drill schedules; never a secret, a NOT APPLICABLE mark or a sign-off."""
    return HttpResponse(config_export(scorecard=_scorecard(request, cluster_id)), content_type="application/yaml")


@as_code.post(
    "/clusters/{cluster_id}/config", response={200: s.ConfigPlanOut, **WRITE_REFUSALS},
    summary="Import YAML: the diff, or apply it", auth=needs("edit_checks"), openapi_extra=YAML_BODY,
)  # fmt: skip
def config_post(
    request,
    cluster_id: int,
    apply: bool = Query(False, description="false (default): only the diff and refusals; true: apply all or nothing."),
    digest: str | None = Query(None, max_length=64, description="The diff's digest: refuse if anything changed since."),
):
    """Validated as a whole (errors name their line: 422); each change needs the role its page
    needs (403 lists the refusals); applied in one transaction, audited."""
    return _import(request, _cluster(request, cluster_id), apply, digest)


@as_code.post(
    "/config", response={200: s.ConfigPlanOut, **WRITE_REFUSALS}, summary="Import YAML naming any cluster (admin)",
    auth=needs("manage_clusters"), openapi_extra=YAML_BODY,
)  # fmt: skip
def config_post_any(
    request,
    apply: bool = Query(False, description="false (default): only the diff; true: apply, registering a new cluster."),
    digest: str | None = Query(None, max_length=64),
):
    """The cluster the YAML names; registered if it does not exist yet."""
    return _import(request, None, apply, digest)


api.add_router("", me)
api.add_router("", as_code)
api.add_router("/clusters", clusters)
api.add_router("", rows)
api.add_router("", drills)
api.add_router("", exports)
