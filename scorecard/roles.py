"""Roles (DESIGN.md section 6), built on Django's groups and permissions.

The permissions are declared on Scorecard.Meta. Each role is a group holding those in GRANTS,
and a role includes everything the roles before it may do. Every page checks them on the
server, workers check them again when they pick up work a person asked for, and the services
hold the rules that depend on the object (a row's owner, a drill's requester, the person who
asked for NOT APPLICABLE): hiding a button is never the only protection.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group, Permission
from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import Q


class Role(models.TextChoices):
    VIEWER = "viewer", "viewer"
    OPERATOR = "operator", "operator"
    APPROVER = "drill approver", "drill approver"
    ADMIN = "admin", "admin"


GRANTS: dict[str, tuple[str, ...]] = {
    Role.VIEWER: ("read",),
    Role.OPERATOR: ("run_checks", "edit_checks", "edit_own_rows", "start_drills"),
    Role.APPROVER: ("approve_drills", "approve_not_applicable"),
    Role.ADMIN: ("manage_clusters", "manage_roles"),
}
# Django's own permissions the admin role needs to assign roles in the admin site.
ADMIN_AUTH_PERMISSIONS = ("view_user", "change_user", "add_user", "view_group")


def role_permissions(role: str) -> list[str]:
    """Every codename the role holds: its own and those of the roles before it."""
    roles = list(Role.values)
    return [codename for r in roles[: roles.index(role) + 1] for codename in GRANTS[r]]


def groups_sync(**_) -> None:
    """Create the four groups with their permissions (run after every migrate)."""
    for role in Role.values:
        group, _ = Group.objects.get_or_create(name=role)
        perms = Permission.objects.filter(content_type__app_label="scorecard", codename__in=role_permissions(role))
        if role == Role.ADMIN:
            perms = perms | Permission.objects.filter(
                content_type__app_label="auth", codename__in=ADMIN_AUTH_PERMISSIONS
            )
            perms = perms | Permission.objects.filter(content_type__app_label="scorecard", codename__endswith="_team")
        group.permissions.set(perms)


def can(user: AbstractBaseUser | AnonymousUser | None, codename: str) -> bool:
    return bool(user is not None and user.is_active and user.has_perm(f"scorecard.{codename}"))


def user_may(username: str, codename: str) -> bool:
    """Whether the named user (still) holds the permission: checked again where a worker picks
    up work a person asked for, so a role taken away stops runs still queued."""
    return can(get_user_model().objects.filter(username=username).first(), codename)


def role_needed(codename: str) -> str:
    """The first role that holds a permission."""
    return next(role for role in Role.values if codename in role_permissions(role))


def require(user, codename: str, action: str = "") -> None:
    """PermissionDenied saying who was refused what, and which role it needs."""
    if can(user, codename):
        return
    from scorecard.models import Scorecard

    if not action:
        action = dict(Scorecard._meta.permissions)[codename].lower()
    name = user.get_username() if user is not None and user.is_authenticated else "anonymous"
    held = ", ".join(user_roles(user)) if user is not None and user.is_authenticated else ""
    raise PermissionDenied(
        f"{name} ({held or 'no role'}) may not {action}: that needs the {role_needed(codename)} role."
    )


def user_roles(user) -> list[str]:
    names = {group.name for group in user.groups.all()}  # uses a prefetch when there is one
    return [role for role in Role.values if role in names]


def _known(role: str) -> None:
    if role not in Role.values:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(Role.values)}")


@transaction.atomic
def role_assign(*, username: str, role: str, create: bool = False) -> tuple[AbstractBaseUser, bool]:
    """Give a user a role (creating the user when asked); returns (user, created)."""
    _known(role)
    users = get_user_model().objects
    user = users.filter(username=username).first()
    created = False
    if user is None:
        if not create:
            raise ValueError(f"no user {username!r} (use --create to make one)")
        user, created = users.create_user(username, password=None), True
    user.groups.add(Group.objects.get(name=role))  # the admin role makes the user staff (groups_changed)
    user.refresh_from_db(fields=["is_staff"])
    return user, created


@transaction.atomic
def role_remove(*, username: str, role: str) -> None:
    _known(role)
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise ValueError(f"no user {username!r}")
    user.groups.remove(Group.objects.get(name=role))


def groups_changed(sender, instance, action, pk_set, reverse, **_) -> None:
    """Audit a role given or taken, whichever way the relation was changed."""
    from scorecard import audit

    if action not in ("post_add", "post_remove", "pre_clear") or reverse:
        return
    user = instance
    if action == "pre_clear":
        names = list(user.groups.values_list("name", flat=True))
    else:
        names = list(Group.objects.filter(pk__in=pk_set or ()).values_list("name", flat=True))
    for name in names:
        verb = "role.give" if action == "post_add" else "role.take"
        audit.record(verb, user, object_type="user", label=user.get_username(), after={"role": name})
    if action != "pre_clear":
        _staff_sync(user)


def _staff_sync(user) -> None:
    """The admin site admits staff: staff exactly when holding the admin role."""
    staff = user.is_superuser or user.groups.filter(name=Role.ADMIN).exists()
    if user.is_staff != staff:
        user.is_staff = staff
        user.save(update_fields=["is_staff"])


def user_changed(sender, instance, **_) -> None:
    """Audit what changes a person's access besides roles: a new password, (de)activation,
    superuser status."""
    from scorecard import audit

    if instance.pk is None:
        return
    stored = sender.objects.filter(pk=instance.pk).values("password", "is_active", "is_superuser").first()
    if stored is None:
        return
    label = instance.get_username()
    if stored["password"] != instance.password:
        audit.record("user.password_set", instance, object_type="user", label=label, comment="password set")
    for field in ("is_active", "is_superuser"):
        if stored[field] != getattr(instance, field):
            audit.record(
                "user.update", instance, object_type="user", label=label,
                before={field: stored[field]}, after={field: getattr(instance, field)},
            )  # fmt: skip


def visible(user, path: str = "") -> Q:
    """The clusters a user may see, as a filter on `path` (the way from the queried model to
    its cluster, e.g. "row__scorecard__cluster__"): shared clusters and their teams' clusters;
    administrators see every cluster."""
    if can(user, "manage_clusters"):
        # Always true, and still a real condition: an empty Q() vanishes inside `|` and exclude().
        return Q(**{f"{path}pk__isnull": False})
    return Q(**{f"{path}team__isnull": True}) | Q(**{f"{path}team__members": user})
