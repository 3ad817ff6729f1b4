import os

import pytest

from drills import kafka
from drills.sandbox.control import SandboxControl, SandboxError
from tests.conftest import start_sandbox, stop_sandbox


def test_it_runs_three_brokers_in_racks_a_b_c_with_a_controller(shared_sandbox):
    metadata = kafka.cluster_metadata(shared_sandbox.connection, timeout=5)
    assert [(b.id, b.rack) for b in metadata.brokers] == [(1, "a"), (2, "b"), (3, "c")]
    assert metadata.controller_id == 1


def test_its_probe_topic_has_a_leader_on_every_broker(shared_sandbox):
    metadata = kafka.cluster_metadata(shared_sandbox.connection, timeout=5, topic=shared_sandbox.probe_topic)
    partitions = metadata.topic_partitions(shared_sandbox.probe_topic)
    assert len(partitions) >= 3
    assert {p.leader for p in partitions} == {1, 2, 3}


def test_broker_down_and_up_through_the_control_channel(private_sandbox):
    private_sandbox.control.call("broker_down", broker=2)
    assert kafka.cluster_metadata(private_sandbox.connection, timeout=5).broker_ids == {1, 3}
    status = private_sandbox.control.call("broker_up", broker=2)
    assert [b["up"] for b in status["brokers"]] == [True, True, True]
    assert kafka.cluster_metadata(private_sandbox.connection, timeout=5).broker_ids == {1, 2, 3}


def test_leader_move_through_the_control_channel(private_sandbox):
    private_sandbox.control.call("leader_move", topic=private_sandbox.probe_topic, partition=0, broker=3)
    metadata = kafka.cluster_metadata(private_sandbox.connection, timeout=5, topic=private_sandbox.probe_topic)
    assert metadata.topic_partitions(private_sandbox.probe_topic)[0].leader == 3


@pytest.mark.parametrize(
    ("op", "params", "message"),
    [
        ("broker_down", {"broker": 9}, "broker must be one of"),
        ("broker_down", {"broker": "1"}, "broker must be one of"),
        ("broker_down", {}, "needs broker"),
        ("topic_create", {"name": "t", "partitions": 1, "replication_factor": -1}, "replication_factor"),
        ("topic_create", {"name": "bad/name", "partitions": 1, "replication_factor": 1}, "invalid topic name"),
        ("latency", {"broker": 1, "rtt_ms": -5}, "rtt_ms"),
        ("request_errors", {"api": "Produce", "errors": ["NO_SUCH_ERROR"]}, "errors must be"),
        ("explode", {}, "unknown op"),
    ],
)
def test_the_control_channel_rejects_bad_requests_and_keeps_running(shared_sandbox, op, params, message):
    with pytest.raises(SandboxError, match=message):
        shared_sandbox.control.call(op, **params)
    assert shared_sandbox.control.call("status")["bootstrap"] == shared_sandbox.bootstrap


def test_an_unreachable_control_channel_is_a_clear_error(tmp_path):
    with pytest.raises(SandboxError, match="unreachable"):
        SandboxControl(tmp_path / "nothing.sock", timeout=1).call("status")


def test_stopping_it_leaves_no_process_and_no_socket():
    cluster, directory = start_sandbox()
    pid = cluster.process.pid
    stop_sandbox(cluster, directory)
    assert cluster.process.returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not os.path.exists(cluster.control_path)


def test_it_counts_the_requests_its_brokers_receive(shared_sandbox):
    shared_sandbox.control.call("requests_track")
    kafka.cluster_metadata(shared_sandbox.connection, timeout=5)
    counts = shared_sandbox.control.call("requests_count")
    assert counts.get("Metadata", 0) >= 1
    assert counts.get("ApiVersions", 0) >= 1
