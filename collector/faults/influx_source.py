"""The detectors' inputs from InfluxDB and the registry (the server side of the edge).

Measurements read (schema in ``docs/influxdb-schema.md``): ``inverter`` and ``dc`` (the
readings), ``gateway_seen`` (one point per readings message the collector stored) and
``gateway_status`` (the gateways' retained status and last will). A gateway counts as heard
from in a time step when a readings message of it arrived in the step, or when its latest
status is ``online`` (a gateway whose inverter is silent still holds its ``online`` status;
a gateway that lost its uplink gets its ``offline`` will from the broker).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import numpy as np

from collector.faults.daily_energy import (
    BUCKET_S,
    DAYLIGHT_ELEVATION_DEG,
    counter_resolution_wh,
    daily_energy_wh,
    energy_from_power_wh,
)
from collector.faults.model import (
    MISSING_STATE,
    STATE_CODE,
    FleetDaily,
    FleetSeries,
    event_mask,
    orientation_group,
)
from collector.faults.solar import AMSTERDAM, clear_sky_daily_kwh_per_kwp, sun_elevation_deg
from collector.registry.fleet_file import Fleet as RegistryFleet
from collector.timeseries.influx import InfluxClient
from collector.timeseries.measurements import REJECTED_MEASUREMENT
from zonnewijk_wire import InverterState

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceSpec:
    """What the detectors need to know about one inverter (from the registry)."""

    device_id: str
    gateway_id: str
    kwp: float
    ac_rating_w: float
    mppt_count: int
    tilt_deg: float
    azimuth_deg: float
    installed_on: date
    removed_on: date | None = None
    #: instants of counter resets and replacements the registry records
    known_resets: tuple[datetime, ...] = ()


def devices_from_registry(fleet: RegistryFleet) -> list[DeviceSpec]:
    """The registry's devices (fleet file or store) as detector inputs."""
    sites = {s.site_id: s for s in fleet.sites}
    out = []
    for d in fleet.devices:
        site = sites[d.site_id]
        resets = [r.at for r in d.counter_resets]
        if d.replaces is not None:
            resets.append(d.replaces.at)
        out.append(
            DeviceSpec(
                device_id=d.device_id,
                gateway_id=d.gateway_id or site.gateway_id,
                kwp=float(d.kwp),
                ac_rating_w=float(d.ac_rating_w),
                mppt_count=d.mppt_count,
                tilt_deg=site.tilt_deg,
                azimuth_deg=site.azimuth_deg,
                installed_on=d.installed_on,
                removed_on=d.removed_on,
                known_resets=tuple(sorted(resets)),
            )
        )
    return out


def _rfc3339(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch_s(ts: datetime) -> int:
    if ts.tzinfo is None:
        raise ValueError("times must be timezone-aware UTC")
    return int(ts.timestamp())


def _grid_index(time_ms: int, start_s: int, step_s: int, n: int) -> int | None:
    i = (time_ms // 1000 - start_s) // step_s
    return int(i) if 0 <= i < n else None


def load_series(
    client: InfluxClient,
    devices: Sequence[DeviceSpec],
    *,
    end: datetime,
    window_s: int = 3 * 3600,
    step_s: int = 300,
) -> FleetSeries:
    """The fleet's readings of ``[end - window_s, end)`` on a ``step_s`` grid.

    Parameters
    ----------
    client
        InfluxDB client (database with the collector's measurements).
    devices
        The devices to judge (others in the database are ignored).
    end
        End of the window, UTC; floored to the grid. Leave room for the gateways' batching
        delay (the caller passes ``now - delay``) or the last step looks silent.
    window_s
        Length of the window [s].
    step_s
        Grid step; several readings in a step: the last one counts [s].
    """
    if not devices:
        raise ValueError("no devices to judge: is the registry loaded?")
    end_s = _epoch_s(end) // step_s * step_s
    start_s = end_s - window_s // step_s * step_s
    n = (end_s - start_s) // step_s
    index = {d.device_id: i for i, d in enumerate(devices)}
    d_count = len(devices)
    power = np.full((d_count, n), np.nan)
    energy = np.full((d_count, n), np.nan)
    volts = np.full((d_count, n), np.nan)
    state = np.full((d_count, n), MISSING_STATE, dtype=np.int64)
    events = np.zeros((d_count, n), dtype=np.int64)
    m = max(d.mppt_count for d in devices)
    dc = np.full((d_count, m, n), np.nan)
    window = (
        f"time >= '{_rfc3339(datetime.fromtimestamp(start_s, UTC))}' "
        f"AND time < '{_rfc3339(datetime.fromtimestamp(end_s, UTC))}'"
    )
    grouping = f"GROUP BY time({step_s}s), "
    unknown_states = 0
    rows = client.query_records(
        'SELECT last("ac_power_w") AS p, last("ac_energy_wh") AS e, last("ac_voltage_v") AS v, '
        'last("state") AS s, last("events") AS ev FROM "inverter" '
        f'WHERE {window} {grouping}"device" fill(none)',
        epoch="ms",
    )
    for r in rows:
        i = index.get(str(r.get("device")))
        j = _grid_index(int(r["time"]), start_s, step_s, n)
        if i is None or j is None:
            continue
        for arr, key in ((power, "p"), (energy, "e"), (volts, "v")):
            if r.get(key) is not None:
                arr[i, j] = float(r[key])
        if r.get("s") is not None:
            try:
                state[i, j] = STATE_CODE[InverterState(str(r["s"]))]
            except ValueError:
                unknown_states += 1
                state[i, j] = STATE_CODE[InverterState.UNKNOWN]
        elif r.get("p") is not None or r.get("e") is not None:
            state[i, j] = STATE_CODE[InverterState.UNKNOWN]
        if r.get("ev"):
            events[i, j] = event_mask(str(r["ev"]).split(","))
    if unknown_states:
        log.warning("%d readings with an unknown state name", unknown_states)
    for r in client.query_records(
        f'SELECT last("dc_power_w") AS p FROM "dc" WHERE {window} {grouping}"device", "mppt" '
        "fill(none)",
        epoch="ms",
    ):
        i = index.get(str(r.get("device")))
        j = _grid_index(int(r["time"]), start_s, step_s, n)
        try:
            k = int(str(r.get("mppt"))) - 1
        except ValueError:
            continue
        if i is None or j is None or not 0 <= k < m or r.get("p") is None:
            continue
        dc[i, k, j] = float(r["p"])
    rejected = np.zeros((d_count, n), dtype=np.bool_)
    for r in client.query_records(
        f'SELECT count("count") AS c FROM "{REJECTED_MEASUREMENT}" WHERE {window} '
        f'{grouping}"device" fill(none)',
        epoch="ms",
    ):
        i = index.get(str(r.get("device")))
        j = _grid_index(int(r["time"]), start_s, step_s, n)
        if i is not None and j is not None and r.get("c"):
            rejected[i, j] = True
    gateway_seen = _gateway_seen(client, devices, window, start_s, step_s, n, grouping)
    present = state != MISSING_STATE
    times = (start_s + np.arange(n, dtype=np.int64) * step_s).astype("datetime64[s]")
    mid = (start_s + step_s // 2 + np.arange(n, dtype=np.int64) * step_s).astype("datetime64[s]")
    return FleetSeries(
        times=times,
        step_s=step_s,
        device_ids=tuple(d.device_id for d in devices),
        gateway_ids=tuple(d.gateway_id for d in devices),
        kwp=np.array([d.kwp for d in devices]),
        ac_rating_w=np.array([d.ac_rating_w for d in devices]),
        ac_power_w=power,
        ac_energy_wh=energy,
        state=state,
        event_bits=events,
        dc_power_w=dc,
        gateway_seen=gateway_seen | present | rejected,
        sun_elevation_deg=sun_elevation_deg(mid),
        expected=_expected(devices, times),
        ac_voltage_v=volts,
        rejected=rejected,
    )


def _expected(devices: Sequence[DeviceSpec], times: np.ndarray) -> np.ndarray:
    day = times.astype("datetime64[D]")
    out = np.ones((len(devices), len(times)), dtype=bool)
    for i, d in enumerate(devices):
        out[i] &= day >= np.datetime64(d.installed_on)
        if d.removed_on is not None:
            out[i] &= day <= np.datetime64(d.removed_on)
    return out


def _gateway_seen(
    client: InfluxClient,
    devices: Sequence[DeviceSpec],
    window: str,
    start_s: int,
    step_s: int,
    n: int,
    grouping: str,
) -> np.ndarray:
    gateways = sorted({d.gateway_id for d in devices})
    g_index = {g: i for i, g in enumerate(gateways)}
    seen = np.zeros((len(gateways), n), dtype=bool)
    for r in client.query_records(
        f'SELECT count("readings") AS c FROM "gateway_seen" WHERE {window} {grouping}"gateway" '
        "fill(none)",
        epoch="ms",
    ):
        g = g_index.get(str(r.get("gateway")))
        j = _grid_index(int(r["time"]), start_s, step_s, n)
        if g is not None and j is not None and r.get("c"):
            seen[g, j] = True
    # status: the latest before the window, then every change inside it, carried forward
    online = np.zeros((len(gateways), n), dtype=bool)
    start_iso = _rfc3339(datetime.fromtimestamp(start_s, UTC))
    before = client.query_records(
        f'SELECT last("state") AS s FROM "gateway_status" WHERE time < \'{start_iso}\' '
        'GROUP BY "gateway"',
        epoch="ms",
    )
    inside = client.query_records(
        f'SELECT "state" AS s FROM "gateway_status" WHERE {window} GROUP BY "gateway"',
        epoch="ms",
    )
    changes: dict[int, list[tuple[int, bool]]] = {}
    for r in before:
        g = g_index.get(str(r.get("gateway")))
        if g is not None:
            changes.setdefault(g, []).append((0, r.get("s") == "online"))
    for r in inside:
        g = g_index.get(str(r.get("gateway")))
        j = _grid_index(int(r["time"]), start_s, step_s, n)
        if g is not None and j is not None:
            changes.setdefault(g, []).append((j, r.get("s") == "online"))
    for g, steps in changes.items():
        for j, is_online in sorted(steps):
            online[g, j:] = is_online
    per_gateway = seen | online
    return per_gateway[[g_index[d.gateway_id] for d in devices]]


def load_daily(
    client: InfluxClient,
    devices: Sequence[DeviceSpec],
    *,
    last_day: date,
    days: int = 60,
    closing_minutes: int = 90,
) -> FleetDaily:
    """Daily energy per device for the ``days`` Europe/Amsterdam days up to ``last_day``.

    A day's energy is its closing counter minus the previous day's (for a counter of whole kWh
    or 0.1 kWh: the sum of its mean power per half hour, :mod:`collector.faults.daily_energy`);
    a closing counter must be
    read in the last ``closing_minutes`` of the day (after dark), otherwise the day is
    unknown, as is a day whose counter steps back or rises beyond the AC rating × 24 h, or
    one with a counter reset the registry records.

    Parameters
    ----------
    client
        InfluxDB client.
    devices
        The devices to compare.
    last_day
        The newest local day (usually today, after sunset).
    days
        How many days (the peer comparison learns from up to 45) [days].
    closing_minutes
        How late in the day the closing reading must be [min].
    """
    first_day = last_day - timedelta(days=days)  # one extra day for the first difference
    local_start = datetime.combine(first_day, datetime.min.time(), tzinfo=AMSTERDAM)
    local_end = datetime.combine(
        last_day + timedelta(days=1), datetime.min.time(), tzinfo=AMSTERDAM
    )
    index = {d.device_id: i for i, d in enumerate(devices)}
    n = days + 1
    closing = np.full((len(devices), n), np.nan)
    counters: list[list[float]] = [[] for _ in devices]
    midnights_s = [
        _epoch_s(datetime.combine(first_day + timedelta(days=k), time(0), tzinfo=AMSTERDAM))
        for k in range(n + 1)
    ]
    buckets = 25 * 3600 // BUCKET_S  # a day has up to 25 hours (end of summer time)
    mean_power = np.full((len(devices), n, buckets), np.nan)
    window = f"time >= '{_rfc3339(local_start)}' AND time < '{_rfc3339(local_end)}'"
    late_start = 24 * 60 - closing_minutes
    for r in client.query_records(
        f'SELECT last("ac_energy_wh") AS e, mean("ac_power_w") AS p FROM "inverter" '
        f'WHERE {window} GROUP BY time({BUCKET_S}s), "device" fill(none) '
        "tz('Europe/Amsterdam')",
        epoch="ms",
    ):
        i = index.get(str(r.get("device")))
        if i is None:
            continue
        at_s = int(r["time"]) // 1000
        local = datetime.fromtimestamp(at_s, UTC).astimezone(AMSTERDAM)
        j = (local.date() - first_day).days
        if not 0 <= j < n:
            continue
        if r.get("p") is not None:
            mean_power[i, j, (at_s - midnights_s[j]) // BUCKET_S] = float(r["p"])
        if r.get("e") is None:
            continue
        counters[i].append(float(r["e"]))
        if local.hour * 60 + local.minute >= late_start:
            closing[i, j] = float(r["e"])  # buckets come in time order: the last one wins
    energy = closing[:, 1:] - closing[:, :-1]
    rating = np.array([d.ac_rating_w for d in devices])[:, None]
    energy = np.where((energy < 0) | (energy > rating * 24.0), np.nan, energy)
    # coarse counters (whole kWh, 0.1 kWh): the day's energy from its power instead
    resolution = counter_resolution_wh(
        np.array([c + [np.nan] * (max(map(len, counters)) - len(c)) for c in counters])
    )
    starts = np.array(midnights_s[:-1])[:, None] + np.arange(buckets)[None, :] * BUCKET_S
    in_day = starts < np.array(midnights_s[1:])[:, None]
    middles = (starts + BUCKET_S // 2).astype("datetime64[s]")
    elevation = sun_elevation_deg(middles.ravel()).reshape(middles.shape)
    daylight = in_day & (elevation >= DAYLIGHT_ELEVATION_DEG)
    power_day = energy_from_power_wh(mean_power, daylight, BUCKET_S)
    energy = daily_energy_wh(energy, power_day[:, 1:], resolution)
    day_list = [first_day + timedelta(days=k) for k in range(1, n)]
    for i, d in enumerate(devices):
        for reset in d.known_resets:
            k = (reset.astimezone(AMSTERDAM).date() - day_list[0]).days
            if 0 <= k < len(day_list):
                energy[i, k] = np.nan
    day_array = np.array(day_list, dtype="datetime64[D]")
    return FleetDaily(
        days=day_array,
        device_ids=tuple(d.device_id for d in devices),
        kwp=np.array([d.kwp for d in devices]),
        energy_wh=energy,
        clear_sky_kwh_per_kwp=clear_sky_daily_kwh_per_kwp(
            day_array,
            np.array([d.tilt_deg for d in devices]),
            np.array([d.azimuth_deg for d in devices]),
        ),
        groups=tuple(orientation_group(d.azimuth_deg, d.tilt_deg) for d in devices),
    )


def known_reset_mask(devices: Sequence[DeviceSpec], series: FleetSeries) -> np.ndarray:
    """Shape (D, T): the steps at which the registry records a counter reset or replacement."""
    out = np.zeros(series.state.shape, dtype=bool)
    start_s = int(series.times[0].astype("datetime64[s]").astype(np.int64))
    for i, d in enumerate(devices):
        for reset in d.known_resets:
            j = (int(reset.timestamp()) - start_s) // series.step_s
            # the first reading after the reset carries the jump: mark a few steps
            lo, hi = max(0, j), min(len(series.times), j + 3)
            out[i, lo:hi] = True
    return out


__all__ = [
    "DeviceSpec",
    "devices_from_registry",
    "known_reset_mask",
    "load_daily",
    "load_series",
]
