"""The meter's equipment id, hashed: a swap is visible on the server, the id never leaves.

The hash is HMAC-SHA256 of the id under a random per-gateway salt that never leaves the Pi
either (``p1-id-salt`` beside the spool, created on first use, mode 0600), cut to 32 hex
digits (128 bits). Without the salt the hash cannot be matched to a meter by trying the
(structured, guessable) ids of the meters in a street.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["SALT_BYTES", "hash_meter_id", "load_salt"]

SALT_BYTES = 32
HASH_HEX_DIGITS = 32


def hash_meter_id(salt: bytes, equipment_id: str) -> str:
    """The salted hash of an equipment id (lower-case hex, :data:`HASH_HEX_DIGITS` digits)."""
    digest = hmac.new(salt, equipment_id.strip().encode(), hashlib.sha256).hexdigest()
    return digest[:HASH_HEX_DIGITS]


def load_salt(path: Path) -> bytes:
    """The gateway's salt from ``path``, created (0600, atomically) when missing."""
    try:
        salt = path.read_bytes()
    except FileNotFoundError:
        salt = secrets.token_bytes(SALT_BYTES)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(salt)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return salt
    if len(salt) < 16:
        raise ValueError(f"{path} holds {len(salt)} bytes, too short for a salt: delete it")
    return salt
