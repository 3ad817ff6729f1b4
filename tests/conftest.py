"""Shared fixtures: real sandbox clusters, Tansu brokers and Celery processes.

Names say what a fixture gives: `shared_*` is started once per test process and must not be
disrupted (read and write records, never stop a broker); `private_*` belongs to one test,
which may break it. Under pytest-xdist every test process has its own database (pytest-django
suffixes it), its own shared clusters and its own queue names, so processes never meet.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from drills.kafka import ConnectionSettings
from drills.sandbox.control import SandboxControl
from drills.sandbox.server import spawn
from drills.tansu import TansuBroker

ROOT = Path(__file__).resolve().parent.parent
# "gw0", "gw1"... under pytest-xdist; "main" without it.
TEST_PROCESS = os.environ.get("PYTEST_XDIST_WORKER", "main")


@dataclass
class Sandbox:
    bootstrap: str
    control: SandboxControl
    control_path: str
    process: subprocess.Popen
    probe_topic: str

    @property
    def connection(self) -> ConnectionSettings:
        return ConnectionSettings(self.bootstrap)


def start_sandbox() -> tuple[Sandbox, str]:
    # Unix socket paths are limited to 108 bytes: keep the directory short.
    directory = tempfile.mkdtemp(prefix="sb-")
    process, state = spawn(Path(directory) / "state.json", stdout=subprocess.DEVNULL)
    cluster = Sandbox(
        state["bootstrap"], SandboxControl(state["control"]), state["control"], process, state["probe_topic"]
    )
    return cluster, directory


def stop_sandbox(cluster: Sandbox, directory: str) -> None:
    if cluster.process.poll() is None:
        cluster.process.send_signal(signal.SIGTERM)
        try:
            cluster.process.wait(15)
        except subprocess.TimeoutExpired:
            cluster.process.kill()
            cluster.process.wait(5)
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def private_sandbox():
    """A sandbox cluster of this test's own, to inject faults into."""
    cluster, directory = start_sandbox()
    yield cluster
    stop_sandbox(cluster, directory)


@pytest.fixture
def private_standby():
    """A second sandbox cluster of this test's own, as a standby."""
    cluster, directory = start_sandbox()
    yield cluster
    stop_sandbox(cluster, directory)


@pytest.fixture(scope="session")
def shared_sandbox():
    """One sandbox cluster per test process, for tests that only read or write records."""
    cluster, directory = start_sandbox()
    yield cluster
    stop_sandbox(cluster, directory)


@pytest.fixture
def private_tansu():
    """A Tansu broker process of this test's own (memory only: every start is empty)."""
    broker = TansuBroker().start()
    yield broker
    broker.kill()
    # A command actuator may have restarted it as a detached process on the same port.
    subprocess.run(["pkill", "-9", "-f", f"tcp://127.0.0.1:{broker.port}"], check=False)


@pytest.fixture(scope="session")
def shared_tansu():
    """One Tansu broker per test process; never restart it."""
    broker = TansuBroker().start()
    yield broker
    broker.kill()


def user_with_role(username: str, role: str):
    from scorecard.roles import role_assign

    user, _ = role_assign(username=username, role=role, create=True)
    return user


@pytest.fixture
def role_client():
    """A logged-in client per role: role_client("operator", username="olga")."""
    from django.test import Client

    def make(role: str, username: str = ""):
        client = Client()
        client.force_login(user_with_role(username or role.replace(" ", "-"), role))
        return client

    return make


@pytest.fixture
def requesters(db):
    """The people tests name as requesters: workers check they (still) hold a role."""
    user_with_role("sre", "drill approver")
    user_with_role("test", "operator")


@pytest.fixture
def user_client(client):
    """A logged-in administrator, "sre" (every role's permissions)."""
    client.force_login(user_with_role("sre", "admin"))
    return client


# --- Celery processes ------------------------------------------------------------------------------


def database_url_for_worker() -> str:
    """The test database as a URL, so a worker process writes where the test reads."""
    db = connection.settings_dict
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("worker tests need PostgreSQL: set DATABASE_URL=postgres://... (make test does)")
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def celery_env(django_db_blocker) -> dict:
    """Environment for Celery processes: this test process's database and the Redis broker."""
    if not settings.CELERY_BROKER_URL.startswith("redis"):
        pytest.fail("worker tests need Redis: set CELERY_BROKER_URL=redis://... (make test does)")
    with django_db_blocker.unblock():
        database_url = database_url_for_worker()
    return {**os.environ, "DATABASE_URL": database_url, "SCORECARD_MODE": "test"}


def unique_queue(name: str) -> str:
    """A queue no other test process or run uses."""
    return f"{name}-{TEST_PROCESS}-{uuid.uuid4().hex[:6]}"


@dataclass
class Worker:
    queue: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_worker(env: dict, queue: str, *, concurrency: int = 1) -> Worker:
    log_path = Path(tempfile.mkdtemp(prefix="worker-")) / "worker.log"
    argv = [
        sys.executable, "-m", "celery", "-A", "config", "worker", "-Q", queue, "-c", str(concurrency),
        "--loglevel", "INFO", "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-n", f"{queue}@%h",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(queue, process, log_path)
    deadline = time.monotonic() + 60
    while "ready." not in worker.log():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"celery worker did not start:\n{worker.log()[-3000:]}")
        time.sleep(0.1)
    return worker


def stop_worker(worker: Worker) -> None:
    if worker.process.poll() is None:
        worker.process.send_signal(signal.SIGTERM)
        try:
            worker.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.process.pid, signal.SIGKILL)
            worker.process.wait(5)


@pytest.fixture(scope="session")
def shared_worker(django_db_setup, django_db_blocker):
    """A real `celery worker` process per test process, on a queue of its own."""
    worker = start_worker(celery_env(django_db_blocker), unique_queue("shared"))
    yield worker
    stop_worker(worker)


@pytest.fixture
def start_private_worker(django_db_setup, django_db_blocker):
    """Start workers this test may kill; the same name gives the same (unique) queue, so a
    second worker can take over the first one's queue. Whatever is left is stopped afterwards."""
    started: list[Worker] = []
    queues: dict[str, str] = {}

    def start(name: str, **env: str) -> Worker:
        queue = queues.setdefault(name, unique_queue(name))
        worker = start_worker({**celery_env(django_db_blocker), **env}, queue)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        stop_worker(worker)


@pytest.fixture
def beat_process(django_db_setup, django_db_blocker):
    """A real `celery beat` process with the Check-table scheduler; yields its log path."""
    log_path = Path(tempfile.mkdtemp(prefix="beat-")) / "beat.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "beat", "--loglevel", "INFO"],
            cwd=ROOT,
            env=celery_env(django_db_blocker),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    yield log_path
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def wait_for(predicate, *, timeout: float, interval: float = 0.2, message: str = "condition"):
    """Poll until predicate() is truthy; fail with `message` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)
