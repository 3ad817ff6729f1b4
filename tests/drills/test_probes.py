import dataclasses
import socket
import time

import pytest

from drills import kafka
from drills.probes import probe_run
from scorecard import catalog
from tests.factories import check_of, probe, register

DEAD = kafka.ConnectionSettings("127.0.0.1:1")  # nothing listens on port 1


def health(settings, **params):
    return probe("cluster_health", settings, **{"expected_brokers": 3, **params})


def ack_write(settings, **params):
    return probe("ack_write", settings, **params)


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
    assert m["under_assumed_min_isr_partitions"] == 0


def test_a_broker_down_changes_cluster_health_evidence(private_sandbox):
    before = health(private_sandbox.connection)
    private_sandbox.control.call("broker_down", broker=2)
    after = health(private_sandbox.connection)
    assert before.status == "PASS"
    assert after.status == "FAIL"
    assert after.measurements["broker_count"] == 2
    assert after.measurements["missing_broker_count"] == 1
    # Broker 2 leads some probe partitions: they are offline and named.
    assert after.measurements["offline_partitions"] >= 1
    assert all(name.startswith(private_sandbox.probe_topic) for name in after.measurements["offline"])
    assert after.measurements["under_replicated_partitions"] > 0
    assert "2/3 brokers" in after.summary


def test_leaderless_partitions_fail_cluster_health(private_sandbox):
    private_sandbox.control.call("topic_create", name="orphans", partitions=2, replication_factor=0)
    result = health(private_sandbox.connection)
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


def test_acknowledged_write_with_a_leader_down_probes_the_rest_and_warns(private_sandbox):
    private_sandbox.control.call("broker_down", broker=3)
    result = ack_write(private_sandbox.connection, records=600, timeout_seconds=5)
    assert result.status == "WARN", result.summary
    assert result.measurements["missing"] == 0
    assert len(result.measurements["unavailable_partitions"]) == 2


def test_acknowledged_write_on_a_dead_address_is_error_within_the_timeout():
    started = time.monotonic()
    result = ack_write(DEAD, records=10, timeout_seconds=2)
    assert result.status == "ERROR"
    assert time.monotonic() - started < 2 + 3


@pytest.mark.parametrize(
    ("kind", "params", "name"),
    [
        ("cluster_health", {"timeout_seconds": 0}, "timeout_seconds"),
        ("cluster_health", {"min_insync_replicas": -1}, "min_insync_replicas"),
        ("cluster_health", {"expected_brokers": "three"}, "expected_brokers"),
        ("cluster_health", {"surprise": 1}, "surprise"),
        ("ack_write", {"records": 0}, "records"),
        ("ack_write", {"records": True}, "records"),
        ("ack_write", {"topic": "no spaces"}, "topic"),
        ("ack_write", {"timeout_seconds": 10_000}, "timeout_seconds"),
        ("durability_config", {"min_replication_factor": -3}, "min_replication_factor"),
        ("consumer_groups", {"groups": ["ok", "not ok"]}, "groups"),
        ("consumer_groups", {"max_lag_seconds": -1}, "max_lag_seconds"),
        ("client_compatibility", {"features": ["telepathy"]}, "features"),
        ("cost_model", {"monthly_budget": "a lot"}, "monthly_budget"),
        ("cost_model", {"price_cross_zone_gb": float("nan")}, "price_cross_zone_gb"),
        ("drill_cadence", {"window_days": 0}, "window_days"),
    ],
)
def test_bad_probe_parameters_are_rejected_naming_the_parameter(kind, params, name):
    with pytest.raises(catalog.ParamError) as raised:
        catalog.parse(kind, params)
    assert name in raised.value.errors


def test_a_slow_cluster_gives_error_within_the_timeout_not_a_hung_probe(private_sandbox):
    for broker in (1, 2, 3):
        private_sandbox.control.call("latency", broker=broker, rtt_ms=8000)
    started = time.monotonic()
    result = health(private_sandbox.connection, timeout_seconds=2)
    assert result.status == "ERROR"
    assert "not answering" in result.summary or "timed out" in result.summary
    assert time.monotonic() - started < 2 + 3
    started = time.monotonic()
    result = ack_write(private_sandbox.connection, records=10, timeout_seconds=2)
    assert result.status == "ERROR"
    assert time.monotonic() - started < 2 + 3


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kind",
    ["cluster_health", "durability_config", "ack_write", "consumer_groups", "client_compatibility", "cost_model"],
)
def test_a_closed_port_is_error_naming_the_refusal_without_waiting_the_timeout(kind):
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    check = check_of(register(name=f"closed-{kind}", bootstrap=f"127.0.0.1:{port}"), kind)
    check.params = (
        {**check.params, "timeout_seconds": 30, "groups": ["ledger"]}
        if kind == "consumer_groups"
        else {
            **check.params,
            "timeout_seconds": 30,
        }
    )
    started = time.monotonic()
    result = probe_run(check)
    assert result.status == "ERROR"
    assert f"127.0.0.1:{port}: connection refused" in result.summary
    assert time.monotonic() - started < 30  # the refusal, not the 30 s timeout, ended it


@pytest.fixture
def no_create_topics(monkeypatch, shared_sandbox):
    """A customer's cluster that neither auto-creates topics nor offers CreateTopics (the
    sandbox auto-creates on a metadata request, so the seam answers as that cluster would)."""
    real = kafka.cluster_metadata

    def without_topic(connection, *, timeout, topic=None, **kwargs):
        answer = real(connection, timeout=timeout, **kwargs)
        return dataclasses.replace(answer, partitions=())

    def refuse(*args, **kwargs):
        raise kafka.UnsupportedApi("CreateTopics")

    monkeypatch.setattr(kafka, "cluster_metadata", without_topic)
    monkeypatch.setattr(kafka, "topic_create", refuse)
    return shared_sandbox


def test_a_missing_probe_topic_the_cluster_will_not_create_is_error_naming_what_to_create(no_create_topics):
    result = probe("ack_write", no_create_topics.connection, records=10)
    assert result.status == "ERROR"
    assert "create the probe topic __recovery_probe with 3 partitions and replication factor 3" in result.summary


def test_a_drill_without_its_probe_topic_names_what_to_create(no_create_topics):
    from drills.actuators import SandboxActuator
    from drills.engine import DrillEngine, Hooks
    from drills.scenarios import FaultPlan

    config = catalog.parse("drill", {"baseline_seconds": 1, "fault_seconds": 1})
    with pytest.raises(kafka.KafkaCallError, match="create the probe topic __recovery_probe with 3 partitions"):
        DrillEngine(
            connection=no_create_topics.connection,
            actuator=SandboxActuator(no_create_topics.control_path),
            plan=FaultPlan("nothing", scenario="broker_loss"),
            config=config,
            hooks=Hooks(),
        ).run()


def test_a_probe_topic_whose_leaders_miss_a_broker_warns(shared_sandbox):
    shared_sandbox.control.call("topic_create", name="lopsided-probe", partitions=1, replication_factor=3)
    result = probe("ack_write", shared_sandbox.connection, topic="lopsided-probe", records=50)
    assert result.status == "WARN", result.summary
    topic = result.measurements["probe_topic"]
    assert topic["partitions"] == 1 and len(topic["leaders"]) == 1
    assert any("lead no partition" in problem for problem in topic["problems"])


# --- big clusters ------------------------------------------------------------------------------


def test_cluster_health_counts_every_partition_of_many_topics_and_names_only_the_offline(private_sandbox):
    for i in range(20):
        private_sandbox.control.call("topic_create", name=f"big-{i}", partitions=500, replication_factor=3)
    private_sandbox.control.call("topic_create", name="orphans", partitions=3, replication_factor=0)
    result = health(private_sandbox.connection)
    m = result.measurements
    probe_partitions = 6
    assert m["partition_count"] == 20 * 500 + 3 + probe_partitions
    assert m["topic_count"] == 22
    assert m["offline_partitions"] == 3 and m["offline"] == ["orphans[0]", "orphans[1]", "orphans[2]"]
    assert m["under_replicated_partitions"] == 0 and m["under_min_isr_partitions"] == 0
    assert result.status == "FAIL"


def test_durability_config_judges_each_of_many_topics_by_its_own_replicas(private_sandbox, monkeypatch):
    """A cluster that answers DescribeConfigs (the sandbox does not: its answers are supplied at
    the seam); among forty topics of replication factor 3, the one of factor 1 is the violation."""
    for i in range(40):
        private_sandbox.control.call("topic_create", name=f"big-{i}", partitions=50, replication_factor=3)
    private_sandbox.control.call("topic_create", name="single-copy", partitions=50, replication_factor=1)
    good = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
    monkeypatch.setattr(kafka, "topic_configs", lambda settings, topics, timeout: {t: good for t in topics})
    monkeypatch.setattr(
        kafka,
        "broker_configs",
        lambda settings, ids, timeout: {i: {**good, "default.replication.factor": "3"} for i in ids},
    )
    result = probe("durability_config", private_sandbox.connection)
    m = result.measurements
    assert m["topics_checked"] == 41  # the probe topic is internal: not judged
    assert [v["topic"] for v in m["violations"]] == ["single-copy"]
    assert m["violations"][0]["replication_factor"] == 1
    assert result.status == "FAIL"
