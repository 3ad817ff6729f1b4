import time

import pytest

from drills import kafka, probes
from drills.probes import AckWriteParams, ClusterHealthParams, ParamError

DEAD = kafka.ConnectionSettings("127.0.0.1:1")  # nothing listens on port 1


def health(settings, **params):
    return probes.cluster_health(settings, ClusterHealthParams.parse({"expected_brokers": 3, **params}))


def ack_write(settings, **params):
    return probes.ack_write(settings, AckWriteParams.parse(params))


def test_cluster_health_passes_on_a_healthy_sandbox(shared_sandbox):
    result = health(shared_sandbox.connection)
    assert result.status == "PASS", result.summary
    m = result.measurements
    assert (m["broker_count"], m["controller_id"], m["offline_partitions"], m["under_min_isr_partitions"]) == (
        3,
        1,
        0,
        0,
    )
    assert [b["rack"] for b in m["brokers"]] == ["a", "b", "c"]
    # The sandbox lacks DescribeConfigs: the probe says what it assumed instead of guessing silently.
    assert "does not support DescribeConfigs" in m["min_insync_replicas_source"]


def test_a_broker_down_changes_cluster_health_evidence(sandbox):
    before = health(sandbox.connection)
    sandbox.control.call("broker_down", broker=2)
    after = health(sandbox.connection)
    assert before.status == "PASS"
    assert after.status == "FAIL"
    assert after.measurements["broker_count"] == 2
    assert after.measurements["missing_broker_count"] == 1
    # Broker 2 leads some probe partitions: they are offline and named.
    assert after.measurements["offline_partitions"] >= 1
    assert all(name.startswith(sandbox.probe_topic) for name in after.measurements["offline"])
    assert after.measurements["under_replicated_partitions"] > 0
    assert "2/3 brokers" in after.summary


def test_leaderless_partitions_fail_cluster_health(sandbox):
    sandbox.control.call("topic_create", name="orphans", partitions=2, replication_factor=0)
    result = health(sandbox.connection)
    assert result.status == "FAIL"
    assert {"orphans[0]", "orphans[1]"} <= set(result.measurements["offline"])


def test_fewer_brokers_than_expected_alone_is_a_warning(shared_sandbox):
    result = health(shared_sandbox.connection, expected_brokers=4)
    assert result.status == "WARN"
    assert result.measurements["missing_broker_count"] == 1


def test_cluster_health_on_a_dead_address_is_error_within_the_timeout():
    started = time.monotonic()
    result = health(DEAD, timeout_seconds=2)
    elapsed = time.monotonic() - started
    assert result.status == "ERROR"
    assert "unreachable" in result.summary or "timed out" in result.summary
    assert elapsed < 2 + 3  # bounded by the probe's timeout, with room for client start-up


def test_acknowledged_write_passes_and_verifies_every_record(shared_sandbox):
    result = ack_write(shared_sandbox.connection, records=2000)
    m = result.measurements
    assert result.status == "PASS", result.summary
    assert (m["sent"], m["acked"], m["missing"], m["duplicates"], m["reordered"]) == (2000, 2000, 0, 0, 0)
    assert m["consumed"] == 2000
    assert len(m["partitions"]) == 6
    assert m["produce_ms_p50"] is not None and m["e2e_ms_p99"] >= m["e2e_ms_p50"]


def test_acknowledged_write_with_a_leader_down_probes_the_rest_and_warns(sandbox):
    sandbox.control.call("broker_down", broker=3)
    result = ack_write(sandbox.connection, records=600, timeout_seconds=5)
    assert result.status == "WARN", result.summary
    assert result.measurements["missing"] == 0
    assert len(result.measurements["unavailable_partitions"]) == 2


def test_acknowledged_write_on_a_dead_address_is_error_within_the_timeout():
    started = time.monotonic()
    result = ack_write(DEAD, records=10, timeout_seconds=2)
    assert result.status == "ERROR"
    assert time.monotonic() - started < 2 + 3


@pytest.mark.parametrize(
    ("parse", "params", "name"),
    [
        (ClusterHealthParams.parse, {"timeout_seconds": 0}, "timeout_seconds"),
        (ClusterHealthParams.parse, {"min_insync_replicas": -1}, "min_insync_replicas"),
        (ClusterHealthParams.parse, {"expected_brokers": "three"}, "expected_brokers"),
        (AckWriteParams.parse, {"records": 0}, "records"),
        (AckWriteParams.parse, {"records": True}, "records"),
        (AckWriteParams.parse, {"topic": "no spaces"}, "topic"),
        (AckWriteParams.parse, {"timeout_seconds": 10_000}, "timeout_seconds"),
    ],
)
def test_bad_probe_parameters_are_rejected_naming_the_parameter(parse, params, name):
    with pytest.raises(ParamError) as raised:
        parse(params)
    assert raised.value.name == name


def test_a_slow_cluster_gives_error_within_the_timeout_not_a_hung_probe(sandbox):
    for broker in (1, 2, 3):
        sandbox.control.call("latency", broker=broker, rtt_ms=8000)
    started = time.monotonic()
    result = health(sandbox.connection, timeout_seconds=2)
    assert result.status == "ERROR"
    assert "not answering" in result.summary or "timed out" in result.summary
    assert time.monotonic() - started < 2 + 3
    started = time.monotonic()
    result = ack_write(sandbox.connection, records=10, timeout_seconds=2)
    assert result.status == "ERROR"
    assert time.monotonic() - started < 2 + 3
