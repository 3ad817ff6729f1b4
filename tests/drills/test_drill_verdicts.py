"""Verdicts a person can trust: figures from the confirmed fault, no credit without an effect."""

import sys
from pathlib import Path

import pytest

from drills import kafka, scenarios
from drills.actuators import CommandActuator
from drills.engine import DrillEngine, Hooks
from drills.engine.figures import leadership
from drills.evidence import drill_row_verdicts
from drills.models import DrillRun, Outcome
from drills.services import drill_run_start
from scorecard import catalog
from scorecard.models import Actuator, Evidence
from tests.conftest import wait_for
from tests.factories import register

CLUSTER_CTL = str(Path(__file__).resolve().parents[1] / "tools" / "cluster_ctl.py")


def command_templates(socket_path: str, *, down: list[str] | None = None, up: list[str] | None = None) -> dict:
    return {
        "broker_down": down or [sys.executable, CLUSTER_CTL, socket_path, "down", "{broker}"],
        "broker_up": up or [sys.executable, CLUSTER_CTL, socket_path, "up", "{broker}"],
        "timeout_seconds": 30,
    }


def engine_drill(sandbox, templates: dict, **overrides):
    config = catalog.parse("drill", {"baseline_seconds": 2, "settle_seconds": 3, **overrides})
    metadata = kafka.cluster_metadata(sandbox.connection, timeout=5, topic=config.topic)
    brokers = {b.id: {"host": b.host, "port": b.port, "rack": b.rack} for b in metadata.brokers}
    plan = scenarios.plan("broker_loss", metadata, topic=config.topic, broker=None, zone=None, move_leaders=False)
    engine = DrillEngine(
        connection=sandbox.connection,
        actuator=CommandActuator(templates, brokers),
        plan=plan,
        config=config,
        hooks=Hooks(),
    )
    return engine.run()


@pytest.mark.xdist_group("drill-fidelity")
@pytest.mark.parametrize("down_seconds", [2.5, 5.5])
def test_figures_through_a_command_actuator_follow_the_confirmed_outage(private_sandbox, down_seconds):
    """A cluster in another process, driven only through an operator's command: write RTO
    within 10 % + 300 ms of the outage, re-election never below the observed leaderless time."""
    result = engine_drill(private_sandbox, command_templates(private_sandbox.control_path), fault_seconds=down_seconds)
    f = result.figures
    assert result.outcome == Outcome.PASSED, (result.error, f.get("inconclusive"))
    # The outage lasts from the stop command's return to the start command's return.
    outage = f["recovery_at_s"] - f["fault_at_s"]
    assert abs(f["write_rto_s"] - outage) <= 0.1 * outage + 0.3, (f["write_rto_s"], outage)
    samples = [s for s in result.timeline["metadata"] if s["t_ms"] >= f["fault_at_s"] * 1000 and "offline" in s]
    leaderless = [s["t_ms"] for s in samples if s["offline"] > 0]
    assert leaderless, "the sandbox leaves the stopped broker's partitions leaderless"
    assert f["reelection_s"] >= (leaderless[-1] - leaderless[0]) / 1000
    assert f["metadata"]["loss_observed"] and f["rpo_acked_lost"] == 0


@pytest.mark.xdist_group("drill-fidelity")
def test_a_command_that_does_nothing_makes_the_drill_inconclusive(private_sandbox):
    result = engine_drill(private_sandbox, command_templates("", down=["true"], up=["true"]), fault_seconds=2)
    assert result.outcome == Outcome.INCONCLUSIVE
    assert result.figures["inconclusive"] == "the fault had no observable effect"
    assert result.figures["reelection_s"] is None and not result.figures["metadata"]["loss_observed"]


def leader_samples(*offline_by_t: tuple[float, object]) -> list[dict]:
    samples = []
    for t, state in offline_by_t:
        if state == "error":
            samples.append({"t_ms": t, "error": "Metadata: cluster unreachable or not answering (transport failure)"})
        elif state == "timeout":
            samples.append({"t_ms": t, "error": "Metadata timed out: Local: Timed out"})
        else:
            samples.append({"t_ms": t, "brokers": 3, "offline": state, "leaders": {"0": 1}})
    return samples


BASELINE = {"brokers": 3, "leaders": {"0": 1}}


def test_reelection_runs_from_the_observed_loss_to_every_partition_led():
    samples = leader_samples((900, 0), (1100, 0), (1250, 2), (1500, 2), (1750, 2), (2000, 0))
    seen = leadership(samples, 1000, BASELINE)
    assert seen["loss_observed"] and seen["loss_seen_at_s"] == 1.25
    assert seen["reelection_s"] == 0.75


def test_no_loss_seen_is_not_observed_never_a_small_number():
    seen = leadership(leader_samples((1100, 0), (1350, 0), (1600, 0)), 1000, BASELINE)
    assert seen["loss_observed"] is False and seen["reelection_s"] is None
    # One request that timed out is a slow answer, not an outage; a refused one is a loss.
    seen = leadership(leader_samples((1100, 0), (1350, "timeout"), (1600, 0)), 1000, BASELINE)
    assert seen["loss_observed"] is False
    seen = leadership(leader_samples((1100, 0), (1350, "timeout"), (1600, 2), (1850, 0)), 1000, BASELINE)
    assert seen["loss_observed"] is True and seen["reelection_s"] == 0.5
    seen = leadership(leader_samples((1100, 0), (1350, "error"), (1600, 0)), 1000, BASELINE)
    assert seen["loss_observed"] is True and seen["reelection_s"] == 0.25


def test_a_silent_cluster_is_a_loss_and_leaders_never_back_is_not_recovered():
    seen = leadership(leader_samples((1100, "error"), (1350, "error"), (1600, "error")), 1000, BASELINE)
    assert seen["loss_observed"] is True and seen["reelection_s"] is None


def finished_run(**fields) -> DrillRun:
    figures = {
        "rpo_acked_lost": 0,
        "records_acked": 1000,
        "duplicates": 0,
        "reordered": 0,
        "fault_at_s": 3.0,
        "observed_until_s": 15.0,
        "write_rto_s": 2.1,
        "read_rto_s": None,
        "reelection_s": 2.0,
        "metadata": {"loss_observed": True, "samples_after_fault": 40},
        "effect": "the loss showed in the cluster metadata",
    }
    defaults = {"scenario": "broker_loss", "outcome": Outcome.FAILED, "state": "done", "params": {}}
    return DrillRun(figures={**figures, **fields.pop("figures", {})}, **{**defaults, **fields})


def test_reads_that_never_recover_fail_client_continuity_saying_not_recovered():
    rows = {row: (status, summary) for row, status, summary in drill_row_verdicts(finished_run())}
    status, summary = rows["client_continuity"]
    assert status == "FAIL"
    assert "read RTO not recovered within the drill (12.0 s after the fault)" in summary


def test_an_inconclusive_drill_reports_to_automation_only():
    run = finished_run(outcome=Outcome.INCONCLUSIVE, figures={"inconclusive": "the fault had no observable effect"})
    assert [(row, status) for row, status, _ in drill_row_verdicts(run)] == [("automation", "WARN")]
    run = finished_run(
        outcome=Outcome.INCONCLUSIVE,
        figures={"fault_at_s": None, "inconclusive": "the fault could not be injected (false exited with 1)"},
    )
    ((row, status, summary),) = drill_row_verdicts(run)
    assert (row, status) == ("automation", "ERROR") and "check the actuator" in summary


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("command", "status", "reason"),
    [(["true"], "WARN", "no observable effect"), (["false"], "ERROR", "could not be injected")],
)
def test_a_drill_whose_fault_did_nothing_credits_no_row_through_a_worker(
    shared_sandbox, start_private_worker, requesters, command, status, reason
):
    worker = start_private_worker("verdicts")
    cluster = register(
        name="noop",
        bootstrap=shared_sandbox.bootstrap,
        worker_queue=worker.queue,
        drills_allowed=True,
        actuator=Actuator.COMMAND,
        actuator_commands=command_templates("", down=command, up=["true"]),
    ).cluster
    run = drill_run_start(
        cluster=cluster,
        scenario="broker_loss",
        params={"baseline_seconds": 1, "fault_seconds": 1, "settle_seconds": 1},
        requested_by="sre",
    )

    def finished():
        run.refresh_from_db()
        return not run.active

    wait_for(finished, timeout=60, message="the drill")
    assert run.outcome == Outcome.INCONCLUSIVE, (run.error, run.figures)
    evidence = list(Evidence.objects.filter(check_obj__kind="drill_results"))
    assert [(e.row_key, e.status) for e in evidence] == [("automation", status)]
    assert reason in evidence[0].summary


@pytest.mark.xdist_group("drill-fidelity")
def test_a_broker_already_down_refuses_the_drill_and_nothing_is_injected(private_sandbox):
    private_sandbox.control.call("broker_down", broker=2)
    events = []
    config = catalog.parse("drill", {"baseline_seconds": 1, "fault_seconds": 1, "settle_seconds": 1})
    metadata = kafka.cluster_metadata(private_sandbox.connection, timeout=5, topic=config.topic)
    plan = scenarios.plan("broker_loss", metadata, topic=config.topic, broker=1, zone=None, move_leaders=False)
    actuator = CommandActuator(command_templates(private_sandbox.control_path), {})
    result = DrillEngine(
        connection=private_sandbox.connection,
        actuator=actuator,
        plan=plan,
        config=config,
        hooks=Hooks(event=lambda kind, detail: events.append(kind)),
        expected_brokers=3,
    ).run()
    assert result.outcome == Outcome.REFUSED
    assert "2 of 3 expected brokers answer" in result.figures["refused"]
    assert "action" not in events and "fault" not in events
    assert [b["up"] for b in private_sandbox.control.call("status")["brokers"]] == [True, False, True]
    run = DrillRun(scenario="broker_loss", outcome=Outcome.REFUSED, state="done", figures=result.figures)
    assert [(row, status) for row, status, _ in drill_row_verdicts(run)] == [("automation", "WARN")]


def seed_orders(cluster, *, per_partition: int, committed: dict[int, int]) -> None:
    cluster.control.call("topic_create", name="orders", partitions=3, replication_factor=3)
    values = [(p, b"order") for _ in range(per_partition) for p in range(3)]
    kafka.produce_values(cluster.connection, topic="orders", values=values, timeout=10)
    offsets = {("orders", p): o for p, o in committed.items()}
    kafka.commit_offsets(cluster.connection, group="ledger", offsets=offsets, timeout=5)


@pytest.mark.xdist_group("drill-fidelity")
def test_a_standby_ahead_of_the_primary_fails_the_rehearsal_as_it_fails_parity(private_sandbox, private_standby):
    from tests.factories import probe

    seed_orders(private_sandbox, per_partition=300, committed={0: 40, 1: 40, 2: 40})
    seed_orders(private_standby, per_partition=300, committed={0: 40, 1: 240, 2: 40})  # 200 ahead on 1
    config = catalog.parse(
        "drill", {"baseline_seconds": 1, "fault_seconds": 1, "settle_seconds": 1, "canary_group": "ledger",
                  "canary_topic": "orders"},
    )  # fmt: skip
    metadata = kafka.cluster_metadata(private_sandbox.connection, timeout=5, topic=config.topic)
    plan = scenarios.plan("standby_cutover", metadata, topic=config.topic, broker=None, zone=None, move_leaders=False)
    result = DrillEngine(
        connection=private_sandbox.connection,
        actuator=None,
        plan=plan,
        config=config,
        hooks=Hooks(),
        standby=private_standby.connection,
    ).run()
    cutover = result.figures["standby_cutover"]
    assert result.outcome == Outcome.FAILED
    assert [(p["partition"], p["problem"]) for p in cutover["offset_problems"]] == [
        (1, "200 records ahead of the primary: they would be skipped")
    ]
    parity = probe("standby_parity", private_sandbox.connection, standby=private_standby.connection, groups=["ledger"])
    assert parity.status == "FAIL" and "ahead of the primary" in parity.summary
