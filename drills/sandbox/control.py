"""What other processes need to drive a running sandbox cluster, and nothing heavy.

`SandboxControl` speaks the JSON-lines control channel on the sandbox's Unix socket;
`read_state` reads the address file the sandbox publishes. No ctypes, no Kafka client:
the actuator imports only this module.
"""

import json
import os
import socket
import time
from pathlib import Path

DEFAULT_PROBE_TOPIC = "__recovery_probe"


class SandboxError(Exception):
    """A control request was invalid or the mock refused it."""


class SandboxControl:
    """Client of the control channel; every request has a timeout."""

    def __init__(self, socket_path: str | os.PathLike, *, timeout: float = 5.0):
        self.socket_path = str(socket_path)
        self.timeout = timeout

    def call(self, op: str, **params) -> dict:
        request = json.dumps({"op": op, **params}).encode() + b"\n"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(self.socket_path)
                sock.sendall(request)
                reply = b""
                while not reply.endswith(b"\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    reply += chunk
        except OSError as exc:
            raise SandboxError(f"sandbox control channel {self.socket_path} unreachable: {exc}") from None
        try:
            answer = json.loads(reply)
        except ValueError:
            raise SandboxError("sandbox control channel sent a malformed reply") from None
        if not answer.get("ok"):
            raise SandboxError(answer.get("error", "unknown error"))
        return answer["result"]


def read_state(state_file: Path, *, wait: float = 0.0) -> dict:
    """The running sandbox's state; waits up to `wait` seconds for it to appear."""
    deadline = time.monotonic() + wait
    while True:
        try:
            return json.loads(Path(state_file).read_text())
        except (FileNotFoundError, ValueError):
            if time.monotonic() >= deadline:
                raise SandboxError(f"no sandbox cluster is running (no state in {state_file})") from None
            time.sleep(0.05)
