"""One bootstrap address at a time: TCP connect, a metadata answer, TLS expiry, anonymous refusal."""

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass, replace

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from drills.kafka.client import ConnectionSettings, _admin, _translate
from scorecard.validators import parse_bootstrap_servers


@dataclass(frozen=True)
class EndpointResult:
    address: str
    connect_ms: float | None
    metadata_ms: float | None
    brokers: int | None
    error: str | None
    cert_days_left: float | None = None
    cert_subject: str | None = None
    unauthenticated_refused: bool | None = None


def _tls_certificate(host: str, port: int, settings: ConnectionSettings, timeout: float) -> tuple[float, str]:
    """Days until the listener's certificate expires, and its subject."""
    context = ssl.create_default_context(cadata=settings.ssl_ca_pem or None)
    with (
        socket.create_connection((host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        cert = tls.getpeercert()
    expires = ssl.cert_time_to_seconds(cert["notAfter"])
    subject = ",".join("=".join(pair) for rdn in cert.get("subject", ()) for pair in rdn)
    return (expires - time.time()) / 86400, subject


def endpoint_check(settings: ConnectionSettings, *, host: str, port: int, timeout: float) -> EndpointResult:
    """Connect to one bootstrap address alone: TCP connect time, a metadata answer, TLS expiry,
    and for SASL listeners whether an unauthenticated client is refused."""
    address = f"{host}:{port}"
    started = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            connect_ms = (time.perf_counter() - started) * 1000
    except OSError as exc:
        return EndpointResult(address, None, None, None, f"connect failed: {exc.strerror or exc}")
    cert_days = subject = None
    if settings.security_protocol.endswith("SSL"):
        try:
            cert_days, subject = _tls_certificate(host, port, settings, timeout)
        except (OSError, ssl.SSLError, ValueError, KeyError) as exc:
            return EndpointResult(address, round(connect_ms, 3), None, None, f"TLS handshake failed: {exc}")
    single = replace(settings, bootstrap_servers=address)
    started = time.perf_counter()
    try:
        metadata = _admin(single, timeout).list_topics(timeout=timeout)
    except KafkaException as exc:
        return EndpointResult(
            address, round(connect_ms, 3), None, None, _translate(exc, "Metadata").reason, cert_days, subject
        )
    metadata_ms = (time.perf_counter() - started) * 1000
    refused = None
    if settings.security_protocol.startswith("SASL"):
        anonymous = ConnectionSettings(
            address, "SSL" if settings.security_protocol == "SASL_SSL" else "PLAINTEXT", ssl_ca_pem=settings.ssl_ca_pem
        )
        try:
            _admin(anonymous, timeout).list_topics(timeout=timeout)
            refused = False
        except KafkaException:
            refused = True
    return EndpointResult(
        address, round(connect_ms, 3), round(metadata_ms, 3), len(metadata.brokers), None, cert_days, subject, refused
    )


QUICK_CHECK_SECONDS = 2.0


def _address_problem(host: str, port: int, settings: ConnectionSettings, timeout: float) -> str | None:
    """Why one bootstrap address cannot be used, found without waiting on Kafka; None if it
    accepts a connection (and, for TLS listeners, completes a handshake)."""
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return f"{host}:{port}: unknown host (the name does not resolve)"
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except ConnectionRefusedError:
        return f"{host}:{port}: connection refused (nothing listens on that port)"
    except TimeoutError:
        return None  # silent, not refused: only the probe's own timeout can tell
    except OSError as exc:
        return f"{host}:{port}: cannot connect ({exc.strerror or exc})"
    if settings.security_protocol.endswith("SSL"):
        try:
            _tls_certificate(host, port, settings, timeout)
        except ssl.SSLCertVerificationError as exc:
            return f"{host}:{port}: TLS certificate rejected ({exc.verify_message})"
        except (ssl.SSLError, OSError) as exc:
            return f"{host}:{port}: TLS handshake failed ({exc})"
    return None


def quick_failure(settings: ConnectionSettings, *, timeout: float = QUICK_CHECK_SECONDS) -> str | None:
    """The reason no client can use the cluster, found within about `timeout` seconds: every
    bootstrap address unknown, refused or failing TLS, or the brokers refusing authentication.
    None when the cluster may be usable (or is merely silent: the probe's timeout decides)."""
    addresses = parse_bootstrap_servers(settings.bootstrap_servers)
    problems = [_address_problem(host, port, settings, timeout) for host, port in addresses]
    if all(problems):
        return "no bootstrap address can be used: " + "; ".join(problems)
    if not settings.security_protocol.startswith("SASL"):
        return None
    # Authentication only fails once a broker answers: librdkafka reports it through error_cb.
    refused: list[str] = []

    def on_error(error) -> None:
        if error.code() in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
            refused.append(error.str())

    admin = AdminClient({**settings.client_config(timeout), "error_cb": on_error})
    with contextlib.suppress(KafkaException):
        admin.list_topics(timeout=timeout)
    return f"authentication failed: {refused[0]}" if refused else None
