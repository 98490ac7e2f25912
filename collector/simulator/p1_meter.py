"""A simulated smart meter's P1 port: DSMR 5.0 telegrams with their CRC, over a serial device.

:func:`dsmr5_telegram` writes the telegram a DSMR 5.0.2 meter sends for given values, in the
layout of the P1 Companion Standard's example (section 6.12): header, version ``50``,
timestamp with the summer/winter flag, equipment id, the four energy registers, tariff,
power, per-phase voltage, current and power, the gas meter on M-Bus channel 1, and the
CRC16 (CRC-16/ARC over ``/`` ... ``!``, computed with dsmr-parser's own function, the one the
gateway checks it with). :class:`P1Emulator` writes them to one end of a pty pair (socat)
once a second, as a DSMR 5 meter does; the gateway reads the other end.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from dsmr_parser.parsers import TelegramParser

from collector.simulator.household import Household

__all__ = ["HomeMeter", "MeterValues", "P1Emulator", "dsmr5_telegram"]

_AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@dataclass(frozen=True)
class MeterValues:
    """What the meter measures at one instant [Wh, W, V, m³]."""

    ts: datetime
    import_t1_wh: float
    import_t2_wh: float
    export_t1_wh: float
    export_t2_wh: float
    import_power_w: float
    export_power_w: float
    tariff: int = 2
    voltage_v: float = 230.0
    gas_m3: float | None = None
    gas_ts: datetime | None = None
    equipment_id: str = "4B384547303034303436333935353037"


def _dsmr_ts(value: datetime) -> str:
    local = value.astimezone(_AMSTERDAM)
    return local.strftime("%y%m%d%H%M%S") + ("S" if local.dst() else "W")


def dsmr5_telegram(values: MeterValues) -> bytes:
    """The DSMR 5.0 telegram of ``values``, CR LF line ends, CRC included."""
    net_w = values.import_power_w - values.export_power_w
    per_phase_a = abs(net_w) / values.voltage_v
    lines = [
        "/ISk5\\2MT382-1000",
        "",
        "1-3:0.2.8(50)",
        f"0-0:1.0.0({_dsmr_ts(values.ts)})",
        f"0-0:96.1.1({values.equipment_id})",
        f"1-0:1.8.1({values.import_t1_wh / 1000:010.3f}*kWh)",
        f"1-0:1.8.2({values.import_t2_wh / 1000:010.3f}*kWh)",
        f"1-0:2.8.1({values.export_t1_wh / 1000:010.3f}*kWh)",
        f"1-0:2.8.2({values.export_t2_wh / 1000:010.3f}*kWh)",
        f"0-0:96.14.0({values.tariff:04d})",
        f"1-0:1.7.0({values.import_power_w / 1000:06.3f}*kW)",
        f"1-0:2.7.0({values.export_power_w / 1000:06.3f}*kW)",
        "0-0:96.7.21(00004)",
        "0-0:96.7.9(00002)",
        "1-0:99.97.0(0)(0-0:96.7.19)",
        "1-0:32.32.0(00000)",
        "1-0:32.36.0(00000)",
        "0-0:96.13.0()",
        f"1-0:32.7.0({values.voltage_v:05.1f}*V)",
        f"1-0:31.7.0({round(per_phase_a):03d}*A)",
        f"1-0:21.7.0({values.import_power_w / 1000:06.3f}*kW)",
        f"1-0:22.7.0({values.export_power_w / 1000:06.3f}*kW)",
    ]
    if values.gas_m3 is not None:
        gas_ts = values.gas_ts or values.ts
        lines += [
            "0-1:24.1.0(003)",
            "0-1:96.1.0(3232323241424344313233343536373839)",
            f"0-1:24.2.1({_dsmr_ts(gas_ts)})({values.gas_m3:09.3f}*m3)",
        ]
    body = "\r\n".join(lines) + "\r\n!"
    return f"{body}{TelegramParser.crc16(body):04X}\r\n".encode("ascii")


class HomeMeter:
    """A home's meter: its household's load less the roof's power, integrated into counters.

    ``pv_power_w()`` gives the inverter's present AC power [W]. Tariff 1 (low) at night
    (23-7 h local time) and at weekends, tariff 2 otherwise, as Dutch meters count.
    """

    def __init__(
        self, household: Household, pv_power_w: Callable[[], float], *, seed: int, gas: bool
    ) -> None:
        self.household = household
        self.pv_power_w = pv_power_w
        self.gas = gas
        self.counters_wh = [
            1_000_000.0 + 10_000.0 * (seed % 97),  # import T1
            1_200_000.0 + 10_000.0 * (seed % 89),  # import T2
            300_000.0 + 5_000.0 * (seed % 83),  # export T1
            400_000.0 + 5_000.0 * (seed % 79),  # export T2
        ]
        self.gas_m3 = 2_000.0 + 10.0 * (seed % 71)
        self._last: datetime | None = None

    def __call__(self, now: datetime) -> MeterValues:
        load_w = self.household.load_w(now)
        net_w = load_w - max(self.pv_power_w(), 0.0)
        import_w, export_w = max(net_w, 0.0), max(-net_w, 0.0)
        local = now.astimezone(_AMSTERDAM)
        tariff = 1 if local.weekday() >= 5 or local.hour >= 23 or local.hour < 7 else 2
        if self._last is not None:
            hours = max((now - self._last).total_seconds(), 0.0) / 3600
            self.counters_wh[tariff - 1] += import_w * hours
            self.counters_wh[tariff + 1] += export_w * hours
            self.gas_m3 += 0.1 * hours
        self._last = now
        i1, i2, e1, e2 = self.counters_wh
        return MeterValues(
            ts=now,
            import_t1_wh=i1,
            import_t2_wh=i2,
            export_t1_wh=e1,
            export_t2_wh=e2,
            import_power_w=import_w,
            export_power_w=export_w,
            tariff=tariff,
            gas_m3=self.gas_m3 if self.gas else None,
            equipment_id=f"{0x4B38454730303430 + self.household.seed:016X}" * 2,
        )


class P1Emulator:
    """Writes a meter's telegrams to a serial device every ``period_s`` (DSMR 5: 1 s).

    ``values(now)`` gives the meter's values at UTC ``now``; ``corrupt(i)`` (optional) may
    damage the i-th telegram's bytes (CRC errors for tests and demos).
    """

    def __init__(
        self,
        device: str,
        values: Callable[[datetime], MeterValues],
        *,
        period_s: float = 1.0,
        corrupt: Callable[[int, bytes], bytes] | None = None,
    ) -> None:
        import serial  # pyserial

        self.port = serial.Serial(device, baudrate=115200, timeout=1)
        self.values = values
        self.period_s = period_s
        self.corrupt = corrupt
        self.written = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="p1-emulator", daemon=True)

    def start(self) -> P1Emulator:
        self._thread.start()
        return self

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            data = dsmr5_telegram(self.values(datetime.now(UTC)))
            if self.corrupt is not None:
                data = self.corrupt(self.written, data)
            try:
                self.port.write(data)
                self.port.flush()
            except OSError:
                return  # the other end went away
            self.written += 1
            next_at += self.period_s
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        with contextlib.suppress(OSError):
            self.port.close()

    def __enter__(self) -> P1Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
