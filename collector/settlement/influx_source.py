"""Settlement readings from InfluxDB: coarse series plus exact readings where they count.

Gateways read counters every few seconds, far more than a bill needs: only the counter at the
boundaries of the billed parts (local midnights, replacement and reset instants) enters an
amount. Per device this reads

- the last ``ac_energy_wh`` of every local day of the window (``GROUP BY time(1d)
  tz('Europe/Amsterdam')``), placed at the day's end: a lower bound of the counter there;
  these carry long gaps, unknown resets and each site's ratio to the fleet;
- for up to :data:`REFERENCE_DEVICES` reference devices (all of a small fleet; else a fixed
  sample by hash of the device id) the last value of every hour, placed at the hour's end:
  the fleet's hourly production profile;
- at every part boundary and registry instant, the real last reading before it and first
  reading after it (within an hour), with their own timestamps, replacing the coarse value
  there: boundary counters are interpolated between true readings;
- where a boundary falls in a device's gap, the exact readings at the gap's edges (found in
  the day or hour whose value stands nearest to the boundary);
- for a device without data near the edge of the window, its last reading before the window
  and first after it (up to :data:`EDGE_LOOKBACK_DAYS`), so a long gap keeps its exact
  counter difference;
- the spans of imported counters (``imported_counter``, written by ``zonnewijk import
  readings`` for interval energy): each is a counter of its own, never read as a continuation
  of the inverter's real counter.

The cost of a ``GROUP BY time()`` query on InfluxDB 1.x grows with the number of buckets it
returns, which is why only the reference devices are read hourly. The result is plain
:class:`~collector.settlement.yields.CounterReadings`, the same that an exported readings file
holds, so offline and InfluxDB-backed settlements agree.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date, timedelta
from typing import Literal

from collector.registry.fleet_file import Fleet
from collector.settlement.counter_segments import CounterReadings, from_epoch_s
from collector.settlement.inputs import BilledPart, part_boundaries, readings_window
from collector.settlement.periods import AMSTERDAM, Period, local_day_of, local_midnight_utc
from collector.timeseries.influx import InfluxClient, Series, quote_ident
from collector.timeseries.measurements import IMPORTED_COUNTER_MEASUREMENT, INVERTER_MEASUREMENT

ENERGY_FIELD = "ac_energy_wh"
#: Where ``zonnewijk db init`` keeps 5-minute rollups, and their energy field.
ROLLUP_RP = "rollup_5m"
ROLLUP_ENERGY_FIELD = "ac_energy_wh_last"
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: How far before/after the window a device's nearest reading is looked for [days].
EDGE_LOOKBACK_DAYS = 62
#: Days of hourly values per query.
SLICE_DAYS = 6
#: Devices read hourly for the fleet's production profile.
REFERENCE_DEVICES = 300
#: Boundary statements sent per request.
STATEMENTS_PER_REQUEST = 16
#: Device ids per regular-expression filter.
DEVICES_PER_FILTER = 200

Progress = Callable[[str, int, int], None]


def _ms(day: date) -> int:
    return int(local_midnight_utc(day).timestamp() * 1000)


def _device_filter(devices: Iterable[str] | None) -> str:
    if devices is None:
        return ""
    alternatives = "|".join(re.escape(d).replace("/", r"\/") for d in sorted(devices))
    return f' AND "device" =~ /^(?:{alternatives})$/'


def _chunks(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(items), size):
        yield list(items[i : i + size])


def _series_points(series: Iterable[Series]) -> Iterable[tuple[str, int, float]]:
    for s in series:
        device = s.tags.get("device")
        if device is None:
            continue
        for row in s.values:
            if row[1] is not None:
                yield device, int(row[0]), float(row[1])


def reference_devices(devices: Iterable[str]) -> list[str]:
    """The devices read hourly for the fleet profile: all, or a fixed sample by hash of id."""
    ordered = sorted(devices, key=lambda d: (hashlib.sha256(d.encode()).hexdigest(), d))
    return sorted(ordered[:REFERENCE_DEVICES])


def registry_instants(fleet: Fleet) -> dict[int, set[str]]:
    """Replacement and known-reset instants [ms], with the devices whose counters change there."""
    out: dict[int, set[str]] = defaultdict(set)
    for device in fleet.devices:
        if device.replaces is not None:
            at = int(device.replaces.at.timestamp() * 1000)
            out[at] |= {device.device_id, device.replaces.device_id}
        for reset in device.counter_resets:
            out[int(reset.at.timestamp() * 1000)].add(device.device_id)
    return dict(out)


def load_readings(
    client: InfluxClient,
    fleet: Fleet,
    period: Period,
    *,
    billed: Sequence[BilledPart] = (),
    correct_periods: Sequence[str] = (),
    progress: Progress | None = None,
    coarse: Literal["raw", "rollup"] = "raw",
) -> dict[str, CounterReadings]:
    """The counter readings a settlement of ``period`` needs, for every device of ``fleet``.

    ``coarse="rollup"`` takes the daily and hourly values from the ``rollup_5m`` retention
    policy (``ac_energy_wh_last`` per 5 minutes, kept by ``zonnewijk db init``'s continuous
    queries), which at a 10 s poll interval is 30 times fewer points to scan; the exact
    readings around boundaries always come from the raw data.
    """
    fleet_devices = {d.device_id for d in fleet.devices}
    first_day, end_day = readings_window(period, correct_periods)
    w0, w1 = _ms(first_day), _ms(end_day)
    m = quote_ident(INVERTER_MEASUREMENT)
    f = quote_ident(ENERGY_FIELD)
    if coarse == "rollup":
        cm, cf = f"{quote_ident(ROLLUP_RP)}.{m}", quote_ident(ROLLUP_ENERGY_FIELD)
    else:
        cm, cf = m, f
    points: dict[str, dict[int, float]] = defaultdict(dict)
    #: per device: placed time of a coarse value -> start of the bucket it summarises [ms]
    buckets: dict[str, dict[int, int]] = defaultdict(dict)

    # 1. daily last values of every device, placed at the end of their local day
    days = [first_day + timedelta(days=k) for k in range((end_day - first_day).days + 1)]
    day_slices = [days[i : i + SLICE_DAYS + 1] for i in range(0, len(days) - 1, SLICE_DAYS)]
    references = reference_devices(fleet_devices)
    reference_set = set(references)
    hourly_slices = list(range(w0, w1, SLICE_DAYS * DAY_MS))
    ref_groups = list(_chunks(references, DEVICES_PER_FILTER))
    total = len(day_slices) + len(hourly_slices) * len(ref_groups)
    done = 0
    for piece in day_slices:
        a, b = _ms(piece[0]), _ms(piece[-1])
        q = (
            f"SELECT last({cf}) FROM {cm} WHERE time >= {a}ms AND time < {b}ms "
            f"GROUP BY time(1d), \"device\" fill(none) tz('{AMSTERDAM.key}')"
        )
        for device, t, wh in _series_points(client.query(q, epoch="ms")[0]):
            if device in fleet_devices and device not in reference_set:  # those come hourly
                end = _ms(local_day_of(from_epoch_s(t / 1000.0)) + timedelta(days=1))
                points[device][end] = wh
                buckets[device][end] = t
        done += 1
        if progress:
            progress("daily readings", done, total)

    # 1b. hourly last values of the reference devices, placed at the end of their hour
    for a in hourly_slices:
        b = min(a + SLICE_DAYS * DAY_MS, w1)
        for ref_group in ref_groups:
            q = (
                f"SELECT last({cf}) FROM {cm} WHERE time >= {a}ms AND time < {b}ms"
                f'{_device_filter(ref_group)} GROUP BY time(1h), "device" fill(none)'
            )
            for device, t, wh in _series_points(client.query(q, epoch="ms")[0]):
                points[device][t + HOUR_MS] = wh
                buckets[device][t + HOUR_MS] = t
            done += 1
            if progress:
                progress("hourly profile readings", done, total)

    # 2. exact readings around every part boundary and every registry instant
    instants: dict[int, set[str]] = defaultdict(set)
    for day, devices in part_boundaries(fleet, period, billed, correct_periods).items():
        instants[_ms(day)] |= devices
    for at, devices in registry_instants(fleet).items():
        if w0 <= at <= w1:
            instants[at] |= devices
    statements: list[tuple[int, str]] = []
    for at in sorted(instants):
        devices = instants[at]
        groups: list[list[str] | None] = (
            [None] if len(devices) * 2 > len(fleet_devices) else
            list(_chunks(sorted(devices), DEVICES_PER_FILTER))
        )  # fmt: skip
        for group in groups:
            where = _device_filter(group)
            statements.append(
                (at, f'SELECT last({f}) FROM {m} WHERE time >= {at - HOUR_MS}ms AND time <= {at}ms'
                     f'{where} GROUP BY "device"')
            )  # fmt: skip
            statements.append(
                (at, f'SELECT first({f}) FROM {m} WHERE time >= {at}ms AND time < {at + HOUR_MS}ms'
                     f'{where} GROUP BY "device"')
            )  # fmt: skip
    batches = [
        statements[i : i + STATEMENTS_PER_REQUEST]
        for i in range(0, len(statements), STATEMENTS_PER_REQUEST)
    ]
    found_before: set[tuple[int, str]] = set()
    found_after: set[tuple[int, str]] = set()
    for done, batch in enumerate(batches, start=1):
        results = client.query("; ".join(q for _, q in batch), epoch="ms")
        for (at, q), series in zip(batch, results, strict=True):
            is_last = q.startswith("SELECT last(")
            for device, t, wh in _series_points(series):
                if device not in fleet_devices:
                    continue
                if is_last:
                    found_before.add((at, device))
                    points[device].pop(at, None)  # the exact reading replaces the hourly one
                else:
                    found_after.add((at, device))
                points[device][t] = wh
        if progress:
            progress("boundary readings", done, len(batches))

    # 2b. a boundary inside a device's gap: the exact readings at the gap's edges, found in the
    # hour whose value stands nearest before / after the boundary
    edge_last: dict[tuple[int, int], set[str]] = defaultdict(set)
    edge_first: dict[tuple[int, int], set[str]] = defaultdict(set)
    placed_times = {d: sorted(buckets[d]) for d in buckets}
    for at, devices in instants.items():
        for device in devices if len(devices) * 2 <= len(fleet_devices) else fleet_devices:
            times = placed_times.get(device)
            if not times:
                continue
            i = bisect.bisect_left(times, at)
            if (at, device) not in found_before and i > 0:
                p = times[i - 1]
                if points[device].get(p) is not None and p in buckets[device]:
                    edge_last[(buckets[device][p], p)].add(device)
            if (at, device) not in found_after and i < len(times):
                p = times[i]
                edge_first[(buckets[device][p], p)].add(device)
    edge_statements: list[tuple[str, str]] = []
    for kind, edges in (("last", edge_last), ("first", edge_first)):
        for start, end in sorted(edges):
            for group in _chunks(sorted(edges[(start, end)]), DEVICES_PER_FILTER):
                edge_statements.append(
                    (kind, f"SELECT {kind}({f}) FROM {m} WHERE time >= {start}ms AND "
                           f'time < {end}ms{_device_filter(group)} GROUP BY "device"')
                )  # fmt: skip
    for i in range(0, len(edge_statements), STATEMENTS_PER_REQUEST):
        batch_e = edge_statements[i : i + STATEMENTS_PER_REQUEST]
        results = client.query("; ".join(q for _, q in batch_e), epoch="ms")
        for (kind, _), series in zip(batch_e, results, strict=True):
            for device, t, wh in _series_points(series):
                if kind == "last":  # the bucket's last reading, at its own time now
                    times = placed_times.get(device, [])
                    j = bisect.bisect_right(times, t)
                    if j < len(times):
                        points[device].pop(times[j], None)
                points[device][t] = wh

    # 3. devices without data near an edge of the window: their nearest reading beyond it
    start_ms, end_ms = _ms(period.start_day), _ms(period.end_day)
    before = sorted(d for d in fleet_devices if min(points.get(d, {}), default=end_ms) > start_ms)
    after = sorted(d for d in fleet_devices if max(points.get(d, {}), default=start_ms) < end_ms)
    lookback = EDGE_LOOKBACK_DAYS * DAY_MS
    edge_queries = [
        f"SELECT last({f}) FROM {m} WHERE time >= {w0 - lookback}ms AND time < {w0}ms"
        f'{_device_filter(group)} GROUP BY "device"'
        for group in _chunks(before, DEVICES_PER_FILTER)
    ] + [
        f"SELECT first({f}) FROM {m} WHERE time >= {w1}ms AND time < {w1 + lookback}ms"
        f'{_device_filter(group)} GROUP BY "device"'
        for group in _chunks(after, DEVICES_PER_FILTER)
    ]
    for q in edge_queries:
        for device, t, wh in _series_points(client.query(q, epoch="ms")[0]):
            points[device][t] = wh
    # 4. spans of imported counters (``zonnewijk import readings``): counters of their own
    imported: dict[str, list[tuple[float, float]]] = defaultdict(list)
    rows = client.query(
        f"SELECT {quote_ident('end_ms')} FROM {quote_ident(IMPORTED_COUNTER_MEASUREMENT)} "
        f'WHERE time <= {w1 + lookback}ms GROUP BY "device"',
        epoch="ms",
    )[0]
    for device, span_start, span_end in _series_points(rows):
        if device in fleet_devices and span_end >= w0 - lookback:
            imported[device].append((span_start / 1000.0, span_end / 1000.0))
    out: dict[str, CounterReadings] = {}
    for device in sorted(points):
        ts = sorted(points[device])
        out[device] = CounterReadings.from_arrays(
            device,
            [t / 1000.0 for t in ts],
            [points[device][t] for t in ts],
            imported=imported.get(device, ()),
        )
    return out


def source_label(client: InfluxClient) -> str:
    """How a run names its readings source."""
    return f"influxdb {client.url} database {client.database} measurement {INVERTER_MEASUREMENT}"


__all__ = ["load_readings", "source_label"]
