"""Drill benchmark: fidelity and cost of the drill engine on a local sandbox cluster.

- RTO error: broker loss (leader broker down D seconds, no leader move), measured write RTO
  minus the confirmed outage (from the stop command's return to the start command's return),
  median of `--runs` runs for each D.
- CPU: seconds of CPU the engine's process used (user + system, every thread: the engine's
  and librdkafka's) per 1,000 records, over the whole drill (setup, traffic, validation), at
  6 partitions every 10 ms and every 2 ms, and on a 100-partition probe topic every 10 ms
  (10,000 records/s). CPU seconds per 1,000 records are cores per 1,000 records/s. Each
  configuration runs `--cpu-runs` times; the median is printed with the range.

    SCORECARD_MODE=demo .venv/bin/python bench/drills.py [--durations 1 3 10] [--runs 5] [--cpu-only]
        [--cpu-runs 3] [--configs 6x10 6x2 100x10]

Figures on this machine (2 cores shared with other work; CPU figures vary by 5-15 % between
runs, so compare medians), before and after the batched engine of issue 13, median of 2 runs
each, the previous code measured by this same script just before:

    6 partitions every 10 ms:    0.255 -> 0.209 CPU s per 1,000 records (fixed costs dominate)
    6 partitions every 2 ms:     0.234 -> 0.145
    100 partitions every 10 ms:  0.093 -> 0.065 (librdkafka's own threads: about 0.035)

Where the 0.065 goes at 100 partitions every 10 ms (a later pass, per thread from
/proc/self/task): the producer's librdkafka threads about 0.020 (one ProduceRequest per record:
librdkafka sends each partition's batch in its own request, and each round's records go one by
one), the live reader's about 0.008, the validation read's about 0.004; the engine's Python
threads about 0.030 (producer 0.009, reader 0.006, figures and validation read 0.012). Nagle off
and KIP-714 metrics off did not move the median beyond the noise; linger.ms with a flush after
each round cost more and still sent a request per record. Fewer requests would mean holding
records back, which changes the per-record timeline the drill measures.

The fourth drill on one sandbox (the second at 2 ms) can end "reads not recovered", before and
after alike: the mock's fetches slow down as the probe topic's log grows.
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
from drills.engine.figures import drill_failures  # noqa: E402
from drills.sandbox.control import SandboxControl  # noqa: E402
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
    parser.add_argument("--cpu-runs", type=int, default=3)
    parser.add_argument(
        "--configs", nargs="+", default=["6x10", "6x2", "100x10"], help="PARTITIONSxINTERVAL_MS to measure CPU at"
    )
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
            control = SandboxControl(state["control"], timeout=30)
            control.call("topic_create", name="probe-100", partitions=100, replication_factor=3)
            control.call("spread_leaders", name="probe-100")
            for topic, partitions, interval in (
                ("__recovery_probe", 6, 10),
                ("__recovery_probe", 6, 2),
                ("probe-100", 100, 10),
            ):
                if f"{partitions}x{interval}" not in args.configs:
                    continue
                per_thousand, rates, outcomes = [], [], []
                for _ in range(args.cpu_runs):
                    result, wall, cpu = run_drill(
                        state, "leader_change", fault_seconds=5, interval_ms=interval, topic=topic
                    )
                    sent = [r[2] for r in result.timeline["records"]]
                    rates.append(len(sent) / ((max(sent) - min(sent)) / 1000))
                    per_thousand.append(cpu / len(sent) * 1000)
                    outcomes.append(str(result.outcome))
                    if result.outcome != "passed":
                        print(f"  {result.outcome}: {drill_failures(result.figures)} {result.error}")
                # CPU seconds per 1,000 records is the same number as cores per 1,000 records/s.
                print(
                    f"interval {interval} ms x {partitions} partitions: {statistics.median(rates):,.0f} records/s "
                    f"while sending, {len(sent)} records over {wall:.1f} s of drill (setup, traffic, validation): "
                    f"median {statistics.median(per_thousand):.3f} CPU s per 1,000 records (range "
                    f"{min(per_thousand):.3f}-{max(per_thousand):.3f}, {args.cpu_runs} runs), outcomes {outcomes}"
                )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(15)


if __name__ == "__main__":
    main()
