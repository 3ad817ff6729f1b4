"""API tokens: made and revoked by their user or an administrator, shown once, stored as a digest.

A token reads `rrs_<prefix>_<secret>`: the prefix finds the row, the SHA-256 of the whole token
must match its digest (compared in constant time). Tokens carry 256 bits of randomness, so a
plain digest is enough (no slow password hash is needed against guessing).
"""

import hashlib
import hmac
import re
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from api.models import ApiToken
from scorecard import audit, roles

PREFIX = "rrs"
MAX_ACTIVE_PER_USER = 20
MAX_DAYS = 731
# Writing last_used_at on every request would cost a write per scrape; once a minute is enough.
USE_RECORD_INTERVAL = timedelta(seconds=60)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def printable(text: str) -> bool:
    """No control character (C0, DEL, C1) and no lone surrogate, which PostgreSQL cannot store."""
    return not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F or 0xD800 <= ord(c) <= 0xDFFF for c in text)


def may_manage(actor, owner) -> bool:
    return actor.is_authenticated and (actor.pk == owner.pk or roles.can(actor, "manage_roles"))


@transaction.atomic
def token_create(*, actor, owner=None, name: str, days: int | None = None) -> tuple[ApiToken, str]:
    """Make a token for `owner` (default: the actor); returns the row and the token, which is
    never available again."""
    owner = owner or actor
    if not may_manage(actor, owner):
        raise PermissionDenied(
            f"{actor.get_username()} may not make tokens for {owner.get_username()}: that needs the admin role."
        )
    name = (name or "").strip()
    if not name or len(name) > 100 or not printable(name):
        raise ValidationError(
            {"name": "Give the token a name of 1 to 100 printable characters, e.g. 'deploy pipeline'."}
        )
    if days is not None and not 1 <= days <= MAX_DAYS:
        raise ValidationError({"days": f"A token lives 1 to {MAX_DAYS} days, or without an expiry date."})
    owner = get_user_model().objects.select_for_update().get(pk=owner.pk)
    if ApiToken.objects.filter(user=owner, revoked_at__isnull=True).count() >= MAX_ACTIVE_PER_USER:
        raise ValidationError(
            {"name": f"{owner.get_username()} already has {MAX_ACTIVE_PER_USER} tokens; revoke one first."}
        )
    prefix = secrets.token_hex(4)
    token = f"{PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiToken.objects.create(
        user=owner, name=name, prefix=prefix, digest=_digest(token), created_by=actor.get_username(),
        expires_at=timezone.now() + timedelta(days=days) if days else None,
    )  # fmt: skip
    after = {"user": owner.get_username(), "name": name, "expires_at": audit.snapshot(row)["expires_at"]}
    label = f"{owner.get_username()}: {row}"
    audit.record("token.create", row, object_type="api token", label=label, actor=actor.get_username(), after=after)
    return row, token


@transaction.atomic
def token_revoke(*, actor, token: ApiToken) -> ApiToken:
    token = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
    if not may_manage(actor, token.user):
        raise PermissionDenied(
            f"{actor.get_username()} may not revoke {token.user.get_username()}'s tokens: that needs the admin role."
        )
    if token.revoked_at is None:
        token.revoked_at = timezone.now()
        token.revoked_by = actor.get_username()
        token.save(update_fields=["revoked_at", "revoked_by"])
        audit.record(
            "token.revoke", token, object_type="api token", label=f"{token.user.get_username()}: {token}",
            actor=actor.get_username(),
        )  # fmt: skip
    return token


def token_row(header: str | None) -> ApiToken | None:
    """The active token an `Authorization: Bearer rrs_…` header carries, with its active user."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or len(token) > 200:
        return None
    parts = token.split("_")
    if len(parts) < 3 or parts[0] != PREFIX or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        return None
    row = ApiToken.objects.select_related("user").filter(prefix=parts[1]).first()
    if row is None or not hmac.compare_digest(row.digest, _digest(token)) or not row.active:
        return None
    if not row.user.is_active:
        return None
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > USE_RECORD_INTERVAL:
        ApiToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row


def token_user(header: str | None):
    """The active user an `Authorization: Bearer rrs_…` header stands for, or None."""
    row = token_row(header)
    return row.user if row is not None else None
