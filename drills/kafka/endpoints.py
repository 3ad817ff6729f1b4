"""One bootstrap address at a time: TCP connect, a metadata answer, TLS expiry, anonymous refusal."""

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from confluent_kafka import KafkaError, KafkaException
from cryptography import x509
from django.core.exceptions import ValidationError

from drills.kafka.client import ConnectionSettings, _admin, _translate, sasl_reason
from scorecard.validators import ca_certificates, parse_bootstrap_servers


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
    cert_rejected: bool = False  # clients refuse the listener's certificate (error says why)
    cert_not_after: str | None = None
    cert_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class TlsCertificate:
    """What a TLS listener presents, read without trusting it, and why a client would refuse it."""

    subject: str
    issuer: str
    names: tuple[str, ...]  # subject alternative names ("DNS:kafka-1", "IP:10.0.0.1")
    not_after: datetime
    days_left: float
    problem: str | None  # None: it verifies against the configured CA and the host name


class TlsHandshakeFailed(Exception):
    """No certificate could be read: the address does not complete a TLS handshake."""


# OpenSSL verification results (X509_V_ERR_*) that an SRE can act on, told in their terms.
_EXPIRED, _NOT_YET_VALID = 10, 9
_UNKNOWN_ISSUER = {2, 18, 19, 20, 21}  # no issuer certificate, self-signed, unable to get issuer
_NAME_MISMATCH = {62, 64}  # host name, IP address


def _names(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    return tuple(
        [f"DNS:{name}" for name in san.get_values_for_type(x509.DNSName)]
        + [f"IP:{address}" for address in san.get_values_for_type(x509.IPAddress)]
    )


def _configured_cas(pem: str) -> str:
    try:
        return "; ".join(c.subject.rfc4514_string() for c in ca_certificates(pem))
    except ValidationError:
        return "unreadable"


def _verify_context(settings: ConnectionSettings) -> ssl.SSLContext:
    try:
        context = ssl.create_default_context(cadata=settings.ssl_ca_pem or None)
    except (ssl.SSLError, ValueError) as exc:
        raise TlsHandshakeFailed(f"the cluster's CA certificate cannot be used: {exc}") from None
    # Python 3.13 adds X509_STRICT (e.g. it requires an authority key identifier); librdkafka
    # does not, and the probe must judge a certificate as the Kafka clients will.
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return context


def _problem(
    error: ssl.SSLCertVerificationError, host: str, cert: x509.Certificate, settings: ConnectionSettings
) -> str:
    subject = cert.subject.rfc4514_string()
    code = error.verify_code
    if code == _EXPIRED:
        days = (datetime.now(UTC) - cert.not_valid_after_utc).total_seconds() / 86400
        return (
            f"TLS certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC ({days:.0f} days ago; "
            f"subject {subject}): clients refuse it until it is renewed"
        )
    if code == _NOT_YET_VALID:
        return f"TLS certificate is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC (subject {subject})"
    if code in _UNKNOWN_ISSUER:
        issuer = cert.issuer.rfc4514_string()
        trusted = (
            f"the configured CA ({_configured_cas(settings.ssl_ca_pem)})"
            if settings.ssl_ca_pem
            else "any CA the worker trusts (no CA certificate is configured for the cluster)"
        )
        return f"TLS certificate is not signed by {trusted}: it was issued by {issuer} (subject {subject})"
    if code in _NAME_MISMATCH:
        held = ", ".join(_names(cert)) or f"no subject alternative names; subject {subject}"
        return f"TLS certificate does not match the host name {host}: it holds {held}"
    return f"TLS certificate rejected: {error.verify_message} (subject {subject})"


def _tls_certificate(host: str, port: int, settings: ConnectionSettings, timeout: float) -> TlsCertificate:
    """Read the listener's certificate without verifying it (so an expired or unknown one still
    shows its dates and names), then verify it as a client would, in a second handshake."""
    reader = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    reader.check_hostname = False
    reader.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            reader.wrap_socket(raw, server_hostname=host) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
    except TimeoutError:
        raise TlsHandshakeFailed(f"no TLS answer within {timeout:g} s (is it a TLS listener?)") from None
    except (ssl.SSLError, OSError) as exc:
        raise TlsHandshakeFailed(f"{getattr(exc, 'reason', None) or exc} (is it a TLS listener?)") from None
    if not der:
        raise TlsHandshakeFailed("the listener presented no certificate")
    try:
        cert = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise TlsHandshakeFailed(f"the listener's certificate cannot be read ({exc})") from None
    problem = None
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            _verify_context(settings).wrap_socket(raw, server_hostname=host),
        ):
            pass
    except ssl.SSLCertVerificationError as exc:
        problem = _problem(exc, host, cert, settings)
    except (ssl.SSLError, OSError) as exc:
        raise TlsHandshakeFailed(str(getattr(exc, "reason", None) or exc)) from None
    return TlsCertificate(
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        names=_names(cert),
        not_after=cert.not_valid_after_utc,
        days_left=(cert.not_valid_after_utc - datetime.now(UTC)).total_seconds() / 86400,
        problem=problem,
    )


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
    cert: TlsCertificate | None = None
    if settings.security_protocol.endswith("SSL"):
        try:
            cert = _tls_certificate(host, port, settings, timeout)
        except TlsHandshakeFailed as exc:
            return EndpointResult(address, round(connect_ms, 3), None, None, f"TLS handshake failed: {exc}")
        cert_days, subject = cert.days_left, cert.subject
        if cert.problem:
            return EndpointResult(
                address,
                round(connect_ms, 3),
                None,
                None,
                cert.problem,
                cert_days,
                subject,
                cert_rejected=True,
                cert_not_after=cert.not_after.isoformat(),
                cert_names=cert.names,
            )
    single = replace(settings, bootstrap_servers=address)
    started = time.perf_counter()
    reported: list[KafkaError] = []
    admin = _admin(single, timeout, reported)
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        admin.poll(0)  # serve error_cb: a SASL refusal is only reported there
        reason = _redact(_translate(exc, "Metadata", reported).reason, settings)
        return EndpointResult(address, round(connect_ms, 3), None, None, reason, cert_days, subject)
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
        address,
        round(connect_ms, 3),
        round(metadata_ms, 3),
        len(metadata.brokers),
        None,
        cert_days,
        subject,
        refused,
        cert_not_after=cert.not_after.isoformat() if cert else None,
        cert_names=cert.names if cert else (),
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
            problem = _tls_certificate(host, port, settings, timeout).problem
        except TlsHandshakeFailed as exc:
            return f"{host}:{port}: TLS handshake failed: {exc}"
        if problem:
            return f"{host}:{port}: {problem}"
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
    reported: list[KafkaError] = []
    admin = _admin(settings, timeout, reported)
    with contextlib.suppress(KafkaException):
        admin.list_topics(timeout=timeout)
    admin.poll(0)
    reasons = [reason for reason in map(sasl_reason, reported) if reason]
    return _redact(reasons[0], settings) if reasons else None


def _redact(text: str, settings: ConnectionSettings) -> str:
    """A broker's own words are passed on; should one ever echo the password, it is cut out."""
    return text.replace(settings.sasl_password, "[password]") if settings.sasl_password else text
