"""The dedicated probe topic the acknowledged-write probe and the drills write to.

It must exist, have at least one partition per broker, a leader on every broker (so losing any
broker is seen in the traffic) and the configured replication factor. Where the cluster allows
CreateTopics it is created; where it does not, the error names exactly what to create.
"""

from dataclasses import dataclass, field

from drills import kafka


class ProbeTopicMissing(kafka.KafkaCallError):
    """The probe topic does not exist and could not be created; the reason says what to create."""


@dataclass(frozen=True)
class ProbeTopic:
    name: str
    partitions: list[kafka.PartitionInfo]
    metadata: kafka.ClusterMetadata
    created: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def not_leading(self) -> list[int]:
        """Brokers that lead no partition of the topic: their loss would not show in the traffic."""
        return sorted(self.metadata.broker_ids - {p.leader for p in self.partitions})

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "partitions": len(self.partitions),
            "replication_factor": min((len(set(p.replicas)) for p in self.partitions), default=0),
            "leaders": {str(p.id): p.leader for p in self.partitions},
            "created": self.created,
            "problems": self.problems,
        }


def _wanted(brokers: int, replication_factor: int) -> tuple[int, int]:
    return max(3, brokers), min(replication_factor, brokers)


def probe_topic_ready(
    connection: kafka.ConnectionSettings, *, name: str, replication_factor: int, timeout: float
) -> ProbeTopic:
    """The probe topic, created when missing; what falls short of the rules is listed in `problems`."""
    metadata = kafka.cluster_metadata(connection, timeout=timeout, topic=name, racks=False)
    brokers = len(metadata.brokers)
    partitions = [p for p in metadata.topic_partitions(name) if p.id >= 0]
    created = False
    if not partitions:
        count, rf = _wanted(brokers, replication_factor)
        how = (
            f"create the probe topic {name} with {count} partitions and replication factor {rf}, one led by each broker"
        )
        try:
            kafka.topic_create(connection, name=name, partitions=count, replication_factor=rf, timeout=timeout)
        except kafka.KafkaCallError as exc:
            raise ProbeTopicMissing(f"{how}: the cluster did not allow it ({exc.reason})") from None
        metadata = kafka.cluster_metadata(connection, timeout=timeout, topic=name, racks=False)
        partitions = [p for p in metadata.topic_partitions(name) if p.id >= 0]
        created = True
        if not partitions:
            raise ProbeTopicMissing(f"{how}: it was created but has no partitions yet")
    problems = []
    if len(partitions) < brokers:
        problems.append(f"{len(partitions)} partitions for {brokers} brokers: give it at least {brokers}")
    topic = ProbeTopic(name, partitions, metadata, created, problems)
    if topic.not_leading:
        problems.append(
            f"brokers {topic.not_leading} lead no partition of {name}: their loss would not show in the traffic"
        )
    rf = min(len(set(p.replicas)) for p in partitions)
    wanted_rf = min(replication_factor, brokers)
    if rf < wanted_rf:
        problems.append(f"replication factor {rf}, below the configured {wanted_rf}")
    return topic
