"""Typed readers for environment variables that fail loudly and name the variable."""

import os
import re
import tempfile
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None else value.strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off; got {value!r}")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int = 2**31) -> int:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number; got {value!r}") from None
    if not minimum <= number <= maximum:
        raise ImproperlyConfigured(f"{name} must be between {minimum} and {maximum}; got {number}")
    return number


def env_choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = (os.environ.get(name) or default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_database_url(name: str, url: str) -> dict:
    """Turn postgres://user:pass@host:port/db or sqlite:///path into a DATABASES entry."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc or not path or path == "/":
            raise ImproperlyConfigured(f"{name} must look like sqlite:////absolute/path.db; got a URL without a path")
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": path}
    if parts.scheme in ("postgres", "postgresql"):
        database = unquote(parts.path.lstrip("/"))
        if not database or not re.fullmatch(r"[\w$-]+", database):
            raise ImproperlyConfigured(f"{name} must name a database, e.g. postgres://user@host:5432/dbname")
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"{name} has a port that is not a number between 0 and 65535") from None
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": database,
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": parts.hostname or "",
            "PORT": str(port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    raise ImproperlyConfigured(f"{name} must start with postgres:// or sqlite:///; got scheme {parts.scheme!r}")


def check_broker_url(name: str, url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "filesystem"):
        raise ImproperlyConfigured(f"{name} must start with redis://, rediss:// or filesystem://; got {scheme!r}")
    return url


def check_fernet_key(name: str, key: str) -> None:
    from cryptography.fernet import Fernet

    try:
        Fernet(key)
    except ValueError:
        raise ImproperlyConfigured(f"{name}: each key must be a Fernet key (32 url-safe base64 bytes)") from None


def local_secret_key(path: Path) -> str:
    """The demo's and tests' key, made once and kept beside the embedded database. Written
    whole to a private file and linked into place, so processes starting together agree on
    one key and none reads a half-written file."""
    from cryptography.fernet import Fernet

    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        descriptor, temporary = tempfile.mkstemp(dir=path.parent)  # mode 0600
        with os.fdopen(descriptor, "w") as handle:
            handle.write(Fernet.generate_key().decode())
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    return path.read_text().strip()
