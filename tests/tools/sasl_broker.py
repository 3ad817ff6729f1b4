"""A test-only Kafka listener that requires SASL, spoken at the wire level on loopback.

The local clusters offer no working SASL, so this answers just enough of the protocol for a
client to authenticate and read metadata: ApiVersions, SaslHandshake (UNSUPPORTED_SASL_MECHANISM
with the enabled list for any other mechanism), SaslAuthenticate (PLAIN and SCRAM-SHA-256/512,
checked against one user; SASL_AUTHENTICATION_FAILED for a wrong password, with Kafka's own
messages) and Metadata (one broker, no topics). Any other request, or Metadata before
authentication, closes the connection, as a Kafka SASL listener does.

    with SaslBroker(user="scorecard", password="s3cret", mechanisms=("PLAIN",)) as broker:
        broker.bootstrap  # "127.0.0.1:PORT"
"""

import base64
import hashlib
import hmac
import os
import socketserver
import struct
import threading

API_METADATA, API_SASL_HANDSHAKE, API_API_VERSIONS, API_SASL_AUTHENTICATE = 3, 17, 18, 36
SUPPORTED = {API_METADATA: (1, 4), API_SASL_HANDSHAKE: (0, 1), API_API_VERSIONS: (0, 3), API_SASL_AUTHENTICATE: (0, 1)}
UNSUPPORTED_VERSION, UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED = 35, 33, 34, 58
NODE_ID = 1
SCRAM_ITERATIONS = 4096


def _string(value: str | None) -> bytes:
    if value is None:
        return struct.pack(">h", -1)
    data = value.encode()
    return struct.pack(">h", len(data)) + data


def _bytes(value: bytes) -> bytes:
    return struct.pack(">i", len(value)) + value


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, fmt: str):
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return value

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        value = self.data[self.at : self.at + length].decode()
        self.at += length
        return value

    def bytes(self) -> bytes:
        length = self.take(">i")
        value = self.data[self.at : self.at + length]
        self.at += length
        return value


class _Scram:
    """The server side of one SCRAM exchange (RFC 5802) for one user."""

    def __init__(self, mechanism: str, user: str, password: str):
        self.hash = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}[mechanism]
        self.mechanism, self.user = mechanism, user
        self.salt = os.urandom(16)
        salted = hashlib.pbkdf2_hmac(self.hash, password.encode(), self.salt, SCRAM_ITERATIONS)
        self.stored_key = hashlib.new(self.hash, self._hmac(salted, b"Client Key")).digest()
        self.server_key = self._hmac(salted, b"Server Key")
        self.first_bare = self.server_first = ""

    def _hmac(self, key: bytes, message: bytes) -> bytes:
        return hmac.new(key, message, self.hash).digest()

    def first(self, message: str) -> tuple[bytes | None, str | None]:
        self.first_bare = message.split(",", 2)[2]
        fields = dict(item.split("=", 1) for item in self.first_bare.split(","))
        if fields.get("n") != self.user:
            return None, "Authentication failed during authentication due to invalid credentials"
        nonce = fields["r"] + base64.b64encode(os.urandom(18)).decode()
        self.server_first = f"r={nonce},s={base64.b64encode(self.salt).decode()},i={SCRAM_ITERATIONS}"
        return self.server_first.encode(), None

    def final(self, message: str) -> tuple[bytes | None, str | None]:
        without_proof, proof = message.rsplit(",p=", 1)
        auth_message = f"{self.first_bare},{self.server_first},{without_proof}".encode()
        signature = self._hmac(self.stored_key, auth_message)
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=True))
        if not hmac.compare_digest(hashlib.new(self.hash, client_key).digest(), self.stored_key):
            return None, (
                "Authentication failed during authentication due to invalid credentials "
                f"with SASL mechanism {self.mechanism}"
            )
        return f"v={base64.b64encode(self._hmac(self.server_key, auth_message)).decode()}".encode(), None


class _Connection(socketserver.BaseRequestHandler):
    server: "_Server"

    def handle(self) -> None:
        self.mechanism = ""
        self.authenticated = False
        self.scram: _Scram | None = None
        while True:
            size = self._read(4)
            if size is None:
                return
            frame = self._read(struct.unpack(">i", size)[0])
            if frame is None:
                return
            request = _Reader(frame)
            api, version, correlation = request.take(">h"), request.take(">h"), request.take(">i")
            self.server.broker.requests.append((api, version))
            request.string()  # client id
            body = self._answer(api, version, request)
            if body is None:
                return  # closing, as a SASL listener does on a request it does not take now
            response = struct.pack(">i", correlation) + body
            self.request.sendall(struct.pack(">i", len(response)) + response)

    def _read(self, count: int) -> bytes | None:
        data = b""
        while len(data) < count:
            chunk = self.request.recv(count - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def _answer(self, api: int, version: int, request: _Reader) -> bytes | None:
        if api == API_API_VERSIONS:
            return self._api_versions(version)
        low, high = SUPPORTED.get(api, (0, -1))
        if not low <= version <= high:
            return None
        if api == API_SASL_HANDSHAKE and not self.authenticated:
            return self._handshake(request.string() or "")
        if api == API_SASL_AUTHENTICATE and self.mechanism and not self.authenticated:
            return self._authenticate(version, request.bytes())
        if api == API_METADATA and self.authenticated:
            return self._metadata(version)
        return None

    def _api_versions(self, version: int) -> bytes:
        if version > 3:  # answer in v0, naming what we support, so the client retries lower
            return struct.pack(">hi", UNSUPPORTED_VERSION, 1) + struct.pack(">hhh", API_API_VERSIONS, 0, 3)
        keys = sorted(SUPPORTED.items())
        if version == 3:  # flexible: compact array and tagged fields (the response header stays v0)
            entries = b"".join(struct.pack(">hhh", k, lo, hi) + _uvarint(0) for k, (lo, hi) in keys)
            return struct.pack(">h", 0) + _uvarint(len(keys) + 1) + entries + struct.pack(">i", 0) + _uvarint(0)
        entries = b"".join(struct.pack(">hhh", k, lo, hi) for k, (lo, hi) in keys)
        return struct.pack(">hi", 0, len(keys)) + entries + (struct.pack(">i", 0) if version >= 1 else b"")

    def _handshake(self, mechanism: str) -> bytes:
        enabled = self.server.broker.mechanisms
        error = 0 if mechanism in enabled else UNSUPPORTED_SASL_MECHANISM
        if not error:
            self.mechanism = mechanism
        return struct.pack(">hi", error, len(enabled)) + b"".join(_string(m) for m in enabled)

    def _authenticate(self, version: int, auth: bytes) -> bytes:
        broker = self.server.broker
        answer, error, final = b"", None, True
        if self.mechanism == "PLAIN":
            parts = auth.split(b"\0")
            if len(parts) != 3 or parts[1].decode() != broker.user or parts[2].decode() != broker.password:
                error = "Authentication failed: Invalid username or password"
        elif self.scram is None:
            self.scram = _Scram(self.mechanism, broker.user, broker.password)
            answer, error = self.scram.first(auth.decode())
            final = error is not None
        else:
            answer, error = self.scram.final(auth.decode())
        if final:
            self.authenticated = error is None
            broker.attempts.append((self.mechanism, self.authenticated))
        body = struct.pack(">h", SASL_AUTHENTICATION_FAILED if error else 0) + _string(error) + _bytes(answer or b"")
        return body + (struct.pack(">q", 0) if version >= 1 else b"")

    def _metadata(self, version: int) -> bytes:
        port = self.server.server_address[1]
        body = struct.pack(">i", 0) if version >= 3 else b""
        body += struct.pack(">ii", 1, NODE_ID) + _string("127.0.0.1") + struct.pack(">i", port) + _string(None)
        if version >= 2:
            body += _string("sasl-test-cluster")
        return body + struct.pack(">ii", NODE_ID, 0)  # controller, no topics


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    broker: "SaslBroker"


class SaslBroker:
    """A SASL_PLAINTEXT listener on a random loopback port, in a thread of the test process."""

    def __init__(self, *, user: str, password: str, mechanisms: tuple[str, ...] = ("PLAIN",)):
        self.user, self.password, self.mechanisms = user, password, mechanisms
        self.requests: list[tuple[int, int]] = []
        self.attempts: list[tuple[str, bool]] = []  # (mechanism, accepted)
        self._server = _Server(("127.0.0.1", 0), _Connection)
        self._server.broker = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="sasl-broker", daemon=True)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "SaslBroker":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
