from datetime import UTC, datetime, timedelta

import pytest

from scorecard.models import Status
from scorecard.status import SEVERITY, check_status, row_status, scorecard_ready, worst

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def status_of(latest_status, age=timedelta(minutes=5), *, not_applicable=False):
    return check_status(
        not_applicable=not_applicable,
        latest_status=latest_status,
        latest_at=None if latest_status is None else NOW - age,
        max_age=HOUR,
        now=NOW,
    )


@pytest.mark.parametrize("latest", ["PASS", "WARN", "FAIL", "ERROR"])
def test_it_takes_the_status_of_the_latest_evidence(latest):
    assert status_of(latest) == Status(latest)


def test_it_is_unknown_without_evidence():
    assert status_of(None) == Status.UNKNOWN


@pytest.mark.parametrize("latest", ["PASS", "FAIL", "ERROR"])
def test_it_is_stale_when_evidence_is_older_than_the_max_age(latest):
    assert status_of(latest, age=HOUR + timedelta(seconds=1)) == Status.STALE
    assert status_of(latest, age=HOUR) == Status(latest)


def test_it_is_not_applicable_when_marked_whatever_the_evidence():
    assert status_of("FAIL", not_applicable=True) == Status.NOT_APPLICABLE
    assert status_of(None, not_applicable=True) == Status.NOT_APPLICABLE


def test_severity_order_is_fail_error_stale_unknown_warn_pass():
    assert [s.value for s in SEVERITY] == ["FAIL", "ERROR", "STALE", "UNKNOWN", "WARN", "PASS"]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["PASS", "FAIL", "ERROR"], "FAIL"),
        (["PASS", "ERROR", "STALE"], "ERROR"),
        (["PASS", "STALE", "UNKNOWN"], "STALE"),
        (["PASS", "UNKNOWN", "WARN"], "UNKNOWN"),
        (["PASS", "WARN"], "WARN"),
        (["PASS", "PASS"], "PASS"),
    ],
)
def test_a_row_is_the_worst_of_its_checks(statuses, expected):
    assert row_status(statuses, has_owner=True, has_rollback_condition=True) == Status(expected)


def test_not_applicable_checks_leave_the_row_alone():
    assert row_status(["PASS", "NOT_APPLICABLE"], has_owner=True, has_rollback_condition=True) == Status.PASS
    assert row_status(["FAIL"], has_owner=True, has_rollback_condition=True) == Status.FAIL


def test_a_row_without_checks_or_with_only_not_applicable_ones_is_unknown():
    assert row_status([], has_owner=True, has_rollback_condition=True) == Status.UNKNOWN
    assert worst(["NOT_APPLICABLE"]) == Status.UNKNOWN


@pytest.mark.parametrize(("owner", "rollback"), [(False, True), (True, False), (False, False)])
def test_a_row_without_owner_or_rollback_condition_is_at_best_warn(owner, rollback):
    assert row_status(["PASS"], has_owner=owner, has_rollback_condition=rollback) == Status.WARN
    # Worse statuses are not improved by the cap.
    assert row_status(["FAIL"], has_owner=owner, has_rollback_condition=rollback) == Status.FAIL


def test_a_scorecard_is_ready_only_when_all_five_rows_pass():
    assert scorecard_ready(["PASS"] * 5)
    assert not scorecard_ready(["PASS"] * 4 + ["WARN"])
    assert not scorecard_ready(["PASS"] * 4)
