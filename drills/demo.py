"""Demo traffic: a topic with records and a consumer group with committed offsets, so the
consumer-groups probe has something real to judge on a fresh local cluster; and the drills
scheduled on the sandbox."""

from datetime import time

from drills import kafka
from drills.models import DrillSchedule
from drills.sandbox.control import SandboxControl
from drills.schedules import schedule_create
from scorecard import audit
from scorecard.models import Scorecard

DEMO_TOPIC = "payments"
DEMO_GROUP = "payments-ledger"
PARTITIONS = 3
RECORDS_PER_PARTITION = 400
UNCONSUMED = 25


def demo_traffic(connection: kafka.ConnectionSettings, *, control_socket: str = "", timeout: float = 10.0) -> None:
    """Create the topic (through the sandbox control channel or CreateTopics), fill it, commit the group."""
    if control_socket:
        SandboxControl(control_socket).call(
            "topic_create", name=DEMO_TOPIC, partitions=PARTITIONS, replication_factor=3
        )
    else:
        kafka.topic_create(connection, name=DEMO_TOPIC, partitions=PARTITIONS, replication_factor=1, timeout=timeout)
    values = [(p, f"payment {i}".encode()) for i in range(RECORDS_PER_PARTITION) for p in range(PARTITIONS)]
    kafka.produce_values(connection, topic=DEMO_TOPIC, values=values, timeout=timeout)
    ends, _ = kafka.list_offsets(connection, [(DEMO_TOPIC, p) for p in range(PARTITIONS)], timeout=timeout)
    kafka.commit_offsets(
        connection,
        group=DEMO_GROUP,
        offsets={key: max(0, end - UNCONSUMED) for key, end in ends.items()},
        timeout=timeout,
    )


DEMO_SCHEDULED = ("broker_loss", "zone_loss", "leader_change", "consumer_restart", "lag_catch_up")


def demo_drill_schedules(scorecard: Scorecard) -> None:
    """Every scenario drill cadence asks for, once a day in an all-day window, so the automation
    row reaches PASS with nobody starting a drill (set by the demo's approver)."""
    cluster = scorecard.cluster
    with audit.acting_as("demo"):
        for scenario in DEMO_SCHEDULED:
            if not DrillSchedule.objects.filter(cluster=cluster, scenario=scenario).exists():
                schedule_create(
                    cluster=cluster,
                    by="approver",
                    scenario=scenario,
                    weekdays=list(range(1, 8)),
                    window_start=time(0, 0),
                    window_end=time(23, 59),
                    time_zone="UTC",
                    params={"fault_seconds": 5.0, "max_duration_seconds": 120},
                )
