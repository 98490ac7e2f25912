"""A grid meter read over SunSpec (models 201-204, 211-214): one :class:`MeterReading` per poll.

Usage::

    bus = ModbusBus.tcp("192.168.1.20", 502)
    meter = MeterReader(bus, unit=2, device_id="mtr-12", gateway_id="gw-7")
    reading = meter.poll()         # import/export energy and power, per phase where given

Like :class:`~gateway_firmware.devices.reader.DeviceReader`, a poll never "fixes" a value:
"not implemented" values (and values with an impossible scale factor) are missing and the
reading carries the ``sentinel`` flag. Counters are checked by the collector, per direction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from gateway_firmware.modbus.errors import ModbusError
from gateway_firmware.modbus.transport import ModbusBus
from gateway_firmware.sunspec.client import SunSpecMeter
from zonnewijk_wire import DeviceInfo, MeterFlag, MeterReading, MeterSource, PhaseValues

SUNSPEC_METER = "sunspec-meter"


def _utc_now() -> datetime:
    return datetime.now(UTC)


class MeterReader:
    """Polls one SunSpec grid meter."""

    def __init__(
        self,
        bus: ModbusBus,
        *,
        unit: int,
        device_id: str,
        gateway_id: str,
        profile_name: str = SUNSPEC_METER,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not 0 <= unit <= 247:
            raise ValueError(f"unit id must be 0..247, got {unit}")
        self.bus = bus
        self.unit = unit
        self.device_id = device_id
        self.gateway_id = gateway_id
        self.profile_name = profile_name
        self._clock = clock
        self.meter = SunSpecMeter(bus, unit)
        #: Outcome counts: ``ok``, ``flagged``, and one per error reason.
        self.stats: Counter[str] = Counter()
        #: Short description of the last poll's outcome (for the gateway status message).
        self.last_result = "not polled yet"

    def poll(self) -> MeterReading:
        """Read the meter once; raises :class:`ModbusError` when it could not be read."""
        ts = self._clock()
        try:
            values = self.meter.read()
        except ModbusError as exc:
            self.stats[exc.reason] += 1
            self.last_result = f"error: {exc.reason}"
            raise
        model = self.meter.meter_model
        assert model is not None
        flags = (MeterFlag.SENTINEL,) if values.sentinel or values.bad_scale_factor else ()
        phases = tuple(
            PhaseValues(
                phase=phase,
                import_power_w=imp,
                export_power_w=exp,
                voltage_v=volts,
                current_a=amps,
            )
            for phase, (imp, exp, volts, amps) in values.phases.items()
        )
        reading = MeterReading(
            device_id=self.device_id,
            ts=ts,
            source=MeterSource.SUNSPEC,
            import_energy_wh=values.import_energy_wh,
            export_energy_wh=values.export_energy_wh,
            import_power_w=values.import_power_w,
            export_power_w=values.export_power_w,
            phases=phases,
            protocol=f"SunSpec {model.model_id}",
            flags=flags,
        )
        self.stats["flagged" if flags else "ok"] += 1
        self.last_result = "ok (sentinel)" if flags else "ok"
        return reading

    def device_info(self) -> DeviceInfo:
        """Manufacturer, model, serial and firmware from SunSpec model 1."""
        identity = self.meter.identity()
        return DeviceInfo(
            gateway_id=self.gateway_id,
            device_id=self.device_id,
            manufacturer=identity.get("Mn"),
            model=identity.get("Md"),
            serial=identity.get("SN"),
            firmware=identity.get("Vr"),
            profile=self.profile_name,
            sunspec_models=self.meter.layout.model_ids,
        )
