"""Actuators: what performs a fault and its recovery on a cluster.

- sandbox: the sandbox cluster's control channel;
- command: operator-configured argv templates (never a shell), placeholders filled only
  from validated values, with a timeout and the output captured into the drill run;
- manual: the drill waits for a person to confirm each step on the drill page.
"""

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from drills.sandbox.control import SandboxControl, SandboxError
from scorecard.models import Actuator as ActuatorKind
from scorecard.models import Cluster
from scorecard.validators import COMMAND_OPS, placeholder_value_problem, validate_command_templates

MAX_OUTPUT = 4000


class ActuatorError(Exception):
    """A fault or recovery step could not be performed."""


@dataclass(frozen=True)
class Action:
    op: str  # broker_down, broker_up, leader_move
    broker: int
    topic: str = ""
    partition: int = -1

    def describe(self) -> str:
        if self.op == "leader_move":
            return f"move the leader of {self.topic}[{self.partition}] to broker {self.broker}"
        return f"{'stop' if self.op == 'broker_down' else 'start'} broker {self.broker}"

    def as_dict(self) -> dict:
        return {"op": self.op, "broker": self.broker, "topic": self.topic, "partition": self.partition}


class SandboxActuator:
    kind = "sandbox"

    def __init__(self, control_socket: str):
        self.control = SandboxControl(control_socket, timeout=10)

    def perform(self, action: Action) -> dict:
        try:
            if action.op == "leader_move":
                self.control.call("leader_move", topic=action.topic, partition=action.partition, broker=action.broker)
            else:
                self.control.call(action.op, broker=action.broker)
        except SandboxError as exc:
            raise ActuatorError(str(exc)) from None
        return {}


class CommandActuator:
    kind = "command"

    def __init__(self, templates: dict, brokers: dict[int, dict]):
        try:
            validate_command_templates(templates)
        except ValueError as exc:
            raise ActuatorError(f"invalid command templates: {exc}") from None
        self.templates = templates
        self.brokers = brokers
        self.timeout = templates.get("timeout_seconds", 60)

    def argv(self, action: Action) -> list[str]:
        if action.op not in COMMAND_OPS:
            raise ActuatorError(f"the command actuator cannot {action.describe()}")
        broker = self.brokers.get(action.broker)
        if broker is None:
            raise ActuatorError(f"broker {action.broker} is not in the cluster's metadata")
        # The values come from the cluster's metadata: what the cluster advertises, not what an
        # administrator typed. Checked here, at every execution, the recovery plan's included.
        values = {
            "broker": str(action.broker),
            "host": str(broker.get("host") or ""),
            "port": str(broker.get("port") or ""),
            "rack": str(broker.get("rack") or ""),
        }
        for name, value in values.items():
            if problem := placeholder_value_problem(name, value):
                raise ActuatorError(problem)
        argv = [arg.format_map(values) for arg in self.templates[action.op]]
        if argv[0].startswith("-"):
            raise ActuatorError(f"refusing to run {argv[0][:80]!r}: a program name cannot start with '-'")
        return argv

    def perform(self, action: Action) -> dict:
        argv = self.argv(action)
        started = time.monotonic()
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ActuatorError(f"{argv[0]} did not finish within {self.timeout} s") from exc
        except OSError as exc:
            raise ActuatorError(f"{argv[0]} could not be run: {exc.strerror or exc}") from None
        result = {
            "argv": argv,
            "exit_code": done.returncode,
            "command_seconds": round(time.monotonic() - started, 3),
            "output": (done.stdout + done.stderr)[-MAX_OUTPUT:],
        }
        if done.returncode != 0:
            raise ActuatorError(f"{argv[0]} exited with {done.returncode}: {result['output'][-300:]}")
        return result


class ManualActuator:
    """Each step waits for a person; `wait_for_person(description)` returns when confirmed."""

    kind = "manual"

    def __init__(self, wait_for_person: Callable[[str], dict]):
        self.wait_for_person = wait_for_person

    def perform(self, action: Action) -> dict:
        return self.wait_for_person(action.describe())


def actuator_for(cluster: Cluster, brokers: dict[int, dict], *, wait_for_person: Callable[[str], dict]):
    """The actuator the cluster is registered with, or None when it has none."""
    if cluster.actuator == ActuatorKind.SANDBOX:
        return SandboxActuator(cluster.sandbox_control)
    if cluster.actuator == ActuatorKind.COMMAND:
        return CommandActuator(cluster.actuator_commands, brokers)
    if cluster.actuator == ActuatorKind.MANUAL:
        return ManualActuator(wait_for_person)
    return None
