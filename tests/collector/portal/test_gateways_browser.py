"""Headless Chromium (Debian's, driven by Playwright): an operator opens the gateway page from
the menu, asks a real enrolled gateway for diagnostics with the button, and reads its bundle.

The gateway (gw-s002 against a simulated Growatt) is enrolled and runs as in the remote
configuration tests, against the real TLS Mosquitto with per-user ACLs; its status and readings
go through the collector's own processing into a real InfluxDB; the portal asks with its own
broker login (``collector-ops``). Screenshots go to docs/screenshots/ when
ZONNEWIJK_UPDATE_SCREENSHOTS=1 (how the committed pictures were made).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fleet_fixtures import FleetServer, Running, Subscriber, fleet_server, wait_for

from collector.devtools.services import Influxd
from collector.ingest.batches import prepare_batch
from collector.ingest.process import process_message
from collector.portal.accounts import AccountService
from collector.portal.app import create_app
from collector.portal.config import PortalConfig
from collector.portal.serving import serve_in_thread
from collector.remote.delivery import BrokerLogin
from collector.remote.diagnostics import diagnostics_history
from collector.remote.draft import Transport
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from collector.timeseries.influx import InfluxClient
from gateway_firmware.cli import main as zonnewijk_gateway
from zonnewijk_wire import GatewayStatus, readings_topic, status_topic

from .test_browser import ARGS, CHROMIUM, _shot

playwright_sync = pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

__all__ = ["fleet_server"]
GW = "gw-s002"
PASSWORD = "gateway-beheer-77x"
#: what a gateway installed from the .deb reports (no package here: set as its package would)
PACKAGE = {"package_version": "0.9.1-1", "channel": "canary"}


@dataclass
class Portal:
    url: str
    email: str
    influx: InfluxClient


@pytest.fixture
def portal(fleet_server: FleetServer, influxd: Influxd) -> Iterator[Portal]:
    """The portal on the fleet server's store, asking gateways over its TLS broker."""
    influx = InfluxClient(influxd.url, f"gateways_{uuid.uuid4().hex[:10]}")
    influx.create_database()
    accounts = AccountService(fleet_server.sessions)
    op = accounts.create_operator_account("beheer@zonnewijk.test", "Beheerder")
    accounts.use_link(accounts.issue_link(op.account_id, "invite"), "invite", PASSWORD)
    config = PortalConfig(
        database_url=fleet_server.database_url,
        influx_url=influxd.url,
        influx_db=influx.database,
        secret_key="test-secret-key-" + uuid.uuid4().hex,
        fleet_broker=BrokerLogin(
            host="127.0.0.1",
            port=fleet_server.broker.port,
            username="collector-ops",
            password=fleet_server.ops_password,
            tls_ca=fleet_server.pki.ca_cert,
        ),
        diagnostics_timeout_s=20.0,
    )
    with serve_in_thread(create_app(config, influx=influx)) as url:
        yield Portal(url, op.email, influx)
    influx.query(f'DROP DATABASE "{influx.database}"', database="", epoch=None)


def _store(influx: InfluxClient, watcher: Subscriber) -> None:
    """What the collector would store of the gateway's messages so far."""
    processed = [process_message(topic, payload) for topic, payload in watcher.messages if payload]
    assert not [r for m in processed for r in m.rejections]
    influx.write_lines(prepare_batch([], processed, datetime.now(UTC)).lines)


def test_operator_asks_a_real_gateway_for_diagnostics(
    fleet_server: FleetServer, portal: Portal, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # as the gateway's own command sets it up
    with SimulatedInverters({1: layout_for("growatt")}) as inverter:
        inverter.set_values(1, ac_power_w=1850.0, ac_energy_wh=5_000_000.0)
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
            fleet_server.collector_password, status_topic(GW), readings_topic(GW),
        )  # fmt: skip
        assert watcher.connected.wait(5) and watcher.subscribed.wait(5)
        running = Running(tmp_path / "etc" / "gateway.yaml")
        try:
            running.service.publisher.status_extra.update(PACKAGE)
            running.service.publisher.publish_status()

            def packaged_status() -> bool:
                for topic, payload in watcher.messages:
                    if topic == status_topic(GW) and payload:
                        status = GatewayStatus.model_validate_json(payload)
                        if status.package_version == "0.9.1-1" and status.config_version == 1:
                            return True
                return False

            wait_for(packaged_status, "the gateway's status with its package")
            wait_for(lambda: any(t == readings_topic(GW) for t, _ in watcher.messages), "readings")
            _store(portal.influx, watcher)
            _browse(portal, tmp_path)
        finally:
            running.stop()
            watcher.close()
    with fleet_server.sessions() as session:
        [stored] = diagnostics_history(session, GW)
    assert stored.requested_by == portal.email and stored.document is not None
    assert stored.document["package_version"] == "0.9.1-1"


def _browse(portal: Portal, tmp_path: Path) -> None:
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, locale="nl-NL")
        page.goto(f"{portal.url}/login")
        page.fill("input[name=email]", portal.email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/operator")
        page.click("nav >> text=Gateways")
        page.wait_for_url("**/operator/gateways")
        row = page.locator(f"tr#gw-{GW}")
        assert row.locator("td.package").inner_text() == "0.9.1-1"
        assert row.locator("td.channel").inner_text() == "canary"
        assert row.locator("td.config").inner_text().startswith("1")
        assert row.locator("td.diagnostics").inner_text() == "nog geen"
        assert "niet aangemeld" in page.locator("tr#gw-gw-s001").inner_text()
        row.locator("button:has-text('Diagnostiek opvragen')").click()
        page.wait_for_url(f"**/operator/gateways/{GW}/diagnostics?id=*", timeout=30_000)
        assert page.locator("#notice").count() == 0  # it answered
        devices = page.locator("#diag-devices").inner_text()
        assert "inv-s002" in devices and "growatt" in devices and "ok" in devices
        assert "0.9.1-1" in page.locator("#diag-general").inner_text()
        assert "free bytes" in page.locator("#diag-disk").inner_text()
        assert "iB" in page.locator("#diag-disk").inner_text()  # in binary units
        assert "max readings" in page.locator("#diag-spool").inner_text()
        assert page.locator("#diag-clock").inner_text().strip()
        assert "bytes" in page.locator("#diag-memory").inner_text()
        assert page.locator("pre.log").inner_text().strip()  # the gateway's recent log
        assert portal.email in page.locator("#diag-history").inner_text()
        _shot(page, tmp_path, "operator-gateway-diagnostics")
        page.click("text=Terug naar de gateways")
        page.wait_for_url("**/operator/gateways")
        row = page.locator(f"tr#gw-{GW}")
        assert row.locator("td.diagnostics a").count() == 1  # the latest bundle, linked
        _shot(page, tmp_path, "operator-gateways")
        browser.close()
