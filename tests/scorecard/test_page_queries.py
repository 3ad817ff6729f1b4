"""Pages make the same number of queries whatever the evidence behind them (and the overview
whatever the number of clusters): nothing on a page grows with a year of evidence."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from drills.models import DrillRun
from scorecard.evidence import evidence_append
from scorecard.models import Check
from tests.factories import register

pytestmark = pytest.mark.django_db


def fill(scorecard, links: int) -> None:
    checks = list(Check.objects.runnable().filter(row__scorecard=scorecard).select_related("row"))
    for i in range(links):
        evidence_append(check=checks[i % len(checks)], status="PASS", summary="ok", measurements={}, collected_by="w")
    DrillRun.objects.create(cluster=scorecard.cluster, scenario="broker_loss", state="done", requested_by="t")


def pages(scorecard) -> dict[str, str]:
    row = scorecard.rows.get(key="durability")
    check = Check.objects.filter(row=row).first()
    newest = scorecard.evidence.filter(row_key=row.key).order_by("-seq").values_list("seq", flat=True)
    return {
        "scorecard": reverse("scorecard-detail", args=[scorecard.cluster_id]),
        "row history": reverse("scorecard-row-evidence", args=[row.pk]),
        "row history, older page": reverse("scorecard-row-evidence", args=[row.pk]) + f"?before={newest[3]}",
        "check": reverse("scorecard-check", args=[check.pk]),
        "drills": reverse("drills-list", args=[scorecard.cluster_id]),
        "drill": reverse("drills-detail", args=[scorecard.cluster.drill_runs.first().pk]),
    }


def counts(client, urls: dict[str, str]) -> dict[str, int]:
    found = {}
    for name, url in urls.items():
        client.get(url)  # the first view of a chain walks what was never verified
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        found[name] = len(captured)
    return found


def test_page_queries_do_not_grow_with_the_evidence(role_client):
    client = role_client("viewer")
    small, large = register("small"), register("large")
    fill(small, 12)
    fill(large, 400)
    assert counts(client, pages(small)) == counts(client, pages(large))


def test_overview_queries_do_not_grow_with_clusters_or_evidence(role_client):
    client = role_client("viewer")
    url = {"overview": reverse("scorecard-index")}
    fill(register("first"), 10)
    before = counts(client, url)
    for i in range(5):
        fill(register(f"more-{i}"), 60)
    assert counts(client, url) == before
