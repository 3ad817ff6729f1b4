"""Re-encrypt every stored secret with the newest of SCORECARD_SECRET_KEYS."""

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from scorecard import secrets
from scorecard.models import Cluster


class Command(BaseCommand):
    help = (
        "Re-encrypt stored cluster secrets with the first key of SCORECARD_SECRET_KEYS. Put the new key "
        "first, keep the old one after it, run this, then remove the old key."
    )

    def handle(self, *args, **options):
        rotated = 0
        with transaction.atomic():
            for cluster in Cluster.objects.select_for_update().exclude(sasl_password_token=""):
                try:
                    cluster.sasl_password_token = secrets.rotate(cluster.sasl_password_token)
                except secrets.SecretUnreadable:
                    raise CommandError(
                        f"the secret of cluster {cluster.name!r} cannot be decrypted with any configured key: "
                        "nothing was changed"
                    ) from None
                cluster.save(update_fields=["sasl_password_token"])
                rotated += 1
        self.stdout.write(f"{rotated} secrets re-encrypted with the newest key")
