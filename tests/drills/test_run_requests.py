"""Requests to run checks, from the scorecard and check pages: queued on commit, never run in the request."""

import pytest
from django.urls import reverse

from scorecard.models import CheckRun
from tests.factories import check_of, register

pytestmark = pytest.mark.django_db


def test_run_checks_requires_login(client):
    scorecard = register()
    response = client.post(reverse("drills-run-checks", args=[scorecard.cluster_id]))
    assert response.status_code == 302
    assert not CheckRun.objects.exists()


def test_run_checks_now_queues_a_run_per_applicable_check_after_commit(user_client, django_capture_on_commit_callbacks):
    scorecard = register()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = user_client.post(reverse("drills-run-checks", args=[scorecard.cluster_id]))
    assert response.status_code == 302
    assert CheckRun.objects.filter(state="queued").count() == 8
    assert len(callbacks) == 1  # one send of all eight, once the runs are committed


def test_run_now_on_a_check_queues_one_run_on_the_clusters_queue(user_client, django_capture_on_commit_callbacks):
    check = check_of(register(worker_queue="zone-a"))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = user_client.post(reverse("drills-run-check", args=[check.pk]))
    assert response.status_code == 302
    assert CheckRun.objects.get().check_obj == check
    assert len(callbacks) == 1


def test_a_check_marked_not_applicable_cannot_be_run_now(user_client):
    check = check_of(register())
    check.not_applicable, check.not_applicable_reason = True, "not on this platform"
    check.save()
    assert user_client.post(reverse("drills-run-check", args=[check.pk])).status_code == 404
    assert not CheckRun.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_each_run_is_sent_once_even_if_the_caller_extends_the_list_it_got_back():
    """The list scorecard_run_checks returns is the caller's: runs added to it before the
    commit are not sent a second time by the service (found by bench/load.py)."""
    import redis
    from django.conf import settings
    from django.db import transaction

    from drills.services import check_run_request, scorecard_run_checks
    from tests.conftest import unique_queue

    queue = unique_queue("sent-once")  # no worker serves it
    scorecard = register(worker_queue=queue)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        with transaction.atomic():
            runs = scorecard_run_checks(scorecard=scorecard, requested_by="test")
            runs.append(check_run_request(check=check_of(scorecard), requested_by="test"))
        assert len(runs) == 9
        assert broker.llen(queue) == 9  # eight from the service, one from the extra request
    finally:
        broker.delete(queue)
