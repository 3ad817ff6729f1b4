import json
import re

import pytest
from django.urls import reverse

from drills.models import DrillRun, DrillTimeline
from scorecard.models import Actuator, Cluster
from tests.factories import register

pytestmark = pytest.mark.django_db


def drillable(name="prod", **fields):
    return register(
        name=name, drills_allowed=True, actuator=Actuator.SANDBOX, sandbox_control="/tmp/x.sock", **fields
    ).cluster


def start_form(**overrides):
    data = {
        "scenario": "broker_loss",
        "fault_seconds": "10",
        "baseline_seconds": "3",
        "settle_seconds": "5",
        "interval_ms": "10",
        "latency_slo_ms": "500",
        "stability_window_seconds": "2",
        "max_duration_seconds": "120",
        "error_window_seconds": "5",
        "confirm": "prod",
    }
    return {**data, **overrides}


@pytest.mark.parametrize("name", ["drills-list", "drills-detail", "drills-progress"])
def test_drill_pages_require_login(client, name):
    response = client.get(reverse(name, args=[1]))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_starting_a_drill_needs_the_clusters_name_typed(user_client, django_capture_on_commit_callbacks):
    cluster = drillable()
    url = reverse("drills-list", args=[cluster.pk])
    response = user_client.post(url, start_form(confirm="prdo"))
    assert "Type prod exactly" in " ".join(response.context["form"].errors["confirm"])
    assert not DrillRun.objects.exists()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = user_client.post(url, start_form(max_error_rate="0.05"))
    run = DrillRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("drills-detail", args=[run.pk])
    assert run.params["fault_seconds"] == 10.0 and run.guardrails == {
        "max_duration_seconds": 120,
        "max_error_rate": 0.05,
    }
    assert len(callbacks) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("fault_seconds", "-1"),
        ("max_error_rate", "1.5"),
        ("max_duration_seconds", "1"),
        ("interval_ms", "x"),
        ("scenario", "meteor_strike"),
    ],
)
def test_bad_drill_parameters_are_field_errors(user_client, field, value):
    cluster = drillable()
    response = user_client.post(reverse("drills-list", args=[cluster.pk]), start_form(**{field: value}))
    assert field in response.context["form"].errors
    assert not DrillRun.objects.exists()


def test_a_refused_drill_says_why_on_the_form(user_client):
    cluster = drillable()
    DrillRun.objects.create(cluster=cluster, scenario="broker_loss", state="running", requested_by="other")
    response = user_client.post(reverse("drills-list", args=[cluster.pk]), start_form())
    assert "already running on prod" in " ".join(response.context["form"].non_field_errors())
    assert DrillRun.objects.count() == 1


def test_progress_is_served_as_json_and_abort_is_recorded(user_client):
    run = DrillRun.objects.create(
        cluster=drillable(),
        scenario="broker_loss",
        state="running",
        requested_by="sre",
        phase="fault",
        progress={"phase": "fault", "acked": 10},
    )
    data = user_client.get(reverse("drills-progress", args=[run.pk])).json()
    assert data["phase"] == "fault" and data["progress"]["acked"] == 10 and data["active"]
    user_client.post(reverse("drills-abort", args=[run.pk]))
    run.refresh_from_db()
    assert run.abort_requested and run.events[-1]["kind"] == "abort_requested"


def test_a_finished_drill_shows_figures_and_the_timeline_from_local_static_files(user_client):
    run = DrillRun.objects.create(
        cluster=drillable(),
        scenario="broker_loss",
        state="done",
        outcome="passed",
        requested_by="sre",
        figures={
            "fault_started_at_s": 4.9,
            "fault_at_s": 5.0,
            "recovery_at_s": 8.0,
            "write_rto_s": 3.1,
            "read_rto_s": 3.4,
            "rpo_acked_lost": 0,
            "duplicates": 0,
            "reordered": 0,
            "records_sent": 10,
            "records_acked": 10,
            "records_failed": 0,
            "producer_fatal_errors": [],
        },
    )
    DrillTimeline.objects.create(
        run=run, data={"records": [[0, 0, 10.0, 12.0, 20.0, None]], "fault_ms": 5.0, "recovery_ms": 8.0}
    )
    html = user_client.get(reverse("drills-detail", args=[run.pk])).content.decode()
    assert "3.1 s" in html and "Availability timeline" in html
    assert "/static/vendor/plotly.min.js" in html
    # Every script comes from the app's own static files: a random nonce or token may
    # contain the letters "cdn", so the sources themselves are what is checked.
    sources = re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)
    assert sources and all(src.startswith("/static/") for src in sources), sources


def command_cluster_form(commands: str) -> dict:
    return {
        "name": "cmd",
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
        "worker_queue": "default",
        "actuator": "command",
        "actuator_commands": commands,
    }


def test_only_administrators_may_set_command_templates(role_client, user_client):
    commands = {"broker_down": ["systemctl", "stop", "kafka@{broker}"], "broker_up": ["systemctl", "start", "k"]}
    form = command_cluster_form(json.dumps(commands))
    for role in ("viewer", "operator", "drill approver"):
        assert role_client(role).post(reverse("scorecard-cluster-new"), form).status_code == 403
    assert not Cluster.objects.exists()
    assert user_client.post(reverse("scorecard-cluster-new"), form).status_code == 302
    assert Cluster.objects.get().actuator_commands["broker_down"][0] == "systemctl"


def test_command_templates_with_unknown_placeholders_are_rejected(admin_client):
    form = command_cluster_form('{"broker_down": ["sh", "-c", "{secret}"], "broker_up": ["true"]}')
    response = admin_client.post(reverse("scorecard-cluster-new"), form)
    assert "placeholder {secret}" in " ".join(response.context["form"].errors["actuator_commands"])
    assert not Cluster.objects.exists()


def test_only_scenarios_the_actuator_can_perform_are_offered_and_accepted(user_client):
    commands = {"broker_down": ["systemctl", "stop", "kafka@{broker}"], "broker_up": ["systemctl", "start", "k"]}
    cluster = register(name="prod", drills_allowed=True, actuator=Actuator.COMMAND, actuator_commands=commands).cluster
    response = user_client.get(reverse("drills-list", args=[cluster.pk]))
    offered = [value for value, _ in response.context["form"].fields["scenario"].choices]
    assert "broker_loss" in offered and "leader_change" not in offered and "standby_cutover" not in offered
    assert "cannot move leaders" in response.content.decode()
    for data in (start_form(scenario="leader_change"), start_form(move_leaders="on")):
        response = user_client.post(reverse("drills-list", args=[cluster.pk]), data)
        assert response.status_code == 200
    assert "cannot move leaders" in " ".join(response.context["form"].non_field_errors())
    assert not DrillRun.objects.exists()


def test_the_timeline_draws_failed_records_on_their_own_track_and_the_confirmed_windows():
    from drills.charts import timeline_figure

    def record(i):
        acked = None if i in (5, 6) else i * 10 + 4.0
        return [0, i, i * 10.0, acked, i * 10 + 9.0, "NOT_ENOUGH_REPLICAS" if i == 5 else None]

    timeline = {
        "records": [record(i) for i in range(100)],
        "fault_started_ms": 200.0,
        "fault_ms": 260.0,
        "recovery_started_ms": 600.0,
        "recovery_ms": 640.0,
    }
    figure = timeline_figure(timeline)
    tracks = {trace.name: trace for trace in figure.data}
    assert list(tracks["failed (1)"].y) == [1] and tracks["failed (1)"].yaxis == "y2"
    assert list(tracks["never reported (1)"].y) == [0]
    shapes = [(s.type, s.x0, s.x1) for s in figure.layout.shapes]
    assert ("rect", 0.2, 0.6) in shapes and ("rect", 0.6, 0.64) in shapes
    assert ("line", 0.26, 0.26) in shapes and ("line", 0.64, 0.64) in shapes


def test_events_read_as_sentences_and_figures_carry_their_meaning_and_target(user_client):
    from scorecard.presentation import event_text, figure_rows

    assert event_text({"kind": "guardrail_tripped", "guardrail": "max_error_rate"}) == (
        "Guardrail max_error_rate tripped: the fault is stopped and the recovery runs"
    )
    assert event_text({"kind": "action", "description": "stop broker 2", "seconds": 0.2}) == (
        "stop broker 2: the command returned after 0.2 s"
    )
    assert event_text({"kind": "fault"}) == "Fault: ?"  # a missing detail never crashes the page
    assert event_text({"kind": "something_new"}) == "Something new"
    cluster = register(name="prod", drills_allowed=True, actuator=Actuator.SANDBOX, sandbox_control="/x").cluster
    run = DrillRun.objects.create(
        cluster=cluster, scenario="broker_loss", requested_by="t", state="done", outcome="failed",
        figures={"fault_at_s": 2.0, "write_rto_s": 12.5, "read_rto_s": None, "rpo_acked_lost": 0,
                 "reelection_s": None, "metadata": {"loss_observed": False}},
        targets={"write_rto_s": {"value": 10, "source": "Client continuity row"}, "rpo_records": {"value": 0,
                 "source": "Data durability row"}},
        events=[{"kind": "fault_confirmed", "at_s": 2.0}, {"kind": "phase", "phase": "settle", "at_s": 9.1}],
    )  # fmt: skip
    rows = {row["label"]: row for row in figure_rows(run)}
    assert rows["Write RTO"]["value"] == "12.5 s" and rows["Write RTO"]["met"] is False
    assert rows["Write RTO"]["target"] == "target <= 10 s, Client continuity row"
    assert rows["Read RTO"]["value"] == "not recovered within the drill" and rows["Read RTO"]["met"] is None
    assert rows["Leader re-election"]["value"] == "not observed"
    assert rows["RPO (acknowledged records lost)"]["met"] is True
    html = user_client.get(reverse("drills-detail", args=[run.pk])).content.decode()
    assert "The actuator confirmed the fault" in html and "Phase: settle" in html
    assert "From the confirmed fault until writes were all acknowledged" in html
    progress = user_client.get(reverse("drills-progress", args=[run.pk])).json()
    assert progress["events"][-1] == {"at_s": 9.1, "kind": "phase", "text": "Phase: settle"}


def test_the_start_form_shows_and_takes_only_the_scenarios_own_fields(user_client, django_capture_on_commit_callbacks):
    cluster = register(name="prod", drills_allowed=True, actuator=Actuator.SANDBOX, sandbox_control="/x").cluster
    page = user_client.get(reverse("drills-list", args=[cluster.pk])).content.decode()
    assert 'data-scenarios="zone_loss"' in page and page.count("/static/js/drill-form.js") == 1
    assert "<title>Drills on prod · Kafka recovery scorecard</title>" in page
    form = {"scenario": "consumer_restart", "confirm": "prod", "broker": "99", "zone": "nowhere", "fault_seconds": "2"}
    with django_capture_on_commit_callbacks():
        assert user_client.post(reverse("drills-list", args=[cluster.pk]), form).status_code == 302
    run = DrillRun.objects.get()
    assert run.params["broker"] is None and run.params["zone"] is None
