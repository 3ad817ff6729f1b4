from datetime import timedelta

import pytest
from django.utils import timezone

from drills.services import check_run_request
from scorecard import services
from scorecard.models import CheckRun
from tests.factories import check_of, register

pytestmark = pytest.mark.django_db


def test_a_scheduled_message_gets_one_run_even_when_redelivered():
    check = check_of(register())
    first = services.check_run_for_schedule(check_id=check.pk, task_id="task-1")
    again = services.check_run_for_schedule(check_id=check.pk, task_id="task-1")
    assert first.pk == again.pk and first.requested_by == "schedule"
    assert services.check_run_for_schedule(check_id=check.pk, task_id="task-2").pk != first.pk


def test_a_not_applicable_check_gets_no_scheduled_run():
    check = check_of(register())
    check.not_applicable = True
    check.not_applicable_reason = "r"
    check.save()
    assert services.check_run_for_schedule(check_id=check.pk, task_id="task-1") is None
    assert not CheckRun.objects.exists()


def test_a_run_is_claimed_once_unless_its_worker_died(django_capture_on_commit_callbacks, settings):
    check = check_of(register())
    with django_capture_on_commit_callbacks(execute=False):
        run = check_run_request(check=check, requested_by="t")
    assert services.check_run_claim(run_id=run.pk, worker="w1") is not None
    assert services.check_run_claim(run_id=run.pk, worker="w2") is None
    # Running for longer than the hard time limit: its worker is gone, a redelivery may take it.
    CheckRun.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1)
    )
    assert services.check_run_claim(run_id=run.pk, worker="w2").worker == "w2"
    assert services.check_run_claim(run_id=run.pk + 1000, worker="w3") is None
