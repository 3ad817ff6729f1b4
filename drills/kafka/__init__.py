"""The one seam to Kafka: confluent-kafka wrapped with a timeout on every call and typed results.

This package is the only place in the project that imports confluent_kafka. Callers import the
package (`from drills import kafka`) and look names up on it (`kafka.cluster_metadata`); tests
that need a customer's cluster to misbehave patch those package attributes.

- client: connection settings, typed errors, admin request helpers, the bundled librdkafka
- admin: cluster metadata, configs, topic creation, offsets, groups, ACLs
- records: probe records, sequenced produce, read-back, business-record produce and sampling
- endpoints: one bootstrap address at a time
- traffic: the drills' sustained producer and readers
"""

from drills.kafka.admin import (
    ClusterMetadata,
    PartitionInfo,
    TopicPartitionKey,
    acl_bindings,
    broker_configs,
    cluster_metadata,
    commit_offsets,
    committed_offsets,
    group_state,
    in_sync_count,
    list_offsets,
    topic_configs,
    topic_create,
)
from drills.kafka.client import (
    ConnectionSettings,
    KafkaCallError,
    LibrdkafkaNotFound,
    UnsupportedApi,
    admin_client,
    librdkafka_path,
)
from drills.kafka.endpoints import endpoint_check, quick_failure
from drills.kafka.records import (
    ConsumedRecord,
    Delivery,
    ProduceResult,
    ReadRecords,
    RecordSample,
    produce_sequenced,
    produce_values,
    read_range,
    sample_records,
    sample_wire_size,
)
from drills.kafka.traffic import GroupReader, LiveReader, SustainedProducer

__all__ = [
    "ClusterMetadata",
    "ConnectionSettings",
    "ConsumedRecord",
    "Delivery",
    "GroupReader",
    "KafkaCallError",
    "LibrdkafkaNotFound",
    "LiveReader",
    "PartitionInfo",
    "ProduceResult",
    "ReadRecords",
    "SustainedProducer",
    "TopicPartitionKey",
    "UnsupportedApi",
    "acl_bindings",
    "admin_client",
    "broker_configs",
    "cluster_metadata",
    "in_sync_count",
    "commit_offsets",
    "committed_offsets",
    "endpoint_check",
    "group_state",
    "librdkafka_path",
    "list_offsets",
    "produce_sequenced",
    "produce_values",
    "quick_failure",
    "read_range",
    "RecordSample",
    "sample_records",
    "sample_wire_size",
    "topic_configs",
    "topic_create",
]
