"""The member's self-consumption page against the real app, store (SQLite) and InfluxDB.

Member A's home gets a P1 meter: a constant household load of 400 W, and the meter's import
and export counters written at the same instants as the inverter's synthetic history (hourly
for the older days, every 5 minutes for the last two), stored as the collector stores them
(:func:`collector.timeseries.measurements.meter_points`). The expected figures are computed
here from the synthetic power itself: per reading, self-consumed = min(production, load) x dt.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from collector.portal import production as prod
from collector.portal.sample_data import sample_power_w
from collector.store.models import DeviceRow, SiteRow
from collector.timeseries.measurements import meter_points
from zonnewijk_wire.meter import MeterReading, MeterSource

from .conftest import PASSWORD_A, PASSWORD_B, PortalEnv, login

LOAD_W = 400.0
HISTORY_DAYS = 12


def _home_of(env: PortalEnv, device_id: str) -> tuple[str, list[float]]:
    with env.accounts._sessions() as session:
        device = session.get(DeviceRow, device_id)
        assert device is not None
        site = session.get(SiteRow, device.site_id)
        assert site is not None
        kwps = [
            float(d.kwp)
            for d in session.scalars(select(DeviceRow).where(DeviceRow.site_id == site.site_id))
        ]
        return site.gateway_id, kwps


def _instants(env: PortalEnv) -> list[tuple[datetime, int]]:
    """The inverter history's reading instants and steps (see the portal fixture)."""
    recent = env.now.replace(hour=0, minute=0) - timedelta(days=2)
    start = recent - timedelta(days=HISTORY_DAYS)
    out = [(start + timedelta(hours=k), 3600) for k in range(HISTORY_DAYS * 24)]
    t = recent
    while t < env.now:
        out.append((t, 300))
        t += timedelta(seconds=300)
    return out


@pytest.fixture(scope="module")
def meter_home(portal_env: PortalEnv) -> tuple[list[float], list[tuple[datetime, int]]]:
    gateway, kwps = _home_of(portal_env, portal_env.device_a)
    imported, exported = 3_000_000.0, 500_000.0
    points = []
    instants = _instants(portal_env)
    for ts, step_s in instants:
        production_w = sum(sample_power_w(ts, kwp) for kwp in kwps)
        imported += max(LOAD_W - production_w, 0.0) * step_s / 3600
        exported += max(production_w - LOAD_W, 0.0) * step_s / 3600
        reading = MeterReading(
            device_id="p1", ts=ts, source=MeterSource.P1, interval_s=step_s,
            import_energy_wh=round(imported, 3), export_energy_wh=round(exported, 3),
        )  # fmt: skip
        points.extend(meter_points(gateway, reading))
    portal_env.influx.write_points(points)
    return kwps, instants


def _cell(html: str, table: str, cls: str) -> str:
    m = re.search(
        rf'<table class="figures" id="{table}">.*?<td class="{cls}">([^<]*)</td>', html, re.S
    )
    assert m, f"no {cls} in {table}"
    return m.group(1)


def _kwh(text: str) -> float:
    return float(text.replace(" kWh", "").replace(".", "").replace(",", "."))


def test_today_and_month_from_inverter_and_meter(
    portal_env: PortalEnv, meter_home: tuple[list[float], list[tuple[datetime, int]]]
) -> None:
    kwps, instants = meter_home
    client = login(portal_env, portal_env.email_a, PASSWORD_A)
    html = client.get("/self-consumption").text
    assert "Eigen verbruik van uw zonnestroom" in html  # Dutch first
    assert "1 januari 2027" in html
    assert 'class="use"' in html and "<script" not in html
    # Today: from local midnight to the last quarter-hour edge the inverter's readings reach.
    day_start = prod.local_midnight_utc(prod.local_day(datetime.now(UTC)))
    last = max(ts for ts, _ in instants)
    edge = last - timedelta(minutes=last.minute % 15, seconds=last.second)
    if edge <= day_start:
        pytest.skip("the first quarter-hour of the local day has no whole interval yet")
    made = used_own = 0.0
    for ts, step_s in instants:
        if day_start < ts <= edge:
            p = sum(sample_power_w(ts, kwp) for kwp in kwps)
            made += p * step_s / 3600
            used_own += min(p, LOAD_W) * step_s / 3600
    assert _kwh(_cell(html, "today", "production")) == pytest.approx(made / 1000, abs=0.06)
    assert _kwh(_cell(html, "today", "self-consumed")) == pytest.approx(used_own / 1000, abs=0.06)
    hours_today = (edge - day_start).total_seconds() / 3600
    assert _kwh(_cell(html, "today", "consumption")) == pytest.approx(
        LOAD_W * hours_today / 1000, abs=0.06
    )
    # The month's rate is shown, and lies between 0 and 100 %.
    rate = re.search(r'id="month-rate">(\d+)%<', html)
    assert rate and 0 <= int(rate.group(1)) <= 100


def test_advice_names_the_hours_the_panels_outproduce_the_home(
    portal_env: PortalEnv, meter_home: tuple[list[float], list[tuple[datetime, int]]]
) -> None:
    kwps, instants = meter_home
    client = login(portal_env, portal_env.email_a, PASSWORD_A)
    html = client.get("/self-consumption").text
    # An hourly reading at UTC hour h+1 carries the energy of (h, h+1]: that local hour is a
    # surplus hour when the panels made more than the load at h+1 on most days.
    today = prod.local_day(datetime.now(UTC))
    days: dict[int, list[bool]] = {}
    for ts, step_s in instants:
        if step_s != 3600 or prod.local_day(ts - timedelta(hours=1)) >= today:
            continue
        hour = (ts - timedelta(hours=1)).astimezone(prod.AMSTERDAM).hour
        days.setdefault(hour, []).append(sum(sample_power_w(ts, k) for k in kwps) > LOAD_W)
    expected = sorted(h for h, flags in days.items() if sum(flags) / len(flags) >= 0.5)
    assert expected, "the synthetic summer/winter sun must out-produce 400 W at noon"
    first, last = expected[0], expected[-1]
    assert f"{first:02d}:00–" in html and f"–{last + 1:02d}:00" in html


def test_a_member_without_a_meter_is_told_how_to_get_figures(portal_env: PortalEnv) -> None:
    client = login(portal_env, portal_env.email_b, PASSWORD_B)
    html = client.get("/self-consumption").text
    assert 'id="no-meter"' in html and "P1" in html
    assert 'id="help-2027"' in html
