import pytest
from django.db import connection
from django.urls import reverse

from scorecard.evidence import evidence_append
from scorecard.models import AuditEvent, Check, Cluster
from tests.factories import check_of, register

pytestmark = pytest.mark.django_db


def post(client, check, form, **data):
    return client.post(reverse(f"scorecard-check-{form}", args=[check.pk]), data)


def cost_form(**overrides):
    data = {
        "price_cross_zone_gb": "0.02",
        "price_broker_hour": "0.21",
        "standby_brokers": "0",
        "consumer_fanout": "1",
        "sample_seconds": "10",
        "timeout_seconds": "10",
    }
    return {**data, **overrides}


def test_the_check_page_shows_parameters_schedule_and_applicability(user_client):
    check = check_of(register(), "cost_model")
    response = user_client.get(reverse("scorecard-check", args=[check.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "$ per cross-zone GB" in html and "Run every (seconds)" in html and "Ask for NOT APPLICABLE" in html


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("price_broker_hour", "a lot", "Enter a number"),
        ("price_broker_hour", "-5", "greater than or equal to 0"),
        ("price_cross_zone_gb", "nan", "Enter a number"),
        ("sample_seconds", "0", "greater than or equal to 1"),
    ],
)
def test_bad_parameters_are_field_errors_and_nothing_is_saved(user_client, field, value, message):
    check = check_of(register(), "cost_model")
    before = dict(check.params)
    response = post(user_client, check, "params", **cost_form(**{field: value}))
    assert response.status_code == 200
    errors = response.context["forms"]["params"].errors
    assert message in " ".join(errors[field])
    check.refresh_from_db()
    assert check.params == before


def test_valid_parameters_are_saved(user_client):
    check = check_of(register(), "cost_model")
    response = post(user_client, check, "params", **cost_form(price_broker_hour="1.5", fetch_from_follower="on"))
    assert response.status_code == 302
    check.refresh_from_db()
    assert check.params["price_broker_hour"] == 1.5 and check.params["fetch_from_follower"] is True


def test_negative_lag_thresholds_are_rejected(user_client):
    check = check_of(register(), "consumer_groups")
    response = post(
        user_client,
        check,
        "params",
        groups="",
        topics="",
        max_lag_records="-1",
        max_lag_seconds="-3",
        timeout_seconds="10",
    )
    errors = response.context["forms"]["params"].errors
    assert set(errors) == {"max_lag_records", "max_lag_seconds"}


def test_group_names_are_saved_without_asking_the_cluster_and_the_page_says_the_next_run_checks_them(user_client):
    # The cluster is unreachable: the page must neither wait for it nor refuse because of it.
    check = check_of(register(bootstrap="127.0.0.1:1"), "consumer_groups")
    fields = {"topics": "", "max_lag_records": "100", "max_lag_seconds": "60", "timeout_seconds": "10"}
    response = post(user_client, check, "params", groups="bad group!", **fields)
    assert "not a valid name" in " ".join(response.context["forms"]["params"].errors["groups"])
    response = post(user_client, check, "params", groups="page-ledger, ghost-group", **fields)
    assert response.status_code == 302
    check.refresh_from_db()
    assert check.params["groups"] == ["page-ledger", "ghost-group"]
    page = user_client.get(response["Location"]).content.decode()
    assert "checked on the cluster by the next run" in page


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"interval_seconds": "5", "max_age_seconds": "3600"}, "interval_seconds"),
        ({"interval_seconds": "600", "max_age_seconds": "60"}, "max_age_seconds"),
        ({"interval_seconds": "-1", "max_age_seconds": "3600"}, "interval_seconds"),
    ],
)
def test_bad_schedules_are_rejected(user_client, data, field):
    check = check_of(register())
    response = post(user_client, check, "schedule", **data)
    assert field in response.context["forms"]["schedule"].errors
    check.refresh_from_db()
    assert (check.interval_seconds, check.max_age_seconds) == (900, 3600)


def test_the_schedule_is_editable(user_client):
    check = check_of(register())
    assert post(user_client, check, "schedule", interval_seconds="60", max_age_seconds="300").status_code == 302
    check.refresh_from_db()
    assert (check.interval_seconds, check.max_age_seconds) == (60, 300)


def test_not_applicable_needs_a_reason_and_an_approver_other_than_the_person_who_asked(role_client):
    scorecard = register()
    check = check_of(scorecard, "durability_config")
    operator, approver = role_client("operator", "olga"), role_client("drill approver", "abe")
    response = post(operator, check, "applicability", reason="")
    assert "reason" in response.context["forms"]["applicability"].errors
    reason = "Tansu answers DescribeConfigs with no entries"
    assert post(operator, check, "applicability", reason=reason).status_code == 302
    check.refresh_from_db()
    assert check.not_applicable_pending and not check.not_applicable and check.not_applicable_by == "olga"
    page = operator.get(reverse("scorecard-check", args=[check.pk])).content.decode()
    assert "awaiting a drill approver other than olga" in page and "Approve NOT APPLICABLE" not in page
    # The operator cannot approve at all; an approver who asked cannot approve their own request.
    assert post(operator, check, "applicability-approve").status_code == 403
    own = check_of(scorecard, "cluster_health")
    assert post(approver, own, "applicability", reason="asked by abe").status_code == 302
    assert post(approver, own, "applicability-approve").status_code == 403
    own.refresh_from_db()
    assert not own.not_applicable
    # Someone else approves: now the check is NOT APPLICABLE, with both names on the record.
    assert post(approver, check, "applicability-approve").status_code == 302
    check.refresh_from_db()
    assert check.not_applicable and (check.not_applicable_by, check.not_applicable_approved_by) == ("olga", "abe")
    page = operator.get(reverse("scorecard-detail", args=[scorecard.cluster_id])).content.decode()
    assert "NOT APPLICABLE" in page and reason in page
    actions = list(AuditEvent.objects.filter(object_id=str(check.pk)).values_list("action", "actor"))
    assert ("not_applicable.request", "olga") in actions and ("not_applicable.approve", "abe") in actions
    post(operator, check, "applicability", withdraw="1")
    check.refresh_from_db()
    assert not check.not_applicable and check.not_applicable_reason == "" and not check.not_applicable_pending


def test_row_evidence_history_is_paginated_newest_first(user_client):
    scorecard = register()
    check = check_of(scorecard)
    for i in range(25):
        evidence_append(check=check, status="PASS", summary=f"probe {i}", measurements={"i": i}, collected_by="t")
    url = reverse("scorecard-row-evidence", args=[check.row.pk])
    first = user_client.get(url).context["page"]
    assert [e.summary for e in first.items][:2] == ["probe 24", "probe 23"] and len(first.items) == 20
    assert first.newer is None and first.older == first.items[-1].seq
    response = user_client.get(url, {"before": first.older})
    second = response.context["page"]
    assert [e.summary for e in second.items][-1] == "probe 0" and len(second.items) == 5
    assert second.older is None and second.newer == 0
    assert "← Newer" in response.content.decode() and "Older →" not in response.content.decode()
    for bad in ("x", "-1", "9" * 40):
        assert user_client.get(url, {"before": bad}).context["page"].items[0].summary == "probe 24"


def test_setting_a_standby_adds_the_parity_check_and_keeps_the_stored_password(user_client):
    standby = register("dr").cluster
    scorecard = register(
        "primary", security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="u", sasl_password="pw-123"
    )
    cluster = scorecard.cluster
    data = {
        "name": "primary",
        "bootstrap_servers": cluster.bootstrap_servers,
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "PLAIN",
        "sasl_username": "u",
        "sasl_password": "",
        "ssl_ca_pem": "",
        "expected_brokers": "",
        "worker_queue": "default",
        "standby": str(standby.pk),
        "actuator": "none",
    }
    response = user_client.post(reverse("scorecard-cluster-edit", args=[cluster.pk]), data)
    assert response.status_code == 302
    cluster = Cluster.objects.get(pk=cluster.pk)
    assert cluster.standby == standby and cluster.sasl_password == "pw-123"
    assert Check.objects.filter(row__scorecard=scorecard, kind="standby_parity").exists()
    assert "pw-123" not in user_client.get(reverse("scorecard-cluster-edit", args=[cluster.pk])).content.decode()


def test_a_check_with_old_evidence_reads_stale_on_its_page_as_on_the_scorecard(user_client):
    scorecard = register()
    check = check_of(scorecard)
    evidence_append(check=check, status="PASS", summary="3/3 brokers", measurements={}, collected_by="t")
    Check.objects.filter(pk=check.pk).update(max_age_seconds=10)
    with connection.cursor() as cursor:  # the evidence is an hour old (append-only: only SQL can age it)
        cursor.execute("UPDATE scorecard_evidence SET collected_at = collected_at - interval '1 hour'")
    html = user_client.get(reverse("scorecard-check", args=[check.pk])).content.decode()
    assert 'status-stale">STALE' in html and "no longer counts as PASS" in html
    page = user_client.get(reverse("scorecard-detail", args=[scorecard.cluster_id])).content.decode()
    assert 'status-stale">STALE' in page
