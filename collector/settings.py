"""One typed settings object for the server side, from ``ZONNEWIJK_*`` environment variables.

Outside development it refuses placeholder secrets (``changeme``, empty, the compose file's
defaults), so a production deployment cannot start with a password everyone knows.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "admin", "dev"})


class Settings(BaseSettings):
    """Server-side configuration; every field can be set as ``ZONNEWIJK_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ZONNEWIJK_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Field(default=Path("var"), description="SQLite ledger, exports, statements")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default sqlite:///<data_dir>/zonnewijk.sqlite3"
    )

    influx_url: str = "http://127.0.0.1:8086"
    influx_db: str = "zonnewijk"
    influx_username: str | None = None
    influx_password: SecretStr | None = None
    influx_gzip: bool = Field(
        default=True,
        description="gzip write bodies; turn off when InfluxDB runs on the same host: "
        "compressing then costs both sides CPU and saves nothing (docs/collector.md)",
    )

    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = 1883
    mqtt_username: str | None = None
    mqtt_password: SecretStr | None = None
    mqtt_tls_ca: Path | None = None
    mqtt_share_group: str = Field(
        default="",
        description="shared subscription group for several collectors; empty: one collector "
        "with a plain subscription (survives broker restarts, see docs/collector.md)",
    )
    mqtt_client_id: str = Field(default="zonnewijk-collector-1", description="unique per collector")

    collector_batch_max_points: int = Field(default=5000, ge=1)
    collector_batch_max_wait_s: float = Field(default=0.5, gt=0)
    collector_metrics_port: int | None = Field(default=None, description="/metrics and /health")
    collector_switch_interval_s: float = Field(
        default=0.001,
        gt=0,
        description="thread switch interval of `zonnewijk collect`; Python's default 0.005 "
        "makes the writer wait for the preparing thread (bench/ingest.py --switch-interval)",
    )

    # Enrolment of gateways (collector/enrolment): the broker as the gateways reach it, the
    # Mosquitto files that grant them access, and how the broker is told to re-read them.
    gateway_broker_host: str | None = Field(
        default=None, description="broker host name the gateways connect to; enables enrolment"
    )
    gateway_broker_port: int = Field(default=8883, ge=1, le=65535)
    gateway_broker_ca: Path | None = Field(
        default=None, description="CA certificate of the broker's TLS certificate (PEM)"
    )
    gateway_enrol_url: str | None = Field(
        default=None,
        description="HTTPS address the Pis enrol at; default ZONNEWIJK_PORTAL_BASE_URL",
    )
    fleet_mqtt_username: str | None = Field(
        default=None,
        description="broker user of the operator tools that send configs and commands "
        "(a collector-class user of its own, e.g. collector-ops); default ZONNEWIJK_MQTT_USERNAME",
    )
    fleet_mqtt_password: SecretStr | None = None
    mqtt_password_file: Path = Path("/etc/mosquitto/passwd")
    mqtt_acl_file: Path = Path("/etc/mosquitto/zonnewijk.acl")
    mqtt_reload_command: str = Field(
        default="systemctl reload mosquitto",
        description="re-reads the password and ACL files (SIGHUP); empty: reload by hand",
    )

    secret_key: SecretStr = Field(
        default=SecretStr("dev"), description="signs portal sessions; required in production"
    )

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'zonnewijk.sqlite3').resolve()}"

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Self:
        if self.environment != "production":
            return self
        problems = []
        if self.secret_key.get_secret_value().lower() in PLACEHOLDER_SECRETS:
            problems.append("ZONNEWIJK_SECRET_KEY is a placeholder")
        for name in ("influx_password", "mqtt_password", "fleet_mqtt_password"):
            secret: SecretStr | None = getattr(self, name)
            if secret is not None and secret.get_secret_value().lower() in PLACEHOLDER_SECRETS:
                problems.append(f"ZONNEWIJK_{name.upper()} is a placeholder")
        if len(self.secret_key.get_secret_value()) < 32:
            problems.append("ZONNEWIJK_SECRET_KEY must be at least 32 characters")
        if problems:
            raise ValueError("refusing to start in production: " + "; ".join(problems))
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment."""
    return Settings()
