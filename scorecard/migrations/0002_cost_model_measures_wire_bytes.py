"""The cost model measures bytes on the wire; its `records_per_batch` estimate parameter is gone."""

from django.db import migrations


def drop_records_per_batch(apps, schema_editor):
    Check = apps.get_model("scorecard", "Check")
    for check in Check.objects.filter(kind="cost_model", params__has_key="records_per_batch"):
        check.params.pop("records_per_batch")
        check.save(update_fields=["params"])


class Migration(migrations.Migration):
    dependencies = [("scorecard", "0001_initial")]

    operations = [migrations.RunPython(drop_records_per_batch, migrations.RunPython.noop)]
