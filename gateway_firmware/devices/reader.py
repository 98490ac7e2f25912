"""The one object the gateway's service loop talks to for each inverter.

Usage (what the service loop does)::

    bus = ModbusBus.tcp("192.168.1.20", 502)           # or ModbusBus.serial("/dev/ttyUSB0")
    reader = DeviceReader(bus, unit=1, device_id="inv-12", gateway_id="gw-7", profile="sunspec")
    info = reader.device_info()    # DeviceInfo for the retained info topic (reads model 1 once)
    reading = reader.poll()        # one Reading; raises ModbusError when nothing could be read

Several readers may share one bus (several inverters on one RS-485 line); the bus sends one
request at a time. ``poll`` never "fixes" a value: sentinels become missing values with the
``sentinel`` flag, a counter stepping backwards or jumping more than the AC rating allows gets
``counter_backwards`` / ``counter_jump``, and the raw values are kept in ``Reading.raw``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from gateway_firmware.devices.profile_device import ProfileDevice
from gateway_firmware.modbus.errors import ModbusError, ProfileError
from gateway_firmware.modbus.plausibility import (
    DEFAULT_RATED_AC_POWER_W,
    CounterCheck,
    power_is_plausible,
)
from gateway_firmware.modbus.transport import ModbusBus
from gateway_firmware.modbus.values import DecodedValues
from gateway_firmware.profiles import Profile, load_profile
from gateway_firmware.sunspec.client import SunSpecDevice
from zonnewijk_wire import DeviceInfo, Reading, ReadingFlag

log = logging.getLogger(__name__)

SUNSPEC = "sunspec"


class Decoder(Protocol):
    """What a device family provides: one poll's values, and its identity strings."""

    def read(self) -> DecodedValues: ...

    def identity(self) -> dict[str, str | None]: ...


def _utc_now() -> datetime:
    return datetime.now(UTC)


class DeviceReader:
    """Polls one inverter and turns its registers into trustworthy :class:`Reading` objects.

    Parameters
    ----------
    bus
        The bus the inverter is on (shared with other readers on the same line).
    unit
        Modbus unit id [-] (SMA: 126).
    device_id
        The device's id on the wire (registry id).
    gateway_id
        The gateway's id, for :class:`DeviceInfo`.
    profile
        ``"sunspec"`` (discovered) or the name of a file in ``config/devices/``.
    rated_ac_power_w
        The inverter's AC rating, bounding plausible counter steps [W].
    devices_dir
        Folder of profile files (default: :func:`gateway_firmware.profiles.default_devices_dir`).
    clock
        Source of UTC timestamps (tests replace it).
    """

    def __init__(
        self,
        bus: ModbusBus,
        *,
        unit: int,
        device_id: str,
        gateway_id: str,
        profile: str | Profile = SUNSPEC,
        rated_ac_power_w: float | None = None,
        devices_dir: Path | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if not 0 <= unit <= 247:
            raise ValueError(f"unit id must be 0..247, got {unit}")
        if rated_ac_power_w is not None and rated_ac_power_w <= 0:
            raise ValueError(f"rated_ac_power_w must be > 0, got {rated_ac_power_w}")
        self.bus = bus
        self.unit = unit
        self.device_id = device_id
        self.gateway_id = gateway_id
        self._clock = clock
        self.profile_name = profile if isinstance(profile, str) else profile.name
        self._decoder: Decoder
        if isinstance(profile, str) and profile != SUNSPEC:
            profile = load_profile(profile, devices_dir)
        if not isinstance(profile, str) and profile.device_kind == "meter":
            raise ProfileError(
                f"profile {profile.name!r} reads a grid meter, not an inverter "
                "(gateway_firmware.devices.meter_reader.MeterReader)"
            )
        if isinstance(profile, str) or profile.protocol == "sunspec":
            self._decoder = SunSpecDevice(bus, unit)
        else:
            self._decoder = ProfileDevice(bus, unit, profile)
        self._counter = CounterCheck(rated_ac_power_w or DEFAULT_RATED_AC_POWER_W)
        #: Outcome counts: ``ok``, ``flagged``, and one per error reason.
        self.stats: Counter[str] = Counter()
        #: Short description of the last poll's outcome (for the gateway status message).
        self.last_result = "not polled yet"

    @property
    def decoder(self) -> Decoder:
        return self._decoder

    def poll(self) -> Reading:
        """Read the inverter once.

        Raises
        ------
        gateway_firmware.modbus.errors.ModbusError
            When the device could not be read (``reason`` says why; the message names the
            bus and unit). The caller decides when to try again.
        """
        ts = self._clock()
        try:
            values = self._decoder.read()
        except ModbusError as exc:
            self.stats[exc.reason] += 1
            self.last_result = f"error: {exc.reason}"
            raise
        flags = set(values.flags)
        energy = values.values.get("ac_energy_wh")
        counter_flags = self._counter.check(energy, ts)
        if counter_flags and energy is not None:
            values.raw["ac_energy_wh"] = energy
            if self._counter.baseline_wh is not None and ReadingFlag.COUNTER_JUMP in counter_flags:
                values.raw["ac_energy_wh_trusted"] = self._counter.baseline_wh
            log.warning(
                "%s: counter %s Wh flagged %s", self.device_id, energy, sorted(counter_flags)
            )
        flags |= counter_flags
        power = values.values.get("ac_power_w")
        if power is not None and not power_is_plausible(power, self._counter.rated_ac_power_w):
            # e.g. 65535 W from a glitched read: left out, flagged, raw kept
            values.values["ac_power_w"] = None
            values.raw["ac_power_w"] = power
            flags.add(ReadingFlag.SENTINEL)
        reading = Reading(
            device_id=self.device_id,
            ts=ts,
            ac_power_w=values.values.get("ac_power_w"),
            ac_energy_wh=energy if energy is None or energy >= 0 else None,
            ac_voltage_v=values.values.get("ac_voltage_v"),
            grid_frequency_hz=values.values.get("grid_frequency_hz"),
            cabinet_temp_c=values.values.get("cabinet_temp_c"),
            dc=values.dc_inputs(),
            state=values.state,
            vendor_state=values.vendor_state,
            events=tuple(values.events),
            vendor_events=values.vendor_events,
            flags=tuple(sorted(flags)),
            raw=values.raw,
        )
        self.stats["flagged" if flags else "ok"] += 1
        self.last_result = f"ok ({', '.join(sorted(flags))})" if flags else "ok"
        return reading

    def device_info(self) -> DeviceInfo:
        """Manufacturer, model, serial and firmware (SunSpec model 1, or the profile's registers)."""
        identity = self._decoder.identity()
        models: tuple[int, ...] = ()
        manufacturer = identity.get("Mn")
        if isinstance(self._decoder, SunSpecDevice):
            models = self._decoder.layout.model_ids
            model, serial, firmware = identity.get("Md"), identity.get("SN"), identity.get("Vr")
        else:
            assert isinstance(self._decoder, ProfileDevice)
            manufacturer = self._decoder.profile.manufacturer
            model, serial = identity.get("model"), identity.get("serial")
            firmware = identity.get("firmware")
        return DeviceInfo(
            gateway_id=self.gateway_id,
            device_id=self.device_id,
            manufacturer=manufacturer,
            model=model,
            serial=serial,
            firmware=firmware,
            profile=self.profile_name,
            sunspec_models=models,
        )
