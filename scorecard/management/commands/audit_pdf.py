"""The audit PDF from the command line: the same document the scorecard page gives."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from scorecard.models import Scorecard
from scorecard.report import audit_pdf


def parse_moment(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date: use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Write the audit PDF of one or more scorecards over a period."

    def add_arguments(self, parser):
        parser.add_argument("--cluster", action="append", default=[], help="A cluster's name (repeat for several).")
        parser.add_argument("--all", dest="every", action="store_true", help="Every scorecard.")
        parser.add_argument("--since", help="Start of the period (default: 30 days before --until).")
        parser.add_argument("--until", help="End of the period (default: now).")
        parser.add_argument("--by", default="system (manage.py audit_pdf)", help="Who the report names as its author.")
        parser.add_argument("--output", required=True, help="Where to write the PDF.")

    def handle(self, *args, cluster, every, since, until, by, output, **options):
        scorecards = Scorecard.objects.select_related("cluster").order_by("cluster__name")
        if not every:
            if not cluster:
                raise CommandError("name at least one --cluster, or --all")
            scorecards = scorecards.filter(cluster__name__in=cluster)
            missing = sorted(set(cluster) - set(scorecards.values_list("cluster__name", flat=True)))
            if missing:
                raise CommandError(f"no cluster named {', '.join(missing)}")
        end = parse_moment(until) if until else timezone.now()
        try:
            start = parse_moment(since) if since else end - timedelta(days=30)
        except OverflowError:
            raise CommandError("--until is too early for a 30-day period: give --since too") from None
        if start >= end:
            raise CommandError("--since must be before --until")
        target = Path(output)
        if not target.parent.is_dir():
            raise CommandError(f"{target.parent} is not a directory")
        try:
            pdf = audit_pdf(scorecards=list(scorecards), since=start, until=end, generated_by=by)
        except (ImportError, OSError) as exc:  # WeasyPrint without Pango, fonts or the like
            raise CommandError(
                f"the PDF could not be rendered ({exc}): run scripts/ensure-system-packages pdf"
            ) from None
        try:
            target.write_bytes(pdf)
        except OSError as exc:
            raise CommandError(f"could not write {target}: {exc.strerror}") from None
        self.stdout.write(self.style.SUCCESS(f"wrote {output}: {len(pdf):,} bytes"))
