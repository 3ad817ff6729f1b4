"""Connecting to a cluster, and what a failed call becomes: typed errors with a safe reason.

The connection settings build every client's configuration (timeouts, the librdkafka logger);
the helpers here send admin requests and turn confluent-kafka's exceptions into
KafkaCallError or UnsupportedApi. The other modules of the package build on them.
"""

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import confluent_kafka
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

librdkafka_log = logging.getLogger("drills.kafka.librdkafka")


class KafkaCallError(Exception):
    """A Kafka call failed; `reason` is safe to show (it never holds a secret)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class UnsupportedApi(KafkaCallError):
    """The cluster does not implement an API a probe needs."""

    def __init__(self, api: str, detail: str = ""):
        super().__init__(f"the cluster does not support the {api} API" + (f" ({detail})" if detail else ""))
        self.api = api


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach a cluster. repr hides the secret so it cannot leak through logs."""

    bootstrap_servers: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str = ""
    sasl_username: str = ""
    sasl_password: str = field(default="", repr=False)
    ssl_ca_pem: str = field(default="", repr=False)

    @classmethod
    def for_cluster(cls, cluster) -> "ConnectionSettings":
        """From a registered Cluster (scorecard.models.Cluster)."""
        try:
            password = cluster.sasl_password
        except ValueError as exc:  # scorecard.secrets.SecretUnreadable: its key was dropped
            raise KafkaCallError(f"the stored SASL password cannot be used: {exc}") from None
        return cls(
            bootstrap_servers=cluster.bootstrap_servers,
            security_protocol=cluster.security_protocol,
            sasl_mechanism=cluster.sasl_mechanism,
            sasl_username=cluster.sasl_username,
            sasl_password=password,
            ssl_ca_pem=cluster.ssl_ca_pem,
        )

    def client_config(self, timeout: float) -> dict:
        timeout_ms = str(max(1000, int(timeout * 1000)))
        config = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "socket.timeout.ms": timeout_ms,
            "socket.connection.setup.timeout.ms": timeout_ms,
            "reconnect.backoff.max.ms": "1000",
            "logger": librdkafka_log,
            "log_level": 3,
        }
        if self.security_protocol.startswith("SASL"):
            config["sasl.mechanism"] = self.sasl_mechanism
            config["sasl.username"] = self.sasl_username
            config["sasl.password"] = self.sasl_password
        if self.ssl_ca_pem and self.security_protocol.endswith("SSL"):
            config["ssl.ca.pem"] = self.ssl_ca_pem
        return config


_AUTH_CODES = frozenset(
    {
        KafkaError._AUTHENTICATION,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError.UNSUPPORTED_SASL_MECHANISM,
        KafkaError.ILLEGAL_SASL_STATE,
    }
)
# librdkafka's words, e.g. "SASL SCRAM-SHA-512 mechanism handshake failed: Broker: Unsupported SASL
# mechanism: broker's supported mechanisms: PLAIN (after 0ms in state AUTH_HANDSHAKE)" and
# "SASL authentication error: Authentication failed: Invalid username or password (after ...)".
_HANDSHAKE = re.compile(r"SASL (\S+) mechanism handshake failed")
_OFFERED = re.compile(r"supported mechanisms: ([^()]*?)\s*(?:\(after|$)")
_BROKER_SAID = re.compile(r"SASL authentication error: (.*?)\s*(?:\(after|$)")


def sasl_reason(error: KafkaError) -> str | None:
    """What a SASL refusal means to the person who configured the cluster; None when the error is
    not a SASL refusal. The text never holds the password: librdkafka does not put it in errors."""
    if error.code() not in _AUTH_CODES:
        return None
    text = error.str()
    offered = _OFFERED.search(text)
    if offered or error.code() == KafkaError.UNSUPPORTED_SASL_MECHANISM:
        mechanism = _HANDSHAKE.search(text)
        mechanisms = ", ".join(m.strip() for m in offered.group(1).split(",") if m.strip()) if offered else ""
        return f"the broker does not enable SASL mechanism {mechanism.group(1) if mechanism else 'configured'}; " + (
            f"it offers {mechanisms}" if mechanisms else "it offers none"
        )
    said = _BROKER_SAID.search(text)
    if said or error.code() == KafkaError.SASL_AUTHENTICATION_FAILED:
        return "authentication failed: the broker refused the SASL username or password" + (
            f" (the broker said: {said.group(1)})" if said and said.group(1) else ""
        )
    return f"authentication failed: {text}"


def _translate(exc: KafkaException, api: str, reported: list[KafkaError] | None = None) -> KafkaCallError:
    """The typed error for a failed call. `reported` holds what librdkafka sent to error_cb
    meanwhile: a SASL refusal reaches the caller only that way (the call itself just fails with
    a transport error), so it explains the failure better than the call's own error."""
    for error in reported or ():
        reason = sasl_reason(error)
        if reason:
            return KafkaCallError(f"{api}: {reason}")
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    if error is None:
        return KafkaCallError(f"{api} failed: {exc}")
    code = error.code()
    if code in (KafkaError._UNSUPPORTED_FEATURE, KafkaError.UNSUPPORTED_VERSION, KafkaError.INVALID_REQUEST):
        return UnsupportedApi(api, error.str())
    if code in (KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT):
        return KafkaCallError(f"{api} timed out: {error.str()}")
    if code in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE):
        return KafkaCallError(f"{api}: cluster unreachable or not answering ({error.str()})")
    if code in _AUTH_CODES:
        return KafkaCallError(f"{api}: {sasl_reason(error)}")
    if code == KafkaError._SSL:
        return KafkaCallError(f"{api}: TLS handshake failed ({error.str()})")
    return KafkaCallError(f"{api} failed: {error.name()}: {error.str()}")


def _admin(settings: ConnectionSettings, timeout: float, reported: list[KafkaError] | None = None) -> AdminClient:
    """An admin client; with `reported`, the errors librdkafka reports (through error_cb, served
    by `poll`) are appended to it."""
    config = settings.client_config(timeout)
    if reported is not None:
        config["error_cb"] = reported.append
    return AdminClient(config)


def _answer(api: str, timeout: float, send: Callable[[], Any]) -> Any:
    """Send an admin request (`send` returns its future) and wait for the answer within the
    timeout; a refusal, an unsupported API or the timeout becomes a typed error."""
    try:
        return send().result(timeout=timeout + 1)
    except KafkaException as exc:
        raise _translate(exc, api) from None
    except TimeoutError:
        raise KafkaCallError(f"{api} timed out") from None


def admin_client(settings: ConnectionSettings, *, timeout: float) -> AdminClient:
    """A client to keep for repeated metadata polls (a drill's watcher)."""
    return AdminClient({**settings.client_config(timeout), "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 200})


def _is_fatal(exc: KafkaException) -> bool:
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    return error is not None and (error.fatal() or error.code() == KafkaError._FATAL)


class LibrdkafkaNotFound(Exception):
    """The librdkafka shared library bundled in the confluent-kafka wheel is not where it should be
    (confluent-kafka installed from a source build or a distribution package, not its wheel)."""


def librdkafka_path() -> str:
    """Path of the librdkafka shared library bundled in the confluent-kafka wheel.

    The sandbox loads it through ctypes to run librdkafka's mock cluster, so it runs the same
    librdkafka as the clients. Raises LibrdkafkaNotFound when the wheel's library is missing.
    """
    libs_dir = Path(confluent_kafka.__file__).resolve().parent.parent / "confluent_kafka.libs"
    candidates = sorted(str(path) for path in libs_dir.glob("librdkafka*.so*"))
    if not candidates:
        raise LibrdkafkaNotFound(f"librdkafka not found under {libs_dir}; is confluent-kafka installed from its wheel?")
    return candidates[0]
