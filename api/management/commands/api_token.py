"""API tokens from the shell: `api_token create --user NAME --name NAME [--days N]` prints the
token once; `api_token revoke PREFIX`; `api_token list [--user NAME]`."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api.models import ApiToken
from api.tokens import token_create, token_revoke
from scorecard import audit


class Command(BaseCommand):
    help = "Make, revoke and list API tokens (for the REST API and /metrics)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="Make a token; it is printed once.")
        create.add_argument("--user", required=True, help="Whose token: it acts with this user's roles.")
        create.add_argument("--name", required=True, help="What will use it, e.g. 'prometheus'.")
        create.add_argument("--days", type=int, help="Expiry in days (1-731); default: until revoked.")
        revoke = sub.add_parser("revoke", help="Revoke a token by the part after rrs_ (its prefix).")
        revoke.add_argument("prefix")
        listing = sub.add_parser("list", help="List tokens (never the tokens themselves).")
        listing.add_argument("--user")

    def handle(self, *args, action: str, **options):
        system = _System()
        with audit.acting_as(system.get_username()):
            if action == "create":
                user = get_user_model().objects.filter(username=options["user"], is_active=True).first()
                if user is None:
                    raise CommandError(f"no active user {options['user']!r}")
                try:
                    _, token = token_create(actor=system, owner=user, name=options["name"], days=options["days"])
                except ValidationError as exc:
                    raise CommandError(" ".join(exc.messages)) from None
                self.stdout.write(token)
            elif action == "revoke":
                # The prefix as `list` prints it (rrs_1a2b3c4d_…), or the whole token: never echoed.
                prefix = options["prefix"].removeprefix("rrs_").split("_")[0]
                token = ApiToken.objects.filter(prefix=prefix[:16]).first() if prefix.isalnum() else None
                if token is None:
                    raise CommandError("no token with that prefix (manage.py api_token list shows them)")
                token_revoke(actor=system, token=token)
                self.stdout.write(f"revoked {token}")
            else:
                tokens = ApiToken.objects.select_related("user")
                if options["user"]:
                    tokens = tokens.filter(user__username=options["user"])
                for t in tokens:
                    state = "revoked" if t.revoked_at else "active" if t.active else "expired"
                    self.stdout.write(f"rrs_{t.prefix}_…  {t.user.get_username():<20} {t.name:<30} {state}")


class _System:
    """The shell acts with full rights, named in the audit trail like other commands."""

    pk = None
    is_authenticated = True
    is_active = True

    def get_username(self) -> str:
        return f"{audit.SYSTEM} (manage.py api_token)"

    def has_perm(self, perm: str) -> bool:
        return True
