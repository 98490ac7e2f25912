"""From an operator's code to readings on the broker: ``zonnewijk gateways enrol`` prints a code
and a command, the Pi redeems it over HTTPS (private CA) and gets broker credentials, the
broker's CA and its configuration; the gateway then publishes a simulated inverter's readings
to a real Mosquitto that accepts only the issued credentials. A code works once."""

from __future__ import annotations

import re
import stat
import threading
import time
from pathlib import Path

import pytest
from fleet_fixtures import FleetServer, Subscriber
from sqlalchemy import select

from collector.cli import main as zonnewijk
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from collector.store.gateway_models import EnrolmentCodeRow, EnrolmentEventRow
from gateway_firmware.cli import main as zonnewijk_gateway
from gateway_firmware.config import load_config
from gateway_firmware.service import GatewayService
from zonnewijk_wire import decode_batch, readings_topic

pytestmark = pytest.mark.slow

CODE = re.compile(r"enrolment code: ([0-9A-Z]{4}(?:-[0-9A-Z]{4}){3})")


def make_code(
    fleet_server: FleetServer, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[str, str]:
    """Run ``zonnewijk gateways enrol``; returns the code and its whole output."""
    capsys.readouterr()
    rc = zonnewijk(
        ["gateways", "enrol", "--url", fleet_server.url, "--database-url",
         fleet_server.database_url, *args]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    match = CODE.search(out)
    assert match, out
    return match.group(1), out


def enrol_pi(fleet_server: FleetServer, root: Path, code: str, *extra: str) -> int:
    return zonnewijk_gateway(
        ["enrol", fleet_server.url, code, "--ca-file", str(fleet_server.pki.ca_cert),
         "--config-dir", str(root / "etc"), "--state-dir", str(root / "var"), "--no-restart",
         *extra]
    )  # fmt: skip


def events(fleet_server: FleetServer) -> list[tuple[str, str | None, str | None]]:
    with fleet_server.sessions() as session:
        rows = session.scalars(select(EnrolmentEventRow).order_by(EnrolmentEventRow.id))
        return [(r.event, r.gateway_id, r.reason) for r in rows]


def test_a_new_pi_enrols_once_and_publishes_with_the_issued_credentials(
    fleet_server: FleetServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimulatedInverters({1: layout_for("growatt")}) as inverter:
        inverter.set_values(1, ac_power_w=1830.0, ac_energy_wh=2_345_600.0)
        code, out = make_code(
            fleet_server, capsys, "--site", "S002", "--host", "127.0.0.1",
            "--port", str(inverter.port),
        )  # fmt: skip
        # the one command for the Pi, and the same command as a QR code (segno's blocks)
        assert f"sudo zonnewijk-gateway enrol {fleet_server.url} {code}" in out
        assert "gateway gw-s002, configuration version 1" in out
        assert "█" in out or "▀" in out
        # the collector listens before the gateway exists
        collector = Subscriber(
            fleet_server.broker.port, fleet_server.pki.ca_cert, "collector-1",
            fleet_server.collector_password, "zonnewijk/v1/+/readings",
        )  # fmt: skip
        assert collector.connected.wait(5) and not collector.refused
        assert collector.subscribed.wait(5)

        assert enrol_pi(fleet_server, tmp_path, code) == 0
        printed = capsys.readouterr().out
        assert "enrolled as gw-s002 (site S002); devices: inv-s002" in printed

        etc = tmp_path / "etc"
        config = load_config(etc / "gateway.yaml")
        assert config.gateway_id == "gw-s002"
        assert config.mqtt.username == "gw-s002"
        assert config.mqtt.tls is not None
        assert config.mqtt.tls.ca_file.read_text() == fleet_server.pki.ca_cert.read_text()
        [device] = config.devices
        assert (device.device_id, device.profile, device.port, device.rated_power_w) == (
            "inv-s002", "growatt", inverter.port, 3000.0,
        )  # fmt: skip
        for secret in ("mqtt-password", "command-key"):
            mode = stat.S_IMODE((etc / secret).stat().st_mode)
            assert mode & 0o007 == 0, f"{secret} is readable by others: {oct(mode)}"
        # the password is nowhere in the configuration file itself
        password = (etc / "mqtt-password").read_text().strip()
        assert password not in (etc / "gateway.yaml").read_text()

        service = GatewayService(config)
        thread = threading.Thread(target=service.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 20
            while not collector.messages and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            service.request_stop()
            thread.join(15)
            collector.close()
        assert collector.messages, "no readings reached the broker"
        topic, payload = collector.messages[0]
        assert topic == readings_topic("gw-s002")
        batch = decode_batch(payload, topic_gateway_id="gw-s002")
        assert batch.readings[0].device_id == "inv-s002"
        assert batch.readings[0].ac_energy_wh == 2_345_600.0

    # the code works once: a second Pi (or a replay) is refused, and nothing is overwritten
    before = (etc / "mqtt-password").read_text()
    assert enrol_pi(fleet_server, tmp_path, code) == 1
    assert "used already" in capsys.readouterr().err
    assert (etc / "mqtt-password").read_text() == before
    assert events(fleet_server) == [
        ("created", "gw-s002", None),
        ("redeemed", "gw-s002", None),
        ("refused", "gw-s002", "already_used"),
    ]
    with fleet_server.sessions() as session:
        [row] = session.scalars(select(EnrolmentCodeRow))
        assert row.redeemed_from == "127.0.0.1"
        assert row.redeemed_hostname  # the Pi's host name, for the log
        assert code.replace("-", "") not in row.code_sha256  # only the hash is stored
    assert fleet_server.service.refused["already_used"] == 1


def test_re_enrolling_a_site_rotates_the_credentials(
    fleet_server: FleetServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A replacement Pi for a site enrols with a new code; the old Pi's password stops working
    at once (the broker re-reads its password file on the reload the server sends)."""
    first, _ = make_code(fleet_server, capsys, "--site", "S001", "--host", "192.0.2.10")
    assert enrol_pi(fleet_server, tmp_path / "old", first) == 0
    old_password = (tmp_path / "old" / "etc" / "mqtt-password").read_text().strip()
    old = Subscriber(fleet_server.broker.port, fleet_server.pki.ca_cert, "gw-s001", old_password)
    assert old.connected.wait(5) and not old.refused
    old.close()

    second, out = make_code(fleet_server, capsys, "--site", "S001")  # the stored config
    assert "configuration version 1" in out
    assert enrol_pi(fleet_server, tmp_path / "new", second) == 0
    new_password = (tmp_path / "new" / "etc" / "mqtt-password").read_text().strip()
    assert new_password != old_password
    for password, refused in ((old_password, True), (new_password, False)):
        client = Subscriber(fleet_server.broker.port, fleet_server.pki.ca_cert, "gw-s001", password)
        assert client.connected.wait(5)
        assert client.refused is refused
        client.close()
    new_config = load_config(tmp_path / "new" / "etc" / "gateway.yaml")
    # S001's inverter in service today is the Huawei that replaced the SMA
    assert [(d.device_id, d.profile) for d in new_config.devices] == [
        ("inv-s001-b", "huawei-sun2000")
    ]
