"""Status rules of DESIGN.md section 3, as pure functions."""

from collections.abc import Iterable
from datetime import datetime, timedelta

from scorecard.models import Status

# Worst first. NOT APPLICABLE is absent on purpose: such a check leaves the row alone.
SEVERITY = (Status.FAIL, Status.ERROR, Status.STALE, Status.UNKNOWN, Status.WARN, Status.PASS)


def check_status(
    *,
    not_applicable: bool,
    latest_status: str | None,
    latest_at: datetime | None,
    max_age: timedelta,
    now: datetime,
) -> Status:
    """A check's status is its latest evidence's, UNKNOWN without any, STALE when too old."""
    if not_applicable:
        return Status.NOT_APPLICABLE
    if latest_status is None or latest_at is None:
        return Status.UNKNOWN
    if now - latest_at > max_age:
        return Status.STALE
    return Status(latest_status)


def worst(statuses: Iterable[str]) -> Status:
    present = {Status(s) for s in statuses} - {Status.NOT_APPLICABLE}
    for status in SEVERITY:
        if status in present:
            return status
    return Status.UNKNOWN


def row_status(check_statuses: Iterable[str], *, has_owner: bool, has_rollback_condition: bool) -> Status:
    """The worst of the row's checks; without an owner or rollback condition at best WARN."""
    status = worst(check_statuses)
    if status == Status.PASS and not (has_owner and has_rollback_condition):
        return Status.WARN
    return status


def signoff_lapse(signoff, *, owner_id: int | None, status: str, now: datetime, valid: timedelta) -> str:
    """Why a sign-off no longer holds: the row's owner or status changed since, or it is too old."""
    if signoff is None:
        return ""
    if signoff.user_id is None or signoff.user_id != owner_id:
        return "lapsed: the row's owner changed since"
    if signoff.row_status != status:
        return f"lapsed: signed off at {signoff.row_status}, the row is now {status}"
    if now - signoff.signed_at > valid:
        return f"lapsed: older than {valid.days} days"
    return ""


def scorecard_ready(row_statuses: Iterable[str]) -> bool:
    statuses = list(row_statuses)
    return len(statuses) == 5 and all(s == Status.PASS for s in statuses)


def verdict(*, fail: object = False, warn: object = False) -> Status:
    """The status of a finished measurement: FAIL when anything failed, else WARN when anything
    warns, else PASS. `fail` and `warn` are conditions or lists of findings (empty = none)."""
    if fail:
        return Status.FAIL
    if warn:
        return Status.WARN
    return Status.PASS
