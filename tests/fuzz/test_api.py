"""Every API operation that takes input (as /api/v1/openapi.json lists them), called with a
valid token and anything in its path, query and body: never a 500; a refusal is JSON with a
`detail` saying why. Bodies too large or too deep are refused before they are parsed."""

import json
from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from api.tokens import token_create
from drills.models import DrillRun
from scorecard.models import AuditExport, Check, Row
from tests.conftest import user_with_role
from tests.factories import register
from tests.fuzz.strategies import deep_json, fuzz, hostile_text, json_text, json_values, rolled_back

pytestmark = pytest.mark.django_db
API = "/api/v1"


def operations(client, headers) -> list[tuple[str, str, dict]]:
    spec = client.get(f"{API}/openapi.json", **headers).json()
    return [(method.upper(), path, op) for path, item in spec["paths"].items() for method, op in item.items()]


def takes_input(op: dict) -> bool:
    return bool(op.get("parameters") or op.get("requestBody"))


@pytest.fixture
def world(db):
    admin = user_with_role("fuzz-admin", "admin")
    scorecard = register("fuzz-api", drills_allowed=True, actuator="sandbox", sandbox_control="/tmp/fz.sock")
    row = Row.objects.filter(scorecard=scorecard).first()
    check = Check.objects.filter(row__scorecard=scorecard).first()
    run = DrillRun.objects.create(
        cluster=scorecard.cluster, scenario="broker_loss", requested_by="fuzz-admin", state="done"
    )
    export = AuditExport.objects.create(
        requested_by="fuzz-admin", cluster_names="fuzz-api", since="2026-01-01T00:00Z", until="2026-02-01T00:00Z"
    )
    export.scorecards.add(scorecard)
    token_row, token = token_create(actor=admin, name="fuzz")
    ids = {
        "cluster_id": scorecard.cluster_id,
        "row_id": row.pk,
        "check_id": check.pk,
        "run_id": run.pk,
        "export_id": export.pk,
        "token_id": token_row.pk,
    }
    return Client(), {"HTTP_AUTHORIZATION": f"Bearer {token}"}, ids


def path_value(name: str, ids: dict):
    valid = ids.get(name, 1)
    return st.one_of(
        st.just(str(valid)),
        st.integers().map(str),
        hostile_text().map(lambda s: quote(s.encode("utf-8", "surrogatepass"), safe="")).filter(bool),
    )


def body_for(op: dict):
    content = (op.get("requestBody") or {}).get("content", {})
    if "application/yaml" in content:
        return st.one_of(
            hostile_text(),
            st.sampled_from(
                [
                    "version: 1\ncluster:\n  name: fuzz-api\n",
                    "a: &x [*x]\n",
                    "[" * 10_000,
                    "- " * 20_000,
                    "version: 1\n" * 3,
                ]
            ),
        )
    properties = {}
    for schema in content.get("application/json", {}).get("schema", {}).get("$ref", "").split("/")[-1:]:
        properties = SCHEMAS.get(schema, {})
    shaped = st.fixed_dictionaries({}, optional={name: json_values() for name in properties}).map(json.dumps)
    return st.one_of(shaped, json_text())


SCHEMAS: dict = {}


def test_every_operation_with_input_answers_without_a_server_error(world):
    client, headers, ids = world
    ops = operations(client, headers)
    spec = client.get(f"{API}/openapi.json", **headers).json()
    SCHEMAS.update({name: s.get("properties", {}) for name, s in spec["components"]["schemas"].items()})
    with_input = [op for op in ops if takes_input(op[2])]
    assert len(with_input) >= 15, "the OpenAPI description lists the operations"

    def call(method, path, op, data):
        url = path
        for param in op.get("parameters", []):
            if param["in"] == "path":
                url = url.replace("{" + param["name"] + "}", data.draw(path_value(param["name"], ids)))
        query = {
            p["name"]: data.draw(hostile_text())
            for p in op.get("parameters", [])
            if p["in"] == "query" and data.draw(st.booleans())
        }
        qs = "&".join(f"{quote(k)}={quote(v.encode('utf-8', 'surrogatepass'))}" for k, v in query.items())
        url = url + ("?" + qs if qs else "")
        if op.get("requestBody"):
            body = data.draw(body_for(op))
            kind = "application/yaml" if "application/yaml" in op["requestBody"]["content"] else "application/json"
            raw = body.encode("utf-8", "surrogatepass")
            return client.generic(method, url, raw, content_type=kind, **headers)
        return client.generic(method, url, **headers)

    @fuzz(12)
    @given(st.data())
    def run_one(method, path, op, data):
        with rolled_back():
            response = call(method, path, op, data)
            assert response.status_code < 500, (method, path, response.content[:300])
            if response.status_code >= 400 and response.get("Content-Type", "").startswith("application/json"):
                assert response.json()["detail"], (method, path)

    for method, path, op in with_input:
        run_one(method, path, op)


@pytest.mark.parametrize(
    "body",
    [deep_json(100_000), '{"name": ' * 50_000 + "1" + "}" * 50_000, json.dumps({"name": "x" * 600_000})],
    ids=["deep-array", "deep-object", "huge"],
)
def test_deep_or_huge_json_bodies_are_refused_before_parsing(world, body):
    client, headers, _ = world
    response = client.post(f"{API}/clusters", body, content_type="application/json", **headers)
    assert response.status_code in (400, 413)
    assert (
        "nested deeper than 20 levels" in response.json()["detail"]
        or "at most 500,000 bytes" in response.json()["detail"]
    )


def test_a_body_beyond_the_upload_limit_is_a_413_saying_so(world):
    client, headers, ids = world
    body = ("version: 1\n# " + "x" * 3_000_000 + "\n").encode()
    response = client.post(
        f"{API}/clusters/{ids['cluster_id']}/config", body, content_type="application/yaml", **headers
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "The request body is larger than the 2,621,440 bytes accepted."


@pytest.mark.parametrize("value", ["\x00", "a\ud800", "x" * 101])
def test_token_names_that_cannot_be_stored_are_refused(world, value):
    client, headers, _ = world
    response = client.post(f"{API}/tokens", json.dumps({"name": value}), content_type="application/json", **headers)
    assert response.status_code == 422
    assert response.json()["detail"]
