"""Configuration of one portal process."""

from __future__ import annotations

from dataclasses import dataclass

from collector.remote.delivery import BrokerLogin, fleet_login
from collector.settings import Settings


@dataclass(frozen=True, kw_only=True)
class PortalConfig:
    """What the portal needs; :meth:`from_settings` reads the typed settings (``ZONNEWIJK_*``)."""

    database_url: str
    influx_url: str
    influx_db: str
    secret_key: str
    influx_username: str | None = None
    influx_password: str | None = None
    #: the address members reach the portal at; used in invitation and reset links
    base_url: str = "http://127.0.0.1:8000"
    smtp_host: str | None = None
    smtp_port: int = 25
    mail_from: str = "portaal@zonnewijk.invalid"
    #: mark cookies Secure even when the request arrived over plain HTTP (behind a TLS proxy
    #: that does not send X-Forwarded-Proto)
    secure_cookies: bool = False
    #: the broker login the operator pages ask gateways for diagnostics with; None: the
    #: "request diagnostics" button says the portal cannot reach the gateways
    fleet_broker: BrokerLogin | None = None
    #: how long a diagnostics request waits for the gateway's answer (a web worker waits
    #: with it) [s]
    diagnostics_timeout_s: float = 20.0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: object) -> PortalConfig:
        import os

        values: dict[str, object] = {
            "database_url": settings.sqlalchemy_url,
            "influx_url": settings.influx_url,
            "influx_db": settings.influx_db,
            "influx_username": settings.influx_username,
            "influx_password": (
                settings.influx_password.get_secret_value() if settings.influx_password else None
            ),
            "secret_key": settings.secret_key.get_secret_value(),
            "base_url": os.environ.get("ZONNEWIJK_PORTAL_BASE_URL", "http://127.0.0.1:8000"),
            "smtp_host": os.environ.get("ZONNEWIJK_SMTP_HOST") or None,
            "smtp_port": int(os.environ.get("ZONNEWIJK_SMTP_PORT", "25")),
            "mail_from": os.environ.get("ZONNEWIJK_MAIL_FROM", "portaal@zonnewijk.invalid"),
            "secure_cookies": settings.environment == "production",
            # a broker user of its own: the broker makes the user name the client id, so the
            # CLI's ``collector-ops`` connection and the portal's would push each other off
            "fleet_broker": fleet_login(
                settings,
                username=os.environ.get("ZONNEWIJK_PORTAL_MQTT_USERNAME") or None,
                password=os.environ.get("ZONNEWIJK_PORTAL_MQTT_PASSWORD") or None,
            ),
            "diagnostics_timeout_s": float(
                os.environ.get("ZONNEWIJK_PORTAL_DIAGNOSTICS_TIMEOUT_S", "20")
            ),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
