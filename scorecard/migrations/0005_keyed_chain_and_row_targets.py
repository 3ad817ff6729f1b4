"""Existing chains move to the keyed hash with a signed head; the cost model's budget
parameter becomes the cost row's typed target.

Each chain is first verified with the unkeyed hash it was written with: links keep their
numbers, and a chain that did not hold before the upgrade is marked broken, naming its first
broken link, instead of being blessed by the new key. The functions are copies, not imports,
so later changes to scorecard.evidence cannot change what this migration did.
"""

import hashlib
import hmac
import json
from datetime import UTC

from django.conf import settings
from django.db import migrations

GENESIS = "0" * 64


def _payload(item) -> dict:
    return {
        "scorecard": item.scorecard_id,
        "seq": item.seq,
        "check": item.check_obj_id,
        "run": item.run_id,
        "row": item.row_key,
        "status": item.status,
        "summary": item.summary,
        "measurements": item.measurements,
        "collected_by": item.collected_by,
        "collected_at": item.collected_at.astimezone(UTC).isoformat(timespec="microseconds"),
    }


def _canonical(item) -> str:
    return json.dumps(_payload(item), sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _mac(message: str) -> str:
    return hmac.new(settings.SCORECARD_EVIDENCE_KEY.encode(), message.encode(), hashlib.sha256).hexdigest()


def rekey_chains(apps, schema_editor):
    Scorecard = apps.get_model("scorecard", "Scorecard")
    Evidence = apps.get_model("scorecard", "Evidence")
    for scorecard in Scorecard.objects.all():
        old_prev, new_prev, expected, broken = GENESIS, GENESIS, 1, ""
        for item in Evidence.objects.filter(scorecard=scorecard).order_by("seq"):
            if not broken:
                if item.seq != expected:
                    broken = f"before the upgrade to keyed hashes, evidence #{expected} was missing"
                elif item.prev_hash != old_prev or hashlib.sha256(
                    (_canonical(item) + old_prev).encode()
                ).hexdigest() != item.hash:
                    broken = f"before the upgrade to keyed hashes, evidence #{item.seq} did not hold"
            old_prev, expected = item.hash, item.seq + 1
            new_hash = _mac(_canonical(item) + new_prev)
            Evidence.objects.filter(pk=item.pk).update(prev_hash=new_prev, hash=new_hash)
            new_prev = new_hash
        count = expected - 1
        scorecard.head_count, scorecard.head_hash = count, new_prev
        scorecard.head_signature = _mac(f"head\x1f{scorecard.pk}\x1f{count}\x1f{new_prev}")
        if broken:
            scorecard.broken_reason = broken
            scorecard.verified_count, scorecard.verified_hash = 0, GENESIS
        else:
            scorecard.verified_count, scorecard.verified_hash = count, new_prev
        scorecard.verified_signature = _mac(
            f"checkpoint\x1f{scorecard.pk}\x1f{scorecard.verified_count}\x1f{scorecard.verified_hash}"
        )
        scorecard.save()


def budget_to_target(apps, schema_editor):
    Check = apps.get_model("scorecard", "Check")
    for check in Check.objects.filter(kind="cost_model").select_related("row"):
        budget = check.params.pop("monthly_budget", None)
        if budget is not None:
            row = check.row
            row.targets = {**row.targets, "default": {**row.targets.get("default", {}), "monthly_budget_usd": budget}}
            row.save(update_fields=["targets"])
            check.save(update_fields=["params"])


class Migration(migrations.Migration):
    dependencies = [("scorecard", "0004_governance")]

    operations = [
        migrations.RunPython(rekey_chains, migrations.RunPython.noop),
        migrations.RunPython(budget_to_target, migrations.RunPython.noop),
    ]
