"""No secret leaves its place: a grep over everything a test run produces (issue 13).

One run with known secrets (a cluster's SASL password, API tokens; the Fernet keys, the
evidence key and SECRET_KEY as the settings hold them) runs probes and drills through a real
worker, builds an audit PDF, renders every URL of the URL conf for every role, and then looks
for each secret, plain and encoded, in the pages and API answers, the PDF's text, the raw task
messages in Redis, every row of the product's tables, the worker's log and the log records of
this process. (The product has no secret actuator field: the command actuator takes argv
templates and no environment, so there is no such value to plant.)
"""

import base64
import itertools
import json
import re
import secrets
from datetime import time, timedelta
from io import BytesIO
from urllib.parse import quote, quote_plus

import pytest
import redis
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from pypdf import PdfReader

from api.models import ApiToken
from api.tokens import token_create
from drills import services as drill_services
from drills.models import DrillRun, DrillSchedule
from drills.schedules import schedule_create
from scorecard import services
from scorecard.models import Actuator, AuditEvent, AuditExport, Check, CheckRun, Cluster, Evidence, Row, Team
from scorecard.report import export_request
from scorecard.roles import Role
from tests.conftest import stop_worker, user_with_role, wait_for
from tests.factories import register
from tests.scorecard.test_views import valid_form

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("requesters")]

ROLES = [Role.VIEWER, Role.OPERATOR, Role.APPROVER, Role.ADMIN]
QUICK_PROBE = {"timeout_seconds": 3}
QUICK_DRILL = {"baseline_seconds": 2, "settle_seconds": 3, "fault_seconds": 2}


def encodings(secret: str) -> dict[str, str]:
    """The secret as it could appear: plain, URL- and form-encoded, hex, and base64 (standard
    and URL-safe) at each of the three byte alignments it could have inside a longer encoded
    text, keeping only the characters that depend on the secret's bytes alone."""
    raw = secret.encode()
    found = {"plain": secret, "url-encoded": quote(secret, safe=""), "form-encoded": quote_plus(secret)}
    found["hex"] = raw.hex()
    for shift, (name, encode) in itertools.product(
        range(3), [("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)]
    ):
        text = encode(b"\0" * shift + raw).decode()
        whole_groups = (len(raw) + shift) // 3 * 4
        found[f"{name}, offset {shift}"] = text[4 if shift else 0 : whole_groups]
    distinct = {}
    for encoding, needle in found.items():
        if needle not in distinct.values():
            distinct[encoding] = needle
    return distinct


def leaks(secrets_by_name: dict[str, str], texts: dict[str, str]) -> list[str]:
    """Every (secret, encoding, place) where a secret shows, with some context around it."""
    found = []
    for secret_name, secret in secrets_by_name.items():
        for encoding, needle in encodings(secret).items():
            assert len(needle) >= 16, f"{secret_name} ({encoding}) is too short to grep for without false hits"
            for place, text in texts.items():
                if (at := text.find(needle)) >= 0:
                    context = text[max(0, at - 60) : at + len(needle) + 60].replace(needle, "<SECRET>")
                    found.append(f"{secret_name} ({encoding}) in {place}: ...{context!r}...")
    return found


def test_the_grep_finds_a_secret_in_each_form_it_looks_for():
    secret = "pw-" + secrets.token_urlsafe(18)
    hidden = {
        "plain": f"<p>{secret}</p>",
        "url-encoded": "a=" + quote(secret + "/+", safe=""),
        "base64 in a longer text": base64.b64encode(b"user:" + secret.encode() + b":tail").decode(),
        "base64url at offset 1": base64.urlsafe_b64encode(b"x" + secret.encode()).decode(),
        "hex": ("ab" + secret).encode().hex(),
    }
    for place, text in hidden.items():
        assert leaks({"secret": secret}, {place: text}), place
    assert not leaks({"secret": secret}, {"elsewhere": "pw-" + secrets.token_urlsafe(18)})


# --- what the run produces ------------------------------------------------------------------


def url_routes() -> list[tuple[str, str]]:
    """(route, name) of every pattern in the URL conf, prefixes joined."""
    routes = []

    def walk(patterns, prefix: str, namespace: str):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, prefix + str(pattern.pattern), pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern):
                routes.append((prefix + str(pattern.pattern), f"{namespace}:{pattern.name}"))

    walk(get_resolver().url_patterns, "", "")
    return routes


# Routes not requested, each with its reason; any other route must be filled and requested.
NOT_REQUESTED = {
    "admin:logout": "logs the client out",
    ":logout": "logs the client out",
    "admin:view_on_site": "a redirect to an object's own page, which is walked itself",
    "admin:None": "the admin's catch-all and its object redirects",
}


def object_ids() -> dict[str, list]:
    user_ids = list(get_user_model().objects.values_list("pk", flat=True))
    return {
        "cluster_id": list(Cluster.objects.values_list("pk", flat=True)),
        "row_id": list(Row.objects.values_list("pk", flat=True)),
        "check_id": list(Check.objects.values_list("pk", flat=True)),
        "run_id": list(DrillRun.objects.values_list("pk", flat=True)),
        "schedule_id": list(DrillSchedule.objects.values_list("pk", flat=True)),
        "export_id": list(AuditExport.objects.values_list("pk", flat=True)),
        "token_id": list(ApiToken.objects.values_list("pk", flat=True)),
        "id": user_ids,
        "auth/user/": user_ids,
        "auth/group/": list(Group.objects.values_list("pk", flat=True)),
        "scorecard/auditevent/": list(AuditEvent.objects.values_list("pk", flat=True)[:5]),
        "scorecard/team/": list(Team.objects.values_list("pk", flat=True)),
    }


def urls_to_request() -> list[str]:
    ids = object_ids()
    urls = []
    for route, name in url_routes():
        if name in NOT_REQUESTED:
            continue
        if name == "admin:app_list":
            urls += ["/admin/auth/", "/admin/scorecard/"]
            continue
        params = re.findall(r"<(?:\w+:)?(\w+)>", route)
        assert len(params) <= 1, f"{route}: more than one parameter; teach this test to fill it"
        if not params:
            urls.append("/" + route)
            continue
        param = params[0]
        key = next((k for k in ids if "/" in k and f"/{k}" in f"/{route}"), param) if param == "object_id" else param
        assert ids.get(key), f"no object to fill <{param}> of {route} ({name}): create one in this test"
        urls += ["/" + re.sub(r"<(?:\w+:)?\w+>", str(value), route) for value in ids[key]]
    return list(dict.fromkeys(urls))  # the API's GET and POST of one path share a route


def body_text(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    if response.get("Content-Type", "").startswith("application/pdf"):
        reader = PdfReader(BytesIO(content))
        return "\n".join(page.extract_text() for page in reader.pages) + "\n" + content.decode("latin-1")
    return content.decode(errors="replace")


def database_rows() -> dict[str, str]:
    """Every row of the product's tables, as JSON, except where a secret is kept by design
    (the encrypted password column) and the PDFs' bytes (read as text from their download)."""
    kept_apart = {("cluster", "sasl_password_token"), ("auditexport", "pdf")}
    texts = {}
    for app in ("scorecard", "drills", "api"):
        for model in apps.get_app_config(app).get_models():
            name = model._meta.model_name
            fields = [f.attname for f in model._meta.concrete_fields if (name, f.name) not in kept_apart]
            rows = list(model.objects.values(*fields))
            texts[f"table {app}.{name}"] = json.dumps(rows, default=str)
    return texts


def redis_messages(queue: str) -> dict[str, str]:
    """The raw messages waiting on the queue, and their bodies decoded."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    texts = {}
    for key in client.keys(f"{queue}*"):
        for index, raw in enumerate(client.lrange(key, 0, -1)):
            message = json.loads(raw)
            body = base64.b64decode(message["body"]) if message["properties"]["body_encoding"] == "base64" else b""
            texts[f"redis {key!r}[{index}]"] = raw.decode(errors="replace")
            texts[f"redis {key!r}[{index}] body"] = body.decode(errors="replace")
    return texts


def finished_run(run: CheckRun) -> bool:
    run.refresh_from_db()
    return run.state in (CheckRun.State.DONE, CheckRun.State.FAILED)


def finished_drill(run: DrillRun) -> bool:
    run.refresh_from_db()
    return not run.active


def test_no_secret_shows_in_any_page_export_log_message_or_row(
    start_private_worker, private_sandbox, private_standby, role_client, caplog, settings
):
    caplog.set_level("INFO")
    password = "pw-" + secrets.token_urlsafe(24)
    admin = role_client(Role.ADMIN, username="sre")

    # Worker first, to learn its queue; then stopped, so the runs' messages wait in Redis.
    worker = start_private_worker("secrets")
    queue = worker.queue
    stop_worker(worker)

    # The SASL cluster, entered through the form as a person would; then its sandbox actuator.
    fields = {"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN", "sasl_username": "svc"}
    form = valid_form(name="secret-sasl", bootstrap_servers=private_sandbox.bootstrap, worker_queue=queue, **fields)
    assert admin.post(reverse("scorecard-cluster-new"), {**form, "sasl_password": password}).status_code == 302
    cluster = Cluster.objects.get(name="secret-sasl")
    cluster.actuator, cluster.sandbox_control = Actuator.SANDBOX, private_sandbox.control_path
    cluster.drills_allowed = True
    services.cluster_update(cluster=cluster)
    assert Cluster.objects.get(pk=cluster.pk).sasl_password == password
    plain = register(
        name="secret-plain", bootstrap=private_standby.bootstrap, worker_queue=queue, expected_brokers=3,
        drills_allowed=True, actuator=Actuator.SANDBOX, sandbox_control=private_standby.control_path,
    ).cluster  # fmt: skip
    for check in Check.objects.filter(row__scorecard__cluster=cluster):
        check.params = {**check.params, **{k: v for k, v in QUICK_PROBE.items() if k in check.params}}
        check.save()
    schedule_create(
        cluster=plain, by="sre", scenario="broker_loss", weekdays=[1], window_start=time(0, 0), window_end=time(23, 59),
        time_zone="UTC", params={"fault_seconds": 5.0},
    )  # fmt: skip

    # Probes and drills queued while no worker serves the queue: their messages, raw.
    runs = drill_services.scorecard_run_checks(scorecard=cluster.scorecard, requested_by="test")
    drills = [
        drill_services.drill_run_start(cluster=c, scenario="broker_loss", params=QUICK_DRILL, requested_by="sre")
        for c in (cluster, plain)
    ]
    messages = redis_messages(queue)
    assert len(messages) == 2 * (len(runs) + len(drills)), sorted(messages)

    # A worker takes them over; the audit PDF is built on its queue too.
    settings.AUDIT_EXPORT_QUEUE = queue
    worker = start_private_worker("secrets")
    for run in runs:
        wait_for(lambda run=run: finished_run(run), timeout=120, message=f"probe run {run.pk}")
    for drill in drills:
        wait_for(lambda drill=drill: finished_drill(drill), timeout=120, message=f"drill {drill.pk}")
    assert Evidence.objects.filter(run__in=runs).count() == len(runs)
    assert all(r.status == "ERROR" for r in Evidence.objects.filter(run__in=runs, check_obj__kind="cluster_health"))
    now = timezone.now()
    export = export_request(
        scorecards=[cluster.scorecard, plain.scorecard], since=now - timedelta(days=1), until=now, by="sre"
    )
    wait_for(
        lambda: AuditExport.objects.filter(pk=export.pk, state__in=["done", "failed"]).exists(),
        timeout=120,
        message="the audit PDF",
    )
    assert AuditExport.objects.get(pk=export.pk).state == "done"

    Team.objects.create(name="platform").members.add(get_user_model().objects.get(username="sre"))

    # Tokens of every role; one form and two API answers that get the password back with an error.
    tokens = {role: token_create(actor=user_with_role(role.replace(" ", "-"), role), name="grep")[1] for role in ROLES}
    texts = dict(messages)
    edit = reverse("scorecard-cluster-edit", args=[cluster.pk])
    refused = admin.post(edit, {**form, "sasl_password": password, "expected_brokers": "-1"})
    assert refused.status_code == 200
    texts["cluster form refused, re-rendered"] = body_text(refused)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {tokens[Role.ADMIN]}")
    bad = {**fields, "name": "!!", "bootstrap_servers": "x:1", "sasl_password": password, "expected_brokers": -1}
    for method, url in (("post", "/api/v1/clusters"), ("patch", f"/api/v1/clusters/{cluster.pk}")):
        answer = getattr(api, method)(url, bad, content_type="application/json")
        assert answer.status_code in (400, 422), answer.content
        texts[f"{method.upper()} {url} refused"] = body_text(answer)
    exported = api.get(f"/api/v1/clusters/{cluster.pk}/config")
    assert exported.status_code == 200 and "secret-sasl" in exported.content.decode()
    plan = api.post(f"/api/v1/clusters/{cluster.pk}/config", exported.content, content_type="application/yaml")
    texts["config plan of the exported YAML"] = body_text(plan)

    # Every URL of the URL conf, for every role: pages with a session, the API and /metrics with a token.
    urls = urls_to_request()
    statuses = {}
    for role in ROLES:
        browser = role_client(role, username=role.replace(" ", "-"))
        bearer = Client(HTTP_AUTHORIZATION=f"Bearer {tokens[role]}")
        for url in urls:
            client = bearer if url.startswith(("/api/", "/metrics")) else browser
            response = client.get(url)
            statuses[(role, url)] = response.status_code
            texts[f"GET {url} as {role} ({response.status_code})"] = body_text(response)
    ok = {url for (role, url), status in statuses.items() if role == Role.ADMIN and status == 200}
    pdf = reverse("scorecard-export-download", args=[export.pk])
    expected = {"/", f"/clusters/{cluster.pk}/", f"/clusters/{cluster.pk}/config.yaml", "/metrics", pdf}
    expected |= {"/api/v1/openapi.json", f"/api/v1/clusters/{cluster.pk}", "/admin/auth/user/", "/tokens/"}
    expected |= {f"/drills/{drill.pk}/" for drill in drills} | {f"/checks/{run.check_obj_id}/" for run in runs}
    assert expected <= ok, {url: statuses[(Role.ADMIN, url)] for url in expected - ok}
    assert "secret-sasl" in texts[f"GET {pdf} as {Role.ADMIN} (200)"]

    worker_log = worker.log()
    assert "run_drill[" in worker_log and "run_check[" in worker_log
    texts["worker log"] = worker_log
    texts["log records of this process"] = caplog.text
    texts.update(database_rows())

    secret_values = {"the SASL password": password}
    secret_values.update({f"the API token of the {role}": token for role, token in tokens.items()})
    secret_values["the encrypted SASL password"] = Cluster.objects.get(pk=cluster.pk).sasl_password_token
    secret_values["SECRET_KEY"] = settings.SECRET_KEY
    secret_values["the evidence key"] = settings.SCORECARD_EVIDENCE_KEY
    secret_values.update({f"Fernet key {i}": key for i, key in enumerate(settings.SCORECARD_SECRET_KEYS)})
    found = leaks(secret_values, texts)
    assert not found, f"{len(found)} leaks in {len(texts)} texts:\n" + "\n".join(found[:40])
