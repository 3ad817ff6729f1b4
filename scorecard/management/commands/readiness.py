"""The readiness gate for a deployment pipeline: exit 0 when the scorecard is ready, 1 when it
is not (the reasons on standard error), 2 on a usage error. `--json` prints the whole answer."""

import json
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from scorecard.models import Scorecard
from scorecard.readiness import readiness


class Command(BaseCommand):
    help = "Exit 0 if the cluster's scorecard is ready, 1 if not (with the reasons)."

    def add_arguments(self, parser):
        parser.add_argument("cluster", help="The cluster's name.")
        parser.add_argument("--max-age", type=int, help="Seconds: older evidence is a reason not to be ready.")
        parser.add_argument("--json", action="store_true", help="Print the whole answer as JSON.")

    def handle(self, *args, cluster, max_age, json: bool, **options):
        if max_age is not None and not 0 < max_age <= 10 * 365 * 86400:
            raise CommandError("--max-age must be a positive number of seconds")
        scorecard = Scorecard.objects.select_related("cluster").filter(cluster__name=cluster).first()
        if scorecard is None:
            raise CommandError(f"no cluster named {cluster!r}")
        answer = readiness(scorecard=scorecard, max_age=timedelta(seconds=max_age) if max_age else None)
        if json:
            self.stdout.write(dumps(answer))
        else:
            self.stdout.write(
                f"{cluster}: {'READY' if answer['ready'] else 'NOT READY'}, {answer['proven']} of 5 rows proven"
            )
        for reason in answer["reasons"]:
            self.stderr.write(reason)
        if not answer["ready"]:
            raise SystemExit(1)


def dumps(answer: dict) -> str:
    return json.dumps(answer, indent=2, sort_keys=True)
