"""SunSpec devices laid out like real ones, read over real Modbus TCP from a pymodbus server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from collector.simulator.modbus_device import (
    DcValues,
    SimulatedInverters,
    SunSpecLayout,
    layout_for,
    sma_layout,
    solaredge_layout,
)
from gateway_firmware.devices.reader import DeviceReader
from gateway_firmware.modbus.errors import ConnectionFailed, NotIdentified
from gateway_firmware.modbus.transport import ModbusBus
from gateway_firmware.sunspec.client import SunSpecDevice
from zonnewijk_wire import InverterState, ReadingFlag

Serve = Callable[..., SimulatedInverters]
ReaderFor = Callable[..., DeviceReader]


def test_integer_model_with_mppt_values_exact(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: SunSpecLayout(mppt_count=2)})
    sim.set_values(
        ac_power_w=3456.0,
        ac_energy_wh=12_345_678.0,
        ac_voltage_v=231.4,
        grid_frequency_hz=49.98,
        cabinet_temp_c=38.7,
        dc=[DcValues(351.2, 5.12, 1798.0), DcValues(322.9, 5.54, 1789.0)],
    )
    reader = reader_for(sim, 1)
    reading = reader.poll()
    assert reading.ac_power_w == 3456.0
    assert reading.ac_energy_wh == 12_345_678.0
    assert reading.ac_voltage_v == 231.4
    assert reading.grid_frequency_hz == 49.98
    assert reading.cabinet_temp_c == 38.7
    assert [(d.mppt, d.dc_voltage_v, d.dc_current_a, d.dc_power_w) for d in reading.dc] == [
        (1, 351.2, 5.12, 1798.0),
        (2, 322.9, 5.54, 1789.0),
    ]
    assert reading.state is InverterState.PRODUCING
    assert reading.vendor_state == 4
    assert reading.flags == ()
    info = reader.device_info()
    assert (info.manufacturer, info.model, info.serial, info.firmware) == (
        "Zonnewijk",
        "SimInverter 5000",
        "SIM0001",
        "1.0.0",
    )
    assert info.sunspec_models == (1, 103, 160)


def test_sma_like_unit_126_models_11_12_and_refused_large_reads(
    serve: Serve, reader_for: ReaderFor
) -> None:
    sim = serve({126: sma_layout()})
    sim.set_values(ac_power_w=5120.0, ac_energy_wh=8_000_123.0)
    reader = reader_for(sim, 126)
    reading = reader.poll()
    assert (reading.ac_power_w, reading.ac_energy_wh) == (5120.0, 8_000_123.0)
    info = reader.device_info()
    assert info.sunspec_models == (1, 11, 12, 103)
    assert info.manufacturer == "SMA" and info.serial == "3012345678"
    # the identity read (64 registers) was refused and split; the learned plan is reused
    refused = reader.bus.stats["exception_2"]
    assert refused >= 1
    reader.device_info()
    reader.poll()
    assert reader.bus.stats["exception_2"] == refused  # the refused reads are not repeated
    device = reader.decoder
    assert isinstance(device, SunSpecDevice)
    inverter = device.layout.first({103})
    assert inverter is not None
    assert inverter.address == 40002 + 68 + 15 + 100  # after models 1, 11 and 12


def test_sma_like_device_is_not_found_on_unit_1(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({126: sma_layout()})
    with pytest.raises(Exception, match="unit 1") as excinfo:
        reader_for(sim, 1).poll()
    assert excinfo.value.__class__.__name__ == "NoResponse"


def test_solaredge_like_model_1_length_65(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: solaredge_layout()})
    sim.set_values(ac_power_w=4020.0, ac_energy_wh=23_456_000.0, ac_voltage_v=229.9)
    reader = reader_for(sim, 1)
    reading = reader.poll()
    assert (reading.ac_power_w, reading.ac_energy_wh, reading.ac_voltage_v) == (
        4020.0,
        23_456_000.0,
        229.9,
    )
    device = reader.decoder
    assert isinstance(device, SunSpecDevice)
    common, inverter = device.layout.models
    assert (common.model_id, common.length) == (1, 65)
    assert (inverter.model_id, inverter.address) == (101, 40002 + 2 + 65)
    assert reader.device_info().model == "SE5000H"


def test_float_model_device(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: layout_for("sunspec-float")})
    sim.set_values(
        ac_power_w=2750.5,
        ac_energy_wh=4_321_000.0,
        grid_frequency_hz=50.01,
        dc=[(360.5, 7.75, 2794.0)],
    )
    reader = reader_for(sim, 1)
    reading = reader.poll()
    assert reading.ac_power_w == 2750.5
    assert reading.ac_energy_wh == 4_321_000.0
    assert reading.grid_frequency_hz == 50.01
    assert [(d.dc_voltage_v, d.dc_current_a, d.dc_power_w) for d in reading.dc] == [
        (360.5, 7.75, 2794.0)
    ]
    assert reader.device_info().sunspec_models == (1, 113)
    # NaN means "not implemented": left out and flagged, never a number
    sim.set_values(cabinet_temp_c=None)
    reading = reader.poll()
    assert reading.cabinet_temp_c is None
    assert ReadingFlag.SENTINEL in reading.flags
    assert reading.raw["cabinet_temp_c"] == 0x7FC00000


def test_scale_factor_changing_between_reads(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: SunSpecLayout()})
    sim.set_values(
        ac_power_w=1234.5, dc=[(400.0, 3.0, 1271.3)], scale_factors={"W_SF": -1, "DCW_SF": -1}
    )
    reader = reader_for(sim, 1)
    first = reader.poll()
    assert first.ac_power_w == 1234.5
    assert first.dc[0].dc_power_w == 1271.3
    # Fronius-like: the device switches scale factors at run time
    sim.set_values(scale_factors={"W_SF": 0, "DCW_SF": 0})
    second = reader.poll()
    assert second.ac_power_w in (1234.0, 1235.0)  # whole watts now, never 12345 W
    assert second.dc[0].dc_power_w == 1271.0
    # every value is read in the same request as its scale factor
    device = reader.decoder
    assert isinstance(device, SunSpecDevice)
    inverter = device.layout.first({103})
    assert inverter is not None
    plan = device._plan
    assert plan is not None
    for value_offset, sf_offset in ((14, 15), (24, 26), (31, 32), (10, 13)):
        value_addr, sf_addr = inverter.address + value_offset, inverter.address + sf_offset
        assert any(
            r.start <= value_addr < r.start + r.count and r.start <= sf_addr < r.start + r.count
            for r in plan.requests
        )


def test_scale_factor_out_of_range_is_rejected(serve: Serve, reader_for: ReaderFor) -> None:
    layout = SunSpecLayout()
    sim = serve({1: layout})
    sim.set_values(ac_power_w=2000.0)
    reader = reader_for(sim, 1)
    assert reader.poll().ac_power_w == 2000.0
    w_sf = layout.model_addresses()[103] + 15
    sim.poke(w_sf, [20])  # SF 20: a corrupted read, not a real device
    reading = reader.poll()
    assert reading.ac_power_w is None
    assert ReadingFlag.BAD_SCALE_FACTOR in reading.flags
    assert {k: v for k, v in reading.raw.items() if k.startswith("ac_power")} == {
        "ac_power_w": 2000.0,
        "ac_power_w_sf": 20.0,
    }
    assert reading.ac_energy_wh is not None  # other values still usable


def test_night_time_sentinels(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: solaredge_layout()})
    sim.set_values(ac_power_w=3000.0, ac_energy_wh=5_000_000.0)
    reader = reader_for(sim, 1)
    reader.poll()
    # SolarEdge at night: asleep, W 0, measurements "not implemented"
    sim.set_values(state=InverterState.SLEEPING, ac_power_w=12.0, dc=[DcValues(5.0, 0.0, 0.0)])
    reading = reader.poll()
    assert reading.state is InverterState.SLEEPING
    assert reading.vendor_state == 2
    assert reading.ac_power_w == 0.0
    assert reading.ac_energy_wh == 5_000_000.0
    assert (reading.ac_voltage_v, reading.grid_frequency_hz, reading.cabinet_temp_c) == (
        None,
        None,
        None,
    )
    assert reading.dc == ()
    assert reading.flags == (ReadingFlag.SENTINEL,)
    assert reading.raw["ac_voltage_v"] == 0xFFFF
    assert reading.raw["grid_frequency_hz"] == 0xFFFF
    assert reading.raw["cabinet_temp_c"] == 0x8000


def test_accumulator_zero_is_not_implemented(serve: Serve, reader_for: ReaderFor) -> None:
    layout = SunSpecLayout()
    sim = serve({1: layout})
    sim.set_values(ac_energy_wh=1_000.0)
    reader = reader_for(sim, 1)
    sim.poke(layout.model_addresses()[103] + 24, [0, 0])
    reading = reader.poll()
    assert reading.ac_energy_wh is None
    assert ReadingFlag.SENTINEL in reading.flags


def test_events_and_fault_state(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: SunSpecLayout()})
    sim.set_values(
        state=InverterState.FAULT, vendor_state=1234, events=(1 << 0) | (1 << 7) | (1 << 20)
    )
    reading = reader_for(sim, 1).poll()
    assert reading.state is InverterState.FAULT
    assert reading.vendor_state == 1234
    assert reading.vendor_events == (1 << 0) | (1 << 7) | (1 << 20)
    assert reading.events == ("ground_fault", "over_temperature", "evt1_bit20")


@pytest.mark.parametrize("base", [40000, 40001, 50000, 0])
def test_discovery_bases_and_one_off_probing(
    serve: Serve, tcp_bus: Callable[..., ModbusBus], base: int
) -> None:
    sim = serve({1: SunSpecLayout(base=base)})
    sim.set_values(ac_power_w=777.0)
    device = SunSpecDevice(tcp_bus(sim), 1)
    assert device.discover().base == base
    assert device.read().values["ac_power_w"] == 777.0


def test_single_phase_integer_model(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: SunSpecLayout(phases=1)})
    sim.set_values(ac_power_w=1500.0, ac_voltage_v=232.0)
    reader = reader_for(sim, 1)
    reading = reader.poll()
    assert (reading.ac_power_w, reading.ac_voltage_v) == (1500.0, 232.0)
    assert reader.device_info().sunspec_models == (1, 101)


def test_not_a_sunspec_device(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: layout_for("growatt")})
    with pytest.raises(NotIdentified, match="no SunSpec marker at 40000, 39999, 40001, 50000"):
        reader_for(sim, 1).poll()


def test_unreachable_inverter_names_host_port_unit(fast_settings: object) -> None:
    from collector.devtools.services import free_port

    port = free_port()
    with ModbusBus.tcp("127.0.0.1", port) as bus:
        reader = DeviceReader(bus, unit=7, device_id="inv-7", gateway_id="gw")
        with pytest.raises(ConnectionFailed, match=rf"127\.0\.0\.1:{port}.*unit 7"):
            reader.poll()
    assert reader.stats["connection_failed"] == 1
    assert reader.last_result == "error: connection_failed"


def test_mppt_model_too_long_for_one_request(serve: Serve, reader_for: ReaderFor) -> None:
    sim = serve({1: SunSpecLayout(mppt_count=6)})
    dc = [DcValues(300.0 + i, 1.0 + i / 10, 300.0 + 10 * i) for i in range(6)]
    sim.set_values(ac_power_w=1900.0, dc=dc)
    reading = reader_for(sim, 1).poll()
    assert [(d.mppt, d.dc_voltage_v, d.dc_current_a, d.dc_power_w) for d in reading.dc] == [
        (i + 1, 300.0 + i, 1.0 + i / 10, 300.0 + 10 * i) for i in range(6)
    ]
    assert reading.ac_power_w == 1900.0
