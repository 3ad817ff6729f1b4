"""Rollback conditions enforced: a drill's guardrails come from the rows it affects (the
strictest of each); an operator may tighten them, only an approver may loosen them, and the
audit trail records it. Verdicts are judged against the rows' typed targets."""

import pytest
from django.urls import reverse

from drills.evidence import drill_row_verdicts
from drills.models import DrillRun, Outcome
from scorecard.models import Actuator, AuditEvent
from tests.factories import register

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster():
    scorecard = register(name="prod", drills_allowed=True, actuator=Actuator.SANDBOX, sandbox_control="/tmp/none.sock")
    rows = {row.key: row for row in scorecard.rows.all()}
    rows["durability"].__dict__.update(
        rollback_max_error_rate=0.05, rollback_error_window_seconds=30, rollback_min_healthy_brokers=2
    )
    rows["metadata"].__dict__.update(rollback_max_duration_seconds=300)
    rows["automation"].__dict__.update(rollback_max_duration_seconds=600, rollback_min_healthy_brokers=1)
    rows["client_continuity"].__dict__.update(
        rollback_max_consumer_lag=50_000, targets={"default": {"write_rto_s": 30}, "broker_loss": {"write_rto_s": 8}}
    )
    for row in rows.values():
        row.save()
    return scorecard.cluster


def start(client, cluster, **fields):
    form = {"scenario": "broker_loss", "confirm": cluster.name, "fault_seconds": "5", **fields}
    return client.post(reverse("drills-list", args=[cluster.pk]), form)


def test_the_form_offers_the_rows_guardrails_and_says_where_they_come_from(role_client, cluster):
    html = role_client("operator").get(reverse("drills-list", args=[cluster.pk])).content.decode()
    assert 'name="max_error_rate" value="0.05"' in html and 'name="max_duration_seconds" value="300"' in html
    assert "From the Data durability row's rollback condition" in html


def test_a_drill_takes_the_strictest_of_the_rows(role_client, cluster):
    assert start(role_client("operator"), cluster).status_code == 302
    run = DrillRun.objects.get()
    assert run.guardrails == {
        "max_duration_seconds": 300,
        "max_error_rate": 0.05,
        "max_consumer_lag": 50_000,
        "min_healthy_brokers": 2,
    }
    assert run.params["error_window_seconds"] == 30
    assert run.guardrail_sources == {
        "max_duration_seconds": "Metadata recovery row",
        "max_error_rate": "Data durability row",
        "error_window_seconds": "Data durability row",
        "max_consumer_lag": "Client continuity row",
        "min_healthy_brokers": "Data durability row",
    }
    assert run.targets["write_rto_s"] == {"value": 8, "source": "Client continuity row, Broker loss"}
    page = role_client("viewer").get(reverse("drills-detail", args=[run.pk])).content.decode()
    assert "max_error_rate</code> 0.05: Data durability row" in page


def test_a_client_fault_is_guarded_by_the_rows_it_affects_only(role_client, cluster):
    assert start(role_client("operator"), cluster, scenario="consumer_restart").status_code == 302
    run = DrillRun.objects.get()
    # The metadata row's 300 s bears on cluster faults only; automation's 600 s applies.
    assert run.guardrails["max_duration_seconds"] == 600
    assert run.guardrail_sources["max_duration_seconds"] == "Operational automation row"


def test_an_operator_may_tighten_but_not_loosen_and_an_approver_may_loosen(role_client, cluster):
    operator = role_client("operator", "olga")
    refused = start(operator, cluster, max_error_rate="0.2")
    assert refused.status_code == 200 and not DrillRun.objects.exists()
    assert "max produce error rate 0.2 is looser than the Data durability row" in refused.content.decode()
    refused = start(operator, cluster, min_healthy_brokers="1")
    assert "only a drill approver may loosen" in refused.content.decode() and not DrillRun.objects.exists()

    assert start(operator, cluster, max_error_rate="0.01", max_duration_seconds="60").status_code == 302
    tightened = DrillRun.objects.get()
    assert tightened.guardrails["max_error_rate"] == 0.01 and tightened.guardrails["max_duration_seconds"] == 60
    assert tightened.guardrail_sources["max_error_rate"] == "tightened by olga from 0.05 (Data durability row)"
    DrillRun.objects.update(state=DrillRun.State.DONE)

    approver = role_client("drill approver", "abe")
    assert start(approver, cluster, max_error_rate="0.2").status_code == 302
    loosened = DrillRun.objects.exclude(pk=tightened.pk).get()
    assert loosened.guardrails["max_error_rate"] == 0.2
    assert loosened.guardrail_sources["max_error_rate"] == "loosened by abe from 0.05 (Data durability row)"
    event = AuditEvent.objects.get(action="drill.start", object_id=str(loosened.pk))
    assert event.actor == "abe" and event.comment == "loosened by abe from 0.05 (Data durability row)"
    assert event.after["guardrails"]["max_error_rate"] == 0.2


def test_verdicts_are_judged_against_the_rows_targets_and_name_them(role_client, cluster):
    assert start(role_client("operator"), cluster).status_code == 302
    run = DrillRun.objects.get()
    run.outcome = Outcome.PASSED
    run.figures = {
        "fault_at_s": 1.0,
        "write_rto_s": 9.5,
        "read_rto_s": 9.8,
        "rpo_acked_lost": 0,
        "records_acked": 100,
        "metadata": {"loss_observed": True},
        "reelection_s": 2.0,
    }
    verdicts = {row: (status, summary) for row, status, summary in drill_row_verdicts(run)}
    status, summary = verdicts["client_continuity"]
    # 9.5 s meets the default 30 s but not the row's 8 s for broker loss.
    assert status == "FAIL" and "write RTO 9.5 s (target <= 8 s, Client continuity row, Broker loss)" in summary
    assert "read RTO 9.8 s (target <= 30 s, product default (no target on the row))" in summary
    assert verdicts["metadata"][0] == "PASS" and "target <= 30 s" in verdicts["metadata"][1]
    assert verdicts["durability"][0] == "PASS" and "target <= 0 records" in verdicts["durability"][1]


def test_the_row_form_saves_guardrails_and_targets_and_refuses_bad_ones(role_client, cluster):
    from django.contrib.auth import get_user_model

    operator = role_client("operator", "olga")
    row = cluster.scorecard.rows.get(key="client_continuity")
    row.owner_user = get_user_model().objects.get(username="olga")
    row.save()
    url = reverse("scorecard-row-edit", args=[row.pk])
    base = {"owner": "Payments", "rollback_condition": "stop on lag"}
    bad = operator.post(url, {**base, "target_overrides": "broker_loss.write_rto_s = 10\nzone_loss.rpo_records = 0"})
    assert bad.status_code == 200 and "line 2: zone_loss.rpo_records: not a target of this row" in bad.content.decode()
    bad = operator.post(url, {**base, "rollback_max_error_rate": "1.5"})
    assert "less than or equal to 1" in bad.content.decode()
    good = operator.post(
        url,
        {
            **base,
            "rollback_max_consumer_lag": "1000",
            "target_write_rto_s": "20",
            "target_overrides": "broker_loss.write_rto_s = 8\nzone_loss.write_rto_s = 15",
        },
    )
    assert good.status_code == 302
    row.refresh_from_db()
    assert row.rollback_max_consumer_lag == 1000
    assert row.targets == {
        "default": {"write_rto_s": 20.0},
        "broker_loss": {"write_rto_s": 8.0},
        "zone_loss": {"write_rto_s": 15.0},
    }
    event = AuditEvent.objects.get(action="row.update")
    assert event.actor == "olga" and event.after["rollback_max_consumer_lag"] == 1000


def test_a_row_owner_may_tighten_its_guardrails_but_only_an_approver_loosens_them(role_client, cluster):
    from django.contrib.auth import get_user_model

    operator = role_client("operator", "olga")
    row = cluster.scorecard.rows.get(key="durability")
    row.owner_user = get_user_model().objects.get(username="olga")
    row.save()
    url = reverse("scorecard-row-edit", args=[row.pk])
    base = {"owner": "Storage", "rollback_condition": "stop on errors", "rollback_min_healthy_brokers": "2"}
    for loosened in ({"rollback_max_error_rate": "0.5"}, {"rollback_max_error_rate": ""}):
        response = operator.post(url, {**base, "rollback_error_window_seconds": "30", **loosened})
        assert "Only a drill approver may loosen the max produce error rate guardrail (now 0.05)" in (
            response.content.decode()
        )
    row.refresh_from_db()
    assert row.rollback_max_error_rate == 0.05
    tighter = {**base, "rollback_error_window_seconds": "30", "rollback_max_error_rate": "0.01"}
    assert operator.post(url, tighter).status_code == 302
    row.refresh_from_db()
    assert row.rollback_max_error_rate == 0.01
    approver = role_client("drill approver", "abe")
    row.owner_user = get_user_model().objects.get(username="abe")
    row.save()
    looser = {**base, "rollback_error_window_seconds": "30", "rollback_max_error_rate": "0.2"}
    assert approver.post(url, looser).status_code == 302
    row.refresh_from_db()
    assert row.rollback_max_error_rate == 0.2


def test_a_row_owner_may_lower_targets_but_only_an_approver_raises_them(role_client, cluster):
    from django.contrib.auth import get_user_model

    operator = role_client("operator", "olga")
    row = cluster.scorecard.rows.get(key="client_continuity")  # default 30 s, broker loss 8 s
    row.owner_user = get_user_model().objects.get(username="olga")
    row.save()
    url = reverse("scorecard-row-edit", args=[row.pk])
    base = {"owner": "Payments", "rollback_condition": "stop on lag", "rollback_max_consumer_lag": "50000"}
    raised = operator.post(
        url, {**base, "target_write_rto_s": "1000000", "target_overrides": "broker_loss.write_rto_s = 8"}
    )
    assert "Only a drill approver may loosen the Write RTO target (now 30)" in raised.content.decode()
    dropped = operator.post(url, {**base, "target_write_rto_s": "30"})  # the 8 s broker-loss override removed
    assert "Only a drill approver may loosen the Write RTO target for Broker loss (now 8)" in dropped.content.decode()
    row.refresh_from_db()
    assert row.targets == {"default": {"write_rto_s": 30}, "broker_loss": {"write_rto_s": 8}}
    # The service refuses it too, whatever page or command calls it.
    from django.core.exceptions import PermissionDenied

    from scorecard.services import row_update

    with pytest.raises(PermissionDenied, match="Write RTO target"):
        row_update(row=row, may_loosen=False, targets={"default": {"write_rto_s": 99}})
