"""What the server sends a gateway, and what the gateway answers: configs, commands, diagnostics.

Topics (under ``zonnewijk/v1/<gateway_id>/``):

- ``config``: :class:`ConfigDelivery`, retained, QoS 1, written by the server only;
- ``commands/diagnostics``: :class:`GatewayCommand`, QoS 1, not retained;
- ``diagnostics``: :class:`DiagnosticsBundle`, retained, written by that gateway only.

The broker's ACL confines who may write each topic; on top of that every config and command
carries an HMAC-SHA256 over its canonical JSON with the gateway's own key (issued at
enrolment, never sent again), so a gateway applies nothing that the server did not make for
it: not another gateway's config (the key differs), not an edited one, not an old one replayed
(configs must be newer than the one running, commands expire and run once).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from zonnewijk_wire.common import TOPIC_ROOT, WIRE_VERSION, Identifier, Strict, UtcDatetime
from zonnewijk_wire.remote_config import RemoteConfig, canonical_json

#: A command older than this is not run (clocks of Pi and server may differ a little) [s].
COMMAND_LIFETIME_S = 600


def config_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/config"


def command_topic(gateway_id: str, command: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/commands/{command}"


def diagnostics_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/diagnostics"


DIAGNOSTICS_FILTER = f"{TOPIC_ROOT}/+/diagnostics"


def signature(key_hex: str, data: Any) -> str:
    """HMAC-SHA256 (hex) of ``data`` as canonical JSON, with the gateway's key."""
    return hmac.new(
        bytes.fromhex(key_hex), canonical_json(data).encode(), hashlib.sha256
    ).hexdigest()


def signature_valid(key_hex: str, data: Any, claimed: str) -> bool:
    return hmac.compare_digest(signature(key_hex, data), claimed)


Signature = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class ConfigDelivery(Strict):
    """A configuration version for one gateway, signed with that gateway's key."""

    v: Literal[1] = WIRE_VERSION
    config: RemoteConfig
    signature: Signature

    @classmethod
    def signed(cls, config: RemoteConfig, key_hex: str) -> ConfigDelivery:
        return cls(config=config, signature=signature(key_hex, config.model_dump(mode="json")))

    def verify(self, key_hex: str) -> bool:
        return signature_valid(key_hex, self.config.model_dump(mode="json"), self.signature)


class GatewayCommand(Strict):
    """A command for one gateway (``diagnostics``: publish a diagnostics bundle)."""

    v: Literal[1] = WIRE_VERSION
    gateway_id: Identifier
    command: Literal["diagnostics"]
    command_id: Annotated[str, Field(pattern=r"^[0-9a-f]{16,64}$")]
    issued_at: UtcDatetime
    signature: Signature

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude={"signature"})

    @classmethod
    def signed(
        cls, *, gateway_id: str, command: str, command_id: str, issued_at: datetime, key_hex: str
    ) -> GatewayCommand:
        body = {
            "v": WIRE_VERSION,
            "gateway_id": gateway_id,
            "command": command,
            "command_id": command_id,
            "issued_at": issued_at,
        }
        unsigned = cls.model_validate({**body, "signature": "0" * 64})
        return unsigned.model_copy(update={"signature": signature(key_hex, unsigned.body())})

    def verify(self, key_hex: str) -> bool:
        return signature_valid(key_hex, self.body(), self.signature)


class DeviceDiagnostics(Strict):
    device_id: Identifier
    profile: str
    address: str
    last_result: str | None = None
    polls: Annotated[int, Field(ge=0)] = 0
    failures: Annotated[int, Field(ge=0)] = 0
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    firmware: str | None = None


class DiagnosticsBundle(Strict):
    """What an operator sees of a gateway without SSH (answer to a ``diagnostics`` command)."""

    v: Literal[1] = WIRE_VERSION
    gateway_id: Identifier
    command_id: str | None = None
    ts: UtcDatetime
    firmware_version: str | None = None
    package_version: str | None = None
    channel: str | None = None
    config_version: int | None = None
    uptime_s: float | None = None
    devices: tuple[DeviceDiagnostics, ...] = ()
    spool: dict[str, int | float | str | None] = Field(default_factory=dict)
    broker: dict[str, int | str] = Field(default_factory=dict)
    clock: dict[str, bool | str | None] = Field(default_factory=dict)
    disk: dict[str, int] = Field(default_factory=dict)
    memory: dict[str, int] = Field(default_factory=dict)
    load: tuple[float, ...] = ()
    log: tuple[str, ...] = Field(default=(), description="the newest log lines, oldest first")
