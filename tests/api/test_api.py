"""The REST API (issue 12, part 1): its OpenAPI description, tokens, and every operation's
refusals and answers, checked against what the pages show and do."""

import json
import re
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from openapi_spec_validator import validate

from api.tokens import token_create
from drills.models import DrillRun
from scorecard.evidence import chain_walk, evidence_append
from scorecard.models import Actuator, AuditEvent, AuditExport, Check, Cluster, Row, Team
from tests.conftest import user_with_role
from tests.factories import check_of, ready_scorecard, register

pytestmark = pytest.mark.django_db

API = "/api/v1"


class Api:
    """A client that sends one person's token."""

    def __init__(self, user=None, token: str = ""):
        self.client = Client()
        self.token = token or (token_create(actor=user, name="tests")[1] if user else "")

    def call(self, method: str, path: str, body=None, **query):
        headers = {"HTTP_AUTHORIZATION": f"Bearer {self.token}"} if self.token else {}
        send = getattr(self.client, method.lower())
        if method.upper() in ("GET", "DELETE"):
            return send(API + path, query, **headers)
        return send(API + path, json.dumps(body or {}), content_type="application/json", **headers)

    def get(self, path, **query):
        return self.call("GET", path, **query)


@pytest.fixture
def as_role():
    def make(role: str, username: str = "") -> Api:
        return Api(user_with_role(username or role.replace(" ", "-"), role))

    return make


def drillable(name="prod", **fields) -> Cluster:
    return register(name=name, drills_allowed=True, actuator=Actuator.SANDBOX, sandbox_control="/tmp/x.sock",
                    **fields).cluster  # fmt: skip


def schema() -> dict:
    from api.v1 import api

    return json.loads(json.dumps(api.get_openapi_schema()))


# --- Every operation: who may call it --------------------------------------------------------

# (method, path) -> the least role that may call it. Each is called by nobody, by a role below
# and by a user of another team; the test below fails when an operation is added without a row.
OPERATIONS = {
    ("get", "/me"): "viewer",
    ("get", "/tokens"): "viewer",
    ("post", "/tokens"): "viewer",
    ("delete", "/tokens/{token_id}"): "viewer",
    ("get", "/clusters"): "viewer",
    ("post", "/clusters"): "admin",
    ("get", "/clusters/{cluster_id}"): "viewer",
    ("patch", "/clusters/{cluster_id}"): "admin",
    ("get", "/clusters/{cluster_id}/scorecard"): "viewer",
    ("get", "/clusters/{cluster_id}/readiness"): "viewer",
    ("post", "/clusters/{cluster_id}/run-checks"): "operator",
    ("get", "/clusters/{cluster_id}/evidence"): "viewer",
    ("get", "/clusters/{cluster_id}/drills"): "viewer",
    ("post", "/clusters/{cluster_id}/drills"): "operator",
    ("get", "/rows/{row_id}"): "viewer",
    ("patch", "/rows/{row_id}"): "operator",
    ("get", "/checks/{check_id}"): "viewer",
    ("patch", "/checks/{check_id}"): "operator",
    ("post", "/checks/{check_id}/run"): "operator",
    ("get", "/drills/{run_id}"): "viewer",
    ("post", "/drills/{run_id}/abort"): "operator",
    ("post", "/drills/{run_id}/confirm"): "operator",
    ("get", "/exports"): "viewer",
    ("post", "/exports"): "viewer",
    ("get", "/exports/{export_id}"): "viewer",
    ("get", "/exports/{export_id}/download"): "viewer",
    ("get", "/clusters/{cluster_id}/config"): "viewer",
    ("post", "/clusters/{cluster_id}/config"): "operator",
    ("post", "/config"): "admin",
}
# A valid body where one is needed: an outsider is refused for the object, not the body.
BODIES = {("post", "/clusters/{cluster_id}/drills"): {"scenario": "broker_loss", "confirm": "hidden"}}
BELOW = {"operator": "viewer", "drill approver": "operator", "admin": "drill approver"}


@pytest.fixture
def objects():
    """One of everything, on a cluster of team "payments"."""
    team = Team.objects.create(name="payments")
    cluster = drillable("hidden", team=team)
    scorecard = cluster.scorecard
    check = check_of(scorecard)
    run = DrillRun.objects.create(cluster=cluster, scenario="broker_loss", requested_by="someone")
    now = timezone.now()
    export = AuditExport.objects.create(
        requested_by="x", since=now - timedelta(days=1), until=now, cluster_names="hidden", state="done", pdf=b"%PDF"
    )
    export.scorecards.set([scorecard])
    owner = user_with_role("tok-owner", "viewer")
    token = token_create(actor=owner, name="x")[0]
    ids = {"cluster_id": cluster.pk, "row_id": check.row_id, "check_id": check.pk, "run_id": run.pk,
           "export_id": export.pk, "token_id": token.pk}  # fmt: skip
    return ids


def unique_keys(pairs: list) -> dict:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys in {keys}"
    return dict(pairs)


def test_the_openapi_description_validates_and_every_operation_is_tested(client):
    answer = client.get(f"{API}/openapi.json")
    assert answer.status_code == 200
    described = json.loads(answer.content, object_pairs_hook=unique_keys)  # as strict as the reference page
    validate(described)
    operations = {(method, path.removeprefix(API)) for path, item in described["paths"].items() for method in item}
    assert operations == set(OPERATIONS)
    assert described["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"


def test_the_reference_page_is_served_from_the_apps_own_static_files(client):
    page = client.get(f"{API}/docs").content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in page and "cdn" not in page.split("<body")[0].lower()


@pytest.mark.parametrize(("method", "path"), sorted(OPERATIONS))
def test_every_operation_refuses_nobody_a_bad_token_and_a_revoked_one(objects, method, path):
    url = path.format(**objects)
    assert Api().call(method, url).status_code == 401
    assert Api(token="rrs_00000000_forged").call(method, url).status_code == 401
    user = user_with_role("revoked", "admin")
    row, token = token_create(actor=user, name="old")
    from api.tokens import token_revoke

    token_revoke(actor=user, token=row)
    assert Api(token=token).call(method, url).status_code == 401


@pytest.mark.parametrize(("method", "path"), sorted(OPERATIONS))
def test_every_operation_refuses_a_role_below_and_hides_another_teams_objects(objects, as_role, method, path):
    url = path.format(**objects)
    needed = OPERATIONS[(method, path)]
    if needed in BELOW:
        refused = as_role(BELOW[needed], "low").call(method, url)
        assert refused.status_code == 403, refused.content
        assert "needs the" in refused.json()["detail"]
    if "{" in path and needed != "admin":  # administrators see every team's clusters
        outsider = as_role("drill approver", "outsider").call(method, url, BODIES.get((method, path)))
        assert outsider.status_code == 404, (url, outsider.content)
    assert as_role("operator", "no-team").call("get", "/clusters").json()["items"] == []


def test_a_user_without_any_role_is_refused_everywhere(objects):
    from django.contrib.auth import get_user_model

    nobody = get_user_model().objects.create_user("nobody")
    answer = Api(nobody).get("/clusters")
    assert answer.status_code == 403 and "viewer role" in answer.json()["detail"]


# --- Tokens ------------------------------------------------------------------------------------


def test_a_token_is_shown_once_stored_as_a_digest_and_revoked_by_its_user(as_role):
    viewer = as_role("viewer", "vera")
    made = viewer.call("post", "/tokens", {"name": "pipeline", "days": 30})
    assert made.status_code == 201
    token = made.json()["token"]
    assert token.startswith("rrs_") and made.json()["expires_at"]
    listing = viewer.get("/tokens").json()
    assert "token" not in listing[0] and token not in json.dumps(listing)
    from api.models import ApiToken

    assert not ApiToken.objects.filter(digest__contains=token.split("_")[2][:10]).exists()
    assert Api(token=token).get("/me").json() == {"username": "vera", "roles": ["viewer"], "teams": []}
    assert viewer.call("delete", f"/tokens/{made.json()['id']}").json()["revoked_at"]
    assert Api(token=token).get("/me").status_code == 401
    actions = list(AuditEvent.objects.filter(object_type="api token").values_list("action", "actor"))
    assert ("token.create", "vera") in actions and ("token.revoke", "vera") in actions


def test_only_an_administrator_makes_or_revokes_someone_elses_tokens(as_role):
    user_with_role("olga", "operator")
    assert as_role("drill approver").call("post", "/tokens", {"name": "x", "user": "olga"}).status_code == 403
    admin = as_role("admin")
    made = admin.call("post", "/tokens", {"name": "for olga", "user": "olga"})
    assert made.status_code == 201 and made.json()["user"] == "olga"
    assert Api(token=made.json()["token"]).get("/me").json()["username"] == "olga"
    assert as_role("viewer").call("delete", f"/tokens/{made.json()['id']}").status_code == 404
    assert admin.call("delete", f"/tokens/{made.json()['id']}").status_code == 200


@pytest.mark.parametrize("body", [{"name": ""}, {"name": "x" * 101}, {"name": "ok", "days": 0}, {"name": "\x00"}])
def test_a_bad_token_request_is_refused_with_the_field(as_role, body):
    answer = as_role("viewer").call("post", "/tokens", body)
    assert answer.status_code == 422 and answer.json()["detail"][0]["loc"][-1] in ("name", "days", "body")


def test_a_deactivated_users_token_stops_working(as_role):
    api = as_role("viewer", "leaver")
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(username="leaver").update(is_active=False)
    assert api.get("/me").status_code == 401


# --- Clusters and secrets ---------------------------------------------------------------------


def test_a_cluster_registered_through_the_api_never_returns_its_password(as_role):
    admin = as_role("admin")
    body = {"name": "prod-api", "bootstrap_servers": "127.0.0.1:9092", "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN", "sasl_username": "svc", "sasl_password": "hunter2-secret",
            "tags": ["payments", "eu"]}  # fmt: skip
    made = admin.call("post", "/clusters", body)
    assert made.status_code == 201, made.content
    assert made.json()["sasl_password_set"] is True and made.json()["tags"] == ["payments", "eu"]
    cluster = Cluster.objects.get(name="prod-api")
    assert cluster.sasl_password == "hunter2-secret"
    for path in ("/clusters", f"/clusters/{cluster.pk}", f"/clusters/{cluster.pk}/scorecard",
                 f"/clusters/{cluster.pk}/readiness"):  # fmt: skip
        answer = admin.get(path)
        assert answer.status_code == 200 and "hunter2" not in answer.content.decode()
    changed = admin.call("patch", f"/clusters/{cluster.pk}", {"environment": "production"})
    assert changed.json()["environment"] == "production"
    cluster.refresh_from_db()
    assert cluster.sasl_password == "hunter2-secret" and "hunter2" not in json.dumps(
        list(AuditEvent.objects.values("before", "after", "comment"))
    )


def test_a_bad_cluster_is_refused_field_by_field_and_nothing_is_saved(as_role):
    admin = as_role("admin")
    answer = admin.call("post", "/clusters", {"name": "x", "bootstrap_servers": "nohost", "worker_queue": "a b"})
    assert answer.status_code == 422
    fields = {error["loc"][-1] for error in answer.json()["detail"]}
    assert {"bootstrap_servers", "worker_queue"} <= fields
    wrong_type = admin.call("post", "/clusters", {"name": "x", "bootstrap_servers": "h:1", "expected_brokers": "many"})
    assert wrong_type.status_code == 422
    assert not Cluster.objects.filter(name="x").exists()


# --- Scorecard, readiness, evidence -----------------------------------------------------------


def page_rows(client, scorecard) -> tuple[bool, dict[str, str]]:
    """What the scorecard page says: READY or not, and each row's status badge."""
    html = client.get(reverse("scorecard-detail", args=[scorecard.cluster_id])).content.decode()
    badges = re.findall(r'id="row-(\w+)">\s*<header>\s*<h2>[^<]*</h2>\s*<span class="status status-(\w+)"', html)
    return "NOT READY" not in html, {key: status.upper() for key, status in badges}


def test_readiness_and_the_scorecard_equal_the_page_ready_not_ready_stale_and_broken(as_role, user_client):
    scorecard = ready_scorecard()
    api = as_role("viewer")
    url = f"/clusters/{scorecard.cluster_id}"

    def agree(ready: bool, **query) -> dict:
        answer = api.get(f"{url}/readiness", **query).json()
        card = api.get(f"{url}/scorecard").json()
        page_ready, page_statuses = page_rows(user_client, scorecard)
        assert answer["ready"] is ready
        assert card["ready"] is page_ready and card["proven"] == answer["proven"]
        assert {row["key"]: row["status"] for row in card["rows"]} == page_statuses
        assert {row["row"]: row["status"] for row in answer["rows"]} == page_statuses
        return answer

    assert agree(True)["reasons"] == []
    time.sleep(1.1)  # evidence is immutable: it ages instead
    stale = agree(False, max_age=1)
    assert any("s old (max 1 s)" in reason for reason in stale["reasons"])
    health = Check.objects.get(row__scorecard=scorecard, kind="cluster_health")
    evidence_append(check=health, status="FAIL", summary="leaderless", measurements={}, collected_by="celery@w")
    answer = agree(False)
    assert "Metadata recovery: status FAIL" in answer["reasons"]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM scorecard_evidence WHERE scorecard_id = %s AND seq = 3", [scorecard.pk])
    chain_walk(scorecard=scorecard)  # as beat's hourly walk would
    answer = agree(False)
    assert not answer["chain"]["ok"] and answer["reasons"][0].startswith("evidence chain broken")
    card = api.get(f"{url}/scorecard").json()
    assert all(not row["trusted"] and not row["proven"] for row in card["rows"])


def test_readiness_refuses_a_bad_max_age(as_role):
    scorecard = register("prod")
    for bad in ("0", "-5", "soon", str(10**12)):
        answer = as_role("viewer").get(f"/clusters/{scorecard.cluster_id}/readiness", max_age=bad)
        assert answer.status_code == 422, bad


def test_evidence_pages_by_cursor_and_filters_by_row_check_status_and_time(as_role):
    scorecard = register("prod")
    health, write = check_of(scorecard), check_of(scorecard, "ack_write")
    for n in range(7):
        evidence_append(check=health if n % 2 else write, status="FAIL" if n == 3 else "PASS", summary=f"n{n}",
                        measurements={"n": n}, collected_by="celery@w")  # fmt: skip
    api = as_role("viewer")
    url = f"/clusters/{scorecard.cluster_id}/evidence"
    first = api.get(url, limit=3).json()
    assert [e["summary"] for e in first["items"]] == ["n6", "n5", "n4"]
    second = api.get(url, limit=3, cursor=first["next_cursor"]).json()
    third = api.get(url, limit=3, cursor=second["next_cursor"]).json()
    assert [e["summary"] for e in second["items"] + third["items"]] == ["n3", "n2", "n1", "n0"]
    assert third["next_cursor"] is None
    assert [e["summary"] for e in api.get(url, status="FAIL").json()["items"]] == ["n3"]
    assert {e["check"] for e in api.get(url, check=health.pk).json()["items"]} == {health.pk}
    assert {e["row"] for e in api.get(url, row=health.row.key).json()["items"]} == {health.row.key}
    later = timezone.now() + timedelta(minutes=1)
    assert api.get(url, since=later.isoformat()).json()["items"] == []
    assert len(api.get(url, until=later.isoformat()).json()["items"]) == 7
    for bad in ({"cursor": "abc"}, {"status": "GREAT"}, {"row": "nope"}, {"limit": 0}, {"since": "yesterday"}):
        assert api.get(url, **bad).status_code == 422, bad


# --- Rows and checks: the pages' rules --------------------------------------------------------


def test_a_row_is_edited_by_its_owner_and_only_an_approver_loosens_its_guardrails(as_role):
    scorecard = register("prod")
    row = Row.objects.get(scorecard=scorecard, key="durability")
    olga = user_with_role("olga", "operator")
    row.owner_user = olga
    row.rollback_max_error_rate = 0.05
    row.save()
    owner = Api(olga)
    tightened = owner.call("patch", f"/rows/{row.pk}", {"rollback_max_error_rate": 0.01, "owner": "storage team"})
    assert tightened.status_code == 200, tightened.content
    assert tightened.json()["guardrails"]["max_error_rate"] == 0.01 and tightened.json()["owner"] == "storage team"
    loosened = owner.call("patch", f"/rows/{row.pk}", {"rollback_max_error_rate": 0.5})
    assert loosened.status_code == 422 and "drill approver" in json.dumps(loosened.json())
    assert as_role("operator", "other").call("patch", f"/rows/{row.pk}", {"owner": "me"}).status_code == 403
    assert owner.call("patch", f"/rows/{row.pk}", {"owner_user": "olga"}).status_code == 403
    approver = as_role("admin", "ada")  # any row; and an admin may loosen
    assert approver.call("patch", f"/rows/{row.pk}", {"rollback_max_error_rate": 0.5}).status_code == 200
    targets = approver.call("patch", f"/rows/{row.pk}", {"targets": {"default": {"rpo_records": 5},
                                                                      "broker_loss": {"rpo_records": 0}}})  # fmt: skip
    assert targets.status_code == 200, targets.content
    assert targets.json()["targets"] == {"default": {"rpo_records": 5.0}, "broker_loss": {"rpo_records": 0.0}}
    bad = approver.call("patch", f"/rows/{row.pk}", {"targets": {"default": {"produce_p99_ms": 5}}})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "targets"]
    row.refresh_from_db()
    assert row.rollback_max_error_rate == 0.5 and row.owner == "storage team"
    assert AuditEvent.objects.filter(object_type="row", actor="olga").exists()


def test_a_check_is_changed_with_the_pages_validation(as_role):
    scorecard = register("prod")
    check = check_of(scorecard, "ack_write")
    api = as_role("operator")
    ok = api.call("patch", f"/checks/{check.pk}", {"params": {"records": 50}, "interval_seconds": 600})
    assert ok.status_code == 200, ok.content
    assert ok.json()["params"]["records"] == 50 and ok.json()["interval_seconds"] == 600
    for body in ({"params": {"records": -1}}, {"params": {"nope": 1}}, {"interval_seconds": 1}):
        answer = api.call("patch", f"/checks/{check.pk}", body)
        assert answer.status_code == 422, (body, answer.content)
    check.refresh_from_db()
    assert check.params["records"] == 50 and check.interval_seconds == 600


# --- Actions ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("requesters")
def test_running_checks_through_the_api_produces_evidence_on_the_worker(as_role, shared_worker, shared_sandbox):
    from tests.conftest import wait_for

    scorecard = register(bootstrap=shared_sandbox.bootstrap, worker_queue=shared_worker.queue, expected_brokers=3)
    api = as_role("operator")
    check = check_of(scorecard)
    queued = api.call("post", f"/checks/{check.pk}/run")
    assert queued.status_code == 202 and queued.json()["queue"] == shared_worker.queue
    url = f"/clusters/{scorecard.cluster_id}/evidence"
    wait_for(lambda: api.get(url, check=check.pk).json()["items"], timeout=60, message="the check's evidence")
    assert api.get(url).json()["items"][0]["status"] == "PASS"
    runs = api.call("post", f"/clusters/{scorecard.cluster_id}/run-checks")
    assert runs.status_code == 202 and len(runs.json()) >= 5
    assert api.get(f"/checks/{check.pk}").json()["status"] == "PASS"
    from scorecard.models import CheckRun

    # Every run done before the test ends: the database is emptied under a worker otherwise.
    ids = [run["id"] for run in runs.json()]
    finished = CheckRun.objects.filter(pk__in=ids, state__in=[CheckRun.State.DONE, CheckRun.State.FAILED])
    wait_for(lambda: finished.count() == len(ids), timeout=120, message="every queued run")


def drill_body(**params):
    base = {"fault_seconds": 10, "baseline_seconds": 3, "settle_seconds": 5, "max_duration_seconds": 120}
    return {"scenario": "broker_loss", "confirm": "prod", "params": {**base, **params}}


def test_a_drill_is_started_refused_and_aborted_like_on_its_page(as_role, monkeypatch):
    from drills import services

    sent = []
    monkeypatch.setattr(services, "_send_drill", sent.append)  # the queue is the worker's business
    cluster = drillable()
    Row.objects.filter(scorecard__cluster=cluster, key="durability").update(rollback_max_error_rate=0.05)
    operator = as_role("operator", "otto")
    unconfirmed = operator.call("post", f"/clusters/{cluster.pk}/drills", {**drill_body(), "confirm": "staging"})
    assert unconfirmed.status_code == 422 and "confirm" in json.dumps(unconfirmed.json())
    looser = operator.call("post", f"/clusters/{cluster.pk}/drills", drill_body(max_error_rate=0.5))
    assert looser.status_code == 409 and "drill approver" in looser.json()["detail"]
    started = operator.call("post", f"/clusters/{cluster.pk}/drills", drill_body())
    assert started.status_code == 201, started.content
    run = started.json()
    assert run["guardrails"]["max_error_rate"] == 0.05 and run["state"] == "queued"
    again = operator.call("post", f"/clusters/{cluster.pk}/drills", drill_body())
    assert again.status_code == 409 and "already running" in again.json()["detail"]
    assert as_role("operator", "olga").call("post", f"/drills/{run['id']}/abort").status_code == 403
    assert operator.call("post", f"/drills/{run['id']}/confirm").status_code == 409
    aborted = operator.call("post", f"/drills/{run['id']}/abort")
    assert aborted.status_code == 200 and aborted.json()["abort_requested"]
    listing = as_role("viewer").get(f"/clusters/{cluster.pk}/drills").json()
    assert [r["id"] for r in listing["items"]] == [run["id"]]
    assert as_role("viewer").get(f"/drills/{run['id']}").json()["requested_by"] == "otto"
    not_allowed = register("calm").cluster
    refused = operator.call("post", f"/clusters/{not_allowed.pk}/drills", {**drill_body(), "confirm": "calm"})
    assert refused.status_code == 422 and "scenario" in json.dumps(refused.json())


def test_an_audit_export_is_asked_for_listed_and_downloaded(as_role, monkeypatch):
    from django.db import transaction

    scorecard = register("prod")
    api = as_role("viewer")
    now = timezone.now()
    body = {
        "clusters": [scorecard.cluster_id],
        "since": (now - timedelta(days=7)).isoformat(),
        "until": now.isoformat(),
    }
    with monkeypatch.context() as patched:
        patched.setattr(transaction, "on_commit", lambda *a, **k: None)  # built by a worker elsewhere
        asked = api.call("post", "/exports", body)
        assert asked.status_code == 202 and asked.json()["state"] == "queued"
        assert api.call("post", "/exports", body).status_code == 409
    export = AuditExport.objects.get(pk=asked.json()["id"])
    export.state, export.pdf, export.sha256 = "done", b"%PDF-1.7 test", "ab" * 32
    export.save()
    assert api.get("/exports").json()["items"][0]["sha256"] == "ab" * 32
    download = api.get(f"/exports/{export.pk}/download")
    assert download.status_code == 200 and download.content == b"%PDF-1.7 test"
    assert download["X-Content-SHA256"] == "ab" * 32
    backwards = {**body, "since": body["until"], "until": body["since"]}
    assert api.call("post", "/exports", backwards).status_code == 422
    assert api.call("post", "/exports", {**body, "clusters": [999999]}).status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_pipeline_script_exits_0_when_ready_1_when_not_and_2_when_it_cannot_tell(live_server):
    import os
    import subprocess

    scorecard = ready_scorecard()
    token = token_create(actor=user_with_role("pipeline", "viewer"), name="ci")[1]

    def gate(*arguments, token=token):
        env = {**os.environ, "SCORECARD_TOKEN": token}
        done = subprocess.run(
            ["/usr/bin/python3", "scripts/readiness-gate", "--url", live_server.url, *arguments],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        return done.returncode, done.stdout, done.stderr

    assert gate("--cluster", "prod")[:2] == (0, "prod: READY, 5 of 5 rows proven\n")
    time.sleep(1.1)
    code, _, reasons = gate("--cluster", "prod", "--max-age", "1")
    assert code == 1 and "s old (max 1 s)" in reasons
    health = Check.objects.get(row__scorecard=scorecard, kind="cluster_health")
    evidence_append(check=health, status="FAIL", summary="leaderless", measurements={}, collected_by="celery@w")
    code, out, reasons = gate("--cluster", "prod", "--json")
    assert code == 1 and json.loads(out)["ready"] is False and "Metadata recovery: status FAIL" in reasons
    assert gate("--cluster", "nope")[0] == 2
    code, _, error = gate("--cluster", "prod", token="rrs_bad_token")
    assert code == 2 and "HTTP 401" in error
    assert gate("--cluster", "prod", token="")[0] == 2


def test_the_pipeline_script_never_follows_a_redirect_and_says_2_for_answers_it_cannot_read(tmp_path):
    import http.server
    import subprocess
    import threading

    seen = []

    class Odd(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append((self.server.server_port, self.headers.get("Authorization")))
            if self.server.server_port == redirecting.server_port:
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{other.server_port}/accounts/login/")
                self.end_headers()
                return
            body = b'"upstream gone"' if "clusters" in self.path else b"{}"
            self.send_response(502 if "clusters" in self.path else 200)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    redirecting = http.server.HTTPServer(("127.0.0.1", 0), Odd)
    other = http.server.HTTPServer(("127.0.0.1", 0), Odd)
    for server in (redirecting, other):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        for server in (redirecting, other):
            done = subprocess.run(
                ["/usr/bin/python3", "scripts/readiness-gate", "--url", f"http://127.0.0.1:{server.server_port}",
                 "--cluster", "prod"], env={"SCORECARD_TOKEN": "rrs_00000000_secret", "PATH": "/usr/bin"},
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    finally:
        for server in (redirecting, other):
            server.shutdown()
    assert all(port != other.server_port for port, _ in seen[:1]) and len(seen) == 2  # the redirect was not followed


def test_hostile_input_gets_a_clear_refusal_never_a_server_error(as_role):
    api = as_role("viewer")
    too_big = api.call("post", "/tokens", {"name": "x" * 3_000_000})
    assert too_big.status_code == 413 and "bytes accepted" in too_big.json()["detail"]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api.token}"}
    deep = api.client.post(f"{API}/tokens", "[" * 100_000, content_type="application/json", **headers)
    assert deep.status_code == 400
    assert api.call("post", "/tokens", {"name": "a\x00b"}).status_code == 422
    assert api.get("/clusters", name="a\x00b").status_code == 422
    assert api.get("/clusters/99999999999999999999/scorecard").status_code == 404
    assert api.call("post", "/tokens", ["not", "an", "object"]).status_code == 422
    cluster = register("prod").cluster
    commands = {"broker_down": ["stop", "a\x01b"], "broker_up": ["start", "{broker}"]}
    body = {"actuator": "command", "actuator_commands": commands}
    nul = as_role("admin").call("patch", f"/clusters/{cluster.pk}", body)
    assert nul.status_code == 422 and "control character" in json.dumps(nul.json())


def yaml_post(api: Api, path: str, text: str, **query):
    from urllib.parse import urlencode

    url = f"{API}{path}" + (f"?{urlencode(query)}" if query else "")
    return api.client.post(url, text, content_type="application/yaml", HTTP_AUTHORIZATION=f"Bearer {api.token}")


def test_the_scorecard_as_yaml_through_the_api_diff_first_then_all_or_nothing(as_role):
    scorecard = register("prod")
    url = f"/clusters/{scorecard.cluster_id}/config"
    exported = as_role("viewer").get(url)
    assert exported.status_code == 200 and exported["Content-Type"] == "application/yaml"
    text = exported.content.decode()
    admin = as_role("admin")
    same = yaml_post(admin, url, text).json()
    assert same["changes"] == [] and same["allowed"] and not same["applied"]
    changed = text.replace("owner: team", "owner: storage team", 1)
    diff = yaml_post(admin, url, changed).json()
    assert [c["path"] for c in diff["changes"]] == ["rows.durability.owner"] and not diff["applied"]
    assert Row.objects.get(scorecard=scorecard, key="durability").owner == "team"  # a diff changes nothing
    applied = yaml_post(admin, url, changed, apply="true", digest=diff["digest"]).json()
    assert applied["applied"] and Row.objects.get(scorecard=scorecard, key="durability").owner == "storage team"
    stale = yaml_post(admin, url, changed.replace("storage team", "other team"), apply="true", digest=diff["digest"])
    assert stale.status_code == 409
    broken = yaml_post(admin, url, text.replace("rows:", "rows: [", 1))
    assert broken.status_code == 422 and broken.json()["detail"][0]["line"] > 0
    secret = yaml_post(admin, url, text.replace("cluster:", "cluster:\n  sasl_password: hunter2", 1))
    assert secret.status_code == 422 and "secrets are never imported" in json.dumps(secret.json())
    operator = as_role("operator", "otto")
    refused = yaml_post(operator, url, text.replace("worker_queue: default", "worker_queue: elsewhere"), apply="true")
    assert refused.status_code == 403 and refused.json()["detail"][0]["line"] > 0
    assert Cluster.objects.get(pk=scorecard.cluster_id).worker_queue == "default"
    new = yaml_post(admin, "/config", text.replace("name: prod", "name: prod-copy", 1), apply="true").json()
    assert new["new"] and new["applied"] and Cluster.objects.filter(name="prod-copy").exists()


def test_an_evidence_period_is_exact_whatever_the_clock_skew_below_five_minutes(as_role):
    from datetime import UTC, datetime

    scorecard = register("prod")
    check = check_of(scorecard)
    for n in range(40):
        evidence_append(check=check, status="PASS", summary=f"n{n}", measurements={}, collected_by="celery@w")
    # Stamps an hour apart, with every third item from a host whose clock is 4 minutes behind.
    base = datetime(2026, 1, 1, tzinfo=UTC)
    stamps = {seq: base + timedelta(hours=seq) - timedelta(minutes=4 if seq % 3 == 0 else 0) for seq in range(1, 41)}
    with connection.cursor() as cursor:
        for seq, stamp in stamps.items():
            cursor.execute("UPDATE scorecard_evidence SET collected_at = %s WHERE scorecard_id = %s AND seq = %s",
                           [stamp, scorecard.pk, seq])  # fmt: skip
    api = as_role("viewer")
    url = f"/clusters/{scorecard.cluster_id}/evidence"
    for since_h, until_h in ((3, 9), (0, 40), (12, 13), (20, 60), (-5, 2)):
        since, until = base + timedelta(hours=since_h, minutes=-2), base + timedelta(hours=until_h, minutes=-2)
        expected = sorted((seq for seq, stamp in stamps.items() if since <= stamp < until), reverse=True)
        got = api.get(url, since=since.isoformat(), until=until.isoformat(), limit=500).json()["items"]
        assert [item["seq"] for item in got] == expected, (since_h, until_h)


def test_list_and_scorecard_queries_do_not_grow_with_the_evidence(as_role):
    from django.test.utils import CaptureQueriesContext

    scorecard = register("prod")
    check = check_of(scorecard)
    api = as_role("viewer")
    api.get("/me")  # the token's first use is recorded once a minute: not part of what is counted

    def queries(path: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert api.get(path).status_code == 200
        return len(captured)

    paths = [f"/clusters/{scorecard.cluster_id}/scorecard", f"/clusters/{scorecard.cluster_id}/evidence?limit=100"]
    before = [queries(path) for path in paths]
    for n in range(60):
        evidence_append(check=check, status="PASS", summary=f"n{n}", measurements={}, collected_by="celery@w")
    assert [queries(path) for path in paths] == before


def test_strings_postgresql_cannot_store_and_calendar_edges_are_refused_or_answered_never_a_500(as_role):
    admin = as_role("admin")
    scorecard = register("prod")
    check = check_of(scorecard, "ack_write")
    row, cluster = f"/rows/{check.row_id}", f"/clusters/{scorecard.cluster_id}"
    for path, body in (("/tokens", {"name": "a\ud800b"}), ("/tokens", {"name": "x", "user": "\x00"}),
                       (row, {"owner": "a\ud800"}), (row, {"owner_user": "\x00"}),
                       (cluster, {"sasl_password": "\ud800"})):  # fmt: skip
        method = "post" if path == "/tokens" else "patch"
        assert admin.call(method, path, body).status_code == 422, (path, body)
    assert admin.get("/tokens", user="\x00").status_code == 422
    assert admin.call("patch", f"/checks/{check.pk}", {"params": {"records": [1, {"b": 2}]}}).status_code == 422
    cleared = admin.call("patch", f"/clusters/{scorecard.cluster_id}", {"actuator_commands": None})
    assert cleared.status_code == 200 and cleared.json()["actuator_commands"] == {}
    url = f"/clusters/{scorecard.cluster_id}/evidence"
    for edge in (
        {"since": "0001-01-01T00:00:00"},
        {"since": "0001-01-01T00:00:00+01:00"},
        {"until": "9999-12-31T23:59:00"},
    ):
        assert admin.get(url, **edge).status_code == 200, edge
    assert Api(token="rrs_\x00_x").get("/me").status_code == 401


def test_a_token_cannot_make_a_token_that_outlives_it(as_role):
    user = user_with_role("vera", "viewer")
    short = Api(token=token_create(actor=user, name="short", days=3)[1])
    assert short.call("post", "/tokens", {"name": "forever"}).status_code == 422
    assert short.call("post", "/tokens", {"name": "longer", "days": 30}).status_code == 422
    assert short.call("post", "/tokens", {"name": "shorter", "days": 2}).status_code == 201
