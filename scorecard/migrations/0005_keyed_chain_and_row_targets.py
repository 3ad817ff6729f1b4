"""Existing chains re-linked with the keyed hash and given a signed head; the cost model's
budget parameter becomes the cost row's typed target."""

from django.db import migrations


def rekey_chains(apps, schema_editor):
    from scorecard import evidence as chain

    Scorecard = apps.get_model("scorecard", "Scorecard")
    Evidence = apps.get_model("scorecard", "Evidence")
    for scorecard in Scorecard.objects.all():
        prev_hash = chain.GENESIS_HASH
        count = 0
        for item in Evidence.objects.filter(scorecard=scorecard).order_by("seq"):
            count += 1
            item.seq, item.prev_hash = count, prev_hash
            item.hash = chain.evidence_hash(chain.evidence_payload(item), prev_hash)
            Evidence.objects.filter(pk=item.pk).update(seq=item.seq, prev_hash=item.prev_hash, hash=item.hash)
            prev_hash = item.hash
        scorecard.head_count = scorecard.verified_count = count
        scorecard.head_hash = scorecard.verified_hash = prev_hash
        scorecard.head_signature = chain._signature("head", scorecard.pk, count, prev_hash)
        scorecard.verified_signature = chain._signature("checkpoint", scorecard.pk, count, prev_hash)
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
