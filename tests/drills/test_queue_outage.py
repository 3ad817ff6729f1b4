"""A broker outage: the page says so, and nothing stays queued for ever."""

import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from drills.models import DrillRun
from drills.services import runs_never_queued_expire
from scorecard.models import CheckRun
from tests.conftest import celery_env
from tests.factories import check_of, register

ROOT = Path(__file__).resolve().parents[2]

# The page, driven in a process of its own whose broker is the stopped Redis.
PAGE = """
import django
django.setup()
from django.contrib.messages import get_messages
from django.test import Client
from scorecard.models import Cluster
from scorecard.roles import role_assign
client = Client()
client.force_login(role_assign(username="sre", role="operator", create=True)[0])
response = client.post(f"/clusters/{Cluster.objects.get(name='outage').pk}/run/", follow=True)
print(response.status_code)
print(" | ".join(str(m) for m in get_messages(response.wsgi_request)) or "no message")
"""


@pytest.fixture
def stopped_redis(tmp_path):
    """A Redis of the test's own on a free port, started and then stopped: its URL."""
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.05)
    server.terminate()
    server.wait(10)
    return f"redis://127.0.0.1:{port}/0"


@pytest.mark.django_db(transaction=True)
def test_run_checks_now_with_the_broker_down_says_so_and_leaves_nothing_queued(stopped_redis, django_db_blocker):
    register(name="outage", bootstrap="127.0.0.1:9092")
    env = {**celery_env(django_db_blocker), "CELERY_BROKER_URL": stopped_redis, "ALLOWED_HOSTS": "testserver"}
    done = subprocess.run([sys.executable, "-c", PAGE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    status, message = done.stdout.strip().splitlines()[-2:]
    assert status == "200"
    assert "could not be queued: the task broker is unreachable" in message
    runs = CheckRun.objects.all()
    assert runs.count() == 8 and set(runs.values_list("state", flat=True)) == {"failed"}
    assert "broker is unreachable" in runs.first().error


@pytest.mark.django_db
def test_runs_that_never_reached_a_worker_are_failed_by_the_sweeper(settings):
    check = check_of(register(name="no-worker", bootstrap="127.0.0.1:9092", drills_allowed=True))
    old = CheckRun.objects.create(check_obj=check, requested_by="t")
    CheckRun.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    fresh = CheckRun.objects.create(check_obj=check, requested_by="t")
    drill = DrillRun.objects.create(cluster=check.row.scorecard.cluster, scenario="broker_loss", requested_by="t")
    DrillRun.objects.filter(pk=drill.pk).update(created_at=timezone.now() - timedelta(hours=1))
    settings.RUN_QUEUE_TIMEOUT_SECONDS = 1800
    assert runs_never_queued_expire() == (1, 1)
    old.refresh_from_db(), fresh.refresh_from_db(), drill.refresh_from_db()
    assert (old.state, fresh.state) == ("failed", "queued") and "not picked up by a worker" in old.error
    assert (drill.state, drill.outcome) == ("aborted", "aborted")  # the cluster is free for the next drill
