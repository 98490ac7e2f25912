"""DER inverters (701 + 714), grid meters (203, 213, 201), longer/shorter/unknown models, read over
real Modbus TCP from a pymodbus server laid out from the official definitions."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest

from collector.simulator.modbus_device import (
    DcValues,
    SimulatedInverters,
    SunSpecLayout,
    SunSpecMeterLayout,
    der_layout,
)
from gateway_firmware.devices.commands import scan_unit
from gateway_firmware.devices.factory import make_reader
from gateway_firmware.devices.meter_reader import MeterReader
from gateway_firmware.devices.reader import DeviceReader
from gateway_firmware.devices.scan_report import describe
from gateway_firmware.modbus.errors import NotIdentified, ProfileError
from gateway_firmware.modbus.transport import ModbusBus
from gateway_firmware.profiles import load_profiles
from gateway_firmware.sunspec.client import SunSpecDevice
from zonnewijk_wire import InverterState, MeterFlag, MeterReading, MeterSource, ReadingFlag

Serve = Callable[..., SimulatedInverters]
ReaderFor = Callable[..., DeviceReader]
TcpBus = Callable[..., ModbusBus]


def test_der_inverter_701_with_714_ports(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: der_layout()})
    sim.set_values(
        ac_power_w=4321.0,
        ac_energy_wh=98_765_432.0,
        ac_voltage_v=231.4,
        grid_frequency_hz=50.012,
        cabinet_temp_c=41.5,
        dc=[DcValues(350.1, 6.01, 2104.0), DcValues(340.2, 6.5, 2211.0)],
        events=(1 << 0) | (1 << 7) | (1 << 16),
    )
    reader = reader_for(sim, 1)
    reading = reader.poll()
    assert (reading.ac_power_w, reading.ac_energy_wh) == (4321.0, 98_765_432.0)
    assert (reading.ac_voltage_v, reading.grid_frequency_hz, reading.cabinet_temp_c) == (
        231.4,
        50.012,
        41.5,
    )
    assert [(d.mppt, d.dc_voltage_v, d.dc_current_a, d.dc_power_w) for d in reading.dc] == [
        (1, 350.1, 6.01, 2104.0),
        (2, 340.2, 6.5, 2211.0),
    ]
    assert reading.state is InverterState.PRODUCING
    assert reading.vendor_state == 3  # InvSt RUNNING in model 701
    assert reading.events == ("ground_fault", "over_temperature", "manufacturer_alarm")
    assert reading.flags == ()
    assert reader.device_info().sunspec_models == (1, 701, 702, 714)


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (InverterState.SLEEPING, 1),
        (InverterState.THROTTLED, 4),
        (InverterState.FAULT, 6),
        (InverterState.STANDBY, 7),
    ],
)
def test_der_states_from_the_definitions_symbols(
    serve: Serve, reader_for: ReaderFor, state: InverterState, code: int
) -> None:
    sim = serve({1: der_layout()})
    sim.set_values(state=state)
    reading = reader_for(sim, 1).poll()
    assert (reading.state, reading.vendor_state) == (state, code)


def test_701_preferred_over_103_on_one_device(serve: Serve, tcp_bus: TcpBus) -> None:
    sim = serve({1: SunSpecLayout(der=True, classic_too=True, mppt_count=1)})
    sim.set_values(ac_power_w=3000.0, ac_energy_wh=5_000_000.0, dc=[DcValues(400.0, 7.5, 3000.0)])
    device = SunSpecDevice(tcp_bus(sim), 1)
    assert device.discover().model_ids == (1, 701, 702, 103, 714)
    assert device.inverter_model is not None and device.inverter_model.model_id == 701
    values = device.read()
    assert values.values["ac_energy_wh"] == 5_000_000.0
    assert values.dc[1] == {"dc_voltage_v": 400.0, "dc_current_a": 7.5, "dc_power_w": 3000.0}


def test_der_static_scale_factors_far_from_their_values(serve: Serve, tcp_bus: TcpBus) -> None:
    # 701's scale factors sit ~130 registers after W: more than one request can span
    sim = serve({1: der_layout(scale_factors={"W_SF": 1})})
    sim.set_values(ac_power_w=4560.0)
    device = SunSpecDevice(tcp_bus(sim), 1)
    assert device.read().values["ac_power_w"] == 4560.0
    assert device.plan is not None and len(device.plan.requests) >= 2


def test_grid_meter_import_export_per_phase(serve: Serve, tcp_bus: TcpBus) -> None:
    sim = serve({2: SunSpecMeterLayout()})
    sim.set_values(import_energy_wh=1_234_567.0, export_energy_wh=7_654_321.0, net_power_w=-2400.0)
    meter = MeterReader(tcp_bus(sim), unit=2, device_id="mtr-2", gateway_id="gw")
    reading = meter.poll()
    assert reading.source is MeterSource.SUNSPEC
    assert (reading.import_energy_wh, reading.export_energy_wh) == (1_234_567.0, 7_654_321.0)
    assert (reading.import_power_w, reading.export_power_w) == (0.0, 2400.0)
    assert [(p.phase, p.export_power_w, p.voltage_v) for p in reading.phases] == [
        ("L1", 800.0, 230.0),
        ("L2", 800.0, 230.0),
        ("L3", 800.0, 230.0),
    ]
    assert reading.protocol == "SunSpec 203"
    assert reading.flags == ()
    sim.set_values(net_power_w=1500.0)
    assert (meter.poll().import_power_w, meter.poll().export_power_w) == (1500.0, 0.0)
    info = meter.device_info()
    assert (info.model, info.serial, info.profile) == ("SimMeter 3P", "MTR0001", "sunspec-meter")


@pytest.mark.parametrize(("float_model", "phases", "model_id"), [(True, 3, 213), (False, 1, 201)])
def test_float_and_single_phase_meters(
    serve: Serve, tcp_bus: TcpBus, float_model: bool, phases: int, model_id: int
) -> None:
    sim = serve({1: SunSpecMeterLayout(float_model=float_model, phases=phases)})
    sim.set_values(import_energy_wh=2_000_500.0, export_energy_wh=3_000_250.0, net_power_w=612.5)
    reading = MeterReader(tcp_bus(sim), unit=1, device_id="m", gateway_id="gw").poll()
    assert reading.protocol == f"SunSpec {model_id}"
    assert (reading.import_energy_wh, reading.export_energy_wh) == (2_000_500.0, 3_000_250.0)
    assert reading.import_power_w == (612.5 if float_model else 612.0)  # W_SF 0: whole watts
    assert [p.phase for p in reading.phases] == ["L1", "L2", "L3"][:phases]
    assert reading.flags == ()  # a single-phase meter's absent phases are not sentinels


def test_meter_sentinels_are_missing_and_flagged(serve: Serve, tcp_bus: TcpBus) -> None:
    sim = serve({1: SunSpecMeterLayout()})
    sim.set_values(export_energy_wh=None)
    reading = MeterReader(tcp_bus(sim), unit=1, device_id="m", gateway_id="gw").poll()
    assert reading.export_energy_wh is None
    assert reading.flags == (MeterFlag.SENTINEL,)


def test_meter_read_as_inverter_names_the_models_and_the_profile(
    serve: Serve, reader_for: ReaderFor
) -> None:
    sim = serve({1: SunSpecMeterLayout()})
    with pytest.raises(NotIdentified) as excinfo:
        reader_for(sim, 1).poll()
    message = str(excinfo.value)
    assert "without an inverter model" in message
    assert "1 (Common), 203 (wye-connect three phase (abcn) meter)" in message
    assert "read it with the profile sunspec-meter" in message


def test_inverter_read_as_meter_says_what_is_missing(serve: Serve, tcp_bus: TcpBus) -> None:
    sim = serve({1: der_layout()})
    with pytest.raises(NotIdentified, match=r"without a meter model \(models 1 \(Common\), 701"):
        MeterReader(tcp_bus(sim), unit=1, device_id="m", gateway_id="gw").poll()


def test_meter_profile_is_not_an_inverter_reader(serve: Serve, tcp_bus: TcpBus) -> None:
    sim = serve({1: SunSpecMeterLayout()})
    with pytest.raises(ProfileError, match="reads a grid meter"):
        DeviceReader(tcp_bus(sim), unit=1, device_id="m", gateway_id="g", profile="sunspec-meter")
    reader = make_reader(
        tcp_bus(sim), unit=1, device_id="m", gateway_id="g", profile="sunspec-meter"
    )
    assert isinstance(reader, MeterReader)


@pytest.mark.parametrize("length", [60, 80])
def test_inverter_model_longer_than_its_definition(
    serve: Serve, reader_for: ReaderFor, length: int
) -> None:
    # a newer revision with more points: the known ones stay where they were
    sim = serve({1: SunSpecLayout(inverter_length=length, mppt_count=1)})
    sim.set_values(ac_power_w=2500.0, ac_energy_wh=7_000_000.0, dc=[DcValues(410.0, 6.2, 2540.0)])
    reading = reader_for(sim, 1).poll()
    assert (reading.ac_power_w, reading.ac_energy_wh) == (2500.0, 7_000_000.0)
    assert reading.dc[0].dc_power_w == 2540.0  # model 160 found after the longer model


def test_inverter_model_shorter_than_its_definition(serve: Serve, reader_for: ReaderFor) -> None:
    # L=30: points up to DCW (offset 31) are there; DCW's scale factor, temperature and state
    # are not
    sim = serve({1: SunSpecLayout(inverter_length=30)})
    sim.set_values(ac_power_w=1800.0, ac_energy_wh=4_000_000.0, dc=[DcValues(400.0, 5.0, 2000.0)])
    reading = reader_for(sim, 1).poll()
    assert (reading.ac_power_w, reading.ac_energy_wh) == (1800.0, 4_000_000.0)
    assert [(d.dc_voltage_v, d.dc_current_a, d.dc_power_w) for d in reading.dc] == [
        (400.0, 5.0, None)
    ]
    assert reading.cabinet_temp_c is None
    assert reading.state is InverterState.UNKNOWN
    assert ReadingFlag.SENTINEL not in reading.flags  # absent, not "not implemented"


def test_unknown_and_vendor_models_skipped_by_length(
    serve: Serve, reader_for: ReaderFor, tcp_bus: TcpBus
) -> None:
    layout = SunSpecLayout(extra_models=((64999, 7), (999, 3), (11, 13)))
    sim = serve({1: layout})
    sim.set_values(ac_power_w=999.0)
    assert reader_for(sim, 1).poll().ac_power_w == 999.0
    result = scan_unit(tcp_bus(sim), 1, load_profiles())
    assert result is not None
    text = describe(result)
    assert "model 64999 L=7    vendor model (not in the SunSpec catalogue)" in text
    assert "model 999   L=3    unknown model (not in the SunSpec catalogue)" in text
    assert "model 11    L=13   Ethernet Link Layer (model_11)" in text
    assert "model 103   L=50   Inverter (Three Phase) (inverter_three_phase)" in text
    assert "-> profile sunspec (inverter 103)" in text


def gateway(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway_firmware.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_read_meter_and_scan_names_models(serve: Serve) -> None:
    sim = serve({1: der_layout(), 2: SunSpecMeterLayout()})
    sim.set_values(2, import_energy_wh=5_000.0, export_energy_wh=6_000.0, net_power_w=-300.0)
    port = str(sim.port)
    result = gateway("read", "--host", "127.0.0.1", "--port", port, "--unit", "2", "--profile",
                     "sunspec-meter")  # fmt: skip
    assert result.returncode == 0, result.stderr
    reading = MeterReading.model_validate(json.loads(result.stdout))
    assert (reading.import_energy_wh, reading.export_power_w) == (5_000.0, 300.0)

    scan = gateway("scan", "--host", "127.0.0.1", "--port", port, "--units", "1-2")
    assert scan.returncode == 0, scan.stderr
    assert "model 701   L=153  DER AC Measurement (DERMeasureAC)" in scan.stdout
    assert "model 714   L=68   DER DC Measurement (DERMeasureDC)" in scan.stdout
    assert "-> profile sunspec (inverter 701, dc 714)" in scan.stdout
    assert "-> profile sunspec-meter (meter 203)" in scan.stdout
    as_json = json.loads(gateway("scan", "--host", "127.0.0.1", "--port", port, "--units", "2",
                                 "--json", "--points").stdout)  # fmt: skip
    points = as_json[0]["model_chain"][1]["points"]
    assert (points["TotWhImp"], points["TotWhExp"], points["W"]) == (5000.0, 6000.0, -300.0)
