"""Probe benchmark against a local sandbox cluster.

Prints, for a sandbox cluster with many partitions: seconds per probe and the Kafka requests
the brokers received (counted by the sandbox itself) for cluster health and durability config,
and seconds and records verified per second for the acknowledged write.

    SCORECARD_MODE=demo .venv/bin/python bench/probes.py [--partitions 10000] [--records 5000 100000]
"""

import argparse
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("SCORECARD_MODE", "demo")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
import django  # noqa: E402

django.setup()

from drills import kafka  # noqa: E402
from drills.probes import PROBES, ProbeContext  # noqa: E402
from drills.sandbox.control import SandboxControl  # noqa: E402
from drills.sandbox.server import spawn  # noqa: E402
from scorecard import catalog  # noqa: E402


def timed(fn, repeat: int, control: SandboxControl):
    seconds, result, requests = [], None, {}
    for _ in range(repeat):
        control.call("requests_track")
        started = time.perf_counter()
        result = fn()
        seconds.append(time.perf_counter() - started)
        requests = control.call("requests_count")
    return statistics.median(seconds), min(seconds), result, requests


def describe(requests: dict) -> str:
    return f"{sum(requests.values())} requests ({', '.join(f'{k} {v}' for k, v in sorted(requests.items()))})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--records", type=int, nargs="+", default=[5_000, 100_000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--closed-port-only", action="store_true")
    args = parser.parse_args()
    closed_port()
    if args.closed_port_only:
        return

    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        process, state = spawn(Path(directory) / "state.json")
        try:
            control = SandboxControl(state["control"], timeout=60)
            topics = max(1, args.partitions // 1000)
            for i in range(topics):
                control.call(
                    "topic_create", name=f"bench-{i}", partitions=args.partitions // topics, replication_factor=3
                )
            ctx = ProbeContext(
                cluster_id=0, connection=kafka.ConnectionSettings(state["bootstrap"]), expected_brokers=3
            )

            def run(kind, **params):
                return lambda: PROBES[kind](ctx, catalog.parse(kind, params))

            median, best, result, requests = timed(run("cluster_health", timeout_seconds=60), args.repeat, control)
            m = result.measurements
            print(
                f"cluster health, {m['partition_count']} partitions: median {median:.3f} s, best {best:.3f} s, "
                f"{describe(requests)}, status {result.status}"
            )

            median, best, result, requests = timed(run("durability_config", timeout_seconds=60), args.repeat, control)
            print(
                f"durability config, sandbox (no DescribeConfigs): median {median:.3f} s, {describe(requests)}, "
                f"status {result.status}: {result.summary[:60]}"
            )
            # A cluster that answers DescribeConfigs: the answers are supplied at the seam, so this
            # measures metadata plus the probe's own evaluation of every topic.
            good = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
            with (
                mock.patch.object(kafka, "topic_configs", lambda s, topics, timeout: {t: good for t in topics}),
                mock.patch.object(
                    kafka,
                    "broker_configs",
                    lambda s, ids, timeout: {i: {**good, "default.replication.factor": "3"} for i in ids},
                ),
            ):
                median, best, result, requests = timed(
                    run("durability_config", timeout_seconds=60), args.repeat, control
                )
            print(
                f"durability config, configs supplied, {result.measurements['topics_checked']} topics: "
                f"median {median:.3f} s, best {best:.3f} s, {describe(requests)} to the cluster, "
                f"status {result.status}"
            )

            for records in args.records:
                repeat = args.repeat if records <= 10_000 else 3
                median, best, result, requests = timed(
                    run("ack_write", records=records, timeout_seconds=50), repeat, control
                )
                m = result.measurements
                print(
                    f"acknowledged write, {records} records: median {median:.3f} s, best {best:.3f} s, "
                    f"{records / median:,.0f} records verified/s, produce p99 {m['produce_ms_p99']} ms, "
                    f"e2e p99 {m['e2e_ms_p99']} ms, {sum(requests.values())} requests, "
                    f"status {result.status}"
                )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(15)


def closed_port() -> None:
    """Time to ERROR when nothing listens on the bootstrap port, per probe (timeouts at 30 s)."""
    from drills.probes import probe_run
    from scorecard.models import Check, Cluster, Row, Scorecard

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    cluster = Cluster(name="closed", bootstrap_servers=f"127.0.0.1:{port}")
    row = Row(scorecard=Scorecard(cluster=cluster))
    for kind in ("cluster_health", "durability_config", "ack_write", "consumer_groups", "client_compatibility",
                 "standby_parity", "cost_model", "bootstrap_endpoints"):  # fmt: skip
        params = {**catalog.defaults(kind), "timeout_seconds": 30}
        if kind == "consumer_groups":
            params["groups"] = ["ledger"]
        started = time.perf_counter()
        result = probe_run(Check(row=row, kind=kind, params=params))
        print(f"closed port, {kind}: {result.status} in {time.perf_counter() - started:.3f} s: {result.summary[:70]}")


if __name__ == "__main__":
    main()
