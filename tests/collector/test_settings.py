"""The typed settings: placeholder secrets refused in production, one InfluxDB client factory."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from collector.devtools.services import Influxd
from collector.settings import Settings
from collector.timeseries.commands import influx_client

STRONG = "k" * 40


def test_development_accepts_the_defaults() -> None:
    settings = Settings(environment="development")
    assert settings.secret_key.get_secret_value() == "dev"


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({}, "ZONNEWIJK_SECRET_KEY is a placeholder"),
        ({"secret_key": "short-but-not-a-placeholder"}, "at least 32 characters"),
        ({"secret_key": STRONG, "mqtt_password": "changeme"}, "ZONNEWIJK_MQTT_PASSWORD"),
        ({"secret_key": STRONG, "influx_password": "admin"}, "ZONNEWIJK_INFLUX_PASSWORD"),
    ],
)
def test_production_refuses_placeholder_secrets(overrides: dict[str, str], complaint: str) -> None:
    with pytest.raises(ValidationError, match=complaint):
        Settings(environment="production", **overrides)  # type: ignore[arg-type]


def test_production_starts_with_real_secrets() -> None:
    settings = Settings(environment="production", secret_key=STRONG, mqtt_password="x7!Qp2vR")  # type: ignore[arg-type]
    assert settings.environment == "production"


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZONNEWIJK_INFLUX_DB", "from_env")
    monkeypatch.setenv("ZONNEWIJK_DATA_DIR", "/srv/zw")
    settings = Settings()
    assert settings.influx_db == "from_env"
    assert settings.sqlalchemy_url == "sqlite:////srv/zw/zonnewijk.sqlite3"


def test_influx_client_uses_settings_and_flag_overrides(influxd: Influxd) -> None:
    settings = Settings(influx_url=influxd.url, influx_db="configured", influx_username="reader")  # type: ignore[arg-type]
    client = influx_client(settings)
    assert (client.url, client.database, client.username) == (influxd.url, "configured", "reader")
    assert client.ping()
    override = influx_client(settings, url="http://127.0.0.1:1", database="flag", timeout_s=2.0)
    assert (override.url, override.database, override.timeout_s) == (
        "http://127.0.0.1:1",
        "flag",
        2.0,
    )
