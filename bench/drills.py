"""Drill benchmark: fidelity and cost of the drill engine on a local sandbox cluster.

- RTO error: broker loss (leader broker down D seconds, no leader move), measured write RTO
  minus the confirmed outage (from the stop command's return to the start command's return),
  median of `--runs` runs for each D.
- CPU: seconds of CPU the engine's process used per second of drill, per 1,000 records/s of
  probe traffic, at two traffic rates.

    SCORECARD_MODE=demo .venv/bin/python bench/drills.py [--durations 1 3 10] [--runs 5]
"""

import argparse
import os
import resource
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SCORECARD_MODE", "demo")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # noqa: E402

django.setup()

from drills import kafka, scenarios  # noqa: E402
from drills.actuators import SandboxActuator  # noqa: E402
from drills.engine import DrillEngine, Hooks  # noqa: E402
from drills.sandbox.server import spawn  # noqa: E402
from scorecard import catalog  # noqa: E402


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_drill(state: dict, scenario: str, **params):
    connection = kafka.ConnectionSettings(state["bootstrap"])
    config = catalog.parse("drill", {"baseline_seconds": 2, "settle_seconds": 3, **params})
    metadata = kafka.cluster_metadata(connection, timeout=5, topic=config.topic)
    plan = scenarios.plan(scenario, metadata, topic=config.topic, broker=None, zone=None, move_leaders=False)
    started, cpu = time.monotonic(), cpu_seconds()
    result = DrillEngine(
        connection=connection, actuator=SandboxActuator(state["control"]), plan=plan, config=config, hooks=Hooks()
    ).run()
    return result, time.monotonic() - started, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--durations", type=float, nargs="+", default=[1, 3, 10])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cpu-only", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        process, state = spawn(Path(directory) / "state.json")
        try:
            for down in [] if args.cpu_only else args.durations:
                errors = []
                for _ in range(args.runs):
                    result, _, _ = run_drill(state, "broker_loss", fault_seconds=down)
                    f = result.figures
                    # Against the confirmed outage: the stop command's return to the start command's.
                    outage = f["recovery_at_s"] - f["fault_at_s"]
                    errors.append(float("nan") if f["write_rto_s"] is None else f["write_rto_s"] - outage)
                print(
                    f"broker down {down:g} s: write RTO error median {statistics.median(errors) * 1000:+.0f} ms "
                    f"(min {min(errors) * 1000:+.0f}, max {max(errors) * 1000:+.0f}, {args.runs} runs), "
                    f"RPO {result.figures['rpo_acked_lost']}"
                )
            for interval in (10, 2):
                result, wall, cpu = run_drill(state, "leader_change", fault_seconds=5, interval_ms=interval)
                sent = [r[2] for r in result.timeline["records"]]
                rate = len(sent) / ((max(sent) - min(sent)) / 1000)
                # CPU seconds per 1,000 records is the same number as cores per 1,000 records/s.
                print(
                    f"interval {interval} ms x 6 partitions: {rate:,.0f} records/s while sending, "
                    f"{len(sent)} records, {cpu:.2f} CPU s over {wall:.1f} s of drill (setup, traffic, "
                    f"validation): {cpu / len(sent) * 1000:.3f} cores per 1,000 records/s"
                )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(15)


if __name__ == "__main__":
    main()
