"""Servers a restart test owns: a redis-server and a PostgreSQL cluster on loopback ports of
their own, started, restarted and stopped by the test (issue 13 point 2)."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_port(port: int, *, up: bool, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while port_open(port) != up:
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not {'open' if up else 'close'} port {port} within {timeout} s")
        time.sleep(0.05)


@dataclass
class RedisServer:
    """A redis-server on its own port; `appendonly` keeps queued messages across a restart."""

    appendonly: bool
    port: int = field(default_factory=free_port)
    directory: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="redis-"))
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "RedisServer":
        persistence = ["--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "always"]
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.directory,
                "--save", "", *persistence]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, up=True, timeout=10, what="redis-server")
        return self

    def kill(self) -> None:
        """SIGKILL: what a crash or a node loss does (a clean SHUTDOWN would write no more)."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        wait_port(self.port, up=False, timeout=10, what="the killed redis-server")

    def restart(self) -> None:
        self.kill()
        self.start()

    def llen(self, queue: str) -> int:
        out = subprocess.run(["redis-cli", "-p", str(self.port), "LLEN", queue], capture_output=True, text=True)
        return int(out.stdout.strip() or 0)

    def stop(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def redis_server():
    """Start a test-owned redis-server: redis_server(appendonly=False); stopped afterwards."""
    started: list[RedisServer] = []

    def start(*, appendonly: bool) -> RedisServer:
        server = RedisServer(appendonly=appendonly).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@dataclass
class Postgres:
    """A PostgreSQL cluster of the test's own (initdb in a temporary directory, run as the
    `postgres` user), trusting loopback connections."""

    port: int = field(default_factory=free_port)
    directory: str = ""

    def _as_postgres(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
        command = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            pytest.fail(f"{' '.join(argv[:2])} failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
        return done

    @property
    def data(self) -> str:
        return f"{self.directory}/data"

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> "Postgres":
        self.directory = tempfile.mkdtemp(prefix="pg-")
        shutil.chown(self.directory, "postgres", "postgres")
        self._as_postgres(str(PG_BIN / "initdb"), "-D", self.data, "-A", "trust", "-U", "postgres", "--no-sync")
        return self

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += f" -c unix_socket_directories={self.directory}"
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", self.data, "-o", options, "-l", f"{self.directory}/log",
                          "-w", "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", self.data, "-m", mode, "-w", "stop")

    def restart(self) -> None:
        """What a PostgreSQL restart or failover does to clients: every session is cut."""
        self.stop("immediate")
        self.start()

    def psql(self, database: str, sql: str) -> str:
        done = self._as_postgres(str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-d", database,
                                 "-AtX", "-v", "ON_ERROR_STOP=1", "-c", sql)  # fmt: skip
        return done.stdout.strip()

    def remove(self) -> None:
        if Path(self.data, "postmaster.pid").exists():
            subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D", self.data,
                            "-m", "immediate", "-w", "stop"], capture_output=True)  # fmt: skip
        shutil.rmtree(self.directory, ignore_errors=True)


@pytest.fixture
def private_postgres():
    """A started PostgreSQL cluster of this test's own; stopped and removed afterwards."""
    if not (PG_BIN / "initdb").exists() or os.geteuid() != 0:
        pytest.fail(f"the PostgreSQL restart test needs {PG_BIN} and root (to run initdb as postgres)")
    cluster = Postgres().init()
    cluster.start()
    yield cluster
    cluster.remove()


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process and every process it started (a Celery worker and its pool)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


# The web's enqueue path, in a process of its own whose environment names the broker (and the
# database) under test: the page a person clicks, as in tests/drills/test_queue_outage.py.
PAGE = """
import sys
import django
django.setup()
from django.test import Client
from scorecard.roles import role_assign
client = Client()
client.force_login(role_assign(username="sre", role="operator", create=True)[0])
for path in sys.argv[1:]:
    print(client.post(path).status_code)
"""


def post_pages(env: dict, *paths: str) -> list[int]:
    """POST each path as the operator "sre" through Django's test client; the status codes."""
    done = subprocess.run([sys.executable, "-c", PAGE, *paths], cwd=ROOT, env={**env, "ALLOWED_HOSTS": "testserver"},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"the page process failed: {done.stderr[-3000:]}")
    return [int(line) for line in done.stdout.split()]


def pool_processes(worker) -> list[int]:
    """The pool (child) processes of a Celery worker's main process."""
    out = subprocess.run(["pgrep", "-P", str(worker.process.pid)], capture_output=True, text=True)
    return [int(pid) for pid in out.stdout.split()]
