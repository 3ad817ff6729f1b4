"""The drill engine against real sandbox clusters: fidelity of the figures it reports."""

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from drills import kafka, scenarios
from drills.actuators import Action, SandboxActuator
from drills.engine import DrillEngine, Hooks
from drills.engine.figures import drill_failures
from drills.probe_topic import probe_topic_ready
from drills.scenarios import FaultPlan
from scorecard import catalog

TOOLS = Path(__file__).resolve().parents[1] / "tools"

# Timing-sensitive (write RTO within 10 % + 0.3 s of the outage): one after another in one process.
pytestmark = pytest.mark.xdist_group("drill-fidelity")


def config(**overrides) -> SimpleNamespace:
    return catalog.parse("drill", {"baseline_seconds": 2, "settle_seconds": 3, **overrides})


def drill(cluster, scenario, on_event=None, **overrides):
    """One drill on a sandbox cluster, or on Tansu for a client fault (no actuator needed)."""
    cfg = config(**overrides)
    connection = kafka.ConnectionSettings(cluster.bootstrap)
    metadata = kafka.cluster_metadata(connection, timeout=5, topic=cfg.topic)
    plan = scenarios.plan(
        scenario, metadata, topic=cfg.topic, broker=cfg.broker, zone=cfg.zone, move_leaders=cfg.move_leaders
    )
    events = []
    engine = DrillEngine(
        connection=connection,
        actuator=SandboxActuator(cluster.control_path) if hasattr(cluster, "control_path") else None,
        plan=plan,
        config=cfg,
        hooks=Hooks(event=lambda kind, detail: (events.append(kind), on_event and on_event(kind))),
    )
    return engine.run(), events


@pytest.mark.parametrize("down_seconds", [2.0, 4.0])
def test_a_leader_broker_down_without_leader_move_gives_a_write_rto_close_to_the_outage(private_sandbox, down_seconds):
    result, events = drill(private_sandbox, "broker_loss", fault_seconds=down_seconds)
    f = result.figures
    assert result.outcome == "passed", (result.error, f)
    assert abs(f["write_rto_s"] - down_seconds) <= 0.1 * down_seconds + 0.3, f["write_rto_s"]
    assert f["rpo_acked_lost"] == 0
    # The mock cluster's disconnects can yield a duplicate out of order (DESIGN.md section 8):
    # counted, as it must be, but a quirk of the sandbox, not of the drill.
    assert f["duplicates"] <= 2 and f["reordered"] <= 2, f
    assert f["records_acked"] == f["records_sent"] > 1000
    assert f["reelection_s"] >= down_seconds * 0.9  # leaders return with the broker: nothing re-elected them
    assert events.count("action") == 2  # stop, then start
    assert all(b["up"] for b in private_sandbox.control.call("status")["brokers"])


def test_a_leader_move_alone_gives_a_write_rto_under_a_second(private_sandbox):
    result, _ = drill(private_sandbox, "leader_change", fault_seconds=2)
    f = result.figures
    assert result.outcome == "passed", (result.error, f)
    assert f["write_rto_s"] < 1.0
    assert f["rpo_acked_lost"] == 0


def test_moving_leaders_off_a_lost_broker_shortens_the_outage(private_sandbox):
    result, _ = drill(private_sandbox, "broker_loss", fault_seconds=4, move_leaders=True)
    f = result.figures
    assert f["write_rto_s"] < 2.5, f
    assert f["reelection_s"] < 2.5
    assert f["rpo_acked_lost"] == 0


def test_the_detector_finds_acknowledged_records_missing_after_injected_produce_errors(private_sandbox):
    """The sandbox's injected NOT_LEADER_OR_FOLLOWER can yield a successful delivery report
    without an offset for a record that never reached the log (DESIGN.md section 8)."""

    class InjectErrors:
        kind = "sandbox"

        def perform(self, action):
            for _ in range(10):  # spread over a second of sustained writes
                private_sandbox.control.call("request_errors", api="Produce", errors=["NOT_LEADER_OR_FOLLOWER"] * 10)
                time.sleep(0.1)
            return {}

    cfg = config(fault_seconds=2, settle_seconds=2)
    plan = FaultPlan("inject produce errors", [Action("broker_down", 1)], [])
    # The mock's quirk is only an input here, and a timing one: on a busy machine a round of
    # injected errors can miss every produce request. Up to three drills to get a lost record.
    for _ in range(3):
        result = DrillEngine(
            connection=private_sandbox.connection, actuator=InjectErrors(), plan=plan, config=cfg, hooks=Hooks()
        ).run()
        f = result.figures
        if f["rpo_acked_lost"]:
            break
    assert f["rpo_acked_lost"] >= 1, f
    assert result.outcome == "failed"
    # Every missing record is one the client was told was acknowledged, but without an offset.
    assert f["acked_without_offset"] == f["rpo_acked_lost"]
    assert sum(len(seqs) for seqs in f["missing_records"].values()) == f["rpo_acked_lost"]


def test_lag_catch_up_measures_the_catch_up(private_sandbox):
    result, _ = drill(private_sandbox, "lag_catch_up", fault_seconds=2)
    f = result.figures
    assert result.outcome == "passed", (result.error, f)
    assert f["write_rto_s"] == 0.0  # producers never noticed
    assert f["read_rto_s"] >= 1.5  # consumers did
    assert f["catch_up_records"] > 500 and f["catch_up_rate_per_s"] > 0


def test_lag_catch_up_agrees_with_separate_clients_on_the_same_backlog(private_tansu):
    """Three consumers in processes of their own pause and resume with the drill's reader and
    time the same backlog (about 10,000 records, 0.7-1.6 s). Their figures differ by up to a
    third between themselves on a busy machine (Tansu answers a fetch every 40-50 ms, and any
    client can need rounds more), so the drill's figure must lie within 20 % of their range:
    the cluster's fetch speed, where a local queue draining takes a tenth of the time. A 2 s
    latency SLO and 12 s of settling keep CPU contention from failing the drill itself (with 6 s,
    reads were once not back within the SLO for the stability window under the full suite). On Tansu,
    a real broker: the sandbox's mock answers a fetch with one record set per partition, so
    there catch-up times its request loop."""
    cfg = config()
    connection = kafka.ConnectionSettings(private_tansu.bootstrap)
    topic = probe_topic_ready(connection, name=cfg.topic, replication_factor=1, timeout=5)
    partitions = ",".join(str(p.id) for p in topic.partitions)
    tool = [sys.executable, str(TOOLS / "catch_up_reader.py"), private_tansu.bootstrap, cfg.topic, partitions]
    references = [subprocess.Popen(tool, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for _ in range(3)]

    def tell(command):
        for reference in references:
            reference.stdin.write(command + "\n")
            reference.stdin.flush()

    commands = {"reader_paused": "pause", "reader_resumed": "resume"}
    try:
        assert [r.stdout.readline().strip() for r in references] == ["ready"] * 3
        result, _ = drill(
            private_tansu,
            "lag_catch_up",
            on_event=lambda kind: kind in commands and tell(commands[kind]),
            fault_seconds=5,
            interval_ms=2,
            latency_slo_ms=2000,
            settle_seconds=12,
        )
        tell("stop")
        measured = [json.loads(r.stdout.readlines()[-1]) for r in references]
    finally:
        for reference in references:
            reference.kill()
    f = result.figures
    assert result.outcome == "passed", (result.error, drill_failures(f), f)
    for m in measured:
        assert abs(f["catch_up_records"] - m["catch_up_records"]) <= 0.02 * m["catch_up_records"], (f, m)
    low, high = min(m["catch_up_s"] for m in measured), max(m["catch_up_s"] for m in measured)
    # Three of Tansu's fetch rounds (50 ms each) either way: under the full suite's load the
    # drill's reader, sharing its process with a producer at 1,500 records/s, came out two rounds
    # slower (0.607 s against 0.44-0.50 s) and once two faster (0.348 s against 0.45-0.56 s) than
    # the lone readers. The 500 ms fetch backoff this test was written to catch adds ten.
    assert 0.8 * low - 0.15 <= f["catch_up_s"] <= 1.2 * high + 0.15, (f["catch_up_s"], measured)


def test_consumer_restart_resumes_from_the_committed_offset_without_a_gap(private_sandbox):
    result, _ = drill(private_sandbox, "consumer_restart", fault_seconds=1)
    f = result.figures
    assert result.outcome == "passed", (result.error, f)
    restart = f["consumer_restart"]
    assert restart["gap_records"] == 0
    assert restart["partitions_resumed"] == restart["partitions_committed"] > 0
    assert f["consumer_resume_s"] is not None


def test_a_zone_loss_stops_every_broker_of_the_rack_and_brings_them_back(private_sandbox):
    result, _ = drill(private_sandbox, "zone_loss", fault_seconds=1, zone="b", move_leaders=True)
    assert result.outcome == "passed", (result.error, result.figures)
    assert all(b["up"] for b in private_sandbox.control.call("status")["brokers"])


def test_a_zone_holding_every_broker_is_refused(private_sandbox):
    for broker in (1, 2, 3):
        private_sandbox.control.call("rack", broker=broker, rack="a")
    metadata = kafka.cluster_metadata(private_sandbox.connection, timeout=5, topic="__recovery_probe")
    with pytest.raises(scenarios.ScenarioError, match="every broker"):
        scenarios.plan("zone_loss", metadata, topic="__recovery_probe", broker=None, zone="a", move_leaders=False)


def cutover(primary, standby, **overrides):
    cfg = config(fault_seconds=1, canary_group="ledger", canary_topic="orders", **overrides)
    metadata = kafka.cluster_metadata(primary.connection, timeout=5, topic=cfg.topic)
    plan = scenarios.plan("standby_cutover", metadata, topic=cfg.topic, broker=None, zone=None, move_leaders=False)
    return DrillEngine(
        connection=primary.connection, actuator=None, plan=plan, config=cfg, hooks=Hooks(), standby=standby.connection
    ).run()


def seed_group(cluster, *, commit: bool):
    cluster.control.call("topic_create", name="orders", partitions=3, replication_factor=3)
    values = [(p, b"order") for _ in range(50) for p in range(3)]
    kafka.produce_values(cluster.connection, topic="orders", values=values, timeout=10)
    if commit:
        offsets = {("orders", p): 40 for p in range(3)}
        kafka.commit_offsets(cluster.connection, group="ledger", offsets=offsets, timeout=5)


def test_a_standby_cutover_resumes_the_canary_group_from_its_synced_offsets(private_sandbox, private_standby):
    seed_group(private_sandbox, commit=True)
    seed_group(private_standby, commit=True)
    result = cutover(private_sandbox, private_standby)
    group = result.figures["standby_cutover"]
    assert result.outcome == "passed", (result.error, group)
    assert group["partitions_resumed"] == group["partitions_committed"] == 3
    assert group["gap_records"] == 0
    assert group["first_offset_after_restart"] == {"0": 40, "1": 40, "2": 40}
    # A rehearsal leaves the canary group's offsets as they were on the standby.
    offsets = kafka.committed_offsets(
        private_standby.connection, group="ledger", partitions=[("orders", p) for p in range(3)], timeout=5
    )
    assert set(offsets.values()) == {40}


def test_a_standby_without_synced_offsets_fails_the_cutover(private_sandbox, private_standby):
    seed_group(private_sandbox, commit=True)
    seed_group(private_standby, commit=False)
    result = cutover(private_sandbox, private_standby)
    assert result.outcome == "failed"
    assert result.figures["standby_cutover"]["partitions_without_synced_offsets"] == [0, 1, 2]


def test_the_timeline_keeps_one_row_per_record_in_send_order_on_a_topic_of_many_partitions(private_sandbox):
    """The engine keeps records as positions in arrays (record i: partition i % width, sequence
    i // width): every record must still come back as its own row, acknowledged and read."""
    private_sandbox.control.call("topic_create", name="probe-30", partitions=30, replication_factor=3)
    private_sandbox.control.call("spread_leaders", name="probe-30")
    result, _ = drill(private_sandbox, "leader_change", fault_seconds=1, interval_ms=5, topic="probe-30")
    f, rows = result.figures, result.timeline["records"]
    assert result.outcome == "passed", (result.error, f)
    assert len(rows) == f["records_sent"] == f["records_acked"] > 30 * 500
    seqs: dict[int, list[int]] = {}
    for partition, seq, sent_ms, acked_ms, consumed_ms, error in rows:
        seqs.setdefault(partition, []).append(seq)
        assert error is None and sent_ms <= acked_ms and sent_ms <= consumed_ms
    assert sorted(seqs) == list(range(30))
    assert all(s == list(range(len(s))) for s in seqs.values())
    assert [r[2] for r in rows] == sorted(r[2] for r in rows)  # in the order the records were sent
    assert f["rpo_acked_lost"] == 0 and f["consumer_anomalies"]["counts"]["unseen"] == 0
