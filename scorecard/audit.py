"""The audit trail: who changed what, when, and the values before and after.

Our own model (AuditEvent) rather than django-simple-history or django-auditlog: the trail
records actions that are not saves of one model (a drill started or aborted, a manual step
confirmed, a role given through a many-to-many), it is written in the same transaction as the
change it describes by the service that makes it, and redaction of secrets is decided here,
field by field, not left to a library's defaults.
"""

import contextvars
import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, time
from decimal import Decimal

from django.db import models

from scorecard.models import AuditEvent, Cluster

# Fields whose values never enter the trail: only whether they are set, and that they changed.
REDACTED = {"sasl_password_token", "password"}
SYSTEM = "system"

_actor: contextvars.ContextVar[str] = contextvars.ContextVar("audit_actor", default=SYSTEM)


@contextmanager
def acting_as(name: str) -> Iterator[None]:
    """Attribute the changes made inside to `name` (a request's user, a command's --by)."""
    token = _actor.set(name or SYSTEM)
    try:
        yield
    finally:
        _actor.reset(token)


def act(name: str) -> None:
    """Attribute the rest of the current request to `name`: an API token is authenticated after
    the middleware has opened the request's `acting_as`, which still restores the value after."""
    _actor.set(name or SYSTEM)


def current_actor() -> str:
    return _actor.get()


def _plain(value):
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return json.loads(json.dumps(value, default=str))


def snapshot(obj: models.Model, fields: Iterable[str] | None = None) -> dict:
    """The object's concrete field values, JSON-safe, secrets reduced to "set" or "not set"."""
    names = fields or [f.name for f in obj._meta.concrete_fields if not f.primary_key]
    values = {}
    for name in names:
        field = obj._meta.get_field(name)
        value = getattr(obj, field.attname)
        if name in REDACTED:
            value = "[set]" if value else "[not set]"
        elif field.is_relation:
            related = getattr(obj, name)
            value = str(related) if related is not None else None
        values[name] = _plain(value)
    return values


def record(
    action: str,
    obj: models.Model | None = None,
    *,
    before: dict | None = None,
    after: dict | None = None,
    cluster: Cluster | None = None,
    comment: str = "",
    actor: str | None = None,
    label: str = "",
    object_type: str = "",
) -> AuditEvent | None:
    """Store one event; for a change, only the fields that changed. Nothing changed: None."""
    before, after = dict(before or {}), dict(after or {})
    if before and after:
        changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        if not changed and not comment:  # a typed secret changes nothing visible: its comment says so
            return None
        before = {k: v for k, v in before.items() if k in changed}
        after = {k: v for k, v in after.items() if k in changed}
    if cluster is None and obj is not None:
        cluster = _cluster_of(obj)
    return AuditEvent.objects.create(
        actor=(actor or current_actor())[:150],
        action=action[:40],
        object_type=(object_type or (obj._meta.model_name if obj is not None else ""))[:40],
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_label=(label or (str(obj) if obj is not None else ""))[:300],
        cluster=cluster,
        cluster_name=cluster.name if cluster else "",
        before=before,
        after=after,
        comment=comment[:5000],
    )


def _cluster_of(obj: models.Model) -> Cluster | None:
    """The cluster an object belongs to, following the record's own links."""
    for path in ("", "cluster", "scorecard.cluster", "row.scorecard.cluster", "check_obj.row.scorecard.cluster"):
        target = obj
        for part in filter(None, path.split(".")):
            target = getattr(target, part, None)
            if target is None:
                break
        if isinstance(target, Cluster):
            return target
    return None


def events_for(obj: models.Model, limit: int = 20) -> list[AuditEvent]:
    """The newest events about one object."""
    return list(AuditEvent.objects.filter(object_type=obj._meta.model_name, object_id=str(obj.pk))[:limit])
