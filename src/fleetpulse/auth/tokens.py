"""Operator API keys and device tokens: their format, scopes and stored hash.

A token reads ``fp_<key id>_<secret>``. The key id (12 hex digits) is public: it names
the key in ``fleetpulse keys list``, in logs and in the key file. The secret is 32 random
bytes from ``secrets.token_urlsafe``. Only the SHA-256 of the whole token is stored. A
fast hash is enough here, because a 256-bit random secret cannot be guessed by trying
candidates against a stolen hash, unlike a password.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final, Literal

TOKEN_PREFIX: Final = "fp"
KEY_ID_BYTES: Final = 6
SECRET_BYTES: Final = 32

Scope = Literal["read", "admin", "device"]
SCOPE_READ: Final = "read"
SCOPE_ADMIN: Final = "admin"
SCOPE_DEVICE: Final = "device"
OPERATOR_SCOPES: Final = (SCOPE_READ, SCOPE_ADMIN)


@dataclass(frozen=True, slots=True)
class Credential:
    """One key of the key file, without its secret.

    ``scope`` is ``read`` or ``admin`` for an operator key and ``device`` for a device
    token, whose records must belong to one of ``devices``.
    """

    key_id: str
    scope: Scope
    token_sha256: str
    name: str = ""
    devices: frozenset[str] = frozenset()
    created_at: str = ""
    revoked_at: str | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def grants(self, scope: Scope) -> bool:
        """Return whether this key may use an endpoint that requires ``scope``.

        ``admin`` includes ``read``. Device tokens grant only ``device``, and admin keys
        grant ``device`` too, so that operator tools can send records for any device.
        """
        if self.scope == SCOPE_ADMIN:
            return True
        return self.scope == scope

    def covers_device(self, device_id: str) -> bool:
        """Return whether records of ``device_id`` may be sent with this key."""
        return self.scope == SCOPE_ADMIN or device_id in self.devices


def new_token() -> tuple[str, str]:
    """Return a new (key id, token)."""
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return key_id, f"{TOKEN_PREFIX}_{key_id}_{secret}"


def token_sha256(token: str) -> str:
    """Return the hex SHA-256 of a token, as the key file stores it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def key_id_of(token: str) -> str | None:
    """Return the key id part of a token, or None when the text is not a fleetpulse token."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
        return None
    key_id = parts[1]
    if len(key_id) != 2 * KEY_ID_BYTES or not _is_hex(key_id) or not parts[2]:
        return None
    return key_id


def token_matches(token: str, credential: Credential) -> bool:
    """Compare a token's hash with the stored one in constant time."""
    return hmac.compare_digest(token_sha256(token), credential.token_sha256)


def _is_hex(text: str) -> bool:
    return all(char in "0123456789abcdef" for char in text)
