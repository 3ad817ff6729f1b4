"""The sandbox cluster in its own process: the mock behind a JSON-lines control channel.

`serve()` runs a `SandboxCluster` with a control channel on a Unix socket (broker down/up,
leader move, latency, racks, injected request errors, topic creation) and publishes its
address in a state file; `spawn()` starts `manage.py sandbox` as a child process.
"""

import json
import logging
import os
import signal
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

from drills.sandbox.control import DEFAULT_PROBE_TOPIC, SandboxError, read_state
from drills.sandbox.mock import SandboxCluster

log = logging.getLogger(__name__)

# --- the control channel ------------------------------------------------------------------

OPERATIONS = {
    "status": (),
    "broker_down": ("broker",),
    "broker_up": ("broker",),
    "leader_move": ("topic", "partition", "broker"),
    "latency": ("broker", "rtt_ms"),
    "rack": ("broker", "rack"),
    "request_errors": ("api", "errors"),
    "clear_request_errors": ("api",),
    "topic_create": ("name", "partitions", "replication_factor"),
    "spread_leaders": ("name",),
    "api_version": ("api", "min_version", "max_version"),
    "requests_track": (),
    "requests_count": (),
}


def dispatch(cluster: SandboxCluster, request: dict, lock: threading.Lock) -> dict:
    op = request.get("op")
    if op not in OPERATIONS:
        return {"ok": False, "error": f"unknown op {op!r}; one of {', '.join(OPERATIONS)}"}
    missing = [name for name in OPERATIONS[op] if name not in request]
    if missing:
        return {"ok": False, "error": f"{op} needs {', '.join(missing)}"}
    args = [request[name] for name in OPERATIONS[op]]
    with lock:
        try:
            result = getattr(cluster, op)(*args)
        except SandboxError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "result": result if result is not None else cluster.status()}


class _Handler(socketserver.StreamRequestHandler):
    timeout = 10

    def handle(self):
        for line in self.rfile:
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("request must be a JSON object")
                reply = dispatch(self.server.cluster, request, self.server.lock)
            except ValueError as exc:
                reply = {"ok": False, "error": f"bad request: {exc}"}
            self.wfile.write(json.dumps(reply).encode() + b"\n")
            self.wfile.flush()


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def serve(*, state_file: Path, brokers: int = 3, probe_topic: str = DEFAULT_PROBE_TOPIC, ready=None) -> None:
    """Run a sandbox cluster until SIGTERM or SIGINT; publish its address in `state_file`."""
    state_file = Path(state_file)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    socket_path = state_file.with_suffix(".sock")
    if socket_path.exists():
        socket_path.unlink()
    cluster = SandboxCluster(brokers=brokers)
    stop = threading.Event()
    server = None
    try:
        cluster.topic_create(probe_topic, partitions=2 * brokers, replication_factor=min(3, brokers))
        cluster.spread_leaders(probe_topic)
        server = _Server(str(socket_path), _Handler)
        server.cluster = cluster
        server.lock = threading.Lock()
        os.chmod(socket_path, 0o600)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()
        state = {
            "bootstrap": cluster.bootstrap,
            "control": str(socket_path),
            "pid": os.getpid(),
            "probe_topic": probe_topic,
        }
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(state_file)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        log.info("sandbox cluster up: %s (control %s)", cluster.bootstrap, socket_path)
        if ready:
            ready(state)
        while not stop.wait(0.5):
            pass
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        cluster.close()
        for path in (state_file, socket_path):
            path.unlink(missing_ok=True)


def spawn(state_file: Path, *, brokers: int = 3, wait: float = 20.0, **popen) -> tuple[subprocess.Popen, dict]:
    """Start `manage.py sandbox` as a child process and wait for its state."""
    root = Path(__file__).resolve().parents[2]  # drills/sandbox/server.py -> the project root
    env = {**os.environ, "SCORECARD_MODE": os.environ.get("SCORECARD_MODE", "demo")}
    process = subprocess.Popen(
        [
            sys.executable,
            str(root / "manage.py"),
            "sandbox",
            "--brokers",
            str(brokers),
            "--state-file",
            str(state_file),
        ],
        cwd=root,
        env=env,
        **popen,
    )
    try:
        return process, read_state(state_file, wait=wait)
    except SandboxError:
        process.kill()
        process.wait(5)
        raise
