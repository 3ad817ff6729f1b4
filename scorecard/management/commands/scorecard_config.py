"""The scorecard as code from a shell or CI (docs/config-as-code.md).

    scorecard_config export NAME [-o FILE]
    scorecard_config import FILE [--cluster NAME] --by USERNAME [--apply] [--sasl-password-env VAR]
                                 [--expect-digest DIGEST]

Exit codes: 0 done (export written; import diff printed, or applied); 1 refused (the YAML has
errors, the user's roles refuse a change, an unknown cluster or user: nothing was applied);
2 a usage error (argparse).
"""

import os
import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from scorecard.config_code import MAX_BYTES, ConfigError, ConfigStale, Plan, config_apply, config_export, config_plan
from scorecard.models import Cluster, Scorecard
from scorecard.validators import SASL_PASSWORD_MAX


class Command(BaseCommand):
    help = "Export a cluster's scorecard as YAML, or import YAML (a diff, or applied with --apply)."

    def add_arguments(self, parser):
        commands = parser.add_subparsers(dest="action", required=True)
        export = commands.add_parser("export", help="Print (or write) the cluster's scorecard as YAML.")
        export.add_argument("cluster", help="The cluster's name.")
        export.add_argument("-o", "--output", help="Write to this file instead of standard output.")
        load = commands.add_parser("import", help="Show the changes the YAML makes; --apply makes them.")
        load.add_argument("file", help="The YAML file ('-' for standard input).")
        load.add_argument("--cluster", help="The cluster to import into; the YAML must name it.")
        load.add_argument("--by", required=True, help="The user the import acts as (their roles apply).")
        load.add_argument("--apply", action="store_true", help="Apply the changes (all or nothing).")
        load.add_argument(
            "--sasl-password-env", metavar="VAR", help="Take the SASL password from this environment variable."
        )
        load.add_argument(
            "--expect-digest",
            metavar="DIGEST",
            help="Refuse unless the diff's digest is this one (printed with the diff: the one that was reviewed).",
        )

    def handle(self, *args, action: str, **options):
        if action == "export":
            self._export(options["cluster"], options["output"])
        else:
            self._import(**options)

    def _export(self, name: str, output: str | None) -> None:
        scorecard = Scorecard.objects.select_related("cluster").filter(cluster__name=name).first()
        if scorecard is None:
            raise CommandError(f"no cluster named {name!r}")
        text = config_export(scorecard=scorecard)
        if output is None:
            self.stdout.write(text, ending="")
            return
        try:
            with open(output, "w", encoding="utf-8") as file:
                file.write(text)
        except OSError as exc:
            raise CommandError(f"cannot write {output}: {exc.strerror}") from None
        self.stderr.write(f"wrote {output}")

    def _import(
        self,
        *,
        file: str,
        cluster: str | None,
        by: str,
        apply: bool,
        sasl_password_env: str | None,
        expect_digest: str | None,
        **_,
    ):
        user = get_user_model()._default_manager.filter(**{get_user_model().USERNAME_FIELD: by}).first()
        if user is None or not user.is_active:
            raise CommandError(f"no active user named {by!r}")
        target = None
        if cluster is not None and (target := Cluster.objects.filter(name=cluster).first()) is None:
            raise CommandError(f"no cluster named {cluster!r}")
        password = ""
        if sasl_password_env:
            password = os.environ.get(sasl_password_env, "")
            if not password:
                raise CommandError(f"the environment variable {sasl_password_env} is empty or not set")
            if len(password) > SASL_PASSWORD_MAX:
                raise CommandError(
                    f"the SASL password in {sasl_password_env} is longer than {SASL_PASSWORD_MAX} characters"
                )
        text = self._read(file)
        try:
            if apply:
                plan = config_apply(
                    text=text, user=user, cluster=target, sasl_password=password, expected_digest=expect_digest
                )
            else:
                plan = config_plan(text=text, user=user, cluster=target, sasl_password=password)
                if expect_digest is not None and plan.digest != expect_digest:
                    raise ConfigStale([(0, "the YAML or the scorecard changed since that digest was printed")])
        except ConfigError as exc:
            for line in exc.lines(file):
                self.stderr.write(line)
            raise CommandError("the YAML was refused; nothing was applied") from None
        self._print(plan, applied=apply)
        if plan.refusals:
            for line, message in plan.refusals:
                self.stderr.write(f"{file}:{line}: {message}" if line else f"{file}: {message}")
            raise CommandError(f"{len(plan.refusals)} changes refused; nothing would be applied")

    def _read(self, file: str) -> str:
        try:
            if file == "-":
                raw = sys.stdin.buffer.read(MAX_BYTES + 1)
            else:
                with open(file, "rb") as handle:
                    raw = handle.read(MAX_BYTES + 1)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc.strerror}") from None
        if len(raw) > MAX_BYTES:
            raise CommandError(f"{file}: larger than {MAX_BYTES:,} bytes")
        try:
            return raw.decode()
        except UnicodeDecodeError:
            raise CommandError(f"{file}: not UTF-8 text") from None

    def _print(self, plan: Plan, *, applied: bool) -> None:
        what = "new cluster" if plan.new else "cluster"
        verb = "applied" if applied else "to apply"
        self.stdout.write(f"{what} {plan.cluster_name}: {len(plan.changes)} changes {verb}")
        self.stdout.write(f"digest {plan.digest}")  # to apply exactly this diff later: --expect-digest
        for warning in plan.warnings:
            self.stdout.write(f"  note: {warning}")
        for change in plan.changes:
            self.stdout.write(f"  {change.path} (line {change.line}): {change.before_text} -> {change.after_text}")
