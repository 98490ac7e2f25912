"""The gateway's configuration file (YAML), validated with errors that name the field.

Example: ``config/gateway.example.yaml``. Load with :func:`load_config`; a wrong file raises
:class:`ConfigError` whose message lists each bad field by its path, e.g.
``mqtt.port: Input should be less than or equal to 65535``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway_firmware.spool import DEFAULT_MAX_READINGS
from zonnewijk_wire import ID_PATTERN, MAX_READINGS_PER_BATCH

# The devices section is what the server keeps and sends (issue 21): one model for both.
from zonnewijk_wire.remote_config import DeviceConfig as DeviceConfig
from zonnewijk_wire.remote_config import unique_device_ids

DEFAULT_SPOOL_PATH = Path("/var/lib/zonnewijk-gateway/spool.sqlite3")

Identifier = Annotated[str, Field(pattern=ID_PATTERN)]
PositiveSeconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names every bad field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Section):
    """TLS towards the broker: the CA that signed the broker's certificate, optionally a
    client certificate and key for this gateway."""

    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None

    @model_validator(mode="after")
    def _check_files(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together: give both or neither")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"{name} {path} is not a readable file")
        return self


class MqttConfig(_Section):
    """The broker connection; each gateway has its own username and password."""

    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] | None = Field(
        default=None, description="default 8883 with TLS, 1883 without"
    )
    username: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = Field(
        default=None, description="file holding the password (keeps it out of the config)"
    )
    client_id: str | None = Field(default=None, description="default zonnewijk-gw-<gateway_id>")
    protocol: Literal["5", "3.1.1"] = "5"
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 60
    session_expiry_s: Annotated[int, Field(ge=1, le=2**32 - 1)] = 7 * 24 * 3600
    reconnect_min_s: Annotated[int, Field(ge=1, le=3600)] = 1
    reconnect_max_s: Annotated[int, Field(ge=1, le=3600)] = 120
    tls: TlsConfig | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.password is not None and self.password_file is not None:
            raise ValueError("give password or password_file, not both")
        if self.password_file is not None and not self.password_file.is_file():
            raise ValueError(f"password_file {self.password_file} is not a readable file")
        if (self.password is not None or self.password_file is not None) and not self.username:
            raise ValueError("a password needs a username")
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be >= reconnect_min_s")
        return self

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 8883 if self.tls is not None else 1883

    def password_value(self) -> str | None:
        """The password, read from ``password_file`` when that is used."""
        if self.password is not None:
            return self.password.get_secret_value()
        if self.password_file is not None:
            return self.password_file.read_text().strip()
        return None


class SpoolConfig(_Section):
    """Where readings wait for the broker's acknowledgement, and how the backlog is replayed."""

    path: Path = DEFAULT_SPOOL_PATH
    max_readings: Annotated[int, Field(ge=100)] = DEFAULT_MAX_READINGS
    replay_batch_size: Annotated[int, Field(ge=1, le=MAX_READINGS_PER_BATCH)] = 500
    replay_readings_per_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 2000.0
    replay_window: Annotated[int, Field(ge=1, le=100)] = Field(
        default=4, description="backlog messages awaiting PUBACK at once"
    )
    audit: bool = Field(default=False, description="keep the key of every reading (tests only)")
    memory_readings: Annotated[int, Field(ge=1)] = Field(
        default=8640,
        description="readings held in memory while the spool cannot be written (full, read-only)",
    )
    fsync: Literal["unacknowledged", "every-reading"] = Field(
        default="unacknowledged",
        description="fsync a reading's commit only when it cannot be sent at once or its PUBACK"
        " is late (unacknowledged), or always (every-reading: more SD card writes)",
    )


class P1Config(_Section):
    """The smart meter's P1 port (issue 17): only configured for a member who opted in.

    The consent's scope decides ``gas``; its granularity ``interval_s``.
    """

    serial_port: Annotated[str, Field(min_length=1)] = Field(
        description="the P1 cable's serial device, e.g. /dev/ttyUSB0"
    )
    device_id: Identifier = Field(default="p1", description="the meter's id on the wire")
    dsmr: Literal["auto", "5", "4", "2.2"] = Field(
        default="auto", description="DSMR version: its serial settings; auto reads 2.2-5"
    )
    baudrate: Literal[9600, 115200] | None = Field(
        default=None, description="override the version's baud rate"
    )
    interval_s: Annotated[int, Field(ge=10, le=3600)] = Field(
        default=300, description="one reading per interval; divides an hour [s]"
    )
    gas: bool = Field(default=False, description="include the gas meter (opted in to gas)")

    @field_validator("interval_s")
    @classmethod
    def _divides_an_hour(cls, value: int) -> int:
        if 3600 % value:
            raise ValueError(f"interval_s must divide an hour (60, 300, 900...), got {value}")
        return value


class RemoteSettings(_Section):
    """Remote configuration and diagnostics (written by ``zonnewijk-gateway enrol``)."""

    command_key_file: Path = Field(description="the key that authenticates the server's messages")
    state_dir: Path = Field(description="where the applied server configuration is kept")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not self.command_key_file.is_file():
            raise ValueError(f"command_key_file {self.command_key_file} is not a readable file")
        return self


class GatewayConfig(_Section):
    """The whole gateway configuration file."""

    gateway_id: Identifier
    mqtt: MqttConfig
    spool: SpoolConfig = SpoolConfig()
    status_interval_s: Annotated[float, Field(ge=1, le=3600)] = Field(
        default=60.0, description="how often the retained status is refreshed [s]"
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    health_port: Annotated[int, Field(ge=0, le=65535)] | None = Field(
        default=None,
        description="serve GET http://127.0.0.1:<port>/health (documented port 8470; off when unset)",
    )
    devices: Annotated[tuple[DeviceConfig, ...], Field(min_length=1)]
    remote: RemoteSettings | None = Field(
        default=None, description="take devices and intervals from the server (issue 21)"
    )
    p1: P1Config | None = Field(
        default=None, description="the smart meter's P1 port, when the member opted in"
    )

    @field_validator("devices")
    @classmethod
    def _unique_ids(cls, devices: tuple[DeviceConfig, ...]) -> tuple[DeviceConfig, ...]:
        return unique_device_ids(devices)

    @property
    def client_id(self) -> str:
        return self.mqtt.client_id or f"zonnewijk-gw-{self.gateway_id}"


_PLACEHOLDER = re.compile(r"^(change-?me|xxx+|todo|<.*>)$", re.IGNORECASE)


def _describe(error: ValidationError) -> str:
    lines = []
    for err in error.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(file)"
        msg = err["msg"].removeprefix("Value error, ")
        lines.append(f"  {loc}: {msg}")
    return "\n".join(lines)


def parse_config(data: object, *, source: str = "config") -> GatewayConfig:
    """Validate already-parsed YAML/JSON data."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source} is not valid:\n{_describe(exc)}") from None
    password = config.mqtt.password
    if password is not None and _PLACEHOLDER.match(password.get_secret_value()):
        raise ConfigError(f"{source} is not valid:\n  mqtt.password: still the example placeholder")
    return config


def load_config(path: str | Path) -> GatewayConfig:
    """Read and validate a gateway configuration file (YAML)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    return parse_config(data, source=str(path))
