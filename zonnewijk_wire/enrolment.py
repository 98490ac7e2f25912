"""Enrolment: a new Pi trades a one-time code for its identity, credentials and configuration.

``POST <server>/api/v1/gateways/enrol`` over HTTPS with an :class:`EnrolmentRequest`; the
answer is an :class:`EnrolmentGrant` (HTTP 200) or ``{"detail": ..., "reason": ...}`` with
HTTP 400 (malformed), 404 (unknown code), 410 (expired or already used) or 503 (the server
cannot issue credentials now; the code stays valid).

Codes are 16 characters of Crockford's base-32 (80 bits), shown in four groups
(``7KQ4-M2XD-9V0C-HT3R``); :func:`normalise_code` accepts them in any case, with or without
dashes and spaces, and reads the easily confused ``O``/``I``/``L`` as ``0``/``1``/``1``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field

from zonnewijk_wire.common import WIRE_VERSION, Identifier, Strict
from zonnewijk_wire.remote_config import RemoteConfig

ENROL_PATH = "/api/v1/gateways/enrol"
#: Crockford's base-32 alphabet (no I, L, O, U).
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
CODE_LENGTH = 16
_CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})


def normalise_code(text: str) -> str | None:
    """The code in canonical form (16 upper-case characters), or None if it cannot be one."""
    cleaned = re.sub(r"[\s-]", "", text).upper().translate(_CONFUSABLE)
    if len(cleaned) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in cleaned):
        return None
    return cleaned


def display_code(code: str) -> str:
    """``7KQ4M2XD9V0CHT3R`` → ``7KQ4-M2XD-9V0C-HT3R``."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


class EnrolmentRequest(Strict):
    """What the Pi sends: the code and a little about itself (for the enrolment log)."""

    v: Literal[1] = WIRE_VERSION
    code: Annotated[str, Field(min_length=1, max_length=64)]
    hostname: Annotated[str, Field(max_length=200)] | None = None
    firmware_version: Annotated[str, Field(max_length=64)] | None = None


class BrokerAccess(Strict):
    """How the gateway reaches the broker, with the credentials issued to it."""

    host: Annotated[str, Field(min_length=1, max_length=253)]
    port: Annotated[int, Field(ge=1, le=65535)]
    username: Identifier
    password: Annotated[str, Field(min_length=16, max_length=200)]
    #: PEM of the CA that signed the broker's certificate; None: the broker speaks plain MQTT
    ca_pem: Annotated[str, Field(max_length=20_000)] | None = None
    protocol: Literal["5", "3.1.1"] = "5"


class EnrolmentGrant(Strict):
    """The server's answer: who the gateway is, how it reaches the broker, what it reads."""

    v: Literal[1] = WIRE_VERSION
    gateway_id: Identifier
    site_id: Identifier
    broker: BrokerAccess
    config: RemoteConfig
    #: key (hex) that authenticates the server's configs and commands to this gateway
    command_key: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
