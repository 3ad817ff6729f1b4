"""librdkafka's mock cluster (bundled with confluent-kafka), driven through ctypes.

`SandboxCluster` validates every argument before it reaches librdkafka and keeps the state
the control channel reports. The library comes from `drills.kafka.librdkafka_path()`, so the
mock runs the same librdkafka as the clients.
"""

import ctypes
from dataclasses import dataclass

from drills import kafka
from drills.protocol import API_KEYS, API_NAMES
from drills.sandbox.control import SandboxError

# Error codes that may be injected, by their protocol names.
ERROR_CODES = {
    "NOT_LEADER_OR_FOLLOWER": 6,
    "REQUEST_TIMED_OUT": 7,
    "NETWORK_EXCEPTION": 13,
    "COORDINATOR_NOT_AVAILABLE": 15,
    "NOT_COORDINATOR": 16,
    "NOT_ENOUGH_REPLICAS": 19,
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND": 20,
    "LEADER_NOT_AVAILABLE": 5,
}
TOPIC_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def _library() -> ctypes.CDLL:
    try:
        path = kafka.librdkafka_path()
    except kafka.LibrdkafkaNotFound as exc:
        raise SandboxError(str(exc)) from None
    lib = ctypes.CDLL(path)
    vp, i32, cs = ctypes.c_void_p, ctypes.c_int32, ctypes.c_char_p
    # Every function gets argtypes and restype: a wrong guess about a pointer segfaults.
    signatures = {
        "rd_kafka_conf_new": ([], vp),
        "rd_kafka_conf_set": ([vp, cs, cs, cs, ctypes.c_size_t], ctypes.c_int),
        "rd_kafka_new": ([ctypes.c_int, vp, cs, ctypes.c_size_t], vp),
        "rd_kafka_destroy": ([vp], None),
        "rd_kafka_mock_cluster_new": ([vp, ctypes.c_int], vp),
        "rd_kafka_mock_cluster_destroy": ([vp], None),
        "rd_kafka_mock_cluster_bootstraps": ([vp], cs),
        "rd_kafka_mock_set_controller_id": ([vp, i32], ctypes.c_int),
        "rd_kafka_mock_group_initial_rebalance_delay_ms": ([vp, i32], None),
        "rd_kafka_mock_topic_create": ([vp, cs, ctypes.c_int, ctypes.c_int], ctypes.c_int),
        "rd_kafka_mock_partition_set_leader": ([vp, cs, i32, i32], ctypes.c_int),
        "rd_kafka_mock_broker_set_down": ([vp, i32], ctypes.c_int),
        "rd_kafka_mock_broker_set_up": ([vp, i32], ctypes.c_int),
        "rd_kafka_mock_broker_set_rtt": ([vp, i32, ctypes.c_int], ctypes.c_int),
        "rd_kafka_mock_broker_set_rack": ([vp, i32, cs], ctypes.c_int),
        "rd_kafka_mock_push_request_errors_array": (
            [vp, ctypes.c_int16, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)],
            None,
        ),
        "rd_kafka_mock_clear_request_errors": ([vp, ctypes.c_int16], None),
        "rd_kafka_mock_set_apiversion": ([vp, ctypes.c_int16, ctypes.c_int16, ctypes.c_int16], ctypes.c_int),
        "rd_kafka_mock_start_request_tracking": ([vp], None),
        "rd_kafka_mock_stop_request_tracking": ([vp], None),
        "rd_kafka_mock_clear_requests": ([vp], None),
        "rd_kafka_mock_get_requests": ([vp, ctypes.POINTER(ctypes.c_size_t)], ctypes.POINTER(vp)),
        "rd_kafka_mock_request_api_key": ([vp], ctypes.c_int16),
        "rd_kafka_mock_request_destroy_array": ([ctypes.POINTER(vp), ctypes.c_size_t], None),
    }
    for name, (argtypes, restype) in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = restype
    return lib


@dataclass
class BrokerState:
    id: int
    rack: str
    up: bool = True
    rtt_ms: int = 0


class SandboxCluster:
    """A running mock cluster. Not thread-safe by itself: the control server serialises calls."""

    def __init__(self, *, brokers: int = 3, racks: tuple[str, ...] = ("a", "b", "c")):
        if not 1 <= brokers <= 16:
            raise SandboxError("brokers must be between 1 and 16")
        self._lib = _library()
        errstr = ctypes.create_string_buffer(512)
        conf = self._lib.rd_kafka_conf_new()
        # The handle only hosts the mock; it complains about having no bootstrap servers.
        self._lib.rd_kafka_conf_set(conf, b"log_level", b"0", errstr, len(errstr))
        self._rk = self._lib.rd_kafka_new(1, conf, errstr, len(errstr))
        if not self._rk:
            raise SandboxError(f"rd_kafka_new failed: {errstr.value.decode(errors='replace')}")
        self._mc = self._lib.rd_kafka_mock_cluster_new(self._rk, brokers)
        if not self._mc:
            self._lib.rd_kafka_destroy(self._rk)
            raise SandboxError("rd_kafka_mock_cluster_new failed")
        # Controller id 0 makes controller-bound admin calls time out; the default
        # rebalance delay adds ~3 s to every first group assignment.
        self._lib.rd_kafka_mock_set_controller_id(self._mc, 1)
        self._lib.rd_kafka_mock_group_initial_rebalance_delay_ms(self._mc, 0)
        self.brokers = {i: BrokerState(i, racks[(i - 1) % len(racks)]) for i in range(1, brokers + 1)}
        for broker in self.brokers.values():
            self._lib.rd_kafka_mock_broker_set_rack(self._mc, broker.id, broker.rack.encode())
        self.bootstrap = self._lib.rd_kafka_mock_cluster_bootstraps(self._mc).decode()
        self.topics: dict[str, dict] = {}

    def close(self) -> None:
        if self._mc:
            self._lib.rd_kafka_mock_cluster_destroy(self._mc)
            self._mc = None
        if self._rk:
            self._lib.rd_kafka_destroy(self._rk)
            self._rk = None

    def _broker(self, broker_id) -> BrokerState:
        if not isinstance(broker_id, int) or broker_id not in self.brokers:
            raise SandboxError(f"broker must be one of {sorted(self.brokers)}; got {broker_id!r}")
        return self.brokers[broker_id]

    @staticmethod
    def _check(code: int, what: str) -> None:
        if code != 0:
            raise SandboxError(f"{what} failed with librdkafka error {code}")

    def _topic(self, name) -> bytes:
        if not isinstance(name, str) or not 0 < len(name) <= 249 or set(name) - TOPIC_NAME_CHARS:
            raise SandboxError(f"invalid topic name {name!r}")
        return name.encode()

    def topic_create(self, name: str, partitions: int, replication_factor: int) -> dict:
        topic = self._topic(name)
        if not isinstance(partitions, int) or not 1 <= partitions <= 10_000:
            raise SandboxError("partitions must be between 1 and 10000")
        # RF 0 gives leaderless partitions (useful for tests); a negative RF aborts the process.
        if not isinstance(replication_factor, int) or not 0 <= replication_factor <= len(self.brokers):
            raise SandboxError(f"replication_factor must be between 0 and {len(self.brokers)}")
        self._check(
            self._lib.rd_kafka_mock_topic_create(self._mc, topic, partitions, replication_factor), "topic create"
        )
        self.topics[name] = {"partitions": partitions, "replication_factor": replication_factor}
        return self.topics[name]

    def spread_leaders(self, name: str) -> dict[int, int]:
        """Give each broker the lead of partitions in turn, so every broker leads at least one."""
        topic = self._topic(name)
        ids = sorted(self.brokers)
        leaders = {}
        for partition in range(self.topics[name]["partitions"]):
            leaders[partition] = ids[partition % len(ids)]
            self._check(
                self._lib.rd_kafka_mock_partition_set_leader(self._mc, topic, partition, leaders[partition]),
                "leader move",
            )
        return leaders

    def leader_move(self, topic: str, partition: int, broker: int) -> None:
        self._broker(broker)
        if not isinstance(partition, int) or partition < 0:
            raise SandboxError("partition must be a non-negative integer")
        self._check(
            self._lib.rd_kafka_mock_partition_set_leader(self._mc, self._topic(topic), partition, broker), "leader move"
        )

    def broker_down(self, broker: int) -> None:
        self._check(self._lib.rd_kafka_mock_broker_set_down(self._mc, self._broker(broker).id), "broker down")
        self.brokers[broker].up = False

    def broker_up(self, broker: int) -> None:
        self._check(self._lib.rd_kafka_mock_broker_set_up(self._mc, self._broker(broker).id), "broker up")
        self.brokers[broker].up = True

    def latency(self, broker: int, rtt_ms: int) -> None:
        if not isinstance(rtt_ms, int) or not 0 <= rtt_ms <= 60_000:
            raise SandboxError("rtt_ms must be between 0 and 60000")
        self._check(self._lib.rd_kafka_mock_broker_set_rtt(self._mc, self._broker(broker).id, rtt_ms), "latency")
        self.brokers[broker].rtt_ms = rtt_ms

    def rack(self, broker: int, rack: str) -> None:
        if not isinstance(rack, str) or not 0 < len(rack) <= 64:
            raise SandboxError("rack must be a non-empty string of at most 64 characters")
        self._check(self._lib.rd_kafka_mock_broker_set_rack(self._mc, self._broker(broker).id, rack.encode()), "rack")
        self.brokers[broker].rack = rack

    def request_errors(self, api: str, errors: list[str]) -> None:
        if api not in API_KEYS:
            raise SandboxError(f"api must be one of {', '.join(API_KEYS)}")
        if not isinstance(errors, list) or not 1 <= len(errors) <= 10_000 or any(e not in ERROR_CODES for e in errors):
            raise SandboxError(f"errors must be a list of 1 to 10000 of {', '.join(ERROR_CODES)}")
        codes = (ctypes.c_int * len(errors))(*(ERROR_CODES[e] for e in errors))
        self._lib.rd_kafka_mock_push_request_errors_array(self._mc, API_KEYS[api], len(errors), codes)

    def clear_request_errors(self, api: str) -> None:
        if api not in API_KEYS:
            raise SandboxError(f"api must be one of {', '.join(API_KEYS)}")
        self._lib.rd_kafka_mock_clear_request_errors(self._mc, API_KEYS[api])

    def api_version(self, api: str, min_version: int, max_version: int) -> None:
        """Change the versions the brokers advertise for an API; -1/-1 withdraws it."""
        if api not in API_KEYS:
            raise SandboxError(f"api must be one of {', '.join(API_KEYS)}")
        for value in (min_version, max_version):
            if not isinstance(value, int) or not -1 <= value <= 100:
                raise SandboxError("versions must be whole numbers between -1 and 100")
        self._check(
            self._lib.rd_kafka_mock_set_apiversion(self._mc, API_KEYS[api], min_version, max_version), "api version"
        )

    def requests_track(self) -> None:
        """Start counting requests the brokers receive (clears earlier counts)."""
        self._lib.rd_kafka_mock_clear_requests(self._mc)
        self._lib.rd_kafka_mock_start_request_tracking(self._mc)

    def requests_count(self) -> dict:
        """Requests received since requests_track, by API name."""
        count = ctypes.c_size_t(0)
        requests = self._lib.rd_kafka_mock_get_requests(self._mc, ctypes.byref(count))
        counts: dict[str, int] = {}
        try:
            for i in range(count.value):
                key = self._lib.rd_kafka_mock_request_api_key(requests[i])
                name = API_NAMES.get(key, f"api-{key}")
                counts[name] = counts.get(name, 0) + 1
        finally:
            if requests:
                self._lib.rd_kafka_mock_request_destroy_array(requests, count.value)
        return counts

    def status(self) -> dict:
        return {
            "bootstrap": self.bootstrap,
            "brokers": [vars(b) for b in self.brokers.values()],
            "topics": self.topics,
        }
