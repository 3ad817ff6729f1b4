"""Validation of cluster connection settings, shared by forms and the model."""

import ipaddress
import json
import re
import string
from datetime import UTC, datetime

from cryptography import x509
from django.core.exceptions import ValidationError

MAX_BOOTSTRAP_SERVERS = 32
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# A SASL password, typed on the cluster form or given to `scorecard_config import`.
SASL_PASSWORD_MAX = 500
# Command actuator templates: argv lists per operation, with only these placeholders.
COMMAND_OPS = ("broker_down", "broker_up")
PLACEHOLDERS = {"broker", "host", "port", "rack"}
MAX_COMMAND_ARGS = 64
MAX_COMMAND_ARG_CHARS = 1000
# What a placeholder may be replaced with: a value starting with "-" would be read as an option
# (a broker advertising the host `-oProxyCommand=...` must never reach ssh's argv).
PLACEHOLDER_VALUE = re.compile(r"^[A-Za-z0-9:][A-Za-z0-9._:-]{0,252}$")
# JSON typed into a form: its size in bytes and nesting are checked before it is parsed, so a
# megabyte of text or a document nested 100,000 deep costs no memory and no recursion.
MAX_JSON_BYTES = 20_000
MAX_JSON_DEPTH = 20
# A string runs to its closing quote or, unterminated, to the end of the text (json.loads then
# refuses it): every match succeeds, so the scan is linear whatever the text (no backtracking).
_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\Z)|[\[\]{}]', re.DOTALL)


def parse_bootstrap_servers(value: str) -> list[tuple[str, int]]:
    """'host:port,host:port' into pairs; raises ValidationError naming the bad entry."""
    entries = [entry.strip() for entry in (value or "").split(",")]
    if not value or not value.strip():
        raise ValidationError("Enter at least one bootstrap address as host:port.")
    if any(not entry for entry in entries):
        raise ValidationError("Remove the empty entry between commas.")
    if len(entries) > MAX_BOOTSTRAP_SERVERS:
        raise ValidationError(f"At most {MAX_BOOTSTRAP_SERVERS} bootstrap addresses.")
    servers = []
    for entry in entries:
        if "://" in entry:
            raise ValidationError(f"{entry!r}: give host:port without a scheme such as PLAINTEXT://.")
        if any(ch.isspace() for ch in entry):
            raise ValidationError(f"{entry!r}: addresses cannot contain spaces.")
        # ASCII digits only: \d also takes other scripts' digits, which int() reads but Kafka does not.
        match = re.fullmatch(
            r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<port>[0-9]+)|(?P<host>[^:\[\]]+):(?P<port2>[0-9]+)", entry
        )
        if not match:
            raise ValidationError(f"{entry!r}: expected host:port (IPv6 as [addr]:port).")
        host = match.group("v6") or match.group("host")
        digits = match.group("port") or match.group("port2")
        port = int(digits) if len(digits) <= 5 else 0  # int() refuses more than 4,300 digits
        if not 1 <= port <= 65535:
            raise ValidationError(f"{entry!r}: the port must be between 1 and 65535.")
        if match.group("v6"):
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise ValidationError(f"{entry!r}: {host} is not an IPv6 address.") from None
        elif not _HOSTNAME.match(host):
            raise ValidationError(f"{entry!r}: {host} is not a valid host name or IPv4 address.")
        servers.append((host, port))
    return servers


def validate_bootstrap_servers(value: str) -> None:
    parse_bootstrap_servers(value)


def validate_queue_name(value: str) -> None:
    if not QUEUE_NAME.match(value or ""):
        raise ValidationError("Use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit.")


MAX_CA_BYTES = 100_000
MAX_CA_CERTIFICATES = 20


def ca_certificates(value: str) -> list[x509.Certificate]:
    """The PEM certificates in the text; ValidationError when it holds anything else."""
    text = (value or "").strip()
    if not text:
        return []
    if len(text) > MAX_CA_BYTES:
        raise ValidationError(f"At most {MAX_CA_BYTES:,} characters of PEM certificates.")
    if not (text.startswith("-----BEGIN CERTIFICATE-----") and text.endswith("-----END CERTIFICATE-----")):
        raise ValidationError("Paste PEM certificates (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----).")
    try:
        certificates = x509.load_pem_x509_certificates(text.encode())
    except (ValueError, UnicodeEncodeError):
        raise ValidationError("The CA certificate could not be read: paste the PEM text as exported, whole.") from None
    if len(certificates) > MAX_CA_CERTIFICATES:
        raise ValidationError(f"At most {MAX_CA_CERTIFICATES} CA certificates.")
    return certificates


def validate_ca_pem(value: str) -> None:
    ca_certificates(value)


def describe_ca(value: str, now: datetime | None = None) -> list[str]:
    """Each certificate's subject and expiry in words, for the cluster's pages."""
    now = now or datetime.now(UTC)
    try:
        certificates = ca_certificates(value)
    except ValidationError as exc:
        return [exc.messages[0]]
    lines = []
    for certificate in certificates:
        expiry = certificate.not_valid_after_utc
        days = (expiry - now).days
        when = f"EXPIRED on {expiry:%Y-%m-%d}" if expiry <= now else f"expires {expiry:%Y-%m-%d} (in {days} days)"
        lines.append(f"{certificate.subject.rfc4514_string() or '(no subject)'}; {when}")
    return lines


def validate_command_templates(templates: dict) -> None:
    """Raise ValueError naming the problem; used by the cluster form and before every run."""
    if not isinstance(templates, dict):
        raise ValueError("command templates must be an object with broker_down and broker_up")
    unknown = set(templates) - {*COMMAND_OPS, "timeout_seconds"}
    if unknown:
        raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
    for op in COMMAND_OPS:
        argv = templates.get(op)
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) and a for a in argv):
            raise ValueError(f"{op} must be a non-empty list of strings (the program and its arguments)")
        if argv[0].startswith("-"):
            raise ValueError(f"{op}: the program (the first item) cannot start with '-'")
        if len(argv) > MAX_COMMAND_ARGS:
            raise ValueError(f"{op}: at most {MAX_COMMAND_ARGS} arguments")
        for arg in argv:
            if len(arg) > MAX_COMMAND_ARG_CHARS:
                raise ValueError(f"{op}: an argument of at most {MAX_COMMAND_ARG_CHARS} characters")
            # PostgreSQL's JSON refuses NUL, an argv cannot hold it, and no one means the others.
            if any(ord(c) < 32 or c == "\x7f" or 0xD800 <= ord(c) <= 0xDFFF for c in arg):
                raise ValueError(f"{op}: an argument holds a control character")
            for _, field, spec, conversion in string.Formatter().parse(arg):
                if field is None:
                    continue
                if field not in PLACEHOLDERS or spec or conversion:
                    raise ValueError(f"{op}: placeholder {{{field}}} is not one of {', '.join(sorted(PLACEHOLDERS))}")
    timeout = templates.get("timeout_seconds", 60)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 600:
        raise ValueError("timeout_seconds must be a whole number between 1 and 600")


def placeholder_value_problem(name: str, value: str) -> str:
    """Why a value may not fill the placeholder {name} of a command ("" = it may): only host
    names, addresses, numbers and rack names, never one that reads as an option."""
    if value and not PLACEHOLDER_VALUE.match(value):
        shown = value if len(value) <= 80 else value[:80] + "..."
        why = "it starts with '-' and would be read as an option" if value.startswith("-") else "unsafe characters"
        return f"refusing to put {name}={shown!r} into a command: {why}"
    return ""


def json_nesting_problem(text: str, *, max_bytes: int, max_depth: int) -> str:
    """Why JSON text is refused before it is parsed ("" = it may be parsed): larger than
    `max_bytes` in UTF-8, or nested deeper than `max_depth` (strings skipped)."""
    if len(text) > max_bytes or len(text.encode(errors="surrogatepass")) > max_bytes:
        return f"at most {max_bytes:,} bytes of JSON"
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        symbol = token.group()
        if symbol in "[{":
            depth += 1
            if depth > max_depth:
                return f"nested deeper than {max_depth} levels"
        elif symbol in "]}":
            depth -= 1
    return ""


def storable_problem(value, path: str = "") -> str:
    """Where a JSON value holds a string PostgreSQL cannot store ("" = nowhere): a NUL (jsonb
    refuses \\u0000 too) or a lone surrogate. Keys count."""
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        bad = isinstance(value, str) and ("\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value))
        return (path or "value") if bad else ""
    for key, item in items:
        if found := storable_problem(key, path) or storable_problem(item, f"{path}.{key}".lstrip(".")):
            return found
    return ""


def load_json(text: str, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH):
    """Parse JSON typed by a person; ValueError with a sentence when it is too large, too deep,
    malformed or holds what cannot be stored."""
    if problem := json_nesting_problem(text, max_bytes=max_bytes, max_depth=max_depth):
        raise ValueError(problem)
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"not valid JSON: {exc}") from None
    if where := storable_problem(value):
        raise ValueError(f"{where}: a NUL character or a lone surrogate cannot be stored")
    return value


def validate_storable_json(value) -> None:
    """Model validator of JSON fields people fill: size, nesting and storable strings."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        raise ValidationError("Not a JSON value.") from None
    if problem := json_nesting_problem(text, max_bytes=MAX_JSON_BYTES, max_depth=MAX_JSON_DEPTH):
        raise ValidationError(f"JSON of {problem}.")
    if where := storable_problem(value):
        raise ValidationError(f"{where}: a NUL character or a lone surrogate cannot be stored.")
