"""Prometheus metrics (issue 12, part 3): refused without a token, a role or an allowed address;
parsed by prometheus-client's own parser; the values the pages show, "not observed" absent;
queue depths read from the real broker; a query count that does not grow with clusters."""

import gzip
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from kombu import Connection
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from api.tokens import token_create, token_revoke
from config.celery import app
from drills.models import DrillRun
from drills.tasks import run_check
from scorecard import selectors, services
from scorecard.evidence import evidence_append
from scorecard.models import Check, CheckRun, Status, Team
from tests.conftest import unique_queue, user_with_role
from tests.factories import check_of, register

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "alerts" / "kafka-recovery.rules.yml"


def token_of(user) -> str:
    return token_create(actor=user, name="prometheus")[1]


def scrape(token: str, **extra):
    return Client().get(reverse("metrics"), HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def samples(response, body: bytes = b"") -> dict[tuple, float]:
    """{(name, (label, value)...): value} of every sample, read by prometheus-client's parser."""
    assert response.status_code == 200, response.content
    families = text_string_to_metric_families((body or response.content).decode())
    return {(s.name, *sorted(s.labels.items())): s.value for family in families for s in family.samples}


def value(found: dict, name: str, **labels):
    return found.get((f"kafka_recovery_{name}", *sorted(labels.items())))


def system_evidence(scorecard, status="PASS"):
    for check in Check.objects.runnable().filter(row__scorecard=scorecard).select_related("row"):
        evidence_append(check=check, status=status, summary="probe", measurements={}, collected_by="celery@w")


def drill(cluster, scenario, *, outcome="passed", ago=timedelta(hours=1), figures=None, targets=None):
    return DrillRun.objects.create(
        cluster=cluster, scenario=scenario, state="done", outcome=outcome, requested_by="sre",
        figures=figures or {}, targets=targets or {}, finished_at=timezone.now() - ago,
    )  # fmt: skip


@pytest.fixture
def viewer():
    return user_with_role("prometheus", "viewer")


def test_it_refuses_no_token_a_bad_one_and_a_revoked_one_with_401(viewer):
    row, token = token_create(actor=viewer, name="prometheus")
    client = Client()
    for headers in ({}, {"HTTP_AUTHORIZATION": "Bearer rrs_nothere_x"}, {"HTTP_AUTHORIZATION": f"Basic {token}"}):
        refused = client.get(reverse("metrics"), **headers)
        assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
        assert refused["Content-Type"].startswith("text/plain") and b"Authorization: Bearer" in refused.content
    assert scrape(token).status_code == 200
    token_revoke(actor=viewer, token=row)
    assert scrape(token).status_code == 401


def test_it_refuses_a_user_without_a_role_and_says_which_role_it_needs():
    nobody = get_user_model().objects.create_user("nobody")
    refused = scrape(token_of(nobody))
    assert refused.status_code == 403 and refused["Content-Type"].startswith("text/plain")
    assert "nobody (no role) may not read the metrics: that needs the viewer role." in refused.content.decode()


def test_it_answers_get_and_head_uncached_and_refuses_other_methods(viewer):
    token = token_of(viewer)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    got = client.get(reverse("metrics"))
    assert got.status_code == 200 and got["Content-Type"] == CONTENT_TYPE_LATEST
    assert "no-cache" in got["Cache-Control"] and "max-age=0" in got["Cache-Control"]
    zipped = client.get(reverse("metrics"), HTTP_ACCEPT_ENCODING="gzip")
    assert zipped["Content-Encoding"] == "gzip"
    assert samples(got).keys() == samples(zipped, gzip.decompress(zipped.content)).keys()
    assert client.head(reverse("metrics")).status_code == 200
    assert client.post(reverse("metrics")).status_code == 405


def test_an_address_outside_the_allowed_networks_is_refused_even_with_a_token(viewer, settings):
    token = token_of(viewer)
    settings.METRICS_ALLOWED_NETWORKS = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8")]
    refused = scrape(token, REMOTE_ADDR="192.0.2.7")
    assert refused.status_code == 403 and b"METRICS_ALLOWED_NETWORKS" in refused.content
    assert scrape(token, REMOTE_ADDR="10.1.2.3").status_code == 200
    assert scrape(token, REMOTE_ADDR="::ffff:10.1.2.3").status_code == 200
    assert scrape(token, REMOTE_ADDR="fd00::1").status_code == 200
    assert scrape("no-token", REMOTE_ADDR="192.0.2.7").status_code == 403, "refused before the token is looked up"


@pytest.mark.parametrize("networks", ["10.0.0.0/8, fd00::/8", "10.0.0.0/33", "10.0.0.5/8", "ten"])
def test_a_bad_allowed_network_stops_the_start_up_naming_the_setting(networks):
    started = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "METRICS_ALLOWED_NETWORKS": networks},
        capture_output=True,
        text=True,
        timeout=60,
    )
    refused = "ImproperlyConfigured: METRICS_ALLOWED_NETWORKS must be comma-separated networks" in started.stderr
    assert (started.returncode != 0 and refused) == (networks != "10.0.0.0/8, fd00::/8"), started.stderr


def test_another_teams_cluster_is_absent(viewer):
    register("shared")
    payments = Team.objects.create(name="payments")
    register("pay-prod", team=payments)
    outside = {labels for labels in samples(scrape(token_of(viewer))) if ("cluster", "pay-prod") in labels}
    assert outside == set()
    member = user_with_role("pat", "viewer")
    payments.members.add(member)
    found = samples(scrape(token_of(member)))
    assert value(found, "rows_proven", cluster="pay-prod") == 0 and value(found, "rows_proven", cluster="shared") == 0


def test_the_values_are_those_the_overview_shows_and_not_observed_is_absent(viewer):
    owner = user_with_role("olga", "operator")
    prod, stage = register("prod"), register("stage")
    prod.rows.update(owner_user=owner)
    system_evidence(prod)
    for row in selectors.scorecard_views(scorecards=[prod])[0].rows:
        services.row_sign_off(row=row.row, user=owner, comment="measured", status=row.status)
    evidence_append(
        check=check_of(stage), status="FAIL", summary="leaderless", measurements={}, collected_by="celery@w"
    )
    target = {"write_rto_s": {"value": 30, "source": "Client continuity row"}, "rpo_records": {"value": 0}}
    drill(prod.cluster, "broker_loss", ago=timedelta(days=3), figures={"write_rto_s": 9.0, "rpo_acked_lost": 0})
    drill(prod.cluster, "broker_loss", figures={"write_rto_s": 4.2, "read_rto_s": 5.5, "rpo_acked_lost": 0},
          targets=target)  # fmt: skip
    drill(prod.cluster, "broker_loss", outcome="aborted", ago=timedelta(minutes=5), figures={"write_rto_s": 99})
    drill(prod.cluster, "zone_loss", outcome="failed", figures={"write_rto_s": None, "rpo_acked_lost": 3})

    client = Client()
    client.force_login(viewer)
    page = client.get(reverse("scorecard-index"))
    found = samples(scrape(token_of(viewer)))
    lines = {line.view.scorecard.cluster.name: line for line in page.context["lines"]}
    assert set(lines) == {"prod", "stage"}
    assert 'status-pass">READY<' in page.content.decode() and "5 of 5 rows proven" in page.content.decode()
    for name, line in lines.items():
        view = line.view
        assert value(found, "ready", cluster=name) == float(view.ready)
        assert value(found, "rows_proven", cluster=name) == view.proven
        assert value(found, "chain_intact", cluster=name) == 1.0
        for row in view.rows:
            where = {"cluster": name, "row": row.row.key}
            shown = {s for s in Status.values if value(found, "row_status", status=s, **where) == 1.0}
            assert shown == {row.status}
            assert value(found, "row_signed_off", **where) == float(row.signed)
            age = value(found, "row_evidence_age_seconds", **where)
            if row.oldest_evidence is None:
                assert age is None, "nothing observed: no sample, never 0"
            else:
                assert 0 <= age <= (timezone.now() - row.oldest_evidence).total_seconds()
        for run in line.drills:
            where = {"cluster": name, "scenario": run.scenario}
            for key, metric in (("write_rto_s", "write_rto_seconds"), ("read_rto_s", "read_rto_seconds"),
                                ("rpo_acked_lost", "rpo_records")):  # fmt: skip
                assert value(found, f"drill_{metric}", **where) == run.figures.get(key)
            assert value(found, "drill_finished_timestamp_seconds", **where) == run.finished_at.timestamp()
    assert lines["prod"].view.ready and not lines["stage"].view.ready
    assert value(found, "row_status", cluster="stage", row="metadata", status="FAIL") == 1.0
    assert value(found, "row_status", cluster="stage", row="cost", status="UNKNOWN") == 1.0
    broker_loss = {"cluster": "prod", "scenario": "broker_loss"}
    assert value(found, "drill_write_rto_seconds", **broker_loss) == 4.2, "the last measured drill, not the aborted"
    assert value(found, "drill_write_rto_target_seconds", **broker_loss) == 30.0
    assert value(found, "drill_rpo_target_records", **broker_loss) == 0.0
    assert value(found, "drill_passed", **broker_loss) == 1.0
    zone_loss = {"cluster": "prod", "scenario": "zone_loss"}
    assert value(found, "drill_write_rto_seconds", **zone_loss) is None, "not recovered is not a number"
    assert value(found, "drill_rpo_records", **zone_loss) == 3.0 and value(found, "drill_passed", **zone_loss) == 0.0
    assert value(found, "drill_write_rto_seconds", cluster="stage", scenario="broker_loss") is None
    assert value(found, "drills_running", cluster="prod") == 0.0


def test_a_broken_chain_is_chain_intact_0_and_proves_no_row(viewer):
    scorecard = register("prod")
    system_evidence(scorecard)
    assert value(samples(scrape(token := token_of(viewer))), "rows_proven", cluster="prod") == 5
    with connection.cursor() as cursor:  # a deleted tail: the signed head still vouches for it
        cursor.execute("DELETE FROM scorecard_evidence WHERE scorecard_id = %s AND seq = 8", [scorecard.pk])
    found = samples(scrape(token))
    assert value(found, "chain_intact", cluster="prod") == 0.0
    assert value(found, "rows_proven", cluster="prod") == 0.0 and value(found, "ready", cluster="prod") == 0.0


def test_probe_duration_error_and_failures_among_the_last_ten_runs(viewer):
    scorecard = register("prod")
    health, durability = check_of(scorecard), check_of(scorecard, "durability_config")
    now = timezone.now()

    def run(state, *, ago, took=None, status=None):
        started = now - ago
        made = CheckRun.objects.create(
            check_obj=health, state=state, requested_by="scheduler", created_at=started, started_at=started,
            finished_at=started + took if took else None,
        )  # fmt: skip
        if status:
            evidence_append(check=health, run=made, status=status, summary="s", measurements={}, collected_by="w")

    run("done", ago=timedelta(days=2), took=timedelta(seconds=1), status="ERROR")  # eleventh newest
    run("failed", ago=timedelta(hours=3))
    for minutes in range(6):
        run("done", ago=timedelta(hours=2, minutes=minutes), took=timedelta(seconds=9), status="PASS")
    run("done", ago=timedelta(hours=1), took=timedelta(seconds=2.5), status="ERROR")
    run("running", ago=timedelta(minutes=1))
    run("queued", ago=timedelta(seconds=10))

    found = samples(scrape(token_of(viewer)))
    where = {"cluster": "prod", "kind": "cluster_health"}
    assert value(found, "probe_duration_seconds", **where) == 2.5, "the last completed run"
    assert value(found, "probe_error", **where) == 1.0
    assert value(found, "probe_recent_failures", **where) == 2.0
    never = {"cluster": "prod", "kind": durability.kind}
    assert value(found, "probe_duration_seconds", **never) is None and value(found, "probe_error", **never) is None
    assert value(found, "probe_recent_failures", **never) == 0.0
    assert not [key for key in found if ("kind", "drill_results") in key], "drills write those, nothing probes"


def test_drills_running_counts_the_active_drill(viewer):
    scorecard = register("prod")
    register("stage")
    DrillRun.objects.create(cluster=scorecard.cluster, scenario="broker_loss", requested_by="sre")
    found = samples(scrape(token_of(viewer)))
    assert value(found, "drills_running", cluster="prod") == 1.0
    assert value(found, "drills_running", cluster="stage") == 0.0


def test_queue_depth_comes_from_the_redis_broker(viewer, settings):
    assert settings.CELERY_BROKER_URL.startswith("redis"), "run with CELERY_BROKER_URL=redis://..."
    queue = unique_queue("metrics")  # no worker serves it
    register("prod", worker_queue=queue)
    token = token_of(viewer)
    run_check.apply_async(args=[0], queue=queue)
    run_check.apply_async(args=[0], queue=queue, priority=9)  # kombu keeps priorities in lists of their own
    try:
        found = samples(scrape(token))
    finally:
        with app.connection_for_write() as broker:
            declared = app.amqp.queues[queue](broker.default_channel)
            declared.declare()  # kombu deletes the bindings a channel knows of, with the messages
            declared.delete()
    assert value(found, "broker_up") == 1.0
    assert value(found, "queue_depth", queue=queue) == 2.0
    assert value(found, "queue_depth", queue="default") is not None


def test_an_unreachable_broker_is_broker_up_0_without_queue_samples_and_no_wait(viewer, settings):
    register("prod")
    token = token_of(viewer)
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    started = time.monotonic()
    found = samples(scrape(token))
    assert time.monotonic() - started < 3
    assert value(found, "broker_up") == 0.0
    assert not [key for key in found if key[0] == "kafka_recovery_queue_depth"]
    assert value(found, "ready", cluster="prod") == 0.0, "the scorecard's metrics are still there"


def test_the_demos_filesystem_broker_is_counted(viewer, settings, tmp_path):
    queue = "zone-b"
    register("prod", worker_queue=queue)
    options = {"data_folder_in": str(tmp_path), "data_folder_out": str(tmp_path), "store_processed": False}
    with Connection("filesystem://", transport_options=options) as broker:
        broker.SimpleQueue(queue).put({"run": 1})
    settings.CELERY_BROKER_URL = "filesystem://localhost/"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = options
    found = samples(scrape(token_of(viewer)))
    assert value(found, "broker_up") == 1.0
    assert value(found, "queue_depth", queue=queue) == 1.0 and value(found, "queue_depth", queue="default") == 0.0


def test_the_query_count_does_not_grow_with_clusters_or_evidence(viewer):
    def cluster(name):
        scorecard = register(name)
        system_evidence(scorecard)
        system_evidence(scorecard, "ERROR")
        CheckRun.objects.create(check_obj=check_of(scorecard), state="done", requested_by="s",
                                started_at=timezone.now(), finished_at=timezone.now())  # fmt: skip
        drill(scorecard.cluster, "broker_loss", figures={"write_rto_s": 1.0})
        drill(scorecard.cluster, "zone_loss", figures={"write_rto_s": 2.0})

    cluster("one")
    token = token_of(viewer)
    scrape(token)  # records the token's use, at most once a minute

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert scrape(token).status_code == 200
        return len(captured)

    few = queries()
    for i in range(4):
        cluster(f"more-{i}")
    assert queries() == few
    assert few <= 16


@pytest.fixture
def exposition(viewer) -> str:
    """A scrape in which every metric has a sample."""
    scorecard = register("prod")
    system_evidence(scorecard)
    drill(scorecard.cluster, "broker_loss", figures={"write_rto_s": 1.0, "read_rto_s": 1.0, "rpo_acked_lost": 0},
          targets={key: {"value": 30} for key in ("write_rto_s", "read_rto_s", "rpo_records")})  # fmt: skip
    CheckRun.objects.create(check_obj=check_of(scorecard), state="done", requested_by="s",
                            started_at=timezone.now(), finished_at=timezone.now())  # fmt: skip
    return scrape(token_of(viewer)).content.decode()


def test_every_metric_is_documented_and_the_example_rules_name_real_ones(exposition):
    families = list(text_string_to_metric_families(exposition))
    names = {family.name for family in families}
    assert len(names) == 21 and all(family.samples for family in families)
    docs = (ROOT / "docs" / "metrics.md").read_text()
    assert [name for name in sorted(names) if f"`{name}" not in docs] == []

    rules = yaml.safe_load(RULES.read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert len(alerts) >= 10 and all(group["name"] for group in rules["groups"])
    for rule in alerts:
        assert re.fullmatch(r"KafkaRecovery[A-Za-z]+", rule["alert"]), rule
        assert set(rule) <= {"alert", "expr", "for", "keep_firing_for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in ("critical", "warning", "info"), rule
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule
        used = set(re.findall(r"kafka_recovery_[a-z0-9_]+", rule["expr"]))
        assert used <= names, (rule["alert"], used - names)
    assert len({rule["alert"] for rule in alerts}) == len(alerts)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (Debian: prometheus)")
def test_promtool_accepts_the_example_rules_and_lints_the_metrics_clean(exposition):
    def promtool(*arguments, text=None):
        return subprocess.run(["promtool", "check", *arguments], input=text, capture_output=True, text=True, timeout=60)

    rules = promtool("rules", str(RULES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    lint = promtool("metrics", text=exposition)
    assert lint.returncode == 0 and not (lint.stdout + lint.stderr).strip(), lint.stdout + lint.stderr
