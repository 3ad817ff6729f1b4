"""Teams: a cluster with a team is seen only by its members (and administrators) on every
page, action and export; a cluster without one is shared."""

import pytest
from django.urls import reverse

from drills.models import DrillRun
from scorecard.models import AuditExport, Check, Team
from tests.conftest import user_with_role
from tests.factories import register

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_teams(role_client):
    payments, search = Team.objects.create(name="payments"), Team.objects.create(name="search")
    mine = register("payments-eu", team=payments)
    theirs = register("search-eu", team=search)
    shared = register("shared")
    viewer = role_client("viewer", "pia")
    operator = role_client("operator", "oscar")
    payments.members.add(user_with_role("pia", "viewer"), user_with_role("oscar", "operator"))
    return {"mine": mine, "theirs": theirs, "shared": shared, "viewer": viewer, "operator": operator}


def test_another_teams_cluster_is_not_found_anywhere(two_teams, role_client):
    viewer, theirs = two_teams["viewer"], two_teams["theirs"]
    names = [line.view.scorecard.cluster.name for line in viewer.get(reverse("scorecard-index")).context["lines"]]
    assert names == ["payments-eu", "shared"]
    check = Check.objects.filter(row__scorecard=theirs).first()
    run = DrillRun.objects.create(cluster=theirs.cluster, scenario="broker_loss", requested_by="x", state="done")
    for url in (
        reverse("scorecard-detail", args=[theirs.cluster_id]),
        reverse("scorecard-trends", args=[theirs.cluster_id]),
        reverse("scorecard-check", args=[check.pk]),
        reverse("scorecard-row-evidence", args=[check.row_id]),
        reverse("drills-list", args=[theirs.cluster_id]),
        reverse("drills-detail", args=[run.pk]),
        reverse("drills-progress", args=[run.pk]),
    ):
        assert viewer.get(url).status_code == 404, url
    assert two_teams["operator"].post(reverse("drills-run-checks", args=[theirs.cluster_id])).status_code == 404
    compare = viewer.get(reverse("scorecard-compare"), {"clusters": [theirs.cluster_id, two_teams["mine"].cluster_id]})
    assert compare.context["comparison"] is None
    # Administrators see every team's clusters.
    assert role_client("admin", "ada").get(reverse("scorecard-detail", args=[theirs.cluster_id])).status_code == 200


def test_a_viewer_of_another_team_cannot_download_its_audit_pdf(two_teams, role_client):
    export = AuditExport.objects.create(
        requested_by="sam", since="2026-01-01T00:00Z", until="2026-02-01T00:00Z", cluster_names="search-eu",
        state="done", pdf=b"%PDF-1.7 x", sha256="0" * 64,
    )  # fmt: skip
    export.scorecards.set([two_teams["theirs"]])
    viewer = two_teams["viewer"]
    assert viewer.get(reverse("scorecard-export-download", args=[export.pk])).status_code == 404
    assert "search-eu" not in viewer.get(reverse("scorecard-exports")).content.decode()
    member = role_client("viewer", "sam")
    Team.objects.get(name="search").members.add(user_with_role("sam", "viewer"))
    assert member.get(reverse("scorecard-export-download", args=[export.pk])).status_code == 200


def test_an_audit_pdf_of_several_clusters_covers_only_clusters_one_may_see(
    two_teams, django_capture_on_commit_callbacks
):
    viewer, mine, shared, theirs = two_teams["viewer"], two_teams["mine"], two_teams["shared"], two_teams["theirs"]
    period = {"since": "2026-01-01", "until": "2026-02-01 00:00"}
    url = reverse("scorecard-exports")
    refused = viewer.post(url, {"cluster": [mine.cluster_id, theirs.cluster_id], **period})
    assert refused.status_code == 404 and not AuditExport.objects.exists()
    with django_capture_on_commit_callbacks():  # no worker here: only the request is checked
        assert viewer.post(url, {"cluster": [mine.cluster_id, shared.cluster_id], **period}).status_code == 302
    export = AuditExport.objects.get()
    assert sorted(export.scorecards.values_list("cluster__name", flat=True)) == ["payments-eu", "shared"]
    page = viewer.get(url).content.decode()
    assert 'http-equiv="refresh"' in page  # queued: the list refreshes itself


def test_a_standby_must_be_shared_or_of_the_same_team(two_teams):
    from django.core.exceptions import ValidationError

    mine = two_teams["mine"].cluster
    mine.standby = two_teams["theirs"].cluster
    with pytest.raises(ValidationError, match="another team"):
        mine.full_clean()
    mine.standby = two_teams["shared"].cluster
    mine.full_clean()
    with pytest.raises(Exception, match="protected"):
        Team.objects.get(name="search").delete()  # its clusters would become everyone's
