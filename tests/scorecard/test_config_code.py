"""The scorecard as code: export and import YAML (issue 12, part 4). An export imported into an
empty database reproduces the scorecard; bad YAML is refused whole with lines; nothing is ever
half-imported; each change keeps the role rules of its page."""

import io
import json
import re
from datetime import time
from unittest import mock

import pytest
import yaml
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import Client
from django.urls import reverse

from api.tokens import token_create
from drills.models import DrillSchedule
from drills.schedules import schedule_create
from scorecard import catalog, config_code, services
from scorecard.config_code import (
    ConfigError,
    ConfigRefused,
    ConfigStale,
    config_apply,
    config_export,
    config_plan,
)
from scorecard.models import AuditEvent, Check, Cluster, Row, Scorecard, Team
from scorecard.targets import validate_targets
from scorecard.validators import parse_bootstrap_servers
from tests.conftest import ROOT, user_with_role
from tests.factories import ca_pem, check_of, register

pytestmark = pytest.mark.django_db

CA = ca_pem()
COMMANDS = {
    "broker_down": ["systemctl", "stop", "kafka@{broker}"],
    "broker_up": ["systemctl", "start", "kafka@{broker}"],
}
ROW_FIELDS = [f.name for f in Row._meta.concrete_fields if f.name not in ("id", "scorecard")]
CHECK_FIELDS = ["kind", "params", "interval_seconds", "max_age_seconds"]
SCHEDULE_FIELDS = ["scenario", "params", "weekdays", "window_start", "window_end", "time_zone", "enabled"]


def scorecards():
    """A primary in a team with a standby, every kind of setting changed from its default."""
    team = Team.objects.create(name="payments")
    olga = user_with_role("olga", "operator")
    team.members.add(olga, user_with_role("abe", "drill approver"))
    standby = register(name="prod-eu-dr", bootstrap="127.0.0.1:9093", team=team).cluster
    scorecard = register(
        name="prod-eu", bootstrap="kafka-1.internal:9093,kafka-2.internal:9093", team=team, standby=standby,
        environment="production", tags="payments, eu-west", security_protocol="SSL", ssl_ca_pem=CA,
        expected_brokers=3, worker_queue="eu-west-1", drills_allowed=True, actuator="command",
        actuator_commands=COMMANDS,
    )  # fmt: skip
    durability = scorecard.rows.get(key="durability")
    services.row_update(
        row=durability, owner_user=olga, owner_contact="#payments-sre", rollback_max_duration_seconds=120,
        rollback_max_error_rate=0.05, targets={"default": {"rpo_records": 0}},
    )  # fmt: skip
    continuity = scorecard.rows.get(key="client_continuity")
    services.row_update(row=continuity, targets={"default": {"write_rto_s": 20.0}, "broker_loss": {"write_rto_s": 10}})
    groups = check_of(scorecard, "consumer_groups")
    services.check_update(check=groups, params={**groups.params, "groups": ["billing"]}, interval_seconds=300)
    for scenario, days in (("broker_loss", [2, 4]), ("consumer_restart", [6])):
        schedule_create(cluster=scorecard.cluster, by="abe", scenario=scenario, weekdays=days, window_start=time(2),
                        window_end=time(4), time_zone="Europe/Paris", params={"fault_seconds": 5.0})  # fmt: skip
    DrillSchedule.objects.filter(scenario="consumer_restart").update(enabled=False)
    return Scorecard.objects.get(pk=scorecard.pk)


def export(name: str = "prod-eu") -> str:
    return config_export(scorecard=Scorecard.objects.select_related("cluster").get(cluster__name=name))


def records(name: str) -> dict:
    """Everything configuration is made of, field by field."""
    cluster = Cluster.objects.get(name=name)
    skip = {"id", "created_at", "team", "standby", "sasl_password_token"}
    return {
        "cluster": {f.name: getattr(cluster, f.attname) for f in Cluster._meta.concrete_fields if f.name not in skip},
        "team": cluster.team.name if cluster.team else None,
        "standby": cluster.standby.name if cluster.standby else None,
        "rows": {r.key: {f: getattr(r, f) for f in ROW_FIELDS} for r in Row.objects.filter(scorecard__cluster=cluster)},
        "checks": sorted(
            [getattr(c, f) for f in CHECK_FIELDS] for c in Check.objects.filter(row__scorecard__cluster=cluster)
        ),
        "schedules": [[getattr(s, f) for f in SCHEDULE_FIELDS] for s in DrillSchedule.objects.filter(cluster=cluster)],
    }


def line_of(text: str, needle: str, nth: int = 1) -> int:
    index = -1
    for _ in range(nth):
        index = text.index(needle, index + 1)
    return text[:index].count("\n") + 1


def admin():
    return user_with_role("root", "admin")


def test_it_exports_yaml_that_reimports_into_an_empty_database_exactly():
    scorecards()
    texts = {name: export(name) for name in ("prod-eu-dr", "prod-eu")}
    originals = {name: records(name) for name in texts}
    assert "|\n    -----BEGIN CERTIFICATE-----" in texts["prod-eu"], "a CA certificate is a readable block"

    DrillSchedule.objects.all().delete()
    Cluster.objects.all().delete()
    Team.objects.all().delete()
    assert not Row.objects.exists() and not Check.objects.exists()

    root = admin()
    for name, text in texts.items():  # the standby first: the primary names it
        plan = config_apply(text=text, user=root)
        assert plan.new and plan.cluster_id == Cluster.objects.get(name=name).pk
    assert {name: export(name) for name in texts} == texts
    assert {name: records(name) for name in texts} == originals
    assert [s.created_by for s in DrillSchedule.objects.all()] == ["root", "root"], "the importer schedules them"


def test_the_export_leaves_out_secrets_and_governance_acts_and_says_so():
    scorecard = register(name="sasl", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                         sasl_username="probe", sasl_password="hunter2-do-not-export")  # fmt: skip
    check = check_of(scorecard)
    services.not_applicable_request(check=check, by="olga", reason="no such API here")
    text = export("sasl")
    assert "hunter2" not in text and "sasl_password" not in text
    assert scorecard.cluster.sasl_password_token not in text
    assert "not_applicable" not in text and "no such API" not in text
    assert text.startswith("# The scorecard of sasl as code")
    assert "NOT APPLICABLE" in text.split("version:")[0] and "sign-offs" in text.split("version:")[0]


def test_applying_the_same_yaml_twice_changes_nothing_the_second_time():
    scorecards()
    text = export().replace("worker_queue: eu-west-1", "worker_queue: eu-west-2")
    root, cluster = admin(), Cluster.objects.get(name="prod-eu")
    assert [c.path for c in config_apply(text=text, user=root, cluster=cluster).changes] == ["cluster.worker_queue"]
    events = AuditEvent.objects.count()
    again = config_apply(text=text, user=root, cluster=Cluster.objects.get(pk=cluster.pk))
    assert again.changes == [] and AuditEvent.objects.count() == events


def test_each_change_gets_its_usual_audit_event_and_the_import_one_summary():
    scorecards()
    text = (
        export()
        .replace("worker_queue: eu-west-1", "worker_queue: eu-west-2")
        .replace("owner_contact: '#payments-sre'", "owner_contact: '#payments-oncall'")
        .replace("interval_seconds: 300", "interval_seconds: 600")
        .replace("- scenario: consumer_restart", "- scenario: lag_catch_up")
    )
    root = admin()
    AuditEvent.objects.all().delete()
    plan = config_apply(text=text, user=root, cluster=Cluster.objects.get(name="prod-eu"))
    assert len(plan.changes) == 5  # the changed schedule is one removed and one added
    actions = sorted(AuditEvent.objects.values_list("action", flat=True))
    assert actions == sorted(["cluster.update", "row.update", "check.update", "drill_schedule.delete",
                              "drill_schedule.create", "drill_schedule.disable", "config.import"])  # fmt: skip
    assert set(AuditEvent.objects.values_list("actor", flat=True)) == {"root"}
    summary = AuditEvent.objects.get(action="config.import")
    assert summary.after["changes"] == 5 and summary.cluster_name == "prod-eu"


def test_the_plan_lists_every_change_with_its_line_before_anything_is_applied():
    scorecards()
    text = export().replace("max_error_rate: 0.05", "max_error_rate: 0.01")
    before = export()
    plan = config_plan(text=text, user=admin(), cluster=Cluster.objects.get(name="prod-eu"))
    (change,) = plan.changes
    assert (change.path, change.before, change.after) == ("rows.durability.guardrails.max_error_rate", 0.05, 0.01)
    assert change.line == line_of(text, "max_error_rate: 0.01")
    assert export() == before
    assert (
        plan.as_dict()["changes"] == [{"path": change.path, "before": 0.05, "after": 0.01, "line": change.line}]
        and plan.as_dict()["allowed"]
    )


BAD_CASES = {
    "malformed": ("worker_queue: eu-west-1", "worker_queue: eu-west: 1", "not valid YAML: mapping values"),
    "unknown key": ("worker_queue: eu-west-1", "worker_queue: eu-west-1\n  colour: blue", "unknown key 'colour'"),
    "duplicate key": ("worker_queue: eu-west-1", "worker_queue: eu-west-1\n  worker_queue: x", "duplicate key"),
    "negative interval": ("interval_seconds: 300", "interval_seconds: -5", "greater than or equal to 10"),
    "text for a number": ("interval_seconds: 300", "interval_seconds: often", "expected a whole number"),
    "bad probe param": (" records: 5000", " records: 0", "must be at least 1"),
    "unknown probe param": (" records: 5000", " records: 5000\n          acks: all", "not a parameter of this probe"),
    "bad target": ("write_rto_s: 10", "write_rto_s: -1", "must be between 0 and"),
    "target of another row": ("rpo_records: 0", "write_rto_s: 5", "not a target of this row"),
    "loose guardrail value": ("max_error_rate: 0.05", "max_error_rate: 5", "less than or equal to 1"),
    "unknown owner": ("owner_user: olga", "owner_user: nobody", "no active user named 'nobody'"),
    "unknown standby": ("standby: prod-eu-dr", "standby: prod-us-dr", "import the standby first"),
    "bad bootstrap": ("'kafka-2.internal:9093'", "'kafka-2.internal'", "expected host:port"),
    "bad schedule": ("window_end: '04:00'", "window_end: '02:00'", "must not be empty"),
    "unquoted time": ("window_end: '04:00'", "window_end: 14:30", "in quotes"),
    "misplaced check": ("      ack_write:", "      cluster_health: {}\n      ack_write:", "feeds the metadata row"),
    "password": ("worker_queue: eu-west-1", "worker_queue: eu-west-1\n  sasl_password: hunter2", "secrets are never"),
    "token": (" records: 5000", " records: 5000\n          api_token: abc", "secrets are never imported from YAML"),
    "private key": (
        "-----END CERTIFICATE-----\n",
        "-----END CERTIFICATE-----\n    -----BEGIN PRIVATE KEY-----\n    MIIEv\n    -----END PRIVATE KEY-----\n",
        "a private key: secrets are never imported",
    ),
    # H1: a schedule takes the parameters of the drills page's form only, typed by the catalogue.
    "schedule param the page has not": (
        "    fault_seconds: 5.0",
        "    fault_seconds: 5.0\n    zone: eu-1",
        "params.zone: not a parameter of a scheduled drill; allowed: fault_seconds, max_duration_seconds",
    ),
    "schedule param out of range": ("    fault_seconds: 5.0", "    fault_seconds: 0.1", "must be at least 0.5"),
    "schedule param of a wrong type": ("    fault_seconds: 5.0", "    fault_seconds: five", "must be a number"),
    # H2: hostile scalars are refused at their line, never an exception.
    "!!int abc": ("expected_brokers: 3", "expected_brokers: !!int abc", "not a valid int value"),
    "!!float abc": ("expected_brokers: 3", "expected_brokers: !!float abc", "not a valid float value"),
    "!!bool maybe": ("drills_allowed: true", "drills_allowed: !!bool maybe", "not a valid bool value"),
    "!!int empty": ("expected_brokers: 3", 'expected_brokers: !!int ""', "not a valid int value"),
    "4400 digits": ("expected_brokers: 3", "expected_brokers: " + "9" * 4400, "a whole number beyond ±2**63"),
    "base 60": ("expected_brokers: 3", "expected_brokers: 1" + ":59" * 40, "a whole number beyond ±2**63"),
    "beyond 2**63": ("expected_brokers: 3", f"expected_brokers: {2**63}", "a whole number beyond ±2**63"),
    "NUL in a name": ("name: prod-eu\n", r'name: "prod-eu\0"' + "\n", "contains the character '\\x00'"),
    "NUL in a team": ("team: payments", r'team: "pay\0ments"', "contains the character '\\x00'"),
    "NUL in a standby": ("standby: prod-eu-dr", r'standby: "prod-eu-dr\0"', "contains the character '\\x00'"),
    "NUL in a login": ("owner_user: olga", r'owner_user: "ol\0ga"', "contains the character '\\x00'"),
    "NUL in an owner": ("owner: team", r'owner: "te\0am"', "contains the character '\\x00'"),
    "NUL in a test": ("    test: ", r'    test: "\0"  # ', "contains the character '\\x00'"),
    "NUL in a socket": ("sandbox_control: ''", r'sandbox_control: "\0"', "contains the character '\\x00'"),
    "NUL in a command": ("'kafka@{broker}'", r'"kafka@{broker}\0"', "contains the character '\\x00'"),
    "NUL in a key": ("worker_queue: eu-west-1", "worker_queue: eu-west-1\n" + r'  "colo\0ur": blue', "a key contains"),
    "a bell": ("owner: team", r'owner: "te\aam"', "contains the character '\\x07'"),
    "infinite target": ("write_rto_s: 10", "write_rto_s: 1e400", "expected a number"),
    "port of 4400 digits": ("'kafka-2.internal:9093'", "'kafka-2.internal:" + "9" * 4400 + "'", "between 1 and 65535"),
    "Arabic-Indic port": ("'kafka-2.internal:9093'", "'kafka-2.internal:\u0669\u0660\u0669\u0663'", "host:port"),
    # M1: a private key hidden from the source, or in PGP armour; secrets in command arguments.
    "folded private key": (
        "worker_queue: eu-west-1",
        "worker_queue: -----BEGIN RSA PRIV\n    ATE KEY-----",
        "holds a private key",
    ),
    "escaped private key": (
        "worker_queue: eu-west-1",
        r'worker_queue: "-----BEGIN RSA PRIV\x41TE KEY-----"',
        "holds a private key",
    ),
    "PGP private key": (
        "-----END CERTIFICATE-----\n",
        "-----END CERTIFICATE-----\n    -----BEGIN PGP PRIVATE KEY BLOCK-----\n    lQOYBF\n"
        "    -----END PGP PRIVATE KEY BLOCK-----\n",
        "a private key: secrets are never imported",
    ),
    "password option": ("stop, 'kafka@{broker}'", "stop, '--password=hunter2', 'kafka@{broker}'", "carries a secret"),
    "token variable": ("[systemctl, stop", "[env, API_TOKEN=abc, systemctl, stop", "carries a secret"),
    # M3: a comma inside an entry would be exported as two entries, a change on every import.
    "comma in an address": (
        "'kafka-2.internal:9093'",
        "'kafka-2.internal:9093,kafka-3.internal:9093'",
        "one host:port per entry",
    ),
}


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_yaml_is_refused_naming_the_line_and_nothing_is_imported(case):
    scorecards()
    old, new, message = BAD_CASES[case]
    original = export()
    assert old in original
    text = original.replace(old, new, 1)
    needle = next(line for line in new.splitlines() if line not in old.splitlines())
    if case == "private key":
        needle = "-----BEGIN PRIVATE KEY-----"
    root = admin()
    events = AuditEvent.objects.count()
    for attempt in (config_plan, config_apply):
        with pytest.raises(ConfigError) as refused:
            attempt(text=text, user=root, cluster=Cluster.objects.get(name="prod-eu"))
        assert any(message in m and line == line_of(text, needle) for line, m in refused.value.errors), refused.value
    assert export() == original and AuditEvent.objects.count() == events
    assert "hunter2" not in str(refused.value) and "abc" not in str(refused.value), "a refusal never repeats a secret"


def test_malformed_yaml_also_names_the_line_where_the_broken_construct_began():
    scorecards()
    text = export().replace("worker_queue: eu-west-1", "worker_queue: [eu-west-1")
    with pytest.raises(ConfigError) as refused:
        config_plan(text=text, user=admin(), cluster=Cluster.objects.get(name="prod-eu"))
    ((line, message),) = refused.value.errors
    assert line == line_of(text, "standby:"), "where the parser found the problem"
    assert f"while parsing a flow sequence on line {line_of(text, '[eu-west-1')}" in message


def test_every_error_of_a_document_is_reported_at_once():
    scorecards()
    text = (
        export()
        .replace("worker_queue: eu-west-1", "worker_queue: eu-west-1\n  colour: blue")
        .replace("interval_seconds: 300", "interval_seconds: -5")
        .replace(" records: 5000", " records: 0")
        .replace("owner_user: olga", "owner_user: nobody")
    )
    with pytest.raises(ConfigError) as refused:
        config_plan(text=text, user=admin(), cluster=Cluster.objects.get(name="prod-eu"))
    lines = [line for line, _ in refused.value.errors]
    expected = ["colour: blue", "interval_seconds: -5", " records: 0", "owner_user: nobody"]
    assert lines == sorted(line_of(text, needle) for needle in expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\ncluster: &c {name: x}\nrows: *c\n", "anchors and aliases"),
        ("version: 1\n---\nversion: 1\n", "one document per file"),
        ("version: 1\ncluster: " + "[" * 50 + "]" * 50 + "\n", "nested deeper than"),
        ("version: 1\ncluster:\n  name: " + "x" * 1_000_001 + "\n", "larger than"),
        ("version: 2\ncluster: {name: x, bootstrap_servers: ['a:1']}\n", "unsupported version"),
        ("- a list\n", "expected a mapping"),
        ("", "empty"),
    ],
)
def test_documents_that_are_not_a_scorecard_are_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        config_plan(text=text, user=admin())
    assert not Cluster.objects.exists()


def test_a_failure_halfway_through_leaves_nothing_applied():
    scorecards()
    original = export()
    text = (
        original.replace("worker_queue: eu-west-1", "worker_queue: eu-west-2")
        .replace("owner_contact: '#payments-sre'", "owner_contact: '#payments-oncall'")
        .replace("interval_seconds: 300", "interval_seconds: 600")
    )
    root = admin()
    events = AuditEvent.objects.count()
    # The checks come after the cluster and the rows: their service failing must undo those.
    failing = mock.patch.object(services, "check_update", side_effect=RuntimeError("database went away"))
    with failing, pytest.raises(RuntimeError):
        config_apply(text=text, user=root, cluster=Cluster.objects.get(name="prod-eu"))
    assert export() == original and AuditEvent.objects.count() == events


def test_a_confirmation_of_a_diff_the_scorecard_no_longer_matches_is_refused():
    scorecards()
    cluster = Cluster.objects.get(name="prod-eu")
    text = export().replace("worker_queue: eu-west-1", "worker_queue: eu-west-2")
    plan = config_plan(text=text, user=admin(), cluster=cluster)
    services.row_update(row=Row.objects.get(scorecard__cluster=cluster, key="cost"), owner="finops")
    with pytest.raises(ConfigStale, match="changed since the diff was shown"):
        config_apply(text=text, user=admin(), cluster=cluster, expected_digest=plan.digest)
    assert Cluster.objects.get(pk=cluster.pk).worker_queue == "eu-west-1"
    fresh = config_plan(text=text, user=admin(), cluster=cluster)
    assert {c.path for c in fresh.changes} == {"cluster.worker_queue", "rows.cost.owner"}
    config_apply(text=text, user=admin(), cluster=cluster, expected_digest=fresh.digest)
    assert Cluster.objects.get(pk=cluster.pk).worker_queue == "eu-west-2"


def test_yaml_for_another_cluster_is_refused():
    scorecards()
    text = export("prod-eu-dr")
    with pytest.raises(ConfigError, match="this YAML is for 'prod-eu-dr', not 'prod-eu'"):
        config_plan(text=text, user=admin(), cluster=Cluster.objects.get(name="prod-eu"))


def test_an_operator_may_edit_their_row_and_checks_but_not_loosen_or_touch_the_cluster():
    scorecards()
    cluster, olga = Cluster.objects.get(name="prod-eu"), user_with_role("olga", "operator")
    own = export().replace("owner_contact: '#payments-sre'", "owner_contact: '#olga'")
    own = own.replace("interval_seconds: 300", "interval_seconds: 600")
    assert config_plan(text=own, user=olga, cluster=cluster).refusals == []
    text = (
        own.replace("max_duration_seconds: 120", "max_duration_seconds: 600")
        .replace("actuator: command", "actuator: manual")
        .replace("owner: team", "owner: olga", 2)  # the metadata row is not olga's
        .replace("owner_user: olga", "owner_user: abe")
    )
    refusals = dict(config_plan(text=text, user=olga, cluster=cluster).refusals)
    assert "may not change the cluster's settings: that needs the admin role" in refusals[line_of(text, "actuator:")]
    loosen = refusals[line_of(text, "max_duration_seconds: 600")]
    assert "Only a drill approver may loosen the max drill duration (s) guardrail (now 120)" in loosen
    assert "owned by someone else" in refusals[line_of(text, "owner: olga", nth=2)]
    assert "link a row's owner login" in refusals[line_of(text, "owner_user: abe")]
    original = export()
    with pytest.raises(ConfigRefused):
        config_apply(text=text, user=olga, cluster=cluster)
    assert export() == original
    config_apply(text=own, user=olga, cluster=cluster)
    assert Row.objects.get(scorecard__cluster=cluster, key="durability").owner_contact == "#olga"


def test_a_drill_approver_may_loosen_their_own_row_and_reschedule_drills():
    scorecards()
    cluster, abe = Cluster.objects.get(name="prod-eu"), user_with_role("abe", "drill approver")
    Row.objects.filter(scorecard__cluster=cluster, key="durability").update(owner_user=abe)
    text = export().replace("max_duration_seconds: 120", "max_duration_seconds: 600")
    text = text.replace("weekdays: [6]", "weekdays: [6, 7]")
    assert len(config_apply(text=text, user=abe, cluster=cluster).changes) == 3  # a schedule is removed and added
    assert Row.objects.get(scorecard__cluster=cluster, key="durability").rollback_max_duration_seconds == 600
    assert DrillSchedule.objects.get(scenario="consumer_restart").created_by == "abe"


def test_a_new_cluster_needs_an_administrator_and_a_missing_team_is_created():
    scorecards()
    text = export("prod-eu-dr").replace("prod-eu-dr", "prod-us").replace("team: payments", "team: payments-us")
    olga = user_with_role("olga", "operator")
    plan = config_plan(text=text, user=olga)
    assert plan.new and "may not register clusters" in plan.refusals[0][1]
    with pytest.raises(ConfigRefused):
        config_apply(text=text, user=olga)
    assert not Cluster.objects.filter(name="prod-us").exists()
    plan = config_apply(text=text, user=admin())
    assert plan.warnings == ["team 'payments-us' does not exist: it will be created without members"]
    assert Cluster.objects.get(name="prod-us").team.name == "payments-us"
    assert export("prod-us") == text


def test_a_sasl_cluster_takes_its_password_from_the_command_never_from_the_yaml(tmp_path, monkeypatch):
    register(name="sasl", security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="probe",
             sasl_password="old-password")  # fmt: skip
    text = export("sasl")
    Cluster.objects.all().delete()
    path = tmp_path / "sasl.yaml"
    path.write_text(text)
    admin()
    stderr = io.StringIO()
    with pytest.raises(CommandError):
        call_command("scorecard_config", "import", str(path), "--by", "root", "--apply", stderr=stderr)
    assert f"{path}:{line_of(text, 'security_protocol:')}: cluster.security_protocol: SASL needs a password" in (
        stderr.getvalue()
    )
    monkeypatch.setenv("KAFKA_PASSWORD", "p" * 501)
    with pytest.raises(CommandError, match="the SASL password in KAFKA_PASSWORD is longer than 500 characters"):
        call_command("scorecard_config", "import", str(path), "--by", "root", "--apply", "--sasl-password-env",
                     "KAFKA_PASSWORD", stdout=io.StringIO())  # fmt: skip
    monkeypatch.setenv("KAFKA_PASSWORD", "new-password")
    call_command("scorecard_config", "import", str(path), "--by", "root", "--apply", "--sasl-password-env",
                 "KAFKA_PASSWORD", stdout=io.StringIO())  # fmt: skip
    assert Cluster.objects.get(name="sasl").sasl_password == "new-password"
    assert AuditEvent.objects.filter(action="cluster.register", cluster_name="sasl").exists()

    # A stored password is only sent where it was entered for: a new address needs it again.
    moved = text.replace("127.0.0.1:9092", "127.0.0.2:9092")
    with pytest.raises(ConfigError, match="enter the password again"):
        config_plan(text=moved, user=admin())
    config_apply(text=moved, user=admin(), sasl_password="new-password")
    cluster = Cluster.objects.get(name="sasl")
    assert cluster.bootstrap_servers == "127.0.0.2:9092" and cluster.sasl_password == "new-password"


def test_the_command_exports_shows_the_diff_applies_and_fails_with_file_and_line(tmp_path):
    scorecards()
    admin()
    path = tmp_path / "prod-eu.yaml"
    call_command("scorecard_config", "export", "prod-eu", "-o", str(path), stderr=io.StringIO())
    assert path.read_text() == export()
    path.write_text(path.read_text().replace("worker_queue: eu-west-1", "worker_queue: eu-west-2"))

    out = io.StringIO()
    call_command("scorecard_config", "import", str(path), "--by", "root", stdout=out)
    assert "cluster prod-eu: 1 changes to apply" in out.getvalue()
    assert f"cluster.worker_queue (line {line_of(path.read_text(), 'worker_queue')}): eu-west-1 -> eu-west-2" in (
        out.getvalue()
    )
    assert Cluster.objects.get(name="prod-eu").worker_queue == "eu-west-1", "a diff only, without --apply"
    call_command("scorecard_config", "import", str(path), "--cluster", "prod-eu", "--by", "root", "--apply",
                 stdout=io.StringIO())  # fmt: skip
    assert Cluster.objects.get(name="prod-eu").worker_queue == "eu-west-2"

    path.write_text(path.read_text().replace(" records: 5000", " records: 0"))
    stderr = io.StringIO()
    with pytest.raises(CommandError) as failed:
        call_command("scorecard_config", "import", str(path), "--by", "root", "--apply", stderr=stderr)
    assert failed.value.returncode == 1
    line = line_of(path.read_text(), " records: 0")
    assert f"{path}:{line}: rows.durability.checks.ack_write.params.records: must be at least 1" in stderr.getvalue()


def test_the_command_refuses_what_the_user_may_not_change_even_as_a_diff(tmp_path):
    scorecards()
    Team.objects.get(name="payments").members.add(user_with_role("vera", "viewer"))
    path = tmp_path / "prod-eu.yaml"
    path.write_text(export().replace("worker_queue: eu-west-1", "worker_queue: eu-west-2"))
    stderr = io.StringIO()
    with pytest.raises(CommandError) as refused:
        call_command("scorecard_config", "import", str(path), "--by", "vera", stdout=io.StringIO(), stderr=stderr)
    assert refused.value.returncode == 1 and "needs the admin role" in stderr.getvalue()
    with pytest.raises(CommandError, match="no active user named 'nobody'"):
        call_command("scorecard_config", "import", str(path), "--by", "nobody")
    with pytest.raises(CommandError, match="no cluster named 'nowhere'"):
        call_command("scorecard_config", "export", "nowhere")


def refused_at(text: str, line: int, message: str, user=None, cluster=None) -> None:
    """Refused by the plan and by the apply, at that line, and nothing changed."""
    before = {c.name: records(c.name) for c in Cluster.objects.all()}
    for attempt in (config_plan, config_apply):
        with pytest.raises(ConfigError) as refused:
            attempt(text=text, user=user or admin(), cluster=cluster)
        assert any(message in m and at == line for at, m in refused.value.errors), refused.value
    assert {c.name: records(c.name) for c in Cluster.objects.all()} == before


def test_a_scheduled_drill_stores_its_parameters_typed_as_the_drills_page_form_does():
    scorecards()
    text = export().replace("    fault_seconds: 5.0", "    fault_seconds: 7\n    max_duration_seconds: 60.0", 1)
    config_apply(text=text, user=admin(), cluster=Cluster.objects.get(name="prod-eu"))
    params = sorted((s.params for s in DrillSchedule.objects.all()), key=len)[-1]
    assert params == {"fault_seconds": 7.0, "max_duration_seconds": 60}
    assert [type(v) for v in params.values()] == [float, int]


def test_the_drills_page_shows_schedules_whatever_parameters_were_stored_before(role_client):
    cluster = register(drills_allowed=True, actuator="sandbox", sandbox_control="/tmp/x.sock").cluster
    DrillSchedule.objects.create(
        cluster=cluster, scenario="broker_loss", weekdays=[1], window_start=time(1), window_end=time(3),
        params={"zone": "eu-1", "broker": None, "groups": ["a"], "huge": 10**400, "fault_seconds": 5.0},
        created_by="abe",
    )  # fmt: skip
    page = role_client("viewer", "vera").get(reverse("drills-list", args=[cluster.pk]))
    assert page.status_code == 200
    assert "fault seconds 5, groups [&#x27;a&#x27;], huge 1" in page.content.decode()
    assert "zone eu-1" in page.content.decode()


def test_a_null_or_surrogate_never_reaches_the_database():
    scorecards()
    cluster = Cluster.objects.get(name="prod-eu")
    # libyaml refuses the escape itself; the pure-Python parser builds it, and then it is refused.
    text = export().replace("owner: team", r'owner: "\ud800"', 1)
    refused_at(text, line_of(text, "ud800"), "", cluster=cluster)
    with pytest.raises(ConfigError, match="lone surrogate"):
        config_plan(text=export().replace("owner: team", "owner: \ud800", 1), user=admin(), cluster=cluster)
    with mock.patch.object(config_code, "LOADER", yaml.SafeLoader):
        refused_at(text, line_of(text, "ud800"), "contains the character '\\ud800'", cluster=cluster)


def test_command_templates_are_checked_whatever_the_actuator():
    register(name="plain")
    text = export("plain")
    nan = text.replace("actuator_commands: {}", "actuator_commands: {x: .nan}")
    refused_at(nan, line_of(nan, "actuator_commands"), "unknown keys: x")
    nested = text.replace("actuator_commands: {}", "actuator_commands: {broker_down: {a: {b: [1]}}, broker_up: []}")
    refused_at(nested, line_of(nested, "actuator_commands"), "broker_down must be a non-empty list of strings")
    kept = text.replace("actuator_commands: {}", "actuator_commands: " + json.dumps(COMMANDS))
    config_apply(text=kept, user=admin())
    assert Cluster.objects.get(name="plain").actuator_commands == COMMANDS


def test_numbers_too_large_for_a_float_get_the_usual_refusals():
    with pytest.raises(ValueError, match="must be between 0 and"):
        validate_targets("durability", {"default": {"rpo_records": 10**400}})
    with pytest.raises(catalog.ParamError, match="records: must be between 1 and 1e"):
        catalog.parse("ack_write", {"records": 10**400})
    with pytest.raises(catalog.ParamError, match="max_lag_seconds: must be between 0 and"):
        catalog.parse("consumer_groups", {"max_lag_seconds": -(10**400)})


def test_a_bootstrap_port_is_ascii_digits_of_bounded_length():
    assert parse_bootstrap_servers("a:9092") == [("a", 9092)]
    for entry in ("a:" + "9" * 4400, "a:\u0669\u0660\u0669\u0662", "a:009092"):
        with pytest.raises(ValidationError):
            parse_bootstrap_servers(entry)


def fail_in_the_database(*args, **kwargs):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 / 0")  # a real error: the transaction is aborted until rolled back


def test_a_database_error_while_planning_or_applying_is_a_refusal_and_changes_nothing(caplog):
    scorecards()
    cluster, original = Cluster.objects.get(name="prod-eu"), export()
    text = original.replace("worker_queue: eu-west-1", "worker_queue: eu-west-2")
    text = text.replace("interval_seconds: 300", "interval_seconds: 600")
    failing = mock.patch.object(config_code, "_user_named", side_effect=fail_in_the_database)
    with failing, pytest.raises(ConfigError, match="could not be checked: a value was refused by the database"):
        config_plan(text=text, user=admin(), cluster=cluster)
    assert Cluster.objects.filter(pk=cluster.pk).exists(), "the caller's transaction is still usable"
    failing = mock.patch.object(services, "check_update", side_effect=fail_in_the_database)
    with failing, pytest.raises(ConfigError, match="could not be applied"):
        config_apply(text=text, user=admin(), cluster=cluster)
    assert export() == original
    assert "a YAML import could not be applied" in caplog.text


def test_two_imports_of_the_same_new_cluster_end_in_a_refusal_not_an_error():
    register(name="prod-us")
    text = export("prod-us").replace("prod-us", "prod-ap")
    save = Cluster.save

    def meanwhile(cluster, *args, **kwargs):  # the other import inserts after this one validated
        if cluster.pk is None:
            Cluster.objects.bulk_create([Cluster(name=cluster.name, bootstrap_servers="127.0.0.1:9092")])
        return save(cluster, *args, **kwargs)

    racing = mock.patch.object(Cluster, "save", meanwhile)
    with racing, pytest.raises(ConfigError, match="created meanwhile: nothing was applied"):
        config_apply(text=text, user=admin())
    assert not Cluster.objects.filter(name="prod-ap").exists()


def test_an_export_after_the_standby_was_removed_reimports_into_an_empty_database():
    scorecards()
    cluster = Cluster.objects.get(name="prod-eu")
    old_style = export().replace("standby: prod-eu-dr", "standby: null")
    refused_at(old_style, line_of(old_style, "standby_parity:"), "standby parity needs a standby", cluster=cluster)
    start = old_style.index("      standby_parity:\n")
    end = re.compile(r"^ {0,6}\S", re.M).search(old_style, start + 1).start()
    removed = old_style[:start] + old_style[end:]
    plan = config_apply(text=removed, user=admin(), cluster=cluster)
    assert "cluster.standby" in [c.path for c in plan.changes]
    assert any(c.path.startswith("rows.client_continuity.checks.standby_parity.") for c in plan.changes)
    assert Check.objects.filter(row__scorecard__cluster=cluster, kind="standby_parity").exists(), "kept, with evidence"
    texts = {name: export(name) for name in ("prod-eu-dr", "prod-eu")}
    assert texts["prod-eu"] == removed
    assert config_plan(text=removed, user=admin(), cluster=cluster).changes == []
    DrillSchedule.objects.all().delete()
    Cluster.objects.all().delete()
    Team.objects.all().delete()
    for text in texts.values():
        config_apply(text=text, user=admin())
    assert {name: export(name) for name in texts} == texts


def test_text_with_line_separators_and_crlf_comes_back_exactly():
    scorecard = register(name="text")
    odd = "first\x85second\u2028third\u2029fourth\r\nfifth\rsixth\n"
    services.row_update(row=scorecard.rows.get(key="durability"), test_description=odd, owner="a\x85b")
    text = export("text")
    Cluster.objects.all().delete()
    config_apply(text=text, user=admin())
    row = Row.objects.get(scorecard__cluster__name="text", key="durability")
    assert (row.test_description, row.owner) == (odd, "a\x85b")
    assert export("text") == text
    assert config_plan(text=text, user=admin(), cluster=row.scorecard.cluster).changes == []


def test_an_operators_diff_does_not_tell_which_usernames_exist():
    scorecards()
    cluster, olga = Cluster.objects.get(name="prod-eu"), user_with_role("olga", "operator")
    answers = []
    for name in ("abe", "nobody"):
        text = export().replace("owner_user: olga", f"owner_user: {name}")
        plan = config_plan(text=text, user=olga, cluster=cluster)
        answers.append([(line, message.replace(name, "NAME")) for line, message in plan.refusals])
    assert answers[0] == answers[1] and "link a row's owner login" in answers[0][0][1]


def test_a_password_cleared_by_leaving_sasl_shows_in_the_diff():
    register(name="sasl", security_protocol="SASL_SSL", sasl_mechanism="PLAIN", sasl_username="probe",
             sasl_password="old-password")  # fmt: skip
    text = export("sasl").replace("SASL_SSL", "SSL").replace("sasl_mechanism: PLAIN", "sasl_mechanism: ''")
    text = text.replace("sasl_username: probe", "sasl_username: ''")
    cluster = Cluster.objects.get(name="sasl")
    plan = config_plan(text=text, user=admin(), cluster=cluster)
    cleared = [c for c in plan.changes if c.path == "cluster.sasl_password"]
    assert [(c.before_text, c.after_text) for c in cleared] == [("[set]", "(cleared)")]
    config_apply(text=text, user=admin(), cluster=cluster, expected_digest=plan.digest)
    assert Cluster.objects.get(name="sasl").sasl_password_token == ""
    assert config_plan(text=text, user=admin(), cluster=cluster).changes == []


def test_the_command_prints_the_digest_and_applies_only_that_diff(tmp_path):
    scorecards()
    admin()
    path = tmp_path / "prod-eu.yaml"
    path.write_text(export().replace("worker_queue: eu-west-1", "worker_queue: eu-west-2"))
    out = io.StringIO()
    call_command("scorecard_config", "import", str(path), "--by", "root", stdout=out)
    digest = out.getvalue().split("digest ")[1].split()[0]
    assert digest == config_plan(text=path.read_text(), user=admin()).digest
    call_command("scorecard_config", "import", str(path), "--by", "root", "--expect-digest", digest,
                 stdout=io.StringIO())  # fmt: skip
    services.row_update(row=Row.objects.get(scorecard__cluster__name="prod-eu", key="cost"), owner="finops")
    for extra in ([], ["--apply"]):
        stderr = io.StringIO()
        with pytest.raises(CommandError) as refused:
            call_command("scorecard_config", "import", str(path), "--by", "root", "--expect-digest", digest, *extra,
                         stdout=io.StringIO(), stderr=stderr)  # fmt: skip
        assert refused.value.returncode == 1 and "changed since" in stderr.getvalue()
    assert Cluster.objects.get(name="prod-eu").worker_queue == "eu-west-1"
    out = io.StringIO()
    call_command("scorecard_config", "import", str(path), "--by", "root", stdout=out)
    fresh = out.getvalue().split("digest ")[1].split()[0]
    call_command("scorecard_config", "import", str(path), "--by", "root", "--apply", "--expect-digest", fresh,
                 stdout=io.StringIO())  # fmt: skip
    assert Cluster.objects.get(name="prod-eu").worker_queue == "eu-west-2"


def test_a_broken_file_lists_its_first_hundred_problems_and_counts_the_rest():
    unknown = "".join(f"  key{n}: 1\n" for n in range(150))
    with pytest.raises(ConfigError) as refused:
        config_plan(text=f"version: 1\ncluster:\n  name: x\n  bootstrap_servers: ['a:1']\n{unknown}", user=admin())
    assert len(refused.value.errors) == 101 and refused.value.errors[-1] == (0, "and 50 more problems")
    assert config_code.LOADER is getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def test_a_cluster_has_at_most_fifty_drill_schedules_from_a_file():
    scorecards()
    text = export()
    schedule = text[text.index("- scenario: broker_loss") : text.index("- scenario: consumer_restart")]
    many = text.replace(schedule, schedule * 50)
    refused_at(many, line_of(many, "drill_schedules:"), "at most 50 per cluster; this list has 51",
               cluster=Cluster.objects.get(name="prod-eu"))  # fmt: skip


def test_hostile_yaml_through_the_api_is_a_422_even_as_a_diff():
    scorecard = register("prod")
    otto = user_with_role("otto", "operator")
    text = export("prod")
    client, token = Client(), token_create(actor=otto, name="tests")[1]
    url = f"/api/v1/clusters/{scorecard.cluster_id}/config"
    for hostile in ("expected_brokers: !!bool maybe", r'expected_brokers: "\0"', "expected_brokers: " + "9" * 4400):
        answer = client.post(url, text.replace("expected_brokers: null", hostile), content_type="application/yaml",
                             HTTP_AUTHORIZATION=f"Bearer {token}")  # fmt: skip
        assert answer.status_code == 422 and answer.json()["detail"][0]["line"] == line_of(text, "expected_brokers")


# --- pages -------------------------------------------------------------------------------------


def urls(cluster_id: int) -> list[str]:
    return [
        reverse("scorecard-config-export", args=[cluster_id]),
        reverse("scorecard-config-import", args=[cluster_id]),
        reverse("scorecard-config-import-new"),
    ]


def test_every_page_sends_anonymous_callers_to_the_login_page(client):
    cluster = register().cluster
    for url in urls(cluster.pk):
        for response in (client.get(url), client.post(url, {"text": "version: 1"})):
            assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_viewer_downloads_the_yaml_but_may_not_import(role_client):
    scorecard = register(name="prod eu")
    viewer = role_client("viewer", "vera")
    export_url, import_url, new_url = urls(scorecard.cluster_id)
    response = viewer.get(export_url)
    assert response.status_code == 200 and response["Content-Type"] == "text/yaml; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="prod-eu.yaml"'
    assert response.content.decode() == export("prod eu")
    text = export("prod eu").replace("worker_queue: default", "worker_queue: other")
    for url in (import_url, new_url):
        assert viewer.get(url).status_code == 403
        assert viewer.post(url, {"text": text}).status_code == 403
    assert Cluster.objects.get(pk=scorecard.cluster_id).worker_queue == "default"
    assert role_client("operator", "olga").get(new_url).status_code == 403


def test_another_teams_cluster_is_not_found(client):
    scorecards()
    cluster = Cluster.objects.get(name="prod-eu")
    mallory = user_with_role("mallory", "drill approver")
    Team.objects.create(name="search").members.add(mallory)
    client.force_login(mallory)
    for url in urls(cluster.pk)[:2]:
        assert client.get(url).status_code == 404
        assert client.post(url, {"text": export()}).status_code == 404


def test_the_import_page_shows_the_diff_then_applies_it_on_confirmation(role_client):
    scorecards()
    cluster = Cluster.objects.get(name="prod-eu")
    root = role_client("admin", "root")
    url = reverse("scorecard-config-import", args=[cluster.pk])
    text = export().replace("worker_queue: eu-west-1", "worker_queue: eu-west-2").replace("\n", "\r\n")
    upload = io.BytesIO(text.encode())
    upload.name = "prod-eu.yaml"
    shown = root.post(url, {"file": upload})
    assert shown.status_code == 200
    page = shown.content.decode()
    assert "cluster.worker_queue" in page and "Apply these 1 changes" in page
    assert Cluster.objects.get(pk=cluster.pk).worker_queue == "eu-west-1", "nothing before the confirmation"
    plan = shown.context["plan"]
    # The browser posts the hidden text back with CRLF line breaks.
    confirmed = root.post(url, {"text": shown.context["text"].replace("\n", "\r\n"), "digest": plan.digest})
    assert confirmed.status_code == 302 and confirmed["Location"] == reverse("scorecard-detail", args=[cluster.pk])
    assert Cluster.objects.get(pk=cluster.pk).worker_queue == "eu-west-2"


def test_the_import_page_reads_a_file_with_lone_cr_line_breaks_and_confirms_it(role_client):
    scorecards()
    cluster = Cluster.objects.get(name="prod-eu")
    root = role_client("admin", "root")
    url = reverse("scorecard-config-import", args=[cluster.pk])
    text = export().replace("worker_queue: eu-west-1", "worker_queue: eu-west-2")
    shown = root.post(url, {"text": text.replace("\n", "\r")})
    plan = shown.context["plan"]
    assert [c.path for c in plan.changes] == ["cluster.worker_queue"] and shown.context["text"] == text
    assert plan.digest in shown.content.decode(), "the page shows the digest the command prints"
    # A browser posts every line break of the hidden text back as CRLF.
    posted = re.sub(r"\r\n?|\n", "\r\n", shown.context["text"])
    confirmed = root.post(url, {"text": posted, "digest": plan.digest})
    assert confirmed.status_code == 302 and Cluster.objects.get(pk=cluster.pk).worker_queue == "eu-west-2"


def test_the_import_page_lists_errors_with_lines_and_refusals_without_a_confirm_button(role_client):
    scorecards()
    cluster = Cluster.objects.get(name="prod-eu")
    olga = role_client("operator", "olga")
    url = reverse("scorecard-config-import", args=[cluster.pk])
    bad = export().replace(" records: 5000", " records: 0")
    page = olga.post(url, {"text": bad}).content.decode()
    assert f"line {line_of(bad, ' records: 0')}: rows.durability.checks.ack_write.params.records" in page
    loosened = export().replace("max_duration_seconds: 120", "max_duration_seconds: 600")
    loosened = loosened.replace("actuator: command", "actuator: manual")
    response = olga.post(url, {"text": loosened})
    page = response.content.decode()
    assert "Only a drill approver may loosen" in page and "change the cluster&#x27;s settings" in page
    assert "Apply these" not in page
    forced = olga.post(url, {"text": loosened, "digest": response.context["plan"].digest})
    assert forced.status_code == 200 and "Only a drill approver may loosen" in forced.content.decode()
    assert Row.objects.get(scorecard__cluster=cluster, key="durability").rollback_max_duration_seconds == 120
    assert Cluster.objects.get(pk=cluster.pk).actuator == "command"


def test_an_administrator_imports_a_new_cluster_from_the_page(role_client):
    scorecards()
    root = role_client("admin", "root")
    url = reverse("scorecard-config-import-new")
    text = export().replace("name: prod-eu\n", "name: prod-us\n")
    shown = root.post(url, {"text": text})
    assert "New cluster prod-us" in shown.content.decode()
    confirmed = root.post(url, {"text": text, "digest": shown.context["plan"].digest})
    created = Cluster.objects.get(name="prod-us")
    assert confirmed["Location"] == reverse("scorecard-detail", args=[created.pk])
    assert yaml.safe_load(export("prod-us"))["rows"] == yaml.safe_load(export("prod-eu"))["rows"]


def test_the_scorecard_page_links_to_export_and_import(role_client):
    scorecard = register()
    page = role_client("operator", "olga").get(reverse("scorecard-detail", args=[scorecard.cluster_id]))
    assert reverse("scorecard-config-export", args=[scorecard.cluster_id]) in page.content.decode()
    assert reverse("scorecard-config-import", args=[scorecard.cluster_id]) in page.content.decode()
    viewer_page = role_client("viewer", "vera").get(reverse("scorecard-detail", args=[scorecard.cluster_id]))
    assert reverse("scorecard-config-import", args=[scorecard.cluster_id]) not in viewer_page.content.decode()


def test_the_example_in_the_docs_is_a_valid_import():
    document = (ROOT / "docs" / "config-as-code.md").read_text()
    example = document.split("```yaml\n", 1)[1].split("```", 1)[0]
    register(name="payments-dr", bootstrap="127.0.0.1:9093")
    user_with_role("olga", "operator")
    plan = config_plan(text=example, user=admin(), sasl_password="from-the-environment")
    assert plan.new and plan.allowed and plan.cluster_name == "payments-prod"
