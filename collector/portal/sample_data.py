"""Synthetic production history for portal tests, the bench and demos.

A smooth clear-sky-like day curve (sine between sunrise and sunset, seasonal day length and
height) scaled by each device's kWp, with the lifetime counter accumulated from it, so the
counter-based daily energies are known exactly: the energy of a day is the sum of
``power × step`` over its readings. Not a physical model: the simulator
(:mod:`collector.simulator`) is that.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from collector.timeseries.influx import InfluxClient, escape_key

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@dataclass(frozen=True)
class SampleDevice:
    gateway_id: str
    device_id: str
    kwp: float
    #: lifetime counter at the start of the history [Wh]
    counter_start_wh: float = 1_000_000.0


def sample_power_w(ts: datetime, kwp: float) -> float:
    """Power of a clear-sky-like day at ``ts`` for a system of ``kwp`` [W].

    Parameters
    ----------
    ts
        Moment, timezone-aware [UTC]
    kwp
        Peak power of the panels [kWp]
    """
    day_of_year = ts.astimezone(UTC).timetuple().tm_yday
    season = math.cos(2 * math.pi * (day_of_year - 172) / 365.25)  # 1 at midsummer
    solar_noon_utc_h = 11.7
    half_day_h = 6.0 + 2.5 * season
    hour = ts.astimezone(UTC).hour + ts.minute / 60 + ts.second / 3600
    x = (hour - solar_noon_utc_h) / half_day_h
    if abs(x) >= 1:
        return 0.0
    peak_w = kwp * 1000 * (0.48 + 0.3 * season)
    return round(peak_w * math.cos(x * math.pi / 2) ** 2, 1)


def sample_lines(
    devices: Sequence[SampleDevice], start: datetime, end: datetime, step_s: int
) -> Iterator[list[str]]:
    """Line protocol of ``inverter`` points, one list per device, readings every ``step_s``."""
    n = int((end - start).total_seconds() // step_s)
    times = [start + timedelta(seconds=i * step_s) for i in range(n)]
    for dev in devices:
        tags = f"inverter,device={escape_key(dev.device_id)},gateway={escape_key(dev.gateway_id)}"
        counter = dev.counter_start_wh
        lines = []
        for ts in times:
            p = sample_power_w(ts, dev.kwp)
            counter += p * step_s / 3600
            state = "producing" if p > 0 else "sleeping"
            ms = int(ts.timestamp() * 1000)
            lines.append(f'{tags} ac_power_w={p},ac_energy_wh={counter:.1f},state="{state}" {ms}')
        yield lines


def write_sample_history(
    influx: InfluxClient,
    devices: Sequence[SampleDevice],
    start: datetime,
    end: datetime,
    *,
    step_s: int = 300,
    batch: int = 5000,
) -> int:
    """Write the synthetic history of every device; returns the number of points."""
    written = 0
    for lines in sample_lines(devices, start, end, step_s):
        for i in range(0, len(lines), batch):
            influx.write_lines(lines[i : i + batch], precision="ms")
        written += len(lines)
    return written
