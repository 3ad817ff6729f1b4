"""Re-sign every evidence chain from the previous evidence key to SCORECARD_EVIDENCE_KEY."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from scorecard.audit import acting_as
from scorecard.evidence import ChainRekeyRefused, chain_rekey

PREVIOUS_KEY_ENV = "SCORECARD_EVIDENCE_KEY_PREVIOUS"


class Command(BaseCommand):
    help = (
        "Move every evidence chain to a new key: stop the web, workers and beat; set SCORECARD_EVIDENCE_KEY to the "
        f"new key and {PREVIOUS_KEY_ENV} to the old one; run this; start everything with the new key only. Every "
        "link is checked under the old key first; if any chain does not hold, nothing is changed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--by", default="rotate_evidence_key", help="who is rotating (for the audit trail)")

    def handle(self, *args, by, **options):
        previous = os.environ.get(PREVIOUS_KEY_ENV, "")
        if not previous:
            raise CommandError(f"{PREVIOUS_KEY_ENV} must hold the evidence key the chains are signed with now")
        if previous == settings.SCORECARD_EVIDENCE_KEY:
            raise CommandError(f"SCORECARD_EVIDENCE_KEY must be the new key, different from {PREVIOUS_KEY_ENV}")
        try:
            with acting_as(by):
                totals = chain_rekey(previous_key=previous, key=settings.SCORECARD_EVIDENCE_KEY)
        except ChainRekeyRefused as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            f"{totals['links']} evidence links of {totals['scorecards']} scorecards re-signed under the new key; "
            f"start the web, workers and beat with the new key and remove {PREVIOUS_KEY_ENV}"
        )
