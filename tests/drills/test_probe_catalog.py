"""Every probe of the catalog against the local clusters: one case that passes, one the
cluster is made to fail. Where neither local cluster implements an API (DescribeConfigs
with entries), a customer's cluster is simulated by patching the Kafka seam only."""

import threading
import time
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from drills import kafka
from drills.models import DrillRun
from scorecard import catalog
from tests.conftest import wait_for
from tests.factories import probe, register

DEAD = "127.0.0.1:1"


def fill(connection, topic: str, *, partitions: int, per_partition: int, size: int = 100) -> None:
    values = [(p, b"x" * size) for _ in range(per_partition) for p in range(partitions)]
    assert kafka.produce_values(connection, topic=topic, values=values, timeout=10) == len(values)


def ends(connection, topic, partitions):
    offsets, _ = kafka.list_offsets(connection, [(topic, p) for p in range(partitions)], timeout=5)
    return offsets


# --- durability config ---------------------------------------------------------------------


def test_durability_config_names_the_missing_api_on_the_sandbox(shared_sandbox):
    result = probe("durability_config", shared_sandbox.connection)
    assert result.status == "ERROR"
    assert result.measurements["missing_api"] == "DescribeConfigs"


def test_durability_config_on_tansu_which_answers_with_no_entries_is_error_naming_the_api(shared_tansu):
    kafka.topic_create(
        kafka.ConnectionSettings(shared_tansu.bootstrap), name="ledger", partitions=1, replication_factor=1, timeout=5
    )
    result = probe("durability_config", kafka.ConnectionSettings(shared_tansu.bootstrap))
    assert result.status == "ERROR"
    assert result.measurements["missing_api"] == "DescribeConfigs"
    assert "no config entries" in result.summary


@pytest.fixture
def customer_configs(monkeypatch):
    """A cluster that reports its configs: metadata stays real, DescribeConfigs answers are given."""
    answers = {"topics": {}, "broker": {}}
    monkeypatch.setattr(
        kafka, "topic_configs", lambda s, topics, timeout: {t: answers["topics"].get(t, {}) for t in topics}
    )
    monkeypatch.setattr(kafka, "broker_configs", lambda s, ids, timeout: {i: answers["broker"] for i in ids})
    return answers


GOOD = {"min.insync.replicas": "2", "unclean.leader.election.enable": "false"}
GOOD_BROKER = {**GOOD, "default.replication.factor": "3"}


def test_durability_config_passes_when_every_topic_meets_the_policy(private_sandbox, customer_configs):
    private_sandbox.control.call("topic_create", name="payments", partitions=3, replication_factor=3)
    customer_configs["topics"] = {"payments": GOOD}
    customer_configs["broker"] = GOOD_BROKER
    result = probe("durability_config", private_sandbox.connection)
    assert result.status == "PASS", result.summary
    assert result.measurements["topics_checked"] == 1


def test_durability_config_lists_every_violating_topic(private_sandbox, customer_configs):
    private_sandbox.control.call("topic_create", name="payments", partitions=3, replication_factor=3)
    private_sandbox.control.call("topic_create", name="clicks", partitions=2, replication_factor=1)
    private_sandbox.control.call("topic_create", name="audit", partitions=1, replication_factor=3)
    customer_configs["topics"] = {
        "payments": GOOD,
        "clicks": GOOD,
        "audit": {"min.insync.replicas": "3", "unclean.leader.election.enable": "true"},
    }
    customer_configs["broker"] = {**GOOD_BROKER, "min.insync.replicas": "1"}
    result = probe("durability_config", private_sandbox.connection)
    assert result.status == "FAIL"
    by_topic = {v["topic"]: v["problems"] for v in result.measurements["violations"]}
    assert set(by_topic) == {"clicks", "audit"}
    assert any("replication factor 1 < 3" in p for p in by_topic["clicks"])
    assert any("unclean.leader.election.enable is true" in p for p in by_topic["audit"])
    assert any(">= replication factor 3" in p for p in by_topic["audit"])
    assert result.measurements["broker_violations"]


# --- bootstrap endpoints -------------------------------------------------------------------


def test_bootstrap_endpoints_pass_when_every_address_answers(shared_sandbox, shared_tansu):
    for bootstrap, count in ((shared_sandbox.bootstrap, 3), (shared_tansu.bootstrap, 1)):
        result = probe("bootstrap_endpoints", kafka.ConnectionSettings(bootstrap))
        assert result.status == "PASS", result.summary
        assert result.measurements["alive"] == count
        assert all(
            e["connect_ms"] is not None and e["metadata_ms"] is not None for e in result.measurements["endpoints"]
        )


def test_one_dead_bootstrap_address_warns_and_none_alive_fails(shared_sandbox):
    result = probe("bootstrap_endpoints", kafka.ConnectionSettings(f"{shared_sandbox.bootstrap},{DEAD}"))
    assert result.status == "WARN"
    assert result.measurements["dead"] == 1
    assert DEAD in result.measurements["findings"][0]
    result = probe("bootstrap_endpoints", kafka.ConnectionSettings(f"{DEAD},127.0.0.1:2"), timeout_seconds=2)
    assert result.status == "FAIL"


def test_a_broker_down_shows_as_a_dead_bootstrap_address(private_sandbox):
    private_sandbox.control.call("broker_down", broker=2)
    result = probe("bootstrap_endpoints", private_sandbox.connection, timeout_seconds=2)
    assert result.status == "WARN"
    assert result.measurements["dead"] == 1


# --- consumer groups -----------------------------------------------------------------------


def test_consumer_groups_pass_for_a_group_caught_up_inside_retention(private_sandbox):
    private_sandbox.control.call("topic_create", name="orders", partitions=3, replication_factor=3)
    fill(private_sandbox.connection, "orders", partitions=3, per_partition=100)
    offsets = {("orders", p): o for (_, p), o in ends(private_sandbox.connection, "orders", 3).items()}
    kafka.commit_offsets(private_sandbox.connection, group="ledger", offsets=offsets, timeout=5)
    result = probe("consumer_groups", private_sandbox.connection, groups=["ledger"])
    assert result.status == "PASS", result.summary
    group = result.measurements["groups"][0]
    assert group["committed_partitions"] == 3 and group["total_lag"] == 0


def test_a_committed_offset_below_the_log_start_fails_consumer_groups(private_sandbox):
    private_sandbox.control.call("topic_create", name="orders", partitions=1, replication_factor=3)
    fill(private_sandbox.connection, "orders", partitions=1, per_partition=10)
    kafka.commit_offsets(private_sandbox.connection, group="ledger", offsets={("orders", 0): 5}, timeout=5)
    # The sandbox keeps about 5 MB per partition: 7 MB more moves the log start past offset 5.
    fill(private_sandbox.connection, "orders", partitions=1, per_partition=7000, size=1000)
    result = probe("consumer_groups", private_sandbox.connection, groups=["ledger"], max_lag_records=10**9)
    assert result.status == "FAIL"
    group = result.measurements["groups"][0]
    assert group["partitions_below_log_start"] == ["orders[0]"]
    assert "silent reset" in result.summary
    assert group["partitions"][0]["lag_seconds"] >= 0


def test_lag_over_the_threshold_warns_with_records_and_seconds(private_sandbox):
    private_sandbox.control.call("topic_create", name="orders", partitions=1, replication_factor=3)
    fill(private_sandbox.connection, "orders", partitions=1, per_partition=500)
    kafka.commit_offsets(private_sandbox.connection, group="ledger", offsets={("orders", 0): 100}, timeout=5)
    time.sleep(1.1)
    result = probe(
        "consumer_groups", private_sandbox.connection, groups=["ledger"], max_lag_records=50, max_lag_seconds=0.5
    )
    assert result.status == "WARN"
    group = result.measurements["groups"][0]
    assert group["max_lag"] == 400
    assert group["max_lag_seconds"] >= 1


def test_a_group_without_committed_offsets_fails(shared_sandbox):
    result = probe("consumer_groups", shared_sandbox.connection, groups=["never-consumed"])
    assert result.status == "FAIL"
    assert "never-consumed: no committed offset" in result.summary


def test_consumer_groups_without_configured_groups_is_an_error_saying_what_to_do(shared_sandbox):
    result = probe("consumer_groups", shared_sandbox.connection)
    assert result.status == "ERROR"
    assert "no critical consumer groups configured" in result.summary


def test_consumer_groups_on_tansu(private_tansu):
    connection = kafka.ConnectionSettings(private_tansu.bootstrap)
    kafka.topic_create(connection, name="orders", partitions=1, replication_factor=1, timeout=5)
    fill(connection, "orders", partitions=1, per_partition=20)
    kafka.commit_offsets(connection, group="ledger", offsets={("orders", 0): 1}, timeout=5)
    result = probe("consumer_groups", connection, groups=["ledger"])
    assert result.status in ("PASS", "WARN"), result.summary
    assert result.measurements["groups"][0]["committed_partitions"] == 1


# --- client compatibility ------------------------------------------------------------------


def test_client_compatibility_passes_on_the_sandbox_and_tansu(shared_sandbox, shared_tansu):
    for bootstrap in (shared_sandbox.bootstrap, shared_tansu.bootstrap):
        result = probe("client_compatibility", kafka.ConnectionSettings(bootstrap))
        assert result.status == "PASS", result.summary
        assert result.measurements["features_supported"] == ["consumer_groups", "idempotent_producer", "transactions"]
    # The sandbox lacks the APIs some probes need; the evidence names them.
    sandbox_result = probe("client_compatibility", shared_sandbox.connection)
    assert "DescribeConfigs" in sandbox_result.measurements["apis_lacking_for_probes"]


def test_a_withdrawn_api_fails_client_compatibility_naming_it(private_sandbox):
    private_sandbox.control.call("api_version", api="InitProducerId", min_version=-1, max_version=-1)
    result = probe(
        "client_compatibility", private_sandbox.connection, features=["idempotent_producer", "consumer_groups"]
    )
    assert result.status == "FAIL"
    assert {g["api"] for g in result.measurements["gaps"]} == {"InitProducerId"}
    assert result.measurements["features_supported"] == ["consumer_groups"]
    assert "InitProducerId" in result.summary


# --- standby parity ------------------------------------------------------------------------


def mirror(primary, standby, *, records: int):
    for cluster in (primary, standby):
        cluster.control.call("topic_create", name="orders", partitions=3, replication_factor=3)
        fill(cluster.connection, "orders", partitions=3, per_partition=records)
        offsets = {key: o - 10 for key, o in ends(cluster.connection, "orders", 3).items()}
        kafka.commit_offsets(cluster.connection, group="ledger", offsets=offsets, timeout=5)


def test_standby_parity_finds_no_gap_between_clusters_that_agree(private_sandbox, private_standby):
    mirror(private_sandbox, private_standby, records=100)
    result = probe("standby_parity", private_sandbox.connection, standby=private_standby.connection, groups=["ledger"])
    m = result.measurements
    assert (m["missing_topics"], m["partition_count_mismatch"], m["group_offset_gaps"]) == ([], [], [])
    assert m["replication_lag_records"] == 0
    assert len(m["group_offsets"]) == 3
    # The sandbox has no DescribeConfigs or ACL API: parity of those is reported unverified, not assumed.
    assert result.status == "WARN"
    assert [u.split(":")[0] for u in m["unverified"]] == ["durability configs", "ACLs"]


def test_standby_parity_fails_when_the_standby_falls_behind_and_misses_a_topic(private_sandbox, private_standby):
    mirror(private_sandbox, private_standby, records=100)
    private_sandbox.control.call("topic_create", name="refunds", partitions=2, replication_factor=3)
    fill(private_sandbox.connection, "orders", partitions=3, per_partition=500)
    offsets = {key: o for key, o in ends(private_sandbox.connection, "orders", 3).items()}
    kafka.commit_offsets(private_sandbox.connection, group="ledger", offsets=offsets, timeout=5)
    result = probe("standby_parity", private_sandbox.connection, standby=private_standby.connection, groups=["ledger"])
    m = result.measurements
    assert result.status == "FAIL"
    assert m["missing_topics"] == ["refunds"]
    assert len(m["group_offset_gaps"]) == 3 and all(g["gap"] == 510 for g in m["group_offset_gaps"])
    assert m["replication_lag_records"] == 1500


def test_standby_parity_without_a_standby_says_so(shared_sandbox):
    result = probe("standby_parity", shared_sandbox.connection)
    assert result.status == "ERROR" and "no standby" in result.summary


# --- drill cadence -------------------------------------------------------------------------


def passed_drill(cluster, scenario, *, days_ago=1, manual_steps=0, guardrails=True):
    finished = timezone.now() - timedelta(days=days_ago)
    return DrillRun.objects.create(
        cluster=cluster,
        scenario=scenario,
        state=DrillRun.State.DONE,
        outcome=DrillRun.Outcome.PASSED,
        manual_steps=manual_steps,
        guardrails={"max_duration_s": 300} if guardrails else {},
        requested_by="t",
        started_at=finished - timedelta(minutes=5),
        finished_at=finished,
    )


@pytest.mark.django_db
def test_drill_cadence_fails_without_recent_passing_drills_and_passes_with_them():
    cluster = register().cluster
    scenarios = ["broker_loss", "leader_change"]
    result = probe("drill_cadence", None, cluster_id=cluster.pk, scenarios=scenarios)
    assert result.status == "FAIL"
    assert "Broker loss, Leader change" in result.summary
    passed_drill(cluster, "broker_loss", days_ago=45)
    passed_drill(cluster, "leader_change")
    result = probe("drill_cadence", None, cluster_id=cluster.pk, scenarios=scenarios)
    assert result.status == "FAIL" and "Broker loss" in result.summary and "Leader change" not in result.summary
    passed_drill(cluster, "broker_loss", days_ago=2)
    assert probe("drill_cadence", None, cluster_id=cluster.pk, scenarios=scenarios).status == "PASS"


@pytest.mark.django_db
def test_drill_cadence_warns_about_manual_steps_and_missing_guardrails():
    cluster = register().cluster
    passed_drill(cluster, "broker_loss", manual_steps=2)
    passed_drill(cluster, "leader_change", guardrails=False)
    result = probe("drill_cadence", None, cluster_id=cluster.pk, scenarios=["broker_loss", "leader_change"])
    assert result.status == "WARN"
    assert any("manual steps" in f for f in result.measurements["findings"])
    assert any("without guardrails" in f for f in result.measurements["findings"])


# --- cost model ----------------------------------------------------------------------------


def produce_while(connection, stop: threading.Event):
    while not stop.is_set():
        kafka.produce_values(connection, topic="orders", values=[(p, b"y" * 500) for p in range(3)] * 50, timeout=5)
        time.sleep(0.05)


def test_cost_model_prices_measured_cross_zone_traffic_and_shows_the_arithmetic(private_sandbox):
    private_sandbox.control.call("topic_create", name="orders", partitions=3, replication_factor=3)
    stop = threading.Event()
    producer = threading.Thread(target=produce_while, args=(private_sandbox.connection, stop), daemon=True)
    producer.start()
    try:
        result = probe("cost_model", private_sandbox.connection, sample_seconds=2, monthly_budget=100_000.0)
        tight = probe("cost_model", private_sandbox.connection, sample_seconds=1, monthly_budget=1.0)
    finally:
        stop.set()
        producer.join(10)
    m = result.measurements
    assert result.status == "PASS", result.summary
    assert m["zones"] == ["a", "b", "c"]
    assert m["ingress_records_per_s"] > 0 and 400 <= m["record_bytes_avg"] <= 600
    # Uncompressed: the value plus record and batch framing, measured.
    assert m["record_bytes_avg"] < m["wire_bytes_per_record"] < m["record_bytes_avg"] + 100
    assert m["ingress_bytes_per_s"] == pytest.approx(m["ingress_records_per_s"] * m["wire_bytes_per_record"], rel=0.01)
    # RF 3 over three zones: every byte is copied to two other zones.
    assert m["cross_zone_replication_gb_month"] > 0
    assert m["cost_brokers"] == pytest.approx(3 * 730 * 0.21, abs=0.01)
    assert any(line.startswith("total: $") for line in m["arithmetic"])
    assert tight.status == "FAIL" and "of the $1 budget" in tight.summary


def test_bytes_on_the_wire_are_measured_as_the_producers_compressed_them(private_sandbox):
    value = b'{"order": 123456, "status": "paid", "currency": "EUR"} ' * 9  # 486 B, compressible
    sizes = {}
    for compression in ("none", "zstd", "gzip"):
        topic = f"wire-{compression}-{uuid.uuid4().hex[:6]}"
        private_sandbox.control.call("topic_create", name=topic, partitions=1, replication_factor=1)
        kafka.produce_values(
            private_sandbox.connection, topic=topic, values=[(0, value)] * 200, timeout=10, compression=compression
        )
        sample = kafka.sample_wire_size(
            private_sandbox.connection, starts={(topic, 0): 0}, per_partition=200, timeout=10
        )
        assert len(sample.records) == 200 and {r.size for r in sample.records} == {len(value)}
        sizes[compression] = sample.wire_bytes_per_record
    assert len(value) < sizes["none"] < len(value) + 100, sizes
    assert sizes["zstd"] < len(value) / 4 and sizes["gzip"] < len(value) / 4, sizes


def test_cost_model_on_a_cluster_without_racks_warns_that_zones_are_unknown(shared_tansu):
    result = probe("cost_model", kafka.ConnectionSettings(shared_tansu.bootstrap), sample_seconds=1)
    assert result.status == "WARN"
    assert "no rack" in result.measurements["findings"][0]


# --- acknowledged write ----------------------------------------------------------------------


def test_acknowledged_write_fails_when_tansu_loses_acknowledged_records_in_a_restart(private_tansu):
    """Tansu keeps everything in memory: kill -9 and a restart lose what it acknowledged."""
    connection = kafka.ConnectionSettings(private_tansu.bootstrap)
    kafka.topic_create(connection, name="__recovery_probe", partitions=1, replication_factor=1, timeout=5)
    outcome = {}
    runner = threading.Thread(
        target=lambda: outcome.update(result=probe("ack_write", connection, records=200_000, timeout_seconds=6))
    )
    runner.start()

    def written():
        offsets, _ = kafka.list_offsets(connection, [("__recovery_probe", 0)], timeout=2)
        return offsets.get(("__recovery_probe", 0), 0) > 20

    wait_for(written, timeout=30, message="acknowledged probe records on Tansu")
    private_tansu.kill()
    private_tansu.start()
    runner.join(60)
    result = outcome["result"]
    assert result.status == "FAIL", result.summary
    assert result.measurements["missing"] > 0
    assert result.measurements["acked"] > result.measurements["consumed"]
    # The reused idempotent producer usually enters a fatal state; when it does, the probe says why.
    if result.measurements["producer_fatal_error"]:
        assert "producer fatal" in result.summary


def test_cost_model_matches_a_hand_computed_case_to_the_cent():
    """Three zones, brokers 1/2/3 in a/b/c; p0 (1 MB/s) led in a with followers in b and c, p1
    (0.5 MB/s) led in b with followers in c and a, p2 (0.25 MB/s) led in c with no follower.
    A month is 730 h = 2,628,000 s; $0.02 per cross-zone GB, $0.21 per broker-hour.

    producer to leader: 1.75 MB/s x 2/3 = 1.1667 MB/s -> 3,066 GB -> $61.32
    replication: 1 MB/s x 2 + 0.5 MB/s x 2 = 3 MB/s -> 7,884 GB -> $157.68
    leader to consumers: as producers (consumers spread over a, b, c) -> $61.32
    brokers: 3 x 730 h x $0.21 = $459.90; total $740.22
    with fetch-from-follower only p2 (a replica in c alone) crosses: 0.25 MB/s x 2/3 -> 438 GB -> $8.76
    """
    from drills.probes.cost import PartitionLoad, monthly_cost

    loads = [
        PartitionLoad("t[0]", 1_000_000, "a", ("b", "c")),
        PartitionLoad("t[1]", 500_000, "b", ("c", "a")),
        PartitionLoad("t[2]", 250_000, "c", ()),
    ]
    params = catalog.parse("cost_model", {})
    month = monthly_cost(loads, zones=["a", "b", "c"], brokers=3, standby_brokers=0, params=params)
    assert month["costs"] == {
        "producer_to_leader": 61.32,
        "replication": 157.68,
        "leader_to_consumer": 61.32,
        "brokers": 459.90,
        "standby": 0.0,
        "total": 740.22,
    }
    assert month["lines"][1].startswith(
        "cross-zone replication to followers: 3.000000 MB/s x 2,628,000 s = 7,884.000 GB"
    )
    near = monthly_cost(
        loads, zones=["a", "b", "c"], brokers=3, standby_brokers=0,
        params=catalog.parse("cost_model", {"fetch_from_follower": True}),
    )  # fmt: skip
    assert near["costs"]["leader_to_consumer"] == 8.76
    # Producers all in zone a: only partitions led elsewhere cross (p1, p2).
    in_a = monthly_cost(
        loads, zones=["a", "b", "c"], brokers=3, standby_brokers=0,
        params=catalog.parse("cost_model", {"producer_zones": ["a"]}),
    )  # fmt: skip
    assert in_a["costs"]["producer_to_leader"] == round(750_000 * 2_628_000 / 1e9 * 0.02, 2) == 39.42
