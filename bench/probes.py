"""Probe benchmark against a local sandbox cluster.

Prints, for sandbox clusters with many partitions (10,000, then 200,000: topics of 1,000
partitions each, the sandbox's mock takes both): seconds (wall and process CPU) per probe, the
peak RSS of the probe's process, and the Kafka requests the brokers received (counted by the
sandbox itself) for cluster health and durability config. Each of those runs in a process of
its own (Django loaded, as in a worker), so its peak RSS is the probe's and nothing else's.

For the acknowledged write: seconds, process CPU and records verified per second at each size,
the marginal rate between the two largest sizes (what one more record costs, without the
producer's fixed start-up: the idempotent producer waits about 0.5 s for its id on the
sandbox), and the throughput of the verification step alone on synthetic records.

    SCORECARD_MODE=demo .venv/bin/python bench/probes.py [--partitions 10000 200000]
        [--records 5000 100000 300000] [--repeat 3]

Figures before and after the batching of issue 13 (this machine, 2 cores shared with other
work; median of 3; before = the previous code under this same script, run just before):

    cluster health, 200,000 partitions:      2.48 s, CPU 2.39 s, peak RSS 282 MB
                                         ->  1.63 s, CPU 1.52 s, peak RSS 231 MB
    durability config, configs supplied:     3.61 s, CPU 3.56 s, peak RSS 263 MB
                                         ->  1.45 s, CPU 1.35 s, peak RSS 230 MB
    verification alone, 1,000,000 records:   182,000 -> 903,000 records verified/s
    acknowledged write, 100,000 records:     4.71 s, CPU 3.73 s (21,000/s) -> 2.55 s, CPU 1.54 s (39,000/s)
    acknowledged write, 300,000 records:     13.3 s, CPU 11.7 s (22,500/s) -> 8.27 s, CPU 4.51 s (36,000/s)

(With the previous script, in-process: cluster health 3.90 s and durability 8.16 s on 200,000
partitions; the process's peak RSS 319 MB.) Wall figures vary by 20-40 % with the machine's
load, CPU figures by about 10 %.
"""

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
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
from drills.verify import verify_sequences  # noqa: E402
from scorecard import catalog  # noqa: E402

TOPIC_PARTITIONS = 1000
GOOD_CONFIG = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec from
    the parent that forked, so a child of a big parent would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(fn, repeat: int, control: SandboxControl):
    seconds, cpu, result, requests = [], [], None, {}
    for _ in range(repeat):
        control.call("requests_track")
        started, used = time.perf_counter(), cpu_seconds()
        result = fn()
        seconds.append(time.perf_counter() - started)
        cpu.append(cpu_seconds() - used)
        requests = control.call("requests_count")
    return statistics.median(seconds), min(seconds), statistics.median(cpu), result, requests


def describe(requests: dict) -> str:
    return f"{sum(requests.values())} requests ({', '.join(f'{k} {v}' for k, v in sorted(requests.items()))})"


def child(args) -> None:
    """One probe in this fresh process: timings, CPU and peak RSS as one JSON line."""
    control = SandboxControl(args.control, timeout=60)
    ctx = ProbeContext(cluster_id=0, connection=kafka.ConnectionSettings(args.bootstrap), expected_brokers=3)
    kind = args.child

    def run():
        return PROBES[kind](ctx, catalog.parse(kind, {"timeout_seconds": 60}))

    rss_before = peak_rss_mb()
    if args.configs:
        # A cluster that answers DescribeConfigs: the answers are supplied at the seam, so this
        # measures metadata plus the probe's own evaluation of every topic.
        with (
            mock.patch.object(kafka, "topic_configs", lambda s, topics, timeout: {t: GOOD_CONFIG for t in topics}),
            mock.patch.object(
                kafka,
                "broker_configs",
                lambda s, ids, timeout: {i: {**GOOD_CONFIG, "default.replication.factor": "3"} for i in ids},
            ),
        ):
            median, best, cpu, result, requests = timed(run, args.repeat, control)
    else:
        median, best, cpu, result, requests = timed(run, args.repeat, control)
    m = result.measurements
    print(
        json.dumps(
            {
                "median": median,
                "best": best,
                "cpu": cpu,
                "rss_before": rss_before,
                "rss_peak": peak_rss_mb(),
                "requests": describe(requests),
                "status": result.status,
                "summary": result.summary,
                "partitions": m.get("partition_count"),
                "topics": m.get("topics_checked"),
            }
        )
    )


def in_own_process(kind: str, state: dict, repeat: int, *, configs: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", kind, "--bootstrap", state["bootstrap"]]
    command += ["--control", state["control"], "--repeat", str(repeat)] + (["--configs"] if configs else [])
    answer = subprocess.run(command, capture_output=True, text=True, timeout=900, check=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])


def big_cluster(state: dict, partitions: int, repeat: int) -> None:
    for kind, configs, label in (
        ("cluster_health", False, "cluster health"),
        ("durability_config", False, "durability config, sandbox (no DescribeConfigs)"),
        ("durability_config", True, "durability config, configs supplied"),
    ):
        r = in_own_process(kind, state, repeat, configs=configs)
        size = (
            f" ({r['partitions']} partitions)" if r["partitions"] else f" ({r['topics']} topics)" if r["topics"] else ""
        )
        print(
            f"{label}, {partitions:,} partitions{size}: median {r['median']:.3f} s, best {r['best']:.3f} s, "
            f"CPU {r['cpu']:.3f} s, peak RSS {r['rss_peak']:.0f} MB ({r['rss_before']:.0f} MB before the "
            f"probe), {r['requests']}, status {r['status']}: {r['summary'][:60]}"
        )


def verification_rate(records: int = 1_000_000, partitions: int = 6) -> None:
    """The verification step alone: delivery reports against records read back."""
    deliveries = [(seq % partitions, seq, True) for seq in range(records)]
    consumed = [(seq % partitions, seq // partitions, seq) for seq in range(records)]
    started, used = time.perf_counter(), cpu_seconds()
    verdict = verify_sequences(deliveries=deliveries, consumed=consumed)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - used
    assert verdict.total("missing") == 0 and verdict.total("consumed") == records
    print(
        f"verification alone, {records:,} records: {seconds:.3f} s, CPU {cpu:.3f} s, "
        f"{records / seconds:,.0f} records verified/s"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--partitions", type=int, nargs="+", default=[10_000, 200_000])
    parser.add_argument("--records", type=int, nargs="+", default=[5_000, 100_000, 300_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--closed-port-only", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--control", help=argparse.SUPPRESS)
    parser.add_argument("--configs", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    closed_port()
    if args.closed_port_only:
        return
    verification_rate()

    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        process, state = spawn(Path(directory) / "state.json")
        try:
            control = SandboxControl(state["control"], timeout=60)
            topics = 0
            for partitions in sorted(args.partitions):
                started = time.perf_counter()
                while topics < max(1, partitions // TOPIC_PARTITIONS):
                    control.call(
                        "topic_create", name=f"bench-{topics}", partitions=TOPIC_PARTITIONS, replication_factor=3
                    )
                    topics += 1
                took = time.perf_counter() - started
                print(f"sandbox: {topics} topics of {TOPIC_PARTITIONS} partitions (created in {took:.1f} s)")
                big_cluster(state, partitions, args.repeat)

            ctx = ProbeContext(
                cluster_id=0, connection=kafka.ConnectionSettings(state["bootstrap"]), expected_brokers=3
            )
            rates = {}
            for records in args.records:
                repeat = args.repeat if records <= 10_000 else 3
                median, best, cpu, result, requests = timed(
                    lambda n=records: PROBES["ack_write"](
                        ctx, catalog.parse("ack_write", {"records": n, "timeout_seconds": 50})
                    ),
                    repeat,
                    control,
                )
                m = result.measurements
                rates[records] = median
                print(
                    f"acknowledged write, {records} records: median {median:.3f} s, best {best:.3f} s, "
                    f"CPU {cpu:.3f} s, {records / median:,.0f} records verified/s, producer init "
                    f"{m['producer_init_ms']} ms, produce p99 {m['produce_ms_p99']} ms, "
                    f"e2e p99 {m['e2e_ms_p99']} ms, {sum(requests.values())} requests, status {result.status}"
                )
            if len(rates) >= 2:
                small, large = sorted(rates)[-2:]
                print(
                    f"acknowledged write, marginal rate {small}->{large} records: "
                    f"{(large - small) / max(1e-9, rates[large] - rates[small]):,.0f} records verified/s"
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
