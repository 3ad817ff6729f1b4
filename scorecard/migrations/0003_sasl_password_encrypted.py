"""SASL passwords encrypted at rest: each stored password becomes a Fernet token."""

from django.db import migrations, models

from scorecard import secrets


def encrypt_passwords(apps, schema_editor):
    Cluster = apps.get_model("scorecard", "Cluster")
    for cluster in Cluster.objects.exclude(sasl_password=""):
        cluster.sasl_password_token = secrets.encrypt(cluster.sasl_password)
        cluster.save(update_fields=["sasl_password_token"])


def decrypt_passwords(apps, schema_editor):
    Cluster = apps.get_model("scorecard", "Cluster")
    for cluster in Cluster.objects.exclude(sasl_password_token=""):
        cluster.sasl_password = secrets.decrypt(cluster.sasl_password_token)
        cluster.save(update_fields=["sasl_password"])


class Migration(migrations.Migration):
    dependencies = [("scorecard", "0002_cost_model_measures_wire_bytes")]

    operations = [
        migrations.AddField(
            model_name="cluster",
            name="sasl_password_token",
            field=models.TextField(blank=True, editable=False),
        ),
        migrations.RunPython(encrypt_passwords, decrypt_passwords),
        migrations.RemoveField(model_name="cluster", name="sasl_password"),
    ]
