"""A cluster's operator command, as a command actuator calls it: `cluster_ctl.py SOCKET down|up BROKER`.

It stands for the `systemctl stop kafka@N` of a real installation: the drill knows only that
a command ran and what it returned. Here it stops and starts a sandbox broker through the
sandbox's control socket, in a process of its own.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from drills.sandbox.control import SandboxControl, SandboxError  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("down", "up") or not argv[2].isdigit():
        print("usage: cluster_ctl.py SOCKET down|up BROKER", file=sys.stderr)
        return 2
    socket_path, action, broker = argv
    try:
        SandboxControl(socket_path, timeout=5).call(f"broker_{action}", broker=int(broker))
    except SandboxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"broker {broker} {action}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
