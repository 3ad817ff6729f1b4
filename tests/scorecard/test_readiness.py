"""The readiness gate (issue 12, part 2): the command's exit code and reasons follow the
scorecard page for ready, not ready, stale and broken-chain scorecards."""

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from scorecard.evidence import evidence_append
from scorecard.models import Check
from tests.factories import ready_scorecard

pytestmark = pytest.mark.django_db


def gate(*arguments) -> tuple[int, dict]:
    out = io.StringIO()
    try:
        call_command("readiness", *arguments, "--json", stdout=out, stderr=io.StringIO())
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    return code, json.loads(out.getvalue())


@pytest.fixture
def ready():
    return ready_scorecard("prod")


def page_says_ready(client, scorecard) -> bool:
    return "NOT READY" not in client.get(reverse("scorecard-detail", args=[scorecard.cluster_id])).content.decode()


def test_the_gate_agrees_with_the_page_for_ready_not_ready_and_a_broken_chain(ready, user_client):
    code, answer = gate("prod")
    assert code == 0 and answer["ready"] and answer["proven"] == 5 and page_says_ready(user_client, ready)
    health = Check.objects.get(row__scorecard=ready, kind="cluster_health")
    evidence_append(check=health, status="FAIL", summary="leaderless", measurements={}, collected_by="celery@w")
    code, answer = gate("prod")
    assert code == 1 and not answer["ready"] and not page_says_ready(user_client, ready)
    assert "Metadata recovery: status FAIL" in answer["reasons"]
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM scorecard_evidence WHERE scorecard_id = %s AND seq = 3", [ready.pk])
    from scorecard.evidence import chain_walk

    chain_walk(scorecard=ready)  # as beat's hourly walk would
    code, answer = gate("prod")
    assert code == 1 and not answer["chain"]["ok"] and answer["reasons"][0].startswith("evidence chain broken")
    assert not page_says_ready(user_client, ready)


def test_max_age_makes_old_evidence_a_reason(ready):
    from django.utils import timezone

    from scorecard.readiness import readiness

    ten_minutes_on = timezone.now() + timedelta(minutes=10)
    assert readiness(scorecard=ready, max_age=timedelta(hours=1), now=ten_minutes_on)["ready"]
    stale = readiness(scorecard=ready, max_age=timedelta(minutes=1), now=ten_minutes_on)
    assert not stale["ready"] and any("s old (max 60 s)" in reason for reason in stale["reasons"])


@pytest.mark.parametrize(("arguments", "message"), [(["prod", "--max-age", "0"], "positive"), (["nope"], "no cluster")])
def test_the_gate_refuses_bad_arguments(ready, arguments, message):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match=message):
        call_command("readiness", *arguments, stdout=io.StringIO())
