"""The YAML import (scorecard.config_code) given anything, through its three doors: the
service, the API's POST and `manage.py scorecard_config import`. Never an unhandled error;
refusals name their line; an export imports back unchanged; alias bombs, deep nesting and
oversized documents are refused before they are built."""

import subprocess
import sys

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from hypothesis import given
from hypothesis import strategies as st

from api.tokens import token_create
from scorecard.config_code import MAX_BYTES, ConfigError, config_export, config_plan
from tests.conftest import ROOT, celery_env, user_with_role
from tests.factories import register
from tests.fuzz.strategies import fuzz, hostile_text, json_values, rolled_back

pytestmark = pytest.mark.django_db

BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
    for i in range(9)
)


def mutated_export(text: str):
    """The cluster's own export with one value replaced by anything: the hardest inputs are
    nearly valid."""
    data = yaml.safe_load(text)
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for key, value in node.items():
                paths.append((*path, key))
                walk(value, (*path, key))

    walk(data, ())
    return st.tuples(st.sampled_from(paths), st.one_of(json_values(), hostile_text())).map(
        lambda change: _replace(data, *change)
    )


def _replace(data, path, value):
    import copy

    data = copy.deepcopy(data)
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:  # a lone surrogate cannot be written as YAML text: send it raw
        return repr(data)


def documents(export: str):
    return st.one_of(
        mutated_export(export),
        hostile_text(),
        st.sampled_from(
            [
                BOMB,
                "- " * 30_000,
                "[" * 5_000,
                "a: !!python/object:os.system x\n",
                "version: 1\n---\n",
                "a: 1\na: 2\n",
                "x: 0b" + "1" * 100 + "\n",
                "x: 1:2:3:4:5:6:7:8:9\n" * 50,
            ]
        ),
    )


def test_plan_of_any_yaml_is_a_plan_or_errors_with_lines(db):
    admin = user_with_role("fuzz-admin", "admin")
    scorecard = register("fuzz-yaml")
    export = config_export(scorecard=scorecard)

    @fuzz(150)
    @given(documents(export))
    def run(text):
        with rolled_back():
            try:
                plan = config_plan(text=text, user=admin, cluster=scorecard.cluster)
            except ConfigError as exc:
                assert exc.errors and all(message for _, message in exc.errors)
                assert all(isinstance(line, int) and line >= 0 for line, _ in exc.errors)
                return
            assert plan.digest

    run()


def test_an_export_imports_back_unchanged(db):
    admin = user_with_role("fuzz-admin", "admin")
    scorecard = register("fuzz-yaml", environment="prod", tags="a, b")
    assert config_plan(text=config_export(scorecard=scorecard), user=admin, cluster=scorecard.cluster).changes == []


@pytest.mark.parametrize(
    "text, message",
    [
        (BOMB, "anchors and aliases"),
        ("- " * 30 + "x\n", "nested deeper than 12 levels"),
        ("# " + "x" * MAX_BYTES + "\n", "larger than 1,000,000 bytes"),
        ("a: \x00\n", "not valid YAML"),
        ('version: 1\ncluster:\n  name: fuzz-yaml\n  sasl_username: "a\\0b"\n', "stored text cannot hold"),
    ],
    ids=["alias-bomb", "deep", "huge", "nul", "escaped-nul"],
)
def test_bombs_deep_huge_and_nul_documents_are_refused_with_a_reason(db, text, message):
    admin = user_with_role("fuzz-admin", "admin")
    scorecard = register("fuzz-yaml")
    with pytest.raises(ConfigError) as refused:
        config_plan(text=text, user=admin, cluster=scorecard.cluster)
    assert message in str(refused.value)


def test_api_import_of_any_yaml_never_errors(client, db):
    admin = user_with_role("fuzz-admin", "admin")
    scorecard = register("fuzz-yaml")
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token_create(actor=admin, name='fuzz')[1]}"}
    export = config_export(scorecard=scorecard)

    @fuzz(60)
    @given(documents(export), st.booleans())
    def run(text, apply):
        with rolled_back():
            url = f"/api/v1/clusters/{scorecard.cluster_id}/config" + ("?apply=true" if apply else "")
            body = text.encode("utf-8", "surrogatepass")
            response = client.post(url, body, content_type="application/yaml", **headers)
            assert response.status_code in (200, 403, 409, 413, 422), response.content[:300]
            if response.status_code != 200:
                assert response.json()["detail"]

    run()


def test_management_command_refuses_any_bad_file_with_exit_1(db, tmp_path):
    admin = user_with_role("fuzz-admin", "admin")
    scorecard = register("fuzz-yaml")
    export = config_export(scorecard=scorecard)
    path = tmp_path / "in.yaml"

    @fuzz(40)
    @given(documents(export))
    def run(text):
        path.write_bytes(text.encode("utf-8", "surrogatepass"))
        with rolled_back():
            try:
                call_command(
                    "scorecard_config", "import", str(path), "--by", admin.username, "--cluster", scorecard.cluster.name
                )
            except CommandError as exc:
                assert str(exc)

    run()


@pytest.mark.django_db(transaction=True)
def test_the_real_command_exits_1_on_an_alias_bomb_and_binary_input(tmp_path, django_db_blocker):
    """As a shell runs it: a separate process against the test database (committed here)."""
    user_with_role("fuzz-admin", "admin")
    path = tmp_path / "bomb.yaml"
    for content, said in ((BOMB.encode(), "anchors and aliases"), (b"\xff\xfe\x00garbage", "UTF-8")):
        path.write_bytes(content)
        done = subprocess.run(
            [sys.executable, "manage.py", "scorecard_config", "import", str(path), "--by", "fuzz-admin"],
            cwd=ROOT,
            env=celery_env(django_db_blocker),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1, done.stderr[-2000:]
        assert said in done.stderr and "Traceback" not in done.stderr
