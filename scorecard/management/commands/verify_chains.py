"""Walk every evidence chain in full: after a restore, an upgrade or a key change."""

from django.core.management.base import BaseCommand, CommandError

from scorecard.evidence import chain_walk
from scorecard.models import Scorecard


class Command(BaseCommand):
    help = "Walk every scorecard's evidence chain from its first link; exit 1 if any does not hold."

    def handle(self, *args, **options):
        broken = 0
        for scorecard in Scorecard.objects.select_related("cluster").order_by("cluster__name").iterator():
            result = chain_walk(scorecard=scorecard)
            if result.ok:
                self.stdout.write(f"{scorecard.cluster.name}: whole, {result.count} links, head {result.head_hash}")
            else:
                broken += 1
                self.stdout.write(f"{scorecard.cluster.name}: BROKEN: {result.reason}")
        if broken:
            raise CommandError(f"{broken} evidence chains do not hold")
