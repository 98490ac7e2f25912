"""Notifications delivered to a real local SMTP server (aiosmtpd), HTTP server and Mosquitto."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from paho.mqtt.client import Client, MQTTMessage
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select

from collector.devtools.services import Mosquitto, free_port
from collector.faults.alerts import AlertChange, AlertService
from collector.faults.model import FaultKind, Finding, Severity
from collector.faults.notify import (
    ALERT_TOPIC_ROOT,
    ChannelPolicy,
    EmailChannel,
    InfluxChannel,
    MqttChannel,
    Notifier,
    WebhookChannel,
)
from collector.faults.pipeline import RECENT_KINDS
from collector.store.alert_models import AlertNotificationRow
from collector.store.db import session_factory
from collector.store.testing import temporary_database
from collector.timeseries.influx import InfluxClient

T0 = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)


@pytest.fixture
def sessions() -> Iterator[Any]:
    with temporary_database("sqlite") as engine:
        yield session_factory(engine)


def open_alerts(sessions: Any, n: int, severity: Severity = Severity.CRITICAL) -> list[AlertChange]:
    service = AlertService(sessions)
    found = [
        Finding(
            kind=FaultKind.FAULT_STATE,
            device_id=f"inv{i:02d}",
            gateway_id=f"gw{i:02d}",
            start=T0,
            last=T0,
            ongoing=True,
            severity=severity,
            evidence={"state_code": 6.0, "event_bits": 1.0},
            message=f"inverter inv{i:02d} reports a fault",
        )
        for i in range(n)
    ]
    return service.apply(found, evaluated_kinds=RECENT_KINDS, now=T0)


# --- e-mail ---------------------------------------------------------------------------------


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, _Inbox]]:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def test_email_reaches_a_real_smtp_server(sessions: Any, smtp_server: tuple[int, _Inbox]) -> None:
    port, inbox = smtp_server
    channel = EmailChannel(
        host="127.0.0.1",
        port=port,
        sender="alerts@zonnewijk.test",
        recipients=["ops@zonnewijk.test"],
    )
    notifier = Notifier(sessions, [(channel, ChannelPolicy())])
    outcomes = notifier.notify(open_alerts(sessions, 1), now=T0)
    assert [o.outcome for o in outcomes] == ["sent"]
    ((sender, rcpts, content),) = inbox.messages
    assert sender == "alerts@zonnewijk.test" and rcpts == ["ops@zonnewijk.test"]
    msg = message_from_bytes(content)
    assert msg["Subject"] == "[Zonnewijk] CRITICAL opened: fault_state on inv00"
    body = msg.get_payload(decode=True).decode()
    assert "inverter inv00 reports a fault" in body and "state_code: 6.0" in body


def test_unreachable_smtp_is_a_recorded_failure(sessions: Any) -> None:
    channel = EmailChannel(
        host="127.0.0.1", port=free_port(), sender="a@b.test", recipients=["c@d.test"], timeout_s=2
    )
    outcomes = Notifier(sessions, [(channel, ChannelPolicy())]).notify(
        open_alerts(sessions, 1), now=T0
    )
    assert outcomes[0].outcome == "failed" and "SMTP" in (outcomes[0].error or "")
    with sessions() as session:
        row = session.scalars(select(AlertNotificationRow)).one()
        assert row.outcome == "failed" and row.channel == "email"


# --- webhook --------------------------------------------------------------------------------


@pytest.fixture
def http_server() -> Iterator[tuple[str, list[dict[str, Any]], dict[str, int]]]:
    received: list[dict[str, Any]] = []
    control = {"status": 204}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {
                    "auth": self.headers.get("Authorization"),
                    "json": json.loads(body),
                    "path": self.path,
                }
            )
            self.send_response(control["status"])
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts", received, control
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_posts_json_with_token(sessions: Any, http_server: Any) -> None:
    url, received, control = http_server
    notifier = Notifier(sessions, [(WebhookChannel(url=url, token="s3cret"), ChannelPolicy())])
    assert [o.outcome for o in notifier.notify(open_alerts(sessions, 1), now=T0)] == ["sent"]
    (hit,) = received
    assert hit["path"] == "/hooks/alerts" and hit["auth"] == "Bearer s3cret"
    assert hit["json"]["event"] == "opened"
    assert hit["json"]["alert"]["device_id"] == "inv00"
    assert hit["json"]["alert"]["evidence"] == {"state_code": 6.0, "event_bits": 1.0}
    control["status"] = 500
    outcome = notifier.notify(open_alerts(sessions, 2), now=T0)[0]  # inv01 opens
    assert outcome.outcome == "failed" and "HTTP 500" in (outcome.error or "")


def test_rate_limit_holds_across_notifiers_and_hours(sessions: Any, http_server: Any) -> None:
    url, received, _ = http_server
    policy = ChannelPolicy(max_per_hour=3)
    changes = open_alerts(sessions, 5)
    first = Notifier(sessions, [(WebhookChannel(url=url), policy)])
    outcomes = first.notify(changes[:4], now=T0)
    assert [o.outcome for o in outcomes] == ["sent", "sent", "sent", "rate_limited"]
    # a second server instance shares the limit through the store
    second = Notifier(sessions, [(WebhookChannel(url=url), policy)])
    assert second.notify(changes[4:], now=T0 + timedelta(minutes=30))[0].outcome == "rate_limited"
    assert len(received) == 3
    # an hour later there is room again
    assert second.notify(changes[4:], now=T0 + timedelta(minutes=61))[0].outcome == "sent"
    assert first.counts == {"webhook:sent": 3, "webhook:rate_limited": 1}


def test_policy_filters_severity_and_events(sessions: Any, http_server: Any) -> None:
    url, received, _ = http_server
    info = open_alerts(sessions, 1, severity=Severity.INFO)
    notifier = Notifier(sessions, [(WebhookChannel(url=url), ChannelPolicy())])
    assert notifier.notify(info, now=T0) == []
    assert received == []


# --- MQTT -----------------------------------------------------------------------------------


def test_mqtt_publishes_retained_alert_state(sessions: Any, mosquitto: Mosquitto) -> None:
    channel = MqttChannel(host="127.0.0.1", port=mosquitto.port)
    notifier = Notifier(sessions, [(channel, ChannelPolicy())])
    try:
        changes = open_alerts(sessions, 2)
        assert [o.outcome for o in notifier.notify(changes, now=T0)] == ["sent", "sent"]
        resolved = AlertService(sessions).apply(
            [], evaluated_kinds=RECENT_KINDS, now=T0 + timedelta(hours=1), devices={"inv01"}
        )
        assert [o.outcome for o in notifier.notify(resolved, now=T0)] == ["sent"]
    finally:
        channel.close()
    # a subscriber that comes later gets each alert's latest state (retained)
    got: dict[str, dict[str, Any]] = {}
    client = Client(CallbackAPIVersion.VERSION2, client_id="test-sub")

    def on_message(_c: Client, _u: object, msg: MQTTMessage) -> None:
        got[msg.topic] = json.loads(msg.payload)

    client.on_message = on_message
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe(f"{ALERT_TOPIC_ROOT}/#", qos=1)
    client.loop_start()
    deadline = time.monotonic() + 10
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    client.loop_stop()
    client.disconnect()
    assert got[f"{ALERT_TOPIC_ROOT}/inv00/fault_state"]["alert"]["status"] == "open"
    assert got[f"{ALERT_TOPIC_ROOT}/inv01/fault_state"]["event"] == "resolved"


def test_mqtt_broker_down_is_a_recorded_failure(sessions: Any) -> None:
    channel = MqttChannel(host="127.0.0.1", port=free_port())
    outcome = Notifier(sessions, [(channel, ChannelPolicy())]).notify(
        open_alerts(sessions, 1), now=T0
    )[0]
    assert outcome.outcome == "failed" and "cannot reach" in (outcome.error or "")


# --- InfluxDB (Grafana annotations and table) -----------------------------------------------


def test_influx_channel_writes_alert_events_grafana_can_query(
    sessions: Any, influx: InfluxClient
) -> None:
    notifier = Notifier(
        sessions,
        [(InfluxChannel(influx), ChannelPolicy(min_severity=Severity.INFO, max_per_hour=1000))],
    )
    changes = open_alerts(sessions, 2)
    changes += AlertService(sessions).apply(
        [], evaluated_kinds=RECENT_KINDS, now=T0 + timedelta(minutes=30), devices={"inv01"}
    )
    assert [o.outcome for o in notifier.notify(changes, now=T0)] == ["sent"] * 3
    rows = influx.query_records(
        'SELECT last("status") AS status, last("message") AS message FROM "alert_events" '
        'WHERE time > \'2026-06-01T00:00:00Z\' GROUP BY "device", "kind"',
        epoch="ms",
    )
    status = {(r["device"], r["kind"]): r["status"] for r in rows}
    assert status == {("inv00", "fault_state"): "open", ("inv01", "fault_state"): "resolved"}
    annotations = influx.query_records(
        'SELECT "message", "event" FROM "alert_events" WHERE time >= \'2026-06-10T10:00:00Z\' '
        "AND time < '2026-06-10T11:00:00Z'",
        epoch="ms",
    )
    assert sorted(r["event"] for r in annotations) == ["opened", "opened", "resolved"]
