"""Assign roles from the command line: `manage.py roles give alice operator --create`."""

from django.core.management.base import BaseCommand, CommandError

from scorecard import audit, roles


class Command(BaseCommand):
    help = "List, give or take roles (viewer, operator, drill approver, admin)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="Every user with their roles.")
        for name in ("give", "take"):
            p = sub.add_parser(name, help=f"{name.capitalize()} a role.")
            p.add_argument("username")
            p.add_argument("role", choices=roles.Role.values)
            p.add_argument("--by", default="", help="Who is acting, for the audit trail (default: system).")
            if name == "give":
                p.add_argument("--create", action="store_true", help="Create the user (no usable password).")

    def handle(self, *args, action, **options):
        from django.contrib.auth import get_user_model

        if action == "list":
            for user in get_user_model().objects.order_by("username").prefetch_related("groups"):
                names = ", ".join(roles.user_roles(user)) or "no role"
                flags = " (superuser)" if user.is_superuser else ""
                self.stdout.write(f"{user.username}: {names}{flags}")
            return
        with audit.acting_as(options["by"] or f"{audit.SYSTEM} (manage.py roles)"):
            try:
                if action == "give":
                    user, created = roles.role_assign(
                        username=options["username"], role=options["role"], create=options["create"]
                    )
                    made = " (created; set a password with manage.py changepassword)" if created else ""
                    self.stdout.write(self.style.SUCCESS(f"{user.username} is now {options['role']}{made}"))
                else:
                    roles.role_remove(username=options["username"], role=options["role"])
                    self.stdout.write(self.style.SUCCESS(f"{options['username']} is no longer {options['role']}"))
            except ValueError as exc:
                raise CommandError(str(exc)) from None
