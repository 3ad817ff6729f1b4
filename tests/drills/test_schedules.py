"""Drill schedules: windows in their time zone (clock changes included), validation, and the
worker's refusal of a scheduled drill whose window closed before it was picked up."""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from drills.models import DrillRun, DrillSchedule, ScheduledWindow
from drills.runner import drill_run_execute
from drills.schedules import schedule_create, schedules_tick, windows
from scorecard.models import Actuator
from tests.conftest import user_with_role
from tests.factories import register

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")


def schedule(**fields) -> DrillSchedule:
    values = {"scenario": "broker_loss", "weekdays": list(range(1, 8)), "window_start": time(2, 30),
              "window_end": time(3, 30), "time_zone": "Europe/Paris", "created_by": "abe", **fields}  # fmt: skip
    return DrillSchedule(**values)


def test_windows_keep_their_local_hours_and_a_skipped_hour_has_none():
    spring = windows(schedule(), since=datetime(2026, 3, 28, tzinfo=UTC), until=datetime(2026, 3, 30, 12, tzinfo=UTC))
    # 28 March 02:30-03:30 CET; 29 March has no 02:30 in Paris; 30 March 02:30-03:30 CEST.
    assert spring == [
        (datetime(2026, 3, 28, 1, 30, tzinfo=UTC), datetime(2026, 3, 28, 2, 30, tzinfo=UTC)),
        (datetime(2026, 3, 30, 0, 30, tzinfo=UTC), datetime(2026, 3, 30, 1, 30, tzinfo=UTC)),
    ]
    overnight = schedule(window_start=time(22, 0), window_end=time(2, 0), weekdays=[5])  # Friday nights
    since, until = datetime(2026, 12, 4, tzinfo=UTC), datetime(2026, 12, 5, 12, tzinfo=UTC)
    assert windows(overnight, since=since, until=until) == [
        (datetime(2026, 12, 4, 21, 0, tzinfo=UTC), datetime(2026, 12, 5, 1, 0, tzinfo=UTC))
    ]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"weekdays": []}, "weekdays"),
        ({"weekdays": [8]}, "weekdays"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"window_end": time(2, 0)}, "window_end"),  # empty
        ({"window_end": time(2, 3)}, "window_end"),  # shorter than the drill
        ({"scenario": "leader_change"}, "scenario"),  # the command actuator cannot move leaders
        ({"params": {"fault_seconds": -1}}, "params"),
    ],
)
def test_bad_schedules_are_refused_by_field(fields, field):
    cluster = register(drills_allowed=True, actuator=Actuator.COMMAND,
                       actuator_commands={"broker_down": ["true"], "broker_up": ["true"]}).cluster  # fmt: skip
    values = {"cluster": cluster, "by": "abe", "scenario": "broker_loss", "weekdays": [1], "window_start": time(2, 0),
              "window_end": time(3, 0), "time_zone": "UTC", "params": {}, **fields}  # fmt: skip
    with pytest.raises(ValidationError) as error:
        schedule_create(**values)
    assert field in error.value.message_dict
    assert not DrillSchedule.objects.exists()


def test_a_scheduled_drill_picked_up_after_its_window_closed_is_not_run(django_capture_on_commit_callbacks):
    user_with_role("abe", "drill approver")
    cluster = register(drills_allowed=True, actuator=Actuator.SANDBOX, sandbox_control="/tmp/none.sock").cluster
    made = schedule_create(cluster=cluster, by="abe", scenario="broker_loss", weekdays=list(range(1, 8)),
                           window_start=time(0, 0), window_end=time(23, 59), time_zone="UTC",
                           params={"max_duration_seconds": 60})  # fmt: skip
    with django_capture_on_commit_callbacks():  # not sent: no worker here
        noon = datetime.now(UTC).replace(hour=12, minute=0)  # inside today's window, whatever the hour
        assert schedules_tick(noon) == {made.pk: "started"}
    run = DrillRun.objects.get()
    # The worker only gets to it after the window ended.
    ScheduledWindow.objects.filter(run=run).update(window_end=datetime.now(UTC) + timedelta(seconds=30))
    drill_run_execute(run_id=run.pk, worker="late")
    run.refresh_from_db()
    assert run.outcome == "aborted" and "its window closed before a worker picked it up" in run.error
    assert run.phase == "done" and not run.figures
