"""Drill scenarios (DESIGN.md section 5): what each one injects. What each measures and
which row each figure feeds is in docs/drills.md."""

from collections import Counter
from dataclasses import dataclass, field

from drills.actuators import Action
from drills.kafka import ClusterMetadata
from scorecard.catalog import CLIENT_FAULTS, Scenario


class ScenarioError(ValueError):
    """The scenario cannot run on this cluster as configured."""


@dataclass
class FaultPlan:
    description: str
    inject: list[Action] = field(default_factory=list)
    recover: list[Action] = field(default_factory=list)
    client_fault: str = ""  # one of CLIENT_FAULTS: a fault the engine applies to its own clients
    scenario: str = ""  # what the plan is for: it decides which effect shows the fault bit


def _busiest_leader(metadata: ClusterMetadata, topic: str) -> int:
    leaders = Counter(p.leader for p in metadata.topic_partitions(topic) if p.leader in metadata.broker_ids)
    if not leaders:
        raise ScenarioError(f"no partition of {topic} has a live leader")
    return leaders.most_common(1)[0][0]


def _moves_away(metadata: ClusterMetadata, topic: str, lost: set[int]) -> tuple[list[Action], list[Action]]:
    """Leader moves from the lost brokers to survivors, and the moves back."""
    survivors = sorted(metadata.broker_ids - lost)
    if not survivors:
        raise ScenarioError("no broker would survive the fault to take over leadership")
    away, back = [], []
    for i, p in enumerate(x for x in metadata.topic_partitions(topic) if x.leader in lost):
        away.append(Action("leader_move", survivors[i % len(survivors)], topic, p.id))
        back.append(Action("leader_move", p.leader, topic, p.id))
    return away, back


CLIENT_FAULT_DESCRIPTIONS = {
    Scenario.CONSUMER_RESTART: "a consumer group member dies without committing, then a new one joins",
    Scenario.LAG_CATCH_UP: "the consumer pauses while producing continues, then catches up",
    Scenario.STANDBY_CUTOVER: "a canary group moves to the standby and resumes from its synced offsets",
}


def plan(
    scenario: str, metadata: ClusterMetadata, *, topic: str, broker: int | None, zone: str | None, move_leaders: bool
) -> FaultPlan:
    if scenario not in Scenario.values:
        raise ScenarioError(f"scenario {scenario} is not supported by the drill engine")
    if scenario in CLIENT_FAULTS:
        return FaultPlan(CLIENT_FAULT_DESCRIPTIONS[scenario], client_fault=Scenario(scenario), scenario=scenario)
    if broker is not None and broker not in metadata.broker_ids:
        raise ScenarioError(f"broker {broker} is not among the live brokers {sorted(metadata.broker_ids)}")
    if scenario == Scenario.LEADER_CHANGE:
        target = broker if broker is not None else _busiest_leader(metadata, topic)
        away, back = _moves_away(metadata, topic, {target})
        if not away:
            raise ScenarioError(f"broker {target} leads no partition of {topic}")
        return FaultPlan(
            f"move {len(away)} leaders of {topic} off broker {target}, then back", away, back, scenario=scenario
        )
    if scenario == Scenario.BROKER_LOSS:
        lost = {broker if broker is not None else _busiest_leader(metadata, topic)}
        what = f"stop broker {next(iter(lost))}"
    else:
        racks = {b.id: b.rack for b in metadata.brokers}
        if not any(racks.values()):
            raise ScenarioError("brokers report no rack: zone loss needs racks")
        chosen = zone or racks.get(_busiest_leader(metadata, topic))
        lost = {b for b, rack in racks.items() if rack == chosen}
        if not lost:
            raise ScenarioError(f"no live broker is in zone {chosen}")
        if lost == metadata.broker_ids:
            raise ScenarioError(f"zone {chosen} holds every broker: losing it is an outage, not a drill")
        what = f"stop zone {chosen} (brokers {', '.join(map(str, sorted(lost)))})"
    inject = [Action("broker_down", b) for b in sorted(lost)]
    recover = [Action("broker_up", b) for b in sorted(lost)]
    if move_leaders:
        away, back = _moves_away(metadata, topic, lost)
        inject += away
        recover = recover + back
        what += f" and move {len(away)} leaders to survivors"
    return FaultPlan(what, inject, recover, scenario=scenario)
