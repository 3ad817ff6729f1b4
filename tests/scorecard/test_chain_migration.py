"""Migration 0005 moves existing chains to the keyed hash only after verifying them with the
unkeyed hash they were written with: a chain that did not hold before the upgrade stays broken."""

import hashlib
import json
from datetime import UTC

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from scorecard import evidence

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("scorecard", "0003_sasl_password_encrypted"), ("drills", "0002_drill_outcomes_inconclusive_refused")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


def old_chain(apps, name: str, links: int):
    """A scorecard as the previous release wrote it: unkeyed SHA-256 links."""
    Cluster, Scorecard = apps.get_model("scorecard", "Cluster"), apps.get_model("scorecard", "Scorecard")
    Row, Check, Evidence = (apps.get_model("scorecard", m) for m in ("Row", "Check", "Evidence"))
    scorecard = Scorecard.objects.create(cluster=Cluster.objects.create(name=name, bootstrap_servers="h:1"))
    check = Check.objects.create(row=Row.objects.create(scorecard=scorecard, key="metadata"), kind="cluster_health")
    prev = "0" * 64
    for seq in range(1, links + 1):
        item = Evidence(scorecard=scorecard, seq=seq, check_obj=check, row_key="metadata", status="PASS",
                        summary=f"link {seq}", measurements={"seq": seq}, collected_by="w",
                        collected_at=timezone.now(), prev_hash=prev)  # fmt: skip
        payload = {
            "scorecard": scorecard.pk, "seq": seq, "check": check.pk, "run": None, "row": "metadata",
            "status": "PASS", "summary": f"link {seq}", "measurements": {"seq": seq}, "collected_by": "w",
            "collected_at": item.collected_at.astimezone(UTC).isoformat(timespec="microseconds"),
        }  # fmt: skip
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        item.hash = hashlib.sha256((canonical + prev).encode()).hexdigest()
        item.save()
        prev = item.hash
    return scorecard.pk


def test_upgrading_keeps_a_whole_chain_whole_and_a_tampered_one_broken():
    old = migrate(BEFORE)
    whole, tampered, gapped = old_chain(old, "whole", 4), old_chain(old, "tampered", 4), old_chain(old, "gapped", 4)
    Evidence = old.get_model("scorecard", "Evidence")
    Evidence.objects.filter(scorecard_id=tampered, seq=2).update(status="FAIL")
    Evidence.objects.filter(scorecard_id=gapped, seq=3).delete()
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    from scorecard.models import Scorecard

    assert evidence.chain_walk(scorecard=Scorecard.objects.get(pk=whole)).ok
    result = evidence.chain_verify(scorecard=Scorecard.objects.get(pk=tampered))
    assert result.reason == "before the upgrade to keyed hashes, evidence #2 did not hold"
    # The scheduled full walk finds the re-keyed links consistent, and keeps the break.
    assert evidence.chain_walk(scorecard=Scorecard.objects.get(pk=tampered)).reason == result.reason
    result = evidence.chain_walk(scorecard=Scorecard.objects.get(pk=gapped))
    assert not result.ok and "#3" in result.reason
