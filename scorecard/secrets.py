"""Cluster secrets at rest: Fernet tokens under SCORECARD_SECRET_KEYS (newest first)."""

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


class SecretUnreadable(ValueError):
    """A stored secret that none of the configured keys decrypts."""


def _keys() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.SCORECARD_SECRET_KEYS])


def encrypt(plain: str) -> str:
    return _keys().encrypt(plain.encode()).decode() if plain else ""


def _unreadable() -> SecretUnreadable:
    return SecretUnreadable(
        "a stored secret cannot be decrypted with SCORECARD_SECRET_KEYS: was a key dropped before "
        "`manage.py rotate_secrets` ran? Enter the password again"
    )


def decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _keys().decrypt(token.encode()).decode()
    except InvalidToken:
        raise _unreadable() from None


def rotate(token: str) -> str:
    """The same secret under the newest key."""
    if not token:
        return ""
    try:
        return _keys().rotate(token.encode()).decode()
    except InvalidToken:
        raise _unreadable() from None
