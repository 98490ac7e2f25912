"""A stolen Pi is revoked from the operator's side and its credentials stop working at once,
against the real TLS Mosquitto: the open session can no longer publish, a new connection is
refused, no config or command is signed for it again, and its open codes stop working."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from fleet_fixtures import FleetServer, Subscriber
from sqlalchemy import select

from collector.cli import main as zonnewijk
from collector.enrolment.service import EnrolmentRefusedError
from collector.remote.delivery import DeliveryError, command_key
from collector.remote.draft import Transport
from collector.store.gateway_models import EnrolmentEventRow
from zonnewijk_wire import readings_topic
from zonnewijk_wire.enrolment import EnrolmentRequest

pytestmark = pytest.mark.slow


def test_a_revoked_gateway_is_shut_out_at_once(
    fleet_server: FleetServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    service, broker, ca = fleet_server.service, fleet_server.broker, fleet_server.pki.ca_cert
    created = service.create_code("S002", created_by="test", transport=Transport(host="h"))
    grant = service.redeem(EnrolmentRequest(code=created.code), remote="test")
    spare = service.create_code("S002", created_by="test")  # an open code for the same site

    collector = Subscriber(
        broker.port, ca, "collector-1", fleet_server.collector_password, readings_topic("gw-s002")
    )
    assert collector.connected.wait(5) and collector.subscribed.wait(5)
    stolen = Subscriber(broker.port, ca, "gw-s002", grant.broker.password)
    assert stolen.connected.wait(5) and not stolen.refused
    stolen.client.publish(readings_topic("gw-s002"), b"before", qos=1).wait_for_publish(5)
    deadline = time.monotonic() + 5
    while not collector.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert collector.messages == [(readings_topic("gw-s002"), b"before")]  # the control

    for name, value in {
        "ZONNEWIJK_GATEWAY_BROKER_HOST": "127.0.0.1",
        "ZONNEWIJK_MQTT_PASSWORD_FILE": str(service.broker.password_file),
        "ZONNEWIJK_MQTT_ACL_FILE": str(service.broker.acl_file),
        "ZONNEWIJK_MQTT_RELOAD_COMMAND": service.broker.reload_command,
    }.items():
        monkeypatch.setenv(name, value)
    assert zonnewijk(["gateways", "revoke", "gw-s002", "--reason", "stolen",
                      "--database-url", fleet_server.database_url]) == 0  # fmt: skip

    time.sleep(0.5)  # the broker's reload (SIGHUP)
    if stolen.client.is_connected():
        stolen.client.publish(readings_topic("gw-s002"), b"after", qos=1).wait_for_publish(5)
    time.sleep(0.5)
    assert collector.messages == [(readings_topic("gw-s002"), b"before")]
    again = Subscriber(broker.port, ca, "gw-s002", grant.broker.password)
    assert again.connected.wait(5) and again.refused
    for c in (collector, stolen, again):
        c.close()

    with fleet_server.sessions() as session:
        with pytest.raises(DeliveryError, match="revoked"):
            command_key(session, "gw-s002")
        events = session.scalars(select(EnrolmentEventRow.event).order_by(EnrolmentEventRow.id))
        assert list(events)[-1] == "revoked"
    fleet_server.clock.now = datetime.now(UTC)  # the command ran on the real clock
    with pytest.raises(EnrolmentRefusedError) as refused:
        service.redeem(EnrolmentRequest(code=spare.code), remote="thief")
    assert refused.value.refusal.reason == "expired"
    # revoking twice says there is nothing left to revoke
    assert zonnewijk(["gateways", "revoke", "gw-s002",
                      "--database-url", fleet_server.database_url]) == 1  # fmt: skip
