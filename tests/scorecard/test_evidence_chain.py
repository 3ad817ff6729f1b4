from datetime import timedelta

import pytest
from django.db import connection

from scorecard import evidence, selectors
from scorecard.models import Evidence, RowKey
from tests.factories import check_of, register

pytestmark = pytest.mark.django_db


def append(check, status="PASS", **measurements):
    return evidence.evidence_append(
        check=check, status=status, summary=f"{status} probe", measurements=measurements, collected_by="test"
    )


def test_registering_a_cluster_creates_its_scorecard_with_the_five_rows_and_default_checks():
    scorecard = register()
    assert sorted(scorecard.rows.values_list("key", flat=True)) == sorted(RowKey.values)
    kinds = {row.key: sorted(row.checks.values_list("kind", flat=True)) for row in scorecard.rows.all()}
    assert kinds == {
        "durability": ["ack_write", "durability_config"],
        "metadata": ["cluster_health"],
        "client_continuity": ["bootstrap_endpoints", "client_compatibility", "consumer_groups"],
        "automation": ["drill_cadence"],
        "cost": ["cost_model"],
    }


def test_registering_a_standby_adds_the_standby_parity_check():
    standby = register("dr").cluster
    scorecard = register("primary", standby=standby)
    assert scorecard.rows.get(key="client_continuity").checks.filter(kind="standby_parity").exists()


def test_it_chains_each_evidence_to_the_previous_one():
    check = check_of(register())
    first = append(check, brokers=3)
    second = append(check, "FAIL", brokers=2, ratio=0.5)
    assert first.seq == 1 and second.seq == 2
    assert first.prev_hash == evidence.GENESIS_HASH
    assert second.prev_hash == first.hash
    result = evidence.chain_verify(scorecard=check.row.scorecard)
    assert result.ok and result.count == 2 and result.head_hash == second.hash


def test_chains_are_per_scorecard():
    a, b = check_of(register("a")), check_of(register("b"))
    append(a)
    evidence_b = append(b)
    assert evidence_b.seq == 1 and evidence_b.prev_hash == evidence.GENESIS_HASH


def test_it_names_the_first_link_changed_behind_the_applications_back():
    check = check_of(register())
    for _ in range(3):
        append(check, brokers=3)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE scorecard_evidence SET status = 'PASS', summary = 'fine' WHERE seq = 2")
        cursor.execute("UPDATE scorecard_evidence SET summary = 'also edited' WHERE seq = 3")
    result = evidence.chain_verify(scorecard=check.row.scorecard)
    assert not result.ok
    assert result.broken_seq == 2
    assert "changed" in result.reason


def test_it_detects_a_changed_measurement():
    check = check_of(register())
    append(check, offline=["t[0]"])
    with connection.cursor() as cursor:
        cursor.execute("""UPDATE scorecard_evidence SET measurements = '{"offline": []}' WHERE seq = 1""")
    assert evidence.chain_verify(scorecard=check.row.scorecard).broken_seq == 1


def test_it_detects_a_deleted_link():
    check = check_of(register())
    for _ in range(3):
        append(check)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM scorecard_evidence WHERE seq = 2")
    result = evidence.chain_verify(scorecard=check.row.scorecard)
    assert not result.ok and result.broken_seq == 2 and "missing" in result.reason


def test_evidence_cannot_be_updated_or_deleted_through_the_application():
    check = check_of(register())
    evidence = append(check)
    evidence.summary = "rewritten"
    with pytest.raises(TypeError):
        evidence.save()
    with pytest.raises(TypeError):
        evidence.delete()
    with pytest.raises(TypeError):
        Evidence.objects.filter(pk=evidence.pk).update(summary="rewritten")
    with pytest.raises(TypeError):
        Evidence.objects.all().delete()


def test_it_refuses_a_derived_status_as_evidence():
    check = check_of(register())
    with pytest.raises(ValueError, match="evidence status"):
        append(check, "STALE")


def test_stale_evidence_turns_the_check_stale_without_any_probe_running():
    scorecard = register()
    check = check_of(scorecard)
    append(check)
    (view,) = selectors.scorecard_views(scorecards=[scorecard])
    metadata = next(r for r in view.rows if r.row.key == "metadata")
    assert metadata.status == "PASS"
    later = check.evidence.get().collected_at + timedelta(seconds=check.max_age_seconds + 1)
    (view,) = selectors.scorecard_views(scorecards=[scorecard], now=later)
    metadata = next(r for r in view.rows if r.row.key == "metadata")
    assert metadata.status == "STALE"


def test_a_not_applicable_check_leaves_its_row_alone_and_the_scorecard_counts_proven_rows():
    scorecard = register()
    append(check_of(scorecard))
    append(check_of(scorecard, "durability_config"))
    durability = check_of(scorecard, "ack_write")
    durability.not_applicable = True
    durability.not_applicable_reason = "no probe topic allowed"
    durability.save()
    (view,) = selectors.scorecard_views(scorecards=[scorecard])
    statuses = {r.row.key: r.status for r in view.rows}
    assert statuses == {
        "durability": "PASS",
        "metadata": "PASS",
        "client_continuity": "UNKNOWN",
        "automation": "UNKNOWN",
        "cost": "UNKNOWN",
    }
    assert view.proven == 2 and not view.ready
