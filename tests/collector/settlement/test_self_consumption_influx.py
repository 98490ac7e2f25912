"""A household's balance read from a real InfluxDB, stored the way the collector stores it
(:func:`collector.timeseries.measurements.meter_points` for the P1 meter's 5-minute readings,
``inverter`` points every 10 s). Powers are constant, so every expected energy is power x
time, independent of the interpolation.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from collector.settlement.self_consumption import by_day, day_span, total
from collector.settlement.self_consumption_influx import household_intervals
from collector.timeseries.influx import InfluxClient, Point
from collector.timeseries.measurements import meter_points
from zonnewijk_wire.meter import MeterReading, MeterSource

DAY = date(2026, 6, 15)
PRODUCTION_W, IMPORT_W, EXPORT_W = 2000.0, 300.0, 1200.0


def write_home(
    influx: InfluxClient, gateway: str, device: str, start: datetime, end: datetime,
    export_w: float,
) -> None:  # fmt: skip
    points = []
    t = start - timedelta(minutes=10) + timedelta(seconds=4)
    while t < end + timedelta(minutes=10):
        hours = (t - start).total_seconds() / 3600
        fields = {"ac_energy_wh": 5_000_000.0 + PRODUCTION_W * hours, "ac_power_w": PRODUCTION_W}
        points.append(Point("inverter", {"gateway": gateway, "device": device}, fields, t))
        t += timedelta(seconds=10)
    t = start - timedelta(minutes=10) + timedelta(seconds=3)
    while t < end + timedelta(minutes=10):
        hours = (t - start).total_seconds() / 3600
        reading = MeterReading(
            device_id="p1", ts=t, source=MeterSource("p1"), interval_s=300, samples=300,
            import_energy_wh=9_000_000.0 + IMPORT_W * hours,
            export_energy_wh=2_000_000.0 + export_w * hours,
        )  # fmt: skip
        points.extend(meter_points(gateway, reading))
        t += timedelta(minutes=5)
    influx.write_points(points)


def test_a_day_of_a_home_from_influx(influx: InfluxClient) -> None:
    start, end = day_span(DAY)
    write_home(influx, "gw-home", "inv-home", start, end, EXPORT_W)
    # A neighbour behind another gateway exports more: none of it may count for this home.
    write_home(influx, "gw-next", "inv-next", start, end, 1900.0)

    intervals = household_intervals(influx, "gw-home", ["inv-home"], start, end)

    assert len(intervals) == 96
    day = by_day(intervals)[DAY]
    assert day.completeness == 1.0
    assert day.production_wh == pytest.approx(PRODUCTION_W * 24)
    assert day.import_wh == pytest.approx(IMPORT_W * 24)
    assert day.export_wh == pytest.approx(EXPORT_W * 24)
    assert day.self_consumed_wh == pytest.approx((PRODUCTION_W - EXPORT_W) * 24)
    assert day.self_consumption_ratio == pytest.approx(0.4)
    assert day.self_sufficiency_ratio == pytest.approx(800.0 / 1100.0)


def test_hours_without_meter_readings_are_missing(influx: InfluxClient) -> None:
    start = datetime(2026, 6, 15, 8, tzinfo=UTC)
    end = start + timedelta(hours=3)
    write_home(influx, "gw-home", "inv-home", start, end, EXPORT_W)
    influx.query(
        "DELETE FROM \"grid_meter\" WHERE time > '2026-06-15T09:00:00Z' "
        "AND time < '2026-06-15T10:00:00Z'"
    )
    whole = total(household_intervals(influx, "gw-home", ["inv-home"], start, end))
    # The readings at 08:55:03 and 10:00:03 bound a gap of 65 minutes, longer than the 30
    # minutes interpolated across: the edges 09:00 to 10:00 have no meter counter, so the six
    # quarter-hours from 08:45 to 10:15 are missing and the other six are whole.
    assert whole.missing_s == 6 * 900
    assert whole.production_wh == pytest.approx(PRODUCTION_W * 1.5)
    assert whole.self_consumed_wh == pytest.approx((PRODUCTION_W - EXPORT_W) * 1.5)


def test_long_spans_read_five_minute_buckets_with_the_same_days(influx: InfluxClient) -> None:
    start, _ = day_span(DAY)
    _, end = day_span(DAY + timedelta(days=2))
    write_home(influx, "gw-home", "inv-home", start, end, EXPORT_W)
    days = by_day(household_intervals(influx, "gw-home", ["inv-home"], start, end))
    assert sorted(days) == [DAY + timedelta(days=k) for k in range(3)]
    for balance in days.values():
        assert balance.completeness == 1.0
        assert balance.production_wh == pytest.approx(PRODUCTION_W * 24)
        assert balance.self_consumed_wh == pytest.approx((PRODUCTION_W - EXPORT_W) * 24)
