"""Remote configuration and diagnostics of an enrolled gateway, against a real TLS Mosquitto with
per-user ACLs and a simulated inverter: a new version is validated, stored, sent signed and
acknowledged in the status; one whose devices do not answer is refused and the running one
stays; forged, foreign and replayed configs are refused; a restart runs the applied version;
an operator gets a diagnostics bundle without SSH."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fleet_fixtures import FleetServer, Running, Subscriber, wait_for

from collector.cli import main as zonnewijk
from collector.devtools.services import free_port
from collector.remote.configs import latest_config
from collector.remote.delivery import BrokerLogin, broker_link, command_key, deliver_config
from collector.remote.diagnostics import diagnostics_history
from collector.remote.draft import Transport
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from gateway_firmware.cli import main as zonnewijk_gateway
from zonnewijk_wire import GatewayStatus, status_topic
from zonnewijk_wire.control import ConfigDelivery, config_topic
from zonnewijk_wire.enrolment import EnrolmentRequest

pytestmark = pytest.mark.slow
GW = "gw-s002"


@pytest.fixture
def enrolled(
    fleet_server: FleetServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[SimulatedInverters, Path, Subscriber]]:
    """gw-s002 enrolled against a simulated Growatt, and a collector watching its status."""
    monkeypatch.setenv("ZONNEWIJK_MQTT_HOST", "127.0.0.1")
    monkeypatch.setenv("ZONNEWIJK_MQTT_PORT", str(fleet_server.broker.port))
    monkeypatch.setenv("ZONNEWIJK_MQTT_TLS_CA", str(fleet_server.pki.ca_cert))
    monkeypatch.setenv("ZONNEWIJK_FLEET_MQTT_USERNAME", "collector-ops")
    monkeypatch.setenv("ZONNEWIJK_FLEET_MQTT_PASSWORD", fleet_server.ops_password)
    with SimulatedInverters({1: layout_for("growatt")}) as inverter:
        inverter.set_values(1, ac_power_w=1200.0, ac_energy_wh=5_000_000.0)
        created = fleet_server.service.create_code(
            "S002", created_by="test", transport=Transport(host="127.0.0.1", port=inverter.port)
        )
        assert zonnewijk_gateway(
            ["enrol", fleet_server.url, created.display, "--ca-file",
             str(fleet_server.pki.ca_cert), "--config-dir", str(tmp_path / "etc"),
             "--state-dir", str(tmp_path / "var"), "--no-restart"]
        ) == 0  # fmt: skip
        watcher = Subscriber(
            fleet_server.broker.port, fleet_server.pki.ca_cert, "collector-1",
            fleet_server.collector_password, status_topic(GW),
        )  # fmt: skip
        assert watcher.connected.wait(5) and watcher.subscribed.wait(5)
        yield inverter, tmp_path, watcher
        watcher.close()


def latest_status(watcher: Subscriber) -> GatewayStatus | None:
    statuses = [GatewayStatus.model_validate_json(p) for t, p in watcher.messages if p]
    online = [s for s in statuses if s.state == "online"]
    return online[-1] if online else None


def settings_file(tmp_path: Path, name: str, devices: list[dict[str, Any]], **extra: Any) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump({"devices": devices, **extra}))
    return path


def test_a_config_is_validated_sent_applied_acknowledged_and_survives_a_restart(
    fleet_server: FleetServer,
    enrolled: tuple[SimulatedInverters, Path, Subscriber],
    capsys: pytest.CaptureFixture[str],
) -> None:
    inverter, root, watcher = enrolled
    etc = root / "etc"
    running = Running(etc / "gateway.yaml")
    try:
        wait_for(
            lambda: (s := latest_status(watcher)) and s.config_version == 1, "version 1 in status"
        )
        device = {"device_id": "inv-s002", "profile": "growatt", "host": "127.0.0.1",
                  "port": inverter.port, "unit": 1, "interval_s": 2, "rated_power_w": 3000}  # fmt: skip

        # refused before anything is sent: the server validates first
        bad = settings_file(root, "bad.yaml", [{**device, "unit": 300}])
        assert zonnewijk(["gateways", "config", "set", GW, str(bad),
                          "--database-url", fleet_server.database_url]) == 1  # fmt: skip
        assert (
            "devices.0.unit: Input should be less than or equal to 247" in capsys.readouterr().err
        )

        good = settings_file(root, "v2.yaml", [device], status_interval_s=5)
        assert zonnewijk(["gateways", "config", "set", GW, str(good), "--comment", "2 s polls",
                          "--database-url", fleet_server.database_url]) == 0  # fmt: skip
        assert "version 2 stored" in capsys.readouterr().out
        wait_for(
            lambda: (s := latest_status(watcher)) and s.config_version == 2, "version 2 applied"
        )
        assert running.service.config.devices[0].interval_s == 2
        assert running.service.publisher.status_interval_s == 5
        saved = json.loads((root / "var" / "remote-config.json").read_text())
        assert saved["version"] == 2
        assert (
            json.loads((root / "var" / "remote-config.previous.json").read_text())["version"] == 1
        )

        # a version whose device does not answer is refused; the running one stays
        dead = settings_file(root, "v3.yaml", [{**device, "port": free_port()}])
        assert zonnewijk(["gateways", "config", "set", GW, str(dead),
                          "--database-url", fleet_server.database_url]) == 0  # fmt: skip
        status = wait_for(
            lambda: (s := latest_status(watcher)) and s.config_refused and s, "version 3 refused"
        )
        assert status.config_version == 2
        assert status.config_refused.startswith("3: none of its devices answered")
        polled = running.service.readings_polled
        wait_for(lambda: running.service.readings_polled > polled, "polls go on")
        assert running.service.config.devices[0].port == inverter.port

        # diagnostics without SSH
        capsys.readouterr()
        assert zonnewijk(["gateways", "diagnose", GW, "--json", "--timeout", "20",
                          "--database-url", fleet_server.database_url]) == 0  # fmt: skip
        bundle = json.loads(capsys.readouterr().out)
        assert bundle["gateway_id"] == GW and bundle["config_version"] == 2
        [diag] = bundle["devices"]
        assert diag["device_id"] == "inv-s002" and diag["last_result"].startswith("ok")
        assert diag["polls"] >= 1
        assert bundle["spool"]["max_readings"] > 0
        assert bundle["memory"]["total_bytes"] > 0 and bundle["disk"]["free_bytes"] > 0
        assert any("version 3 refused" in line for line in bundle["log"])
        with fleet_server.sessions() as session:  # kept on the server for the portal
            [stored] = diagnostics_history(session, GW)
        assert stored.document == bundle and stored.requested_by == "operator"
        assert stored.received_at is not None and stored.received_at >= stored.requested_at
    finally:
        running.stop()

    # a restart runs the applied version (2), not the enrolment's file (version 1)
    again = Running(etc / "gateway.yaml")
    try:
        assert again.service.config.devices[0].interval_s == 2
        assert again.service.remote is not None and again.service.remote.version == 2
    finally:
        again.stop()


def test_forged_foreign_and_replayed_configs_are_refused(
    fleet_server: FleetServer, enrolled: tuple[SimulatedInverters, Path, Subscriber]
) -> None:
    _, root, watcher = enrolled
    running = Running(root / "etc" / "gateway.yaml")
    login = BrokerLogin(
        host="127.0.0.1", port=fleet_server.broker.port, username="collector-ops",
        password=fleet_server.ops_password, tls_ca=fleet_server.pki.ca_cert,
    )  # fmt: skip
    try:
        wait_for(lambda: (s := latest_status(watcher)) and s.config_version == 1, "version 1")
        with fleet_server.sessions() as session:
            stored = latest_config(session, GW)
        assert stored is not None
        v2 = stored.config.model_copy(update={"version": 2, "status_interval_s": 7.0})
        with broker_link(login) as link:
            # signed with another key: the server did not make it for this gateway
            forged = ConfigDelivery.signed(v2, "ab" * 32)
            link.publish(config_topic(GW), forged.model_dump_json().encode(), retain=True)
            status = wait_for(
                lambda: (s := latest_status(watcher)) and s.config_refused and s, "forged refused"
            )
            assert (
                status.config_refused
                == "2: bad signature (not made by the server for this gateway)"
            )
            assert status.config_version == 1
            assert running.service.publisher.status_interval_s != 7.0

        # another gateway cannot write this gateway's config topic at all (broker ACL)
        other = fleet_server.service.create_code(
            "S001", created_by="test", transport=Transport(host="192.0.2.10")
        )
        grant = fleet_server.service.redeem(EnrolmentRequest(code=other.code), remote="test")
        spy = Subscriber(
            fleet_server.broker.port, fleet_server.pki.ca_cert, "collector-ops",
            fleet_server.ops_password, config_topic(GW),
        )  # fmt: skip
        assert spy.connected.wait(5) and spy.subscribed.wait(5)
        time.sleep(0.3)
        before = len(spy.messages)  # the retained one
        gw_b = Subscriber(
            fleet_server.broker.port, fleet_server.pki.ca_cert, grant.gateway_id,
            grant.broker.password,
        )  # fmt: skip
        assert gw_b.connected.wait(5) and not gw_b.refused
        gw_b.client.publish(config_topic(GW), b"{}", qos=1).wait_for_publish(5)
        time.sleep(0.5)
        assert len(spy.messages) == before, "the broker let gw-s001 write gw-s002's config"
        gw_b.close()
        spy.close()

        # a correctly signed but older version is not applied again (a replayed message)
        with fleet_server.sessions() as session:
            key = command_key(session, GW)
        with broker_link(login) as link:
            deliver_config(link, v2, key)
            wait_for(lambda: (s := latest_status(watcher)) and s.config_version == 2, "v2")
            deliver_config(link, stored.config, key)  # version 1
            time.sleep(1.0)
        assert running.service.remote is not None
        assert running.service.remote.version == 2
        assert running.service.publisher.status_interval_s == 7.0
    finally:
        running.stop()
