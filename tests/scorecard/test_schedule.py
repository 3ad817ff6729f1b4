from datetime import timedelta

import pytest
from django.utils import timezone

from scorecard import services
from scorecard.models import CheckRun
from tests.factories import check_of, register

pytestmark = pytest.mark.django_db


def test_it_queues_checks_that_never_ran_and_those_past_their_interval(django_capture_on_commit_callbacks):
    scorecard = register()
    health, write = check_of(scorecard), check_of(scorecard, "ack_write")
    with django_capture_on_commit_callbacks(execute=False):
        first = services.checks_enqueue_due(requested_by="schedule")
        assert {r.check_obj_id for r in first} == {health.pk, write.pk}
        assert services.checks_enqueue_due(requested_by="schedule") == []
        later = timezone.now() + timedelta(seconds=health.interval_seconds + 1)
        assert len(services.checks_enqueue_due(requested_by="schedule", now=later)) == 2


def test_it_skips_not_applicable_checks(django_capture_on_commit_callbacks):
    scorecard = register()
    write = check_of(scorecard, "ack_write")
    write.not_applicable = True
    write.save()
    with django_capture_on_commit_callbacks(execute=False):
        services.checks_enqueue_due(requested_by="schedule")
    assert not CheckRun.objects.filter(check_obj=write).exists()


def test_a_run_is_claimed_once_unless_its_worker_died(django_capture_on_commit_callbacks, settings):
    check = check_of(register())
    with django_capture_on_commit_callbacks(execute=False):
        run = services.check_run_request(check=check, requested_by="t")
    assert services.check_run_claim(run_id=run.pk, worker="w1") is not None
    assert services.check_run_claim(run_id=run.pk, worker="w2") is None
    # Running for longer than the hard time limit: its worker is gone, a redelivery may take it.
    CheckRun.objects.filter(pk=run.pk).update(
        started_at=timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1)
    )
    assert services.check_run_claim(run_id=run.pk, worker="w2").worker == "w2"
    assert services.check_run_claim(run_id=run.pk + 1000, worker="w3") is None
