"""Tampering behind the application's back (SQL, bypassing the ORM) is reported with the
right words, rows say their evidence is untrusted, and the scorecard is not ready."""

import hashlib
import json

import pytest
from django.db import connection
from django.urls import reverse

from scorecard import evidence, selectors
from scorecard.models import Check, Scorecard
from tests.factories import register

pytestmark = pytest.mark.django_db


@pytest.fixture
def chained():
    """A scorecard whose five rows all PASS on five links, signed off: READY."""
    from django.contrib.auth import get_user_model

    from scorecard import services
    from tests.conftest import user_with_role

    owner = user_with_role("olga", "operator")
    scorecard = register()
    scorecard.rows.update(owner_user=owner)
    for check in Check.objects.runnable().filter(row__scorecard=scorecard).select_related("row"):
        evidence.evidence_append(check=check, status="PASS", summary="ok", measurements={"n": 1}, collected_by="w")
    (view,) = selectors.scorecard_views(scorecards=[scorecard])
    for row_view in view.rows:
        services.row_sign_off(row=row_view.row, user=get_user_model().objects.get(username="olga"), comment="ok",
                              status=row_view.status)  # fmt: skip
    (view,) = selectors.scorecard_views(scorecards=[scorecard])
    assert view.ready and evidence.chain_verify(scorecard=scorecard).ok
    return scorecard


def sql(statement: str, *params) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


def page(client, scorecard) -> str:
    return client.get(reverse("scorecard-detail", args=[scorecard.cluster_id])).content.decode()


def assert_untrusted(client, scorecard, words: str) -> None:
    html = page(client, scorecard)
    assert "BROKEN" in html and words.lower() in html.lower()
    assert "NOT READY" in html and html.count("UNTRUSTED") == 5
    (view,) = selectors.scorecard_views(scorecards=[scorecard])
    assert not view.ready and view.proven == 0 and not any(r.trusted for r in view.rows)
    listing = client.get(reverse("scorecard-index")).content.decode()
    assert "not ready" in listing and "evidence chain BROKEN" in listing


def test_a_deleted_tail_is_reported_naming_what_is_missing(chained, user_client):
    count = chained.evidence.count()
    sql("DELETE FROM scorecard_evidence WHERE scorecard_id = %s AND seq > %s", chained.pk, count - 2)
    result = evidence.chain_verify(scorecard=chained)
    assert not result.ok and result.broken_seq == count - 1
    assert result.reason == (
        f"the newest evidence #{count - 1} to #{count} is missing (deleted tail; the signed head vouches for {count})"
    )
    assert_untrusted(user_client, chained, "deleted tail")


def test_all_evidence_deleted_is_reported(chained, user_client):
    count = chained.evidence.count()
    sql("DELETE FROM scorecard_evidence WHERE scorecard_id = %s", chained.pk)
    result = evidence.chain_verify(scorecard=chained)
    assert result.reason == f"all {count} evidence items are missing (the signed head vouches for #1 to #{count})"
    assert_untrusted(user_client, chained, f"all {count} evidence items are missing")
    # The appends that follow continue the signed chain: the gap stays visible.
    check = Check.objects.runnable().filter(row__scorecard=chained).first()
    new = evidence.evidence_append(check=check, status="PASS", summary="ok", measurements={}, collected_by="w")
    assert new.seq == count + 1
    assert not evidence.chain_walk(scorecard=chained).ok


def test_a_chain_recomputed_without_the_key_is_reported(chained, user_client):
    """The attacker edits a summary and recomputes every hash with an unkeyed SHA-256, the way
    the application used to: the keyed walk and the signed head both disagree."""
    sql("UPDATE scorecard_evidence SET status = 'PASS', summary = 'rewritten' WHERE scorecard_id = %s", chained.pk)
    prev = evidence.GENESIS_HASH
    for item in chained.evidence.order_by("seq"):
        payload = json.dumps(evidence.evidence_payload(item), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256((payload + prev).encode()).hexdigest()
        sql("UPDATE scorecard_evidence SET prev_hash = %s, hash = %s WHERE id = %s", prev, digest, item.pk)
        prev = digest
    # The page's verification: the link it last verified no longer holds.
    quick = evidence.chain_verify(scorecard=chained)
    assert not quick.ok and "was changed after it was verified" in quick.reason
    walked = evidence.chain_walk(scorecard=chained)
    assert (
        not walked.ok
        and walked.broken_seq == 1
        and walked.reason == ("evidence #1 was changed or re-hashed after it was recorded")
    )
    assert_untrusted(user_client, chained, "evidence #1 was changed or re-hashed")


def test_a_forged_head_is_reported(chained):
    count = chained.evidence.count()
    sql("DELETE FROM scorecard_evidence WHERE scorecard_id = %s AND seq = %s", chained.pk, count)
    last = chained.evidence.order_by("-seq").first()
    sql(
        "UPDATE scorecard_scorecard SET head_count = %s, head_hash = %s WHERE id = %s", count - 1, last.hash, chained.pk
    )
    result = evidence.chain_verify(scorecard=chained)
    assert not result.ok and "signed head of the chain was altered" in result.reason


def test_pages_verify_only_new_links_and_the_scheduled_walk_finds_older_changes(chained):
    """A link changed after it was verified is found by the full walk (beat), not by pages."""
    sql("UPDATE scorecard_evidence SET summary = 'edited' WHERE scorecard_id = %s AND seq = 2", chained.pk)
    check = Check.objects.runnable().filter(row__scorecard=chained).first()
    for _ in range(3):
        evidence.evidence_append(check=check, status="PASS", summary="ok", measurements={}, collected_by="w")
    assert evidence.chain_verify(scorecard=chained).ok  # walks the three new links only
    scorecard = Scorecard.objects.get(pk=chained.pk)
    assert scorecard.verified_count == scorecard.head_count == chained.evidence.count()
    assert evidence.chain_walk_all() == {"whole": 0, "broken": 1}
    # The break is kept: every page says so until a full walk finds the chain whole again.
    result = evidence.chain_verify(scorecard=chained)
    assert not result.ok and result.reason == "evidence #2 was changed or re-hashed after it was recorded"
    (view,) = selectors.scorecard_views(scorecards=[chained])
    assert not view.chain.ok and not view.ready


def test_the_task_beat_sends_walks_every_chain_and_records_when(chained):
    from scorecard.tasks import walk_chains

    assert walk_chains() == {"whole": 1, "broken": 0}
    assert Scorecard.objects.get(pk=chained.pk).walked_at is not None


def test_an_older_signed_head_put_back_after_deleting_the_tail_is_reported(chained):
    """A backup's head is validly signed; the checkpoint, which only moves forward, is not fooled."""
    old = Scorecard.objects.get(pk=chained.pk)
    check = Check.objects.runnable().filter(row__scorecard=chained).first()
    for _ in range(2):
        evidence.evidence_append(check=check, status="PASS", summary="ok", measurements={}, collected_by="w")
    assert evidence.chain_verify(scorecard=chained).ok
    sql("DELETE FROM scorecard_evidence WHERE scorecard_id = %s AND seq > %s", chained.pk, old.head_count)
    sql(
        "UPDATE scorecard_scorecard SET head_count = %s, head_hash = %s, head_signature = %s WHERE id = %s",
        old.head_count, old.head_hash, old.head_signature, chained.pk,
    )  # fmt: skip
    for result in (evidence.chain_verify(scorecard=chained), evidence.chain_walk(scorecard=chained)):
        assert not result.ok and "an older head was restored" in result.reason
    assert Scorecard.objects.get(pk=chained.pk).verified_count == old.head_count + 2
