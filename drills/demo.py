"""Demo traffic: a topic with records and a consumer group with committed offsets, so the
consumer-groups probe has something real to judge on a fresh local cluster."""

from drills import kafka
from drills.sandbox.control import SandboxControl

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
