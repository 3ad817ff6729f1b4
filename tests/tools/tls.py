"""Test certificates (made with `cryptography`) and a real TLS terminator (stunnel) in front of a
plain Kafka listener, so probes meet a TLS listener as clients meet one in production.

    ca = authority("Test Root CA")
    good = ca.issue(days=365)                         # 127.0.0.1 and localhost in the SAN
    expired = ca.issue(days=-3)
    stranger = authority("Other CA").issue()          # not signed by the cluster's CA
    elsewhere = ca.issue(names=("kafka.example.com",))
    with Stunnel({"good": (tls_port, plain_port, good)}, directory) as terminator: ...
"""

import ipaddress
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _san(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _validity(days: float) -> tuple[datetime, datetime]:
    """From a day before now (or before expiry, for an expired certificate) to `days` from now."""
    now = datetime.now(UTC)
    not_after = now + timedelta(days=days)
    return min(now, not_after) - timedelta(days=30), not_after


@dataclass(frozen=True)
class ServerCertificate:
    """A listener's certificate and private key, both in PEM."""

    cert_pem: str
    key_pem: str


@dataclass(frozen=True)
class Authority:
    """A CA that issues server certificates."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> str:
        return _pem(self.certificate)

    def issue(
        self, *, names: tuple[str, ...] = ("127.0.0.1", "localhost"), days: float = 365, common_name: str = ""
    ) -> ServerCertificate:
        """A server certificate for `names` (subject alternative names), valid for `days` from now
        (negative: expired that many days ago)."""
        key = ec.generate_private_key(ec.SECP256R1())
        not_before, not_after = _validity(days)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([_san(n) for n in names]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        return ServerCertificate(_pem(certificate), key_pem)


def authority(common_name: str = "Test Root CA", days: float = 3650) -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    not_before, not_after = _validity(days)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, certificate)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stunnel_binary() -> str:
    binary = shutil.which("stunnel4") or shutil.which("stunnel")
    if binary is None:
        raise RuntimeError("stunnel is not installed (apt-get install stunnel4)")
    return binary


class Stunnel:
    """One stunnel process in the foreground, terminating TLS for one or more services:
    {name: (tls_port, plain_port, certificate)}, each on loopback only."""

    def __init__(self, services: dict[str, tuple[int, int, ServerCertificate]], directory: Path):
        self.services = services
        self.directory = Path(directory)
        self.process: subprocess.Popen | None = None

    def config(self) -> str:
        lines = ["foreground = yes", "pid =", "debug = 5", "syslog = no", ""]
        for name, (tls_port, plain_port, certificate) in self.services.items():
            cert_path = self.directory / f"{name}.crt"
            key_path = self.directory / f"{name}.key"
            cert_path.write_text(certificate.cert_pem)
            key_path.write_text(certificate.key_pem)
            key_path.chmod(0o600)
            lines += [
                f"[{name}]",
                f"accept = 127.0.0.1:{tls_port}",
                f"connect = 127.0.0.1:{plain_port}",
                f"cert = {cert_path}",
                f"key = {key_path}",
                "",
            ]
        return "\n".join(lines)

    @property
    def log_path(self) -> Path:
        return self.directory / "stunnel.log"

    def start(self, *, timeout: float = 10.0) -> "Stunnel":
        config_path = self.directory / "stunnel.conf"
        config_path.write_text(self.config())
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen([stunnel_binary(), str(config_path)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        waiting = [tls_port for tls_port, _, _ in self.services.values()]
        while waiting:
            if self.process.poll() is not None:
                raise RuntimeError(f"stunnel exited with {self.process.returncode}:\n{self.log_path.read_text()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"stunnel did not listen on {waiting} within {timeout} s")
            waiting = [port for port in waiting if not _listening(port)]
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def __enter__(self) -> "Stunnel":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
