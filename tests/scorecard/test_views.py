from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scorecard.evidence import evidence_append
from scorecard.models import Cluster, Row
from tests.factories import check_of, register

pytestmark = pytest.mark.django_db

SECRET = "s3cret-Pa55-do-not-show"


def valid_form(**overrides):
    data = {
        "name": "payments-prod",
        "bootstrap_servers": "kafka-1.internal:9092, kafka-2.internal:9092",
        "security_protocol": "PLAINTEXT",
        "sasl_mechanism": "",
        "sasl_username": "",
        "sasl_password": "",
        "ssl_ca_pem": "",
        "expected_brokers": "3",
        "worker_queue": "eu-west-1",
        "actuator": "none",
    }
    return {**data, **overrides}


@pytest.mark.parametrize(
    "url",
    [
        reverse("scorecard-index"),
        reverse("scorecard-cluster-new"),
        reverse("scorecard-detail", args=[1]),
        reverse("scorecard-row-edit", args=[1]),
    ],
)
def test_it_requires_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(
    ("bootstrap", "message"),
    [
        ("", "This field is required"),
        ("kafka-1", "expected host:port"),
        ("kafka-1:0", "between 1 and 65535"),
        ("kafka-1:99999", "between 1 and 65535"),
        ("kafka-1:port", "expected host:port"),
        ("PLAINTEXT://kafka-1:9092", "without a scheme"),
        ("kafka-1:9092,,kafka-2:9092", "empty entry"),
        ("kafka 1:9092", "cannot contain spaces"),
        ("-kafka:9092", "not a valid host name"),
        ("[1:2:3:4:5:6:7:8:9]:9092", "not an IPv6 address"),
    ],
)
def test_the_cluster_form_rejects_malformed_bootstrap_addresses_and_saves_nothing(user_client, bootstrap, message):
    response = user_client.post(reverse("scorecard-cluster-new"), valid_form(bootstrap_servers=bootstrap))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert "bootstrap_servers" in errors
    assert message in " ".join(errors["bootstrap_servers"])
    assert not Cluster.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"security_protocol": "SASL_SSL"}, "sasl_mechanism"),
        ({"security_protocol": "SASL_SSL", "sasl_mechanism": "PLAIN", "sasl_username": "u"}, "sasl_password"),
        ({"sasl_username": "u"}, "security_protocol"),
        ({"security_protocol": "BOGUS"}, "security_protocol"),
        ({"ssl_ca_pem": "not a certificate", "security_protocol": "SSL"}, "ssl_ca_pem"),
        ({"ssl_ca_pem": "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----"}, "ssl_ca_pem"),
        ({"worker_queue": "bad queue!"}, "worker_queue"),
        ({"expected_brokers": "-1"}, "expected_brokers"),
        ({"name": "../etc"}, "name"),
    ],
)
def test_the_cluster_form_rejects_bad_security_and_other_fields(user_client, overrides, field):
    response = user_client.post(reverse("scorecard-cluster-new"), valid_form(**overrides))
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not Cluster.objects.exists()


def test_registering_through_the_form_creates_the_scorecard_and_its_five_rows(user_client):
    response = user_client.post(reverse("scorecard-cluster-new"), valid_form())
    cluster = Cluster.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("scorecard-detail", args=[cluster.pk])
    assert cluster.bootstrap_servers == "kafka-1.internal:9092,kafka-2.internal:9092"
    assert cluster.scorecard.rows.count() == 5


def test_the_secret_is_never_rendered_back(user_client):
    form = valid_form(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN", sasl_username="svc")
    # An error elsewhere re-renders the form: the password must not come back in it.
    response = user_client.post(reverse("scorecard-cluster-new"), {**form, "sasl_password": SECRET, "name": ""})
    assert SECRET not in response.content.decode()
    user_client.post(reverse("scorecard-cluster-new"), {**form, "sasl_password": SECRET})
    cluster = Cluster.objects.get()
    assert cluster.sasl_password == SECRET
    assert SECRET not in repr(cluster) and SECRET not in str(cluster)
    for url in (reverse("scorecard-index"), reverse("scorecard-detail", args=[cluster.pk])):
        assert SECRET not in user_client.get(url).content.decode()


def test_the_scorecard_page_shows_the_five_rows_with_owner_test_rollback_and_target(user_client):
    scorecard = register()
    evidence_append(
        check=check_of(scorecard), status="PASS", summary="3/3 brokers healthy", measurements={}, collected_by="t"
    )
    response = user_client.get(reverse("scorecard-detail", args=[scorecard.cluster_id]))
    html = response.content.decode()
    assert response.status_code == 200
    for title in (
        "Data durability",
        "Metadata recovery",
        "Client continuity",
        "Operational automation",
        "Cost sustainability",
    ):
        assert title in html
    assert [rv.row.key for rv in response.context["view"].rows] == [
        "durability",
        "metadata",
        "client_continuity",
        "automation",
        "cost",
    ]
    assert "3/3 brokers healthy" in html
    assert "stop on errors" in html
    assert "VERIFIED" in html


def test_the_cluster_list_shows_each_scorecards_row_statuses(user_client):
    scorecard = register()
    evidence_append(check=check_of(scorecard), status="FAIL", summary="x", measurements={}, collected_by="t")
    response = user_client.get(reverse("scorecard-index"))
    (line,) = response.context["lines"]
    assert [r.status for r in line.view.rows] == ["UNKNOWN", "FAIL", "UNKNOWN", "UNKNOWN", "UNKNOWN"]
    assert "0 of 5 rows proven" in response.content.decode()


def test_the_overview_filters_and_lists_what_needs_attention(user_client):
    from drills.models import DrillRun

    prod = register("orders", environment="production", tags="payments, eu-west")
    register("candidate", environment="candidate", tags="redpanda")
    health = check_of(prod)
    evidence_append(check=health, status="FAIL", summary="2 partitions leaderless", measurements={}, collected_by="t")
    old = DrillRun.objects.create(cluster=prod.cluster, scenario="broker_loss", state="done", outcome="failed",
                                  requested_by="t", finished_at=timezone.now() - timedelta(days=3),
                                  figures={"write_rto_s": 41.0, "rpo_acked_lost": 0})  # fmt: skip
    DrillRun.objects.create(cluster=prod.cluster, scenario="broker_loss", state="done", outcome="passed",
                            requested_by="t", finished_at=timezone.now(),
                            figures={"write_rto_s": 4.2, "rpo_acked_lost": 0})  # fmt: skip
    url = reverse("scorecard-index")
    page = user_client.get(url)
    lines = {line.view.scorecard.cluster.name: line for line in page.context["lines"]}
    assert [run.figures["write_rto_s"] for run in lines["orders"].drills] == [4.2]  # the last one only
    assert old.pk not in [run.pk for run in lines["orders"].drills]
    assert lines["orders"].oldest is not None and lines["candidate"].oldest is None
    assert lines["orders"].unobserved == 7
    html = page.content.decode()
    assert "Broker loss</a>: passed, 4.2 s, RPO 0" in html
    assert "FAIL: 2 partitions leaderless" in html and "awaiting sign-off" in html
    # Filters: environment, tag, status.
    only = lambda **q: [ln.view.scorecard.cluster.name for ln in user_client.get(url, q).context["lines"]]  # noqa: E731
    assert only(environment="candidate") == ["candidate"]
    assert only(tag="payments") == ["orders"]
    assert only(status="failing") == ["orders"]
    assert only(status="ready") == []
    assert sorted(only(status="unsigned")) == ["candidate", "orders"]
    bad = user_client.get(url, {"status": "everything", "environment": "<script>"})
    assert bad.status_code == 200 and len(bad.context["lines"]) == 2


def test_the_row_form_saves_owner_and_rollback_condition(user_client):
    row = register().rows.get(key="cost")
    response = user_client.post(
        reverse("scorecard-row-edit", args=[row.pk]),
        {
            "owner": "FinOps",
            "owner_contact": "#finops",
            "test_description": "t",
            "rollback_condition": "r",
            "target": "< $10k",
        },
    )
    assert response.status_code == 302
    row = Row.objects.get(pk=row.pk)
    assert (row.owner, row.rollback_condition, row.target) == ("FinOps", "r", "< $10k")


def test_compare_puts_clusters_side_by_side_with_figures_against_targets(user_client):
    from drills.models import DrillRun

    current, candidate = register("current"), register("candidate")
    targets = {"write_rto_s": {"value": 10, "source": "Client continuity row"}}
    DrillRun.objects.create(cluster=current.cluster, scenario="broker_loss", state="done", outcome="passed",
                            requested_by="t", finished_at=timezone.now(), targets=targets,
                            figures={"write_rto_s": 4.2, "read_rto_s": None, "rpo_acked_lost": 0})  # fmt: skip
    DrillRun.objects.create(cluster=candidate.cluster, scenario="broker_loss", state="done", outcome="failed",
                            requested_by="t", finished_at=timezone.now(), targets=targets,
                            figures={"write_rto_s": 31.5, "rpo_acked_lost": 12})  # fmt: skip
    health = check_of(candidate, "durability_config")
    evidence_append(check=health, status="ERROR", summary="no DescribeConfigs", collected_by="t",
                    measurements={"error": "x", "missing_api": "DescribeConfigs"})  # fmt: skip
    url = reverse("scorecard-compare")
    response = user_client.get(url, {"clusters": [current.cluster_id, candidate.cluster_id]})
    comparison = response.context["comparison"]
    assert [c.view.scorecard.cluster.name for c in comparison.clusters] == ["candidate", "current"]
    ((scenario, runs, figures),) = comparison.drills
    write_rto = dict((label, cells) for label, _, cells in figures)["Write RTO"]
    assert [(f.value, f.met) for f in write_rto] == [(31.5, False), (4.2, True)]
    read_rto = dict((label, cells) for label, _, cells in figures)["Read RTO"]
    assert read_rto[1].value is None
    html = response.content.decode()
    assert '31.5 s <span class="status status-fail">missed</span>' in html and "not observed" in html
    assert "Durability config: DescribeConfigs missing" in html
    for bad in ({"clusters": [current.cluster_id]}, {"clusters": ["x"]}, {"clusters": list(range(1, 7))}):
        refused = user_client.get(url, bad)
        assert refused.status_code == 200 and refused.context["comparison"] is None
    one = user_client.get(url, {"clusters": [current.cluster_id]}).content.decode()
    assert "Choose two to four clusters (1 chosen)" in one


def test_trends_are_downsampled_in_the_database_and_drawn_from_local_plotly(user_client, django_assert_max_num_queries):
    from drills.models import DrillRun
    from scorecard.models import ReadinessSample
    from scorecard.trends import readiness_sample_all

    scorecard = register()
    write = check_of(scorecard, "ack_write")
    for i in range(60):  # 60 probes in the last few hours: at most one point per hour is drawn
        evidence_append(check=write, status="PASS", summary="ok", measurements={"produce_ms_p99": i}, collected_by="t")
    figures = {"write_rto_s": 5.1, "read_rto_s": None}
    DrillRun.objects.create(cluster=scorecard.cluster, scenario="zone_loss", state="done", outcome="passed",
                            requested_by="t", finished_at=timezone.now(), figures=figures)  # fmt: skip
    assert readiness_sample_all() == 1 and ReadinessSample.objects.get().proven == 0
    url = reverse("scorecard-trends", args=[scorecard.cluster_id])
    with django_assert_max_num_queries(16):
        response = user_client.get(url, {"days": "7"})
    charts = {chart.key: chart for chart in response.context["charts"]}
    (p99,) = charts["produce_p99"].series
    assert len(p99.x) <= 2 and max(p99.y) == 59  # the worst per hour
    (zone,) = charts["write_rto"].series
    assert zone.name == "Zone loss" and zone.y == [5.1]
    assert charts["read_rto"].series[0].y == [None]  # not observed: a gap, never 0
    assert charts["readiness"].series[0].y == [0]
    html = response.content.decode()
    assert "/static/vendor/plotly.min.js" in html and "/static/js/trends.js" in html and 'id="trend-data"' in html
    assert user_client.get(url, {"days": "100000"}).context["days"] == 30


def test_hostile_query_strings_are_ignored_not_errors(user_client):
    scorecard = register()
    row = scorecard.rows.first()
    for url, query in (
        (reverse("scorecard-row-evidence", args=[row.pk]), {"before": "²"}),
        (reverse("scorecard-trends", args=[scorecard.cluster_id]), {"days": "²"}),
        (reverse("scorecard-trends", args=[scorecard.cluster_id]), {"days": "9" * 30}),
        (reverse("scorecard-compare"), {"clusters": ["9" * 25, str(scorecard.cluster_id)]}),
        (reverse("scorecard-compare"), {"clusters": ["²", "-1"]}),
        (reverse("scorecard-index"), {"status": "\x00", "tag": "x" * 5000}),
    ):
        assert user_client.get(url, query).status_code == 200, (url, query)


def test_trends_leave_unmeasured_values_out_and_figures_come_from_measured_drills(user_client):
    from drills.models import DrillRun
    from scorecard.selectors import last_drills
    from scorecard.trends import trends

    scorecard = register()
    write = check_of(scorecard, "ack_write")
    for value in (None, 7.5):  # a probe that acknowledged nothing has no p99: not a 0 ms point
        evidence_append(check=write, status="FAIL", summary="x", measurements={"produce_ms_p99": value},
                        collected_by="t")  # fmt: skip
    (p99,) = next(c for c in trends(scorecard=scorecard, days=1) if c.key == "produce_p99").series
    assert p99.y == [7.5]
    measured = DrillRun.objects.create(cluster=scorecard.cluster, scenario="broker_loss", state="done",
                                       outcome="passed", requested_by="t", figures={"write_rto_s": 3.0},
                                       finished_at=timezone.now() - timedelta(hours=1))  # fmt: skip
    DrillRun.objects.create(cluster=scorecard.cluster, scenario="broker_loss", state="done", outcome="refused",
                            requested_by="t", finished_at=timezone.now())  # fmt: skip
    assert [run.pk for run in last_drills([scorecard.cluster_id])[scorecard.cluster_id]] == [measured.pk]


def test_a_ca_certificate_must_parse_and_its_subject_and_expiry_are_shown(user_client):
    from tests.factories import ca_pem

    good, expired = ca_pem("Payments Root CA", days=400), ca_pem("Old Root CA", days=-3)
    garbage = "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----"
    refused = user_client.post(
        reverse("scorecard-cluster-new"), valid_form(ssl_ca_pem=garbage, security_protocol="SSL")
    )
    assert "could not be read" in refused.content.decode() and not Cluster.objects.exists()
    user_client.post(reverse("scorecard-cluster-new"), valid_form(ssl_ca_pem=good + expired, security_protocol="SSL"))
    cluster = Cluster.objects.get()
    page = user_client.get(reverse("scorecard-detail", args=[cluster.pk])).content.decode()
    assert "CA certificate: CN=Payments Root CA; expires" in page and "(in 399 days)" in page
    assert "CN=Old Root CA; EXPIRED on" in page
    edit = user_client.get(reverse("scorecard-cluster-edit", args=[cluster.pk])).content.decode()
    assert "Stored: CN=Payments Root CA" in edit
