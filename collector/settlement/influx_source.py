"""Settlement readings from InfluxDB: a coarse series plus exact readings at part boundaries.

Gateways read counters every few seconds, far more than a bill needs: only the counter at the
boundaries of the billed parts (local midnights) enters an amount. So per device this reads

- the last ``ac_energy_wh`` of every hour of the window (``GROUP BY time(1h)``), placed at the
  hour's end: a lower bound of the counter there, within one poll interval of it; these carry
  resets, gaps and the fleet profile;
- at every part boundary, the real last reading before it and first reading after it (within
  an hour), with their own timestamps, which replace the hourly value at that instant: the
  boundary counter is interpolated between true readings;
- for a device without data near the edge of the window, its last reading before the window
  and first after it (up to :data:`EDGE_LOOKBACK_DAYS`), so a long gap keeps its exact
  counter difference.

The result is plain :class:`~collector.settlement.yields.CounterReadings`, the same that an
exported readings file holds, so offline and InfluxDB-backed settlements agree.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import date

from collector.influx import InfluxClient, Series, quote_ident
from collector.points import INVERTER_MEASUREMENT
from collector.registry.fleet_file import Fleet
from collector.settlement.engine import BilledPart, part_boundaries, readings_window
from collector.settlement.periods import Period, local_midnight_utc
from collector.settlement.yields import CounterReadings

ENERGY_FIELD = "ac_energy_wh"
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
#: How far before/after the window a device's nearest reading is looked for [days].
EDGE_LOOKBACK_DAYS = 62
#: Days of hourly values per query.
SLICE_DAYS = 3
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
) -> dict[str, CounterReadings]:
    """The counter readings a settlement of ``period`` needs, for every device of ``fleet``."""
    fleet_devices = {d.device_id for d in fleet.devices}
    first_day, end_day = readings_window(period, correct_periods)
    w0, w1 = _ms(first_day), _ms(end_day)
    m = quote_ident(INVERTER_MEASUREMENT)
    f = quote_ident(ENERGY_FIELD)
    points: dict[str, dict[int, float]] = defaultdict(dict)

    # 1. hourly last values, placed at the end of their hour
    slices = list(range(w0, w1, SLICE_DAYS * DAY_MS))
    for done, a in enumerate(slices, start=1):
        b = min(a + SLICE_DAYS * DAY_MS, w1)
        q = (
            f"SELECT last({f}) FROM {m} WHERE time >= {a}ms AND time < {b}ms "
            f'GROUP BY time(1h), "device" fill(none)'
        )
        for device, t, wh in _series_points(client.query(q, epoch="ms")[0]):
            if device in fleet_devices:
                points[device][t + HOUR_MS] = wh
        if progress:
            progress("hourly readings", done, len(slices))

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
    edge_last: dict[int, set[str]] = defaultdict(set)
    edge_first: dict[int, set[str]] = defaultdict(set)
    placed_times = {d: sorted(points[d]) for d in points}
    for at, devices in instants.items():
        for device in devices if len(devices) * 2 <= len(fleet_devices) else fleet_devices:
            times = placed_times.get(device)
            if not times:
                continue
            i = bisect.bisect_left(times, at)
            if (at, device) not in found_before and i > 0 and times[i - 1] % HOUR_MS == 0:
                edge_last[times[i - 1] - HOUR_MS].add(device)
            if (at, device) not in found_after and i < len(times) and times[i] % HOUR_MS == 0:
                edge_first[times[i] - HOUR_MS].add(device)
    edge_statements: list[tuple[str, str]] = []
    for kind, edges in (("last", edge_last), ("first", edge_first)):
        for start in sorted(edges):
            for group in _chunks(sorted(edges[start]), DEVICES_PER_FILTER):
                edge_statements.append(
                    (kind, f"SELECT {kind}({f}) FROM {m} WHERE time >= {start}ms AND "
                           f'time < {start + HOUR_MS}ms{_device_filter(group)} GROUP BY "device"')
                )  # fmt: skip
    for i in range(0, len(edge_statements), STATEMENTS_PER_REQUEST):
        batch_e = edge_statements[i : i + STATEMENTS_PER_REQUEST]
        results = client.query("; ".join(q for _, q in batch_e), epoch="ms")
        for (kind, _), series in zip(batch_e, results, strict=True):
            for device, t, wh in _series_points(series):
                if kind == "last":  # the hour's last reading, at its own time now
                    points[device].pop((t // HOUR_MS + 1) * HOUR_MS, None)
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
    out: dict[str, CounterReadings] = {}
    for device in sorted(points):
        ts = sorted(points[device])
        out[device] = CounterReadings.from_arrays(
            device, [t / 1000.0 for t in ts], [points[device][t] for t in ts]
        )
    return out


def source_label(client: InfluxClient) -> str:
    """How a run names its readings source."""
    return f"influxdb {client.url} database {client.database} measurement {INVERTER_MEASUREMENT}"


__all__ = ["load_readings", "source_label"]
