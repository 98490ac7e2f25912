"""DER inverters and SunSpec grid meters in the simulated fleet, along the whole path
(issue 16, done-when): a live DER (701) inverter and its home's SunSpec meter (203) on one
Modbus TCP server -> the gateway service -> Mosquitto -> the collector -> InfluxDB -> the
settlement's yield from the stored counters."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.devtools.services import Mosquitto
from collector.ingest.pipeline import Collector, MqttConnection
from collector.registry.fleet_file import parse_fleet
from collector.settlement.engine import settle
from collector.settlement.influx_source import load_readings
from collector.settlement.inputs import SettlementInputs
from collector.settlement.periods import parse_month
from collector.simulator.fleet import DER_FROM, Fleet, generate_fleet
from collector.simulator.grid_meter import METER_UNIT, HomeGridMeter
from collector.simulator.household import household_for
from collector.simulator.live import LiveFleet
from collector.timeseries.influx import InfluxClient
from gateway_firmware.config import parse_config
from gateway_firmware.service import GatewayService
from zonnewijk_wire import InverterState

GW = "gw-der"

FLEET_YAML = """
version: 1
cooperative:
  name: Testcoöperatie
  address: {street: Dieze 1, postal_code: 8011 AB, city: Zwolle}
tariff_plans:
  - plan_id: p-kwh
    versions:
      - {valid_from: 2025-01-01, monthly_fee_eur: "5.00", price_eur_per_kwh: "0.0900", vat_rate: "0.21"}
members:
  - {member_id: M1, name: Lid 1, email: lid1@example.org, address: {street: Dieze 3, postal_code: 8011 AB, city: Zwolle}}
sites:
  - {site_id: S1, address: {street: Dieze 3, postal_code: 8011 AB, city: Zwolle}, lat: 52.52,
     lon: 6.10, kwp: 4, tilt_deg: 35, azimuth_deg: 180, gateway_id: gw-der}
devices:
  - {device_id: %(device)s, site_id: S1, family: sunspec-int, ac_rating_w: %(rating)s, kwp: 4,
     installed_on: 2025-01-01}
contracts:
  - {contract_id: C1, member_id: M1, site_id: S1, start_date: 2025-01-01, tariff_plan_id: p-kwh}
"""


def der_fleet() -> Fleet:
    """One DER site of the default fleet, as the only site (index 0) of a live fleet."""
    site = next(s for s in generate_fleet(122, seed=1).sites if s.device_layout == "sunspec-der")
    return Fleet(seed=1, sites=(replace(site, index=0),))


def wait_for(predicate: Callable[[], Any], what: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_the_fleet_has_der_inverters_among_its_sunspec_ones() -> None:
    fleet = generate_fleet(122, seed=1)
    der = [s for s in fleet.sites if s.device_layout == "sunspec-der"]
    assert der  # 21 of the 43 SunSpec integer inverters of seed 1
    assert all(s.family == "sunspec-int" and s.commissioned >= DER_FROM for s in der)
    older = [s for s in fleet.sites if s.family == "sunspec-int" and s.commissioned < DER_FROM]
    assert older and all(s.device_layout == "sunspec-int" for s in older)
    assert all(s.device_layout == s.family for s in fleet.sites if s.family != "sunspec-int")


def test_der_inverter_and_grid_meter_run_through_gateway_collector_and_settlement(
    tmp_path: Path, mosquitto: Mosquitto, influx: InfluxClient
) -> None:
    fleet = der_fleet()
    site = fleet.sites[0]
    meter = HomeGridMeter(household_for(1000), seed=0)
    # midsummer noon: the inverter produces; time runs 3600x so 0.5 s advance 30 minutes
    live = LiveFleet(
        fleet,
        start=datetime(2026, 6, 21, 10, tzinfo=UTC),
        time_scale=3600.0,
        step_s=10,
        grid_meters={0: meter},
    )
    [device] = live.start_servers()
    server = live.servers[0]
    try:
        assert (device.layout, device.gateway_profile, device.meter_unit) == (
            "sunspec-der",
            "sunspec",
            METER_UNIT,
        )
        first_wh = server.values(1).ac_energy_wh
        first_import_wh = server.meter_values(METER_UNIT).import_energy_wh
        assert first_wh is not None and first_import_wh is not None
        config = parse_config(
            {
                "gateway_id": GW,
                "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "client_id": "gw-der"},
                "spool": {"path": str(tmp_path / "spool.sqlite3")},
                "devices": [
                    {"device_id": site.device_id, "profile": "sunspec", "host": device.host,
                     "port": device.port, "unit": 1, "interval_s": 1,
                     "rated_power_w": site.ac_rating_w},
                    {"device_id": device.meter_device_id, "profile": "sunspec-meter",
                     "host": device.host, "port": device.port, "unit": METER_UNIT,
                     "interval_s": 1},
                ],
            }
        )  # fmt: skip
        conn = MqttConnection(port=mosquitto.port, client_id=f"col-{uuid.uuid4().hex[:6]}")
        with Collector(mqtt_connection=conn, influx=influx) as collector:
            service = GatewayService(config)
            thread = threading.Thread(target=service.run, daemon=True)
            thread.start()
            try:

                def inverter_rows() -> list[dict[str, Any]]:
                    return influx.query_records('SELECT * FROM "inverter"')

                def meter_rows() -> list[dict[str, Any]]:
                    return influx.query_records('SELECT * FROM "grid_meter"')

                wait_for(lambda: inverter_rows() and meter_rows(), "the first readings")
                live.run(duration_s=0.5)  # 180 model steps, then the servers hold still
                last_wh = server.values(1).ac_energy_wh
                last = server.meter_values(METER_UNIT)
                assert last_wh is not None and last_wh > first_wh  # 461 Wh in these 30 minutes
                wait_for(
                    lambda: any(r["ac_energy_wh"] == last_wh for r in inverter_rows()),
                    "the advanced counter",
                )
                wait_for(
                    lambda: any(
                        r["import_energy_wh"] == pytest.approx(last.import_energy_wh, abs=0.5)
                        for r in meter_rows()
                    ),
                    "the advanced meter",
                )
            finally:
                service.request_stop()
                thread.join(15)
            assert collector.wait_idle(timeout_s=10)
    finally:
        live.stop()
    assert not thread.is_alive()
    rows = inverter_rows()
    assert {r["device"] for r in rows} == {site.device_id}
    # the model's first step starts the inverter (0 W, DER InvSt STARTING), then it produces
    states = [r["state"] for r in sorted(rows, key=lambda r: r["time"])]
    assert set(states) <= {InverterState.STARTING.value, InverterState.PRODUCING.value}
    assert states[-1] == InverterState.PRODUCING.value
    counters = [r["ac_energy_wh"] for r in sorted(rows, key=lambda r: r["time"])]
    assert counters[0] == first_wh and counters[-1] == last_wh
    assert counters == sorted(counters)
    meters = meter_rows()
    assert {r["device"] for r in meters} == {device.meter_device_id}
    assert min(r["import_energy_wh"] for r in meters) == pytest.approx(first_import_wh, abs=0.5)
    assert max(r["export_energy_wh"] for r in meters) == pytest.approx(
        last.export_energy_wh, abs=0.5
    )

    # The settlement of the month the readings were taken in: the stored counters' difference.
    taken = datetime.fromtimestamp(rows[-1]["time"] / 1000, tz=UTC)
    period = parse_month(f"{taken:%Y-%m}")
    registry = parse_fleet(
        FLEET_YAML % {"device": site.device_id, "rating": int(site.ac_rating_w)}, "der-fleet"
    )
    result = settle(SettlementInputs(period, registry, load_readings(influx, registry, period)))
    [contract] = result.contracts
    assert contract.measured_wh == pytest.approx(last_wh - first_wh, abs=1e-6)
