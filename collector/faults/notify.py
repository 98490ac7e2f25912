"""Notifications when an alert changes: MQTT topic, webhook and e-mail, rate-limited.

Each :class:`Channel` delivers one :class:`~collector.faults.alerts.AlertChange`; the
:class:`Notifier` decides per channel whether to (minimum severity, which events, rate
limit), delivers, and writes every attempt to ``alert_notifications``. The rate limit counts
that table, so it holds across server instances: at most ``max_per_hour`` deliveries per
channel in any hour; what is over the limit is recorded as ``rate_limited`` and the alerts
stay visible in the operator API. A failing channel does not stop the others.

Payload (MQTT and webhook, JSON)::

    {"event": "opened", "at": "2026-06-10T10:05:00Z", "alert": {<Alert.to_dict()>}}
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

import requests
from paho.mqtt.client import Client, MQTTMessageInfo
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from collector.faults.alerts import AlertChange, AlertEvent
from collector.faults.model import Severity
from collector.store.alert_models import AlertNotificationRow
from collector.timeseries.influx import InfluxClient, InfluxError, Point

log = logging.getLogger(__name__)

#: Root of the alert topics: ``zonnewijk/v1/_alerts/<device_id>/<kind>``, retained, QoS 1.
ALERT_TOPIC_ROOT = "zonnewijk/v1/_alerts"


class DeliveryError(RuntimeError):
    """A channel could not deliver; the reason is in the message."""


def payload(change: AlertChange) -> dict[str, Any]:
    """The JSON document every channel sends."""
    return {
        "event": change.event.value,
        "at": change.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "alert": change.alert.to_dict(),
    }


def subject(change: AlertChange) -> str:
    """A one-line summary (e-mail subject, log line)."""
    a = change.alert
    return f"[Zonnewijk] {a.severity.name} {change.event.value}: {a.kind.value} on {a.device_id}"


class Channel(Protocol):
    """Somewhere to deliver alert changes."""

    name: str

    def send(self, change: AlertChange) -> None:
        """Deliver one change or raise :class:`DeliveryError`."""
        ...


@dataclass
class MqttChannel:
    """Publishes each change retained on ``<root>/<device_id>/<kind>`` (QoS 1).

    The retained message is the alert's latest state, so a dashboard or a phone app that
    subscribes to ``<root>/#`` sees every live alert at once; a resolved alert stays
    retained as resolved until the next one of that device and kind.
    """

    host: str
    port: int
    name: str = "mqtt"
    topic_root: str = ALERT_TOPIC_ROOT
    username: str | None = None
    password: str | None = None
    tls: bool = False
    timeout_s: float = 10.0
    client_id: str = "zonnewijk-alerts"
    _client: Client | None = field(default=None, init=False, repr=False)

    def _connected(self) -> Client:
        if self._client is not None and self._client.is_connected():
            return self._client
        client = Client(CallbackAPIVersion.VERSION2, client_id=self.client_id)
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set_context(ssl.create_default_context())
        try:
            client.connect(self.host, self.port, keepalive=60)
        except OSError as exc:
            raise DeliveryError(f"cannot reach MQTT broker {self.host}:{self.port}: {exc}") from exc
        client.loop_start()
        self._client = client
        return client

    def send(self, change: AlertChange) -> None:
        client = self._connected()
        topic = f"{self.topic_root}/{change.alert.device_id}/{change.alert.kind.value}"
        info: MQTTMessageInfo = client.publish(
            topic, json.dumps(payload(change)), qos=1, retain=True
        )
        try:
            info.wait_for_publish(timeout=self.timeout_s)
        except (ValueError, RuntimeError) as exc:
            raise DeliveryError(f"MQTT publish to {topic} failed: {exc}") from exc
        if not info.is_published():
            raise DeliveryError(
                f"MQTT broker did not acknowledge {topic} within {self.timeout_s} s"
            )

    def close(self) -> None:
        if self._client is not None:
            self._client.loop_stop()
            self._client.disconnect()
            self._client = None


@dataclass
class WebhookChannel:
    """POSTs the JSON payload to a URL; any 2xx is success.

    ``token`` is sent as ``Authorization: Bearer <token>`` when given.
    """

    url: str
    name: str = "webhook"
    token: str | None = None
    timeout_s: float = 10.0

    def send(self, change: AlertChange) -> None:
        headers = {"Content-Type": "application/json", "User-Agent": "zonnewijk-alerts"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            r = requests.post(
                self.url, data=json.dumps(payload(change)), headers=headers, timeout=self.timeout_s
            )
        except requests.RequestException as exc:
            raise DeliveryError(f"webhook {self.url} unreachable: {exc}") from exc
        if not 200 <= r.status_code < 300:
            raise DeliveryError(f"webhook {self.url} answered HTTP {r.status_code}: {r.text[:200]}")


@dataclass
class EmailChannel:
    """Sends a plain-text e-mail per change over SMTP (STARTTLS and login when configured)."""

    host: str
    port: int
    sender: str
    recipients: Sequence[str]
    name: str = "email"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout_s: float = 15.0

    def __post_init__(self) -> None:
        if not self.recipients:
            raise ValueError("an e-mail channel needs at least one recipient")

    def message(self, change: AlertChange) -> EmailMessage:
        a = change.alert
        msg = EmailMessage()
        msg["Subject"] = subject(change)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        lines = [
            a.message,
            "",
            f"Event:     {change.event.value} at {payload(change)['at']}",
            f"Alert:     #{a.id} {a.kind.value}, severity {a.severity.name.lower()}",
            f"Inverter:  {a.device_id} (gateway {a.gateway_id})",
            f"Since:     {a.to_dict()['condition_since']}",
            f"Status:    {a.status.value}",
            "",
            "Evidence:",
            *(f"  {k}: {v}" for k, v in sorted(a.evidence.items())),
        ]
        msg.set_content("\n".join(lines) + "\n")
        return msg

    def send(self, change: AlertChange) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(self.message(change))
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {self.host}:{self.port} failed: {exc}") from exc


#: Measurement the :class:`InfluxChannel` writes; Grafana shows it as annotations and a table.
ALERT_MEASUREMENT = "alert_events"


@dataclass
class InfluxChannel:
    """Writes each change as a point of ``alert_events`` for the Grafana dashboards.

    Tags ``device``, ``gateway``, ``kind``, ``severity``; fields ``alert_id`` (integer),
    ``event``, ``status``, ``message`` (strings); time: when the change happened. A Grafana
    annotation query::

        SELECT "message", "event" FROM "alert_events" WHERE $timeFilter

    and the table of live alerts: ``SELECT last("status"), last("message") FROM
    "alert_events" WHERE time > now() - 30d GROUP BY "device", "kind"``, keeping rows whose
    status is not ``resolved``.
    """

    client: InfluxClient
    name: str = "influx"

    def send(self, change: AlertChange) -> None:
        a = change.alert
        point = Point(
            ALERT_MEASUREMENT,
            {
                "device": a.device_id,
                "gateway": a.gateway_id,
                "kind": a.kind.value,
                "severity": a.severity.name.lower(),
            },
            {
                "alert_id": a.id,
                "event": change.event.value,
                "status": a.status.value,
                "message": a.message.replace("\n", " "),
            },
            change.at,
        )
        try:
            self.client.write_points([point])
        except InfluxError as exc:
            raise DeliveryError(f"InfluxDB refused the alert event: {exc}") from exc


@dataclass(frozen=True, kw_only=True)
class ChannelPolicy:
    """When a channel is used.

    Attributes
    ----------
    min_severity
        Only alerts at least this severe.
    events
        Only these lifecycle events.
    max_per_hour
        At most this many deliveries on the channel in any hour (across instances).
    """

    min_severity: Severity = Severity.WARNING
    events: frozenset[AlertEvent] = frozenset(
        {AlertEvent.OPENED, AlertEvent.ESCALATED, AlertEvent.RESOLVED}
    )
    max_per_hour: int = 20


@dataclass
class Outcome:
    """What happened to one change on one channel."""

    channel: str
    alert_id: int
    event: AlertEvent
    outcome: str  # sent | failed | rate_limited | skipped
    error: str | None = None


class Notifier:
    """Delivers alert changes to channels under their policies, logging every attempt.

    Parameters
    ----------
    sessions
        Session factory of the store (attempt log and rate limit).
    channels
        (channel, policy) pairs.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        channels: Sequence[tuple[Channel, ChannelPolicy]],
    ) -> None:
        names = [c.name for c, _ in channels]
        if len(set(names)) != len(names):
            raise ValueError(f"channel names must be unique, got {names}")
        self._sessions = sessions
        self._channels = list(channels)
        self.counts: dict[str, int] = {}

    def _sent_last_hour(self, session: Session, channel: str, now: datetime) -> int:
        return int(
            session.scalar(
                select(func.count())
                .select_from(AlertNotificationRow)
                .where(
                    AlertNotificationRow.channel == channel,
                    AlertNotificationRow.outcome == "sent",
                    AlertNotificationRow.at > now - timedelta(hours=1),
                )
            )
            or 0
        )

    def notify(
        self, changes: Collection[AlertChange], *, now: datetime | None = None
    ) -> list[Outcome]:
        """Deliver each change on each channel whose policy wants it."""
        now = now or datetime.now(UTC)
        outcomes: list[Outcome] = []
        for channel, policy in self._channels:
            for change in changes:
                if change.event not in policy.events or change.alert.severity < policy.min_severity:
                    continue
                with self._sessions.begin() as session:
                    if self._sent_last_hour(session, channel.name, now) >= policy.max_per_hour:
                        outcome = Outcome(
                            channel.name, change.alert.id, change.event, "rate_limited"
                        )
                    else:
                        try:
                            channel.send(change)
                            outcome = Outcome(channel.name, change.alert.id, change.event, "sent")
                        except DeliveryError as exc:
                            log.warning("notification on %s failed: %s", channel.name, exc)
                            outcome = Outcome(
                                channel.name, change.alert.id, change.event, "failed", str(exc)
                            )
                    session.add(
                        AlertNotificationRow(
                            alert_id=change.alert.id,
                            channel=channel.name,
                            event=change.event.value,
                            at=now,
                            outcome=outcome.outcome,
                            error=outcome.error,
                        )
                    )
                key = f"{channel.name}:{outcome.outcome}"
                self.counts[key] = self.counts.get(key, 0) + 1
                outcomes.append(outcome)
        return outcomes
