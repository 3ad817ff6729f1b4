"""Probe benchmark against a local sandbox cluster.

Prints seconds per probe and Kafka requests for cluster health on a cluster with many
partitions, and seconds and records verified per second for the acknowledged write.

    SCORECARD_MODE=demo .venv/bin/python bench/probes.py [--partitions 10000] [--records 5000 100000]
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SCORECARD_MODE", "demo")

from drills import kafka, probes  # noqa: E402
from drills.sandbox import SandboxControl, spawn  # noqa: E402


def timed(fn, repeat: int):
    seconds, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), min(seconds), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--records", type=int, nargs="+", default=[5_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        process, state = spawn(Path(directory) / "state.json")
        try:
            control = SandboxControl(state["control"], timeout=60)
            topics = max(1, args.partitions // 1000)
            for i in range(topics):
                control.call(
                    "topic_create", name=f"bench-{i}", partitions=args.partitions // topics, replication_factor=3
                )
            settings = kafka.ConnectionSettings(state["bootstrap"])
            params = probes.ClusterHealthParams.parse({"expected_brokers": 3, "timeout_seconds": 60})
            median, best, result = timed(lambda: probes.cluster_health(settings, params), args.repeat)
            m = result.measurements
            print(f"cluster health, {m['partition_count']} partitions: median {median:.3f} s, best {best:.3f} s, "
                  f"{m['kafka_requests']} Kafka requests, status {result.status}")  # fmt: skip
            for records in args.records:
                params = probes.AckWriteParams.parse({"records": records, "timeout_seconds": 120})
                repeat = args.repeat if records <= 10_000 else 3
                median, best, result = timed(lambda params=params: probes.ack_write(settings, params), repeat)
                m = result.measurements
                print(f"acknowledged write, {records} records: median {median:.3f} s, best {best:.3f} s, "
                      f"{records / median:,.0f} records verified/s, produce p99 {m['produce_ms_p99']} ms, "
                      f"e2e p99 {m['e2e_ms_p99']} ms, status {result.status}")  # fmt: skip
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(15)


if __name__ == "__main__":
    main()
