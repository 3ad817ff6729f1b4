"""A minimal Kafka protocol client for the one request confluent-kafka does not expose:
ApiVersions (API key 18, version 0), which lists the API versions a broker advertises."""

import socket
import ssl
import struct
from dataclasses import dataclass

API_NAMES = {
    0: "Produce", 1: "Fetch", 2: "ListOffsets", 3: "Metadata", 8: "OffsetCommit", 9: "OffsetFetch",
    10: "FindCoordinator", 11: "JoinGroup", 12: "Heartbeat", 13: "LeaveGroup", 14: "SyncGroup",
    15: "DescribeGroups", 16: "ListGroups", 17: "SaslHandshake", 18: "ApiVersions", 19: "CreateTopics",
    20: "DeleteTopics", 21: "DeleteRecords", 22: "InitProducerId", 23: "OffsetForLeaderEpoch",
    24: "AddPartitionsToTxn", 25: "AddOffsetsToTxn", 26: "EndTxn", 28: "TxnOffsetCommit", 29: "DescribeAcls",
    30: "CreateAcls", 31: "DeleteAcls", 32: "DescribeConfigs", 33: "AlterConfigs", 35: "DescribeLogDirs",
    36: "SaslAuthenticate", 37: "CreatePartitions", 42: "DeleteGroups", 43: "ElectLeaders",
    44: "IncrementalAlterConfigs", 45: "AlterPartitionReassignments", 46: "ListPartitionReassignments",
    47: "OffsetDelete", 50: "DescribeUserScramCredentials", 51: "AlterUserScramCredentials",
    60: "DescribeCluster", 61: "DescribeProducers", 68: "ConsumerGroupHeartbeat",
    69: "ConsumerGroupDescribe", 71: "GetTelemetrySubscriptions", 75: "DescribeTopicPartitions",
}  # fmt: skip
API_KEYS = {name: key for key, name in API_NAMES.items()}

API_VERSIONS_KEY = 18
MAX_RESPONSE_BYTES = 1 << 20


class ProtocolError(Exception):
    """The broker's answer could not be read."""


@dataclass(frozen=True)
class ApiRange:
    key: int
    min_version: int
    max_version: int

    @property
    def name(self) -> str:
        return API_NAMES.get(self.key, f"api-{self.key}")


def encode_api_versions_request(correlation_id: int, client_id: str = "recovery-scorecard") -> bytes:
    """Request header v1 (key, version, correlation id, client id) and an empty v0 body, size-prefixed."""
    client = client_id.encode()
    body = struct.pack(">hhih", API_VERSIONS_KEY, 0, correlation_id, len(client)) + client
    return struct.pack(">i", len(body)) + body


def decode_api_versions_response(payload: bytes, correlation_id: int) -> list[ApiRange]:
    """Parse a v0 ApiVersions response (without its size prefix)."""
    try:
        got_id, error_code, count = struct.unpack_from(">ihi", payload, 0)
    except struct.error:
        raise ProtocolError("ApiVersions response is truncated") from None
    if got_id != correlation_id:
        raise ProtocolError(f"ApiVersions response has correlation id {got_id}, expected {correlation_id}")
    if error_code != 0:
        raise ProtocolError(f"ApiVersions answered error code {error_code}")
    if count < 0 or 10 + 6 * count > len(payload):
        raise ProtocolError(f"ApiVersions response claims {count} entries but holds fewer")
    return [ApiRange(*struct.unpack_from(">hhh", payload, 10 + 6 * i)) for i in range(count)]


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks, remaining = [], size
    while remaining:
        chunk = sock.recv(min(remaining, 65536))
        if not chunk:
            raise ProtocolError("the broker closed the connection mid-answer")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def api_versions(
    host: str, port: int, *, timeout: float, tls: bool = False, ca_pem: str = "", correlation_id: int = 1
) -> list[ApiRange]:
    """Ask one broker which API versions it supports. ApiVersions is allowed before SASL."""
    with socket.create_connection((host, port), timeout=timeout) as raw:
        sock: socket.socket = raw
        if tls:
            sock = ssl.create_default_context(cadata=ca_pem or None).wrap_socket(raw, server_hostname=host)
        sock.settimeout(timeout)
        sock.sendall(encode_api_versions_request(correlation_id))
        (size,) = struct.unpack(">i", _read_exactly(sock, 4))
        if not 0 < size <= MAX_RESPONSE_BYTES:
            raise ProtocolError(f"ApiVersions response size {size} is implausible")
        return decode_api_versions_response(_read_exactly(sock, size), correlation_id)
