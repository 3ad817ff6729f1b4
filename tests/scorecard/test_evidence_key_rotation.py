"""Rotating the evidence key (docs/operations.md, Keys): every chain re-signed, or none."""

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from scorecard import evidence
from scorecard.models import AuditEvent, Evidence, Scorecard
from tests.factories import check_of, register

pytestmark = pytest.mark.django_db

OLD = "old-evidence-key-0123456789-abcdefghijklmnop"
NEW = "new-evidence-key-0123456789-abcdefghijklmnop"


def chains(settings, *names, links=3):
    settings.SCORECARD_EVIDENCE_KEY = OLD
    scorecards = []
    for name in names:
        check = check_of(register(name))
        for number in range(links):
            evidence.evidence_append(
                check=check, status="PASS", summary=f"probe {number}", measurements={"n": number}, collected_by="t"
            )
        evidence.chain_verify(scorecard=check.row.scorecard)  # moves the signed checkpoint
        scorecards.append(check.row.scorecard)
    return scorecards


def rotate(settings, monkeypatch, previous=OLD):
    settings.SCORECARD_EVIDENCE_KEY = NEW
    monkeypatch.setenv("SCORECARD_EVIDENCE_KEY_PREVIOUS", previous)
    call_command("rotate_evidence_key", "--by", "sre")


def test_rotation_re_signs_every_chain_so_it_verifies_under_the_new_key_only(settings, monkeypatch):
    prod, dr = chains(settings, "prod", "dr")
    before = dict(Evidence.objects.values_list("pk", "hash"))
    settings.SCORECARD_EVIDENCE_KEY = NEW
    assert not evidence.chain_walk(scorecard=Scorecard.objects.get(pk=prod.pk)).ok  # the new key alone fails

    rotate(settings, monkeypatch)

    for scorecard in (prod, dr):
        fresh = Scorecard.objects.get(pk=scorecard.pk)
        assert evidence.chain_walk(scorecard=fresh).ok
        assert evidence.chain_verify(scorecard=fresh).ok
        assert fresh.head_count == 3
    after = dict(Evidence.objects.values_list("pk", "hash"))
    assert after.keys() == before.keys() and all(after[pk] != before[pk] for pk in before)
    # New evidence continues the re-signed chain.
    evidence.evidence_append(check=check_of(prod), status="FAIL", summary="after", measurements={}, collected_by="t")
    assert evidence.chain_walk(scorecard=Scorecard.objects.get(pk=prod.pk)).ok
    events = AuditEvent.objects.filter(action="evidence.rekey")
    assert events.count() == 2 and {e.actor for e in events} == {"sre"}
    settings.SCORECARD_EVIDENCE_KEY = OLD
    assert not evidence.chain_walk(scorecard=Scorecard.objects.get(pk=prod.pk)).ok


def test_a_chain_that_does_not_hold_under_the_previous_key_refuses_the_whole_rotation(settings, monkeypatch):
    prod, dr = chains(settings, "prod", "dr")
    with connection.cursor() as cursor:  # someone edits a stored measurement behind the app's back
        cursor.execute("UPDATE scorecard_evidence SET summary = 'edited' WHERE scorecard_id = %s AND seq = 2", [dr.pk])
    before = dict(Evidence.objects.values_list("pk", "hash"))
    with pytest.raises(CommandError, match=r"nothing was re-signed.*dr: evidence #2 was changed"):
        rotate(settings, monkeypatch)
    assert dict(Evidence.objects.values_list("pk", "hash")) == before  # prod untouched too
    assert not AuditEvent.objects.filter(action="evidence.rekey").exists()
    settings.SCORECARD_EVIDENCE_KEY = OLD
    assert evidence.chain_walk(scorecard=Scorecard.objects.get(pk=prod.pk)).ok


@pytest.mark.parametrize(
    "previous, message",
    [("", "SCORECARD_EVIDENCE_KEY_PREVIOUS must hold"), (NEW, "must be the new key")],
)
def test_rotation_needs_the_previous_key_apart_from_the_new_one(settings, monkeypatch, previous, message):
    chains(settings, "prod")
    with pytest.raises(CommandError, match=message):
        rotate(settings, monkeypatch, previous=previous)


def test_a_wrong_previous_key_changes_nothing(settings, monkeypatch):
    (prod,) = chains(settings, "prod")
    with pytest.raises(CommandError, match="prod: its signed head does not verify under the previous key"):
        rotate(settings, monkeypatch, previous="not-the-key-that-signed-0123456789-abcdef")
    settings.SCORECARD_EVIDENCE_KEY = OLD
    assert evidence.chain_walk(scorecard=Scorecard.objects.get(pk=prod.pk)).ok


@pytest.mark.parametrize("fallbacks, status", [([OLD], 200), ([], 302)])
def test_a_session_signed_with_the_previous_secret_key_stays_valid_while_it_is_a_fallback(
    settings, client, fallbacks, status
):
    """SECRET_KEY rotation: the old key in SECRET_KEY_FALLBACKS keeps people logged in."""
    from tests.conftest import user_with_role

    settings.SECRET_KEY = OLD
    client.force_login(user_with_role("olga", "viewer"))
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = NEW, fallbacks
    assert client.get("/").status_code == status  # 302: to the login page


def test_a_restored_older_head_refuses_the_rotation(settings, monkeypatch):
    """A break chain_walk reports: re-signing must not carry it under the new key."""
    (prod,) = chains(settings, "prod", links=5)
    older = {"head_count": 3}
    older["head_hash"] = Evidence.objects.get(scorecard=prod, seq=3).hash
    older["head_signature"] = evidence._signature("head", prod.pk, 3, older["head_hash"], OLD)
    with connection.cursor() as cursor:  # the tail deleted and an older, validly signed head put back
        cursor.execute("DELETE FROM scorecard_evidence WHERE scorecard_id = %s AND seq > 3", [prod.pk])
    Scorecard.objects.filter(pk=prod.pk).update(**older)
    before = dict(Evidence.objects.values_list("pk", "hash"))
    with pytest.raises(CommandError, match="prod: the signed head vouches for 3 evidence items but 5 were"):
        rotate(settings, monkeypatch)
    assert dict(Evidence.objects.values_list("pk", "hash")) == before


def test_a_break_stored_by_a_page_seen_with_the_new_key_too_early_does_not_block_the_rotation(settings, monkeypatch):
    """Found in a production trial: verify_chains run with the new key before rotating marked
    every chain broken. The rotation walks each chain in full under the old key and clears it."""
    (prod,) = chains(settings, "prod")
    settings.SCORECARD_EVIDENCE_KEY = NEW
    assert not evidence.chain_walk(scorecard=Scorecard.objects.get(pk=prod.pk)).ok
    assert Scorecard.objects.get(pk=prod.pk).broken_reason
    rotate(settings, monkeypatch)
    fresh = Scorecard.objects.get(pk=prod.pk)
    assert fresh.broken_reason == "" and evidence.chain_verify(scorecard=fresh).ok
