"""The simulation: fleet + weather + faults -> what each gateway would report, chunk by chunk.

:class:`Simulation` walks the reading grid ``start + k * interval_s`` in chunks of whole UTC
days and yields :class:`Chunk` objects: arrays shaped ``(n_times, n_sites)`` of everything a
reading carries, plus the ground-truth energy each interval produced. State that crosses
chunks (lifetime counters, the last power, whether the inverter was awake, batch sequence
numbers) is carried in the simulation object, so a chunk never depends on how the window is
cut except through that state.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt
import pandas as pd

from collector.simulator.faults import FAULT_EVENTS, FaultSchedule
from collector.simulator.fleet import COUNTER_RESOLUTION_WH, POWER_RESOLUTION_W, Fleet
from collector.simulator.solar import (
    FloatArray,
    ac_power_w,
    cell_temp_c,
    dc_power_w,
    plane_of_array_w_m2,
    string_voltage_v,
    sun_and_clear_sky,
)
from collector.simulator.weather import site_weather
from zonnewijk_wire import MAX_READINGS_PER_BATCH, InverterState

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Order of :class:`InverterState` used for the ``state`` index arrays.
STATES: tuple[InverterState, ...] = tuple(InverterState)
S_SLEEPING = STATES.index(InverterState.SLEEPING)
S_STARTING = STATES.index(InverterState.STARTING)
S_PRODUCING = STATES.index(InverterState.PRODUCING)
S_THROTTLED = STATES.index(InverterState.THROTTLED)
S_FAULT = STATES.index(InverterState.FAULT)

#: Vendor state codes (sleeping, starting, producing, throttled, fault) by family.
VENDOR_STATES: dict[str, tuple[int, int, int, int, int]] = {
    "sunspec-int": (2, 3, 4, 5, 7),
    "sunspec-float": (2, 3, 4, 5, 7),
    "huawei": (0x0002, 0x0100, 0x0200, 0x0201, 0x0300),
    "sungrow": (0x1400, 0x1600, 0x0000, 0x8100, 0x5500),
    "growatt": (0, 0, 1, 1, 3),
}
#: Quality flag bits of the ``flags`` arrays, in :class:`ReadingFlag` order of the wire.
FLAG_SENTINEL = 1
FLAG_COUNTER_BACKWARDS = 2
FLAG_COUNTER_JUMP = 4
FLAG_REPLAYED = 16
#: Raw values a gateway keeps for a flagged field, by ``raw`` index (0: none).
RAW_VALUES: tuple[dict[str, float], ...] = ({}, {"ac_power_w": 65535.0})
#: Typical daily specific yield by month, used only for the counter at the start [kWh/kWp/day].
_DAILY_YIELD_KWH_PER_KWP = (0.75, 1.45, 2.45, 3.75, 4.35, 4.45, 4.35, 3.8, 2.85, 1.75, 0.85, 0.55)
_WIND_SPEED_M_S = 2.0


@dataclass
class Chunk:
    """Everything the fleet reports over a run of reading times.

    Arrays are ``(n_times, n_sites)`` unless noted; NaN marks a value the reading leaves out.
    """

    epoch_s: IntArray
    present: BoolArray
    ac_power_w: FloatArray
    ac_energy_wh: FloatArray
    ac_voltage_v: FloatArray
    grid_frequency_hz: FloatArray
    cabinet_temp_c: FloatArray
    #: (n_times, n_sites, max_mppt); NaN for MPPTs a site does not have.
    dc_voltage_v: FloatArray
    dc_current_a: FloatArray
    dc_power_w: FloatArray
    dc_present: BoolArray
    state: npt.NDArray[np.int8]
    vendor_state: IntArray
    event: npt.NDArray[np.int8]
    vendor_events: IntArray
    flags: npt.NDArray[np.uint8]
    raw: npt.NDArray[np.int8]
    #: When the reading's batch leaves the gateway [s since 1970].
    sent_at_s: IntArray
    #: Per-gateway batch sequence number of the reading's batch.
    seq: IntArray
    #: Ground truth: AC energy produced in the interval ending at each time [Wh].
    energy_wh: FloatArray
    #: Ground truth: the true lifetime counter of the installed inverter [Wh].
    counter_true_wh: FloatArray

    @property
    def times(self) -> pd.DatetimeIndex:
        return pd.to_datetime(self.epoch_s, unit="s", utc=True)


@dataclass(frozen=True)
class CounterResetRecord:
    """A counter reset as it happened: the old inverter's final counter and the new one's first.

    ``last_energy_wh`` is the old inverter's counter at the swap (``epoch_s``), as read off its
    display when it is taken out: it includes what it produced since the last reading, so the
    registry's record and the readings together account for every watt-hour.
    """

    site_index: int
    epoch_s: int
    last_energy_wh: float
    first_energy_wh: float


def _epoch(value: datetime) -> int:
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware UTC")
    return int(value.timestamp())


def initial_counter_wh(fleet: Fleet, start: datetime) -> FloatArray:
    """Each inverter's lifetime counter at ``start``: typical yield since commissioning.

    Parameters
    ----------
    fleet : Fleet
        The simulated sites [-]
    start : datetime
        Start of the simulation, UTC [-]
    """
    out = np.empty(len(fleet))
    daily = np.array(_DAILY_YIELD_KWH_PER_KWP)
    start_day = start.astimezone(UTC).date()
    for i, site in enumerate(fleet.sites):
        days = pd.date_range(site.commissioned, start_day, freq="D", inclusive="left")
        kwh_per_kwp = float(daily[days.month.to_numpy() - 1].sum())
        out[i] = 5.0 + kwh_per_kwp * site.kwp * 1000.0 * (1.0 - site.system_loss) / 0.9
    return np.floor(out)


class Simulation:
    """A fleet simulated over ``[start, end)`` at a fixed reading interval.

    Parameters
    ----------
    fleet : Fleet
        The simulated sites [-]
    start, end : datetime
        Window, UTC; readings at ``start + k * interval_s`` [-]
    interval_s : int
        Reading interval; must divide a day [s]
    faults : FaultSchedule, optional
        Faults to inject (none by default) [-]
    batch_s : int
        Readings of one gateway are batched per this period [s]
    chunk_steps : int
        Target time steps per chunk (rounded to whole days) [-]
    """

    def __init__(
        self,
        fleet: Fleet,
        start: datetime,
        end: datetime,
        interval_s: int,
        faults: FaultSchedule | None = None,
        *,
        batch_s: int = 3600,
        chunk_steps: int = 2048,
    ) -> None:
        if interval_s <= 0 or 86400 % interval_s:
            raise ValueError(
                f"interval must divide a day (e.g. 10, 60, 300, 900, 3600 s), got {interval_s}"
            )
        if end <= start:
            raise ValueError(f"end {end} must be after start {start}")
        if (_epoch(start) % 86400) % interval_s:
            raise ValueError("start must lie on the interval grid counted from midnight UTC")
        self.fleet = fleet
        self.start = start.astimezone(UTC)
        self.end = end.astimezone(UTC)
        self.interval_s = interval_s
        self.faults = faults or FaultSchedule()
        self.batch_s = max(interval_s, (batch_s // interval_s) * interval_s)
        if self.batch_s // interval_s > MAX_READINGS_PER_BATCH:
            raise ValueError(
                f"a batch of {batch_s} s at {interval_s} s holds more than "
                f"{MAX_READINGS_PER_BATCH} readings; use a shorter batch"
            )
        steps_per_day = 86400 // interval_s
        self.chunk_days = max(1, chunk_steps // steps_per_day)
        self.n_steps = -(-(_epoch(end) - _epoch(start)) // interval_s)
        self._prepare_sites()

    # --- static per-site arrays ---------------------------------------------------------------

    def _prepare_sites(self) -> None:
        fleet = self.fleet
        self.kwp = fleet.column("kwp")
        self.tilt = fleet.column("tilt_deg")
        self.azimuth = fleet.column("azimuth_deg")
        self.ac_rating = fleet.column("ac_rating_w")
        self.lag = fleet.column("cloud_lag_s")
        self.system_loss = fleet.column("system_loss")
        self.degradation_rate = fleet.column("degradation_per_year")
        self.shaded = np.array([s.shaded for s in fleet.sites])
        self.shade_from = fleet.column("shade_azimuth_from_deg")
        self.shade_to = fleet.column("shade_azimuth_to_deg")
        self.shade_elevation = fleet.column("shade_elevation_deg")
        self.commissioned_s = np.array(
            [
                _epoch(
                    datetime(
                        s.commissioned.year, s.commissioned.month, s.commissioned.day, tzinfo=UTC
                    )
                )
                for s in fleet.sites
            ],
            dtype=np.int64,
        )
        m = fleet.max_mppt
        self.max_mppt = m
        self.mppt_modules = np.zeros((len(fleet), m))
        for i, site in enumerate(fleet.sites):
            self.mppt_modules[i, : site.mppt_count] = site.mppt_modules
        self.mppt_fraction = self.mppt_modules / self.mppt_modules.sum(axis=1, keepdims=True)
        self.counter_resolution = np.array([COUNTER_RESOLUTION_WH[s.family] for s in fleet.sites])
        self.power_resolution = np.array([POWER_RESOLUTION_W[s.family] for s in fleet.sites])
        self.vendor_codes = np.array([VENDOR_STATES[s.family] for s in fleet.sites], dtype=np.int64)
        self.raw_on_sentinel = np.array(
            [0 if s.family == "sunspec-float" else 1 for s in fleet.sites]
        )
        self.wake_w = np.maximum(15.0, 0.004 * self.ac_rating)
        rng = np.random.default_rng([fleet.seed, 0x517E])
        self.grid_voltage_offset = rng.normal(0.0, 1.5, len(fleet))
        self.send_jitter_s = rng.integers(1, 40, len(fleet))
        self.site_index = {s.site_id: s.index for s in fleet.sites}
        # Carried state.
        self.counter_wh = initial_counter_wh(fleet, self.start)
        self.last_power_w = np.zeros(len(fleet))
        self.last_awake = np.zeros(len(fleet), dtype=bool)
        self.next_seq = np.zeros(len(fleet), dtype=np.int64)
        self.reset_log: list[CounterResetRecord] = []
        # Faults as arrays for fast overlap tests.
        faults = self.faults.faults
        self._fault_start = np.array([_epoch(f.start) for f in faults], dtype=np.int64)
        self._fault_end = np.array([_epoch(f.end) for f in faults], dtype=np.int64)

    # --- iteration ----------------------------------------------------------------------------

    def chunks(self) -> Iterator[Chunk]:
        """The chunks of the window, in time order. Iterate once per simulation object."""
        steps_per_chunk = self.chunk_days * 86400 // self.interval_s
        first = _epoch(self.start)
        for offset in range(0, self.n_steps, steps_per_chunk):
            count = min(steps_per_chunk, self.n_steps - offset)
            epoch = first + (offset + np.arange(count, dtype=np.int64)) * self.interval_s
            yield self._chunk(epoch)

    def _faults_between(self, t0: int, t1: int) -> list[int]:
        if not len(self._fault_start):
            return []
        hit = (self._fault_start <= t1) & (self._fault_end >= t0)
        return [int(i) for i in np.flatnonzero(hit)]

    def _chunk(self, epoch: IntArray) -> Chunk:
        n_t, n_s, m = len(epoch), len(self.fleet), self.max_mppt
        dt_h = self.interval_s / 3600.0
        times = pd.to_datetime(epoch, unit="s", utc=True)
        sky = sun_and_clear_sky(times)
        index, air_temp = site_weather(self.fleet.seed, epoch.astype(np.float64), self.lag)
        ghi = index * sky.ghi_clear_w_m2[:, None]
        elevation = 90.0 - sky.apparent_zenith_deg[:, None]
        sun_az = sky.azimuth_deg[:, None]
        # The obstacle's edges blur over a few degrees (a tree, a chimney's shadow).
        inside_az = np.minimum(sun_az - self.shade_from, self.shade_to - sun_az) / 4.0
        below = (self.shade_elevation - elevation) / 1.5
        beam_shading = np.where(
            self.shaded, np.clip(inside_az, 0.0, 1.0) * np.clip(below, 0.0, 1.0), 0.0
        )
        effective, poa = plane_of_array_w_m2(self.tilt, self.azimuth, sky, ghi, beam_shading)
        t_cell = cell_temp_c(poa, air_temp[:, None], _WIND_SPEED_M_S)
        age_years = (epoch[:, None] - self.commissioned_s[None, :]) / (365.25 * 86400.0)
        derate = (1.0 - self.system_loss) * (
            1.0 - self.degradation_rate * np.clip(age_years, 0.0, None)
        )
        soiling = np.ones((n_t, n_s))
        dead = np.zeros((n_t, n_s, m), dtype=bool)
        offline = epoch[:, None] < self.commissioned_s[None, :]
        in_fault = np.zeros((n_t, n_s), dtype=bool)
        event = np.zeros((n_t, n_s), dtype=np.int8)
        frozen: list[tuple[int, int, int]] = []
        glitches: list[tuple[int, int, str]] = []
        resets: list[tuple[int, int, float]] = []
        outages: list[tuple[int, int, int, int]] = []
        t0, t1 = int(epoch[0]), int(epoch[-1])
        for k in self._faults_between(t0, t1):
            fault = self.faults.faults[k]
            s = self.site_index.get(fault.site_id)
            if s is None:
                continue
            fs, fe = int(self._fault_start[k]), int(self._fault_end[k])
            i0 = int(np.searchsorted(epoch, fs, side="left"))
            i1 = int(np.searchsorted(epoch, fe, side="left"))
            if fault.type == "offline":
                offline[i0:i1, s] = True
            elif fault.type == "fault_state":
                in_fault[i0:i1, s] = True
                bit = int(fault.detail.get("evt1_bit", 0))
                event[i0:i1, s] = 1 + [b for b, _ in FAULT_EVENTS].index(bit)
            elif fault.type == "dead_string":
                dead[i0:i1, s, int(fault.detail["mppt"]) - 1] = True
            elif fault.type == "degradation":
                ramp = np.clip((epoch[i0:i1] - fs) / max(0.8 * (fe - fs), 1.0), 0.0, 1.0)
                soiling[i0:i1, s] *= 1.0 - float(fault.detail["loss"]) * ramp
            elif fault.type == "frozen" and i1 > i0:
                frozen.append((s, i0, i1))
            elif fault.type == "comms_glitch" and i0 < n_t and epoch[i0] == fs:
                glitches.append((s, i0, str(fault.detail["kind"])))
            elif fault.type == "counter_reset" and i0 < n_t and epoch[i0] == fs:
                resets.append((s, i0, float(fault.detail.get("new_counter_wh", 0))))
            elif fault.type == "gateway_outage":
                outages.append((s, fs, fe, k))

        # DC side.
        pdc_array = dc_power_w(effective, t_cell, self.kwp) * derate * soiling
        pdc_mppt = pdc_array[:, :, None] * self.mppt_fraction[None, :, :]
        pdc_mppt[dead] = 0.0
        pdc = pdc_mppt.sum(axis=2)
        awake = (pdc >= self.wake_w) & ~offline
        prev_awake = np.vstack([self.last_awake[None, :], awake[:-1]])
        starting = awake & ~prev_awake
        producing = awake & ~starting & ~in_fault
        pac = np.where(producing, ac_power_w(pdc, self.ac_rating), 0.0)
        prev_pac = np.vstack([self.last_power_w[None, :], pac[:-1]])
        energy = (prev_pac + pac) * 0.5 * dt_h
        counter = self.counter_wh[None, :] + np.cumsum(energy, axis=0)
        for s, i, new_counter in sorted(resets, key=lambda r: r[1]):
            # The old inverter ran until the swap at this reading time: its final counter.
            before = counter[i, s]
            counter[i:, s] += new_counter - counter[i, s]
            res = self.counter_resolution[s]
            self.reset_log.append(
                CounterResetRecord(
                    site_index=s,
                    epoch_s=int(epoch[i]),
                    last_energy_wh=float(np.floor(before / res) * res),
                    first_energy_wh=float(np.floor(counter[i, s] / res) * res),
                )
            )
        self.counter_wh = counter[-1].copy()
        self.last_power_w = pac[-1].copy()
        self.last_awake = awake[-1].copy()

        # States.
        state = np.full((n_t, n_s), S_SLEEPING, dtype=np.int8)
        state[starting] = S_STARTING
        state[producing] = S_PRODUCING
        state[producing & (pac >= self.ac_rating - 0.5)] = S_THROTTLED
        state[in_fault] = S_FAULT
        code_column = {S_SLEEPING: 0, S_STARTING: 1, S_PRODUCING: 2, S_THROTTLED: 3, S_FAULT: 4}
        vendor_state = np.zeros((n_t, n_s), dtype=np.int64)
        for s_idx, col in code_column.items():
            vendor_state = np.where(state == s_idx, self.vendor_codes[None, :, col], vendor_state)
        vendor_events = np.where(state == S_FAULT, 0, -1).astype(np.int64)
        bits = np.array([0, *[1 << b for b, _ in FAULT_EVENTS]], dtype=np.int64)
        vendor_events = np.where(event > 0, bits[event], vendor_events)
        vendor_events = np.where(self._is_sunspec[None, :] | (event > 0), vendor_events, -1)

        # Reported values.
        rng = np.random.default_rng([self.fleet.seed, t0, self.interval_s, 0xD47A])
        reported_power = np.round(np.round(pac / self.power_resolution) * self.power_resolution, 1)
        reported_counter = np.floor(counter / self.counter_resolution) * self.counter_resolution
        hour = (epoch % 86400) / 3600.0
        grid_base = 230.5 + 2.0 * np.sin(2.0 * np.pi * (hour - 8.0) / 24.0)
        ac_voltage = (
            grid_base[:, None]
            + self.grid_voltage_offset
            + 0.45 * pac / 1000.0
            + rng.normal(0.0, 0.6, (n_t, n_s))
        )
        frequency = 50.0 + 0.012 * np.sin(2 * np.pi * epoch / 1300.0) + rng.normal(0.0, 0.008, n_t)
        grid_frequency = frequency[:, None] + rng.normal(0.0, 0.002, (n_t, n_s))
        cabinet = (
            air_temp[:, None] + 3.0 + 14.0 * pac / self.ac_rating + rng.normal(0.0, 0.3, (n_t, n_s))
        )
        dc_present = awake & ~in_fault
        volts = string_voltage_v(
            self.mppt_modules[None, :, :], t_cell[:, :, None], effective[:, :, None]
        )
        volts = np.where(dead, 0.0, volts)
        amps = np.where(volts > 0, pdc_mppt / np.maximum(volts, 1.0), 0.0)
        exists = self.mppt_modules[None, :, :] > 0
        dc_voltage = np.where(exists, np.round(volts, 1), np.nan)
        dc_current = np.where(exists, np.round(amps, 2), np.nan)
        dc_power = np.where(exists, np.round(pdc_mppt, 1), np.nan)
        flags = np.zeros((n_t, n_s), dtype=np.uint8)
        raw = np.zeros((n_t, n_s), dtype=np.int8)
        ac_voltage = np.round(ac_voltage, 1)
        grid_frequency = np.round(grid_frequency, 2)
        cabinet = np.round(cabinet, 1)

        # Stale registers: repeat the last good reading.
        for s, i0, i1 in frozen:
            src = max(i0 - 1, 0)
            for arr in (
                reported_power,
                reported_counter,
                ac_voltage,
                grid_frequency,
                cabinet,
                state,
                vendor_state,
                vendor_events,
            ):
                arr[i0:i1, s] = arr[src, s]
            for arr3 in (dc_voltage, dc_current, dc_power):
                arr3[i0:i1, s, :] = arr3[src, s, :]
            dc_present[i0:i1, s] = dc_present[src, s]
        for s, i, kind in glitches:
            if kind == "sentinel":
                reported_power[i, s] = np.nan
                flags[i, s] |= FLAG_SENTINEL
                raw[i, s] = self.raw_on_sentinel[s]
            elif kind == "spike_65535":
                reported_power[i, s] = 65535.0
            elif kind == "garbage":
                ac_voltage[i, s] = 6553.5
                grid_frequency[i, s] = 655.35
                cabinet[i, s] = -3276.8
            elif kind == "counter_spike":
                reported_counter[i, s] = reported_counter[i, s] * 100.0
                flags[i, s] |= FLAG_COUNTER_JUMP
                if i + 1 < n_t:
                    flags[i + 1, s] |= FLAG_COUNTER_BACKWARDS

        # Batches: per gateway per batch period, sent at its end unless the uplink is down.
        present = ~offline
        chunk_start = t0 - (t0 % 86400)
        batch = (epoch - chunk_start) // self.batch_s
        n_batches = int(batch[-1]) + 1
        sent = chunk_start + (batch + 1) * self.batch_s
        sent_at = np.broadcast_to(sent[:, None] + self.send_jitter_s[None, :], (n_t, n_s)).copy()
        for s, fs, fe, _k in outages:
            late = (sent_at[:, s] >= fs) & (sent_at[:, s] < fe)
            sent_at[late, s] = fe + self.send_jitter_s[s]
            flags[late, s] |= FLAG_REPLAYED
        has = np.zeros((n_batches, n_s), dtype=bool)
        np.logical_or.at(has, batch, present)
        seq_of_batch = self.next_seq[None, :] + np.cumsum(has, axis=0) - 1
        self.next_seq = self.next_seq + has.sum(axis=0)
        seq = seq_of_batch[batch]

        return Chunk(
            epoch_s=epoch,
            present=present,
            ac_power_w=reported_power,
            ac_energy_wh=reported_counter,
            ac_voltage_v=ac_voltage,
            grid_frequency_hz=grid_frequency,
            cabinet_temp_c=cabinet,
            dc_voltage_v=dc_voltage,
            dc_current_a=dc_current,
            dc_power_w=dc_power,
            dc_present=dc_present,
            state=state,
            vendor_state=vendor_state,
            event=event,
            vendor_events=vendor_events,
            flags=flags,
            raw=raw,
            sent_at_s=sent_at,
            seq=seq,
            energy_wh=energy,
            counter_true_wh=counter,
        )

    @property
    def _is_sunspec(self) -> BoolArray:
        return np.array([s.family.startswith("sunspec") for s in self.fleet.sites])


def utc_midnight(day: date) -> datetime:
    """Midnight UTC at the start of a calendar day."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def window(start_day: date, days: float) -> tuple[datetime, datetime]:
    """``(start, end)`` of ``days`` days from midnight UTC of ``start_day``."""
    start = utc_midnight(start_day)
    return start, start + timedelta(days=days)
