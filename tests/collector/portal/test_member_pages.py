"""Member pages against the real app (uvicorn), store (SQLite) and InfluxDB."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from collector.portal import production as prod
from collector.portal.sample_data import sample_power_w

from .conftest import PASSWORD_A, PortalEnv, login


def _expected_day_kwh(kwp: float, day: date, now: datetime) -> float:
    """Energy of a local day from the synthetic history's readings (hourly, then 5-minute)."""
    start = prod.local_midnight_utc(day)
    end = min(prod.local_midnight_utc(day + timedelta(days=1)), now)
    recent = now.replace(hour=0, minute=0) - timedelta(days=2)
    total = 0.0
    ts = start
    while ts < end:
        step = 300 if ts >= recent else 3600
        total += sample_power_w(ts, kwp) * step / 3600
        ts += timedelta(seconds=step)
    return total / 1000


def test_overview_shows_own_production(portal_env: PortalEnv) -> None:
    client = login(portal_env, portal_env.email_a, PASSWORD_A)
    r = client.get("/overview")
    assert r.status_code == 200
    html = r.text
    assert "Uw zonnepanelen" in html  # Dutch by default
    assert html.count("<svg") >= 5  # curve, guarantee, days, months, years
    assert "cdn" not in html.lower() and "<script" not in html
    # Yesterday's energy from the counters equals the synthetic history's (day bars' titles).
    with portal_env.accounts._sessions() as session:
        from collector.store.models import DeviceRow

        kwp = float(session.get(DeviceRow, portal_env.device_a).kwp)  # type: ignore[union-attr]
    today = prod.local_day(portal_env.now)
    yesterday = today - timedelta(days=1)
    expected = _expected_day_kwh(kwp, yesterday, portal_env.now)
    label = yesterday.strftime("%d-%m")
    m = re.search(rf"<title>{label}: ([0-9.]+) kWh</title></rect>(?!.*<title>{label}:)", html)
    assert m, f"no bar for {label}"
    assert abs(float(m.group(1)) - expected) < 0.06
    assert 'id="guarantee-ytd"' in html  # member A's contract has a yield guarantee


def test_today_energy_and_english_switch(portal_env: PortalEnv) -> None:
    client = login(portal_env, portal_env.email_a, PASSWORD_A)
    r = client.get("/lang/en", params={"next": "/overview"})
    assert r.status_code == 303 and r.headers["location"] == "/overview"
    html = client.get("/overview").text
    assert "Your solar panels" in html
    # Off-site redirect targets are refused.
    assert client.get("/lang/nl", params={"next": "//evil.example/"}).headers["location"] == "/"


def test_daily_energy_api_matches_counters(portal_env: PortalEnv) -> None:
    client = login(portal_env, portal_env.email_a, PASSWORD_A)
    today = prod.local_day(datetime.now(UTC))
    first = today - timedelta(days=40)
    r = client.get(
        f"/api/v1/devices/{portal_env.device_a}/daily-energy",
        params={"first": first.isoformat(), "last": (today - timedelta(days=1)).isoformat()},
    )
    assert r.status_code == 200, r.text
    days = {date.fromisoformat(d["day"]): d["energy_kwh"] for d in r.json()}
    assert len(days) == 40
    from .conftest import MEMBER_A  # noqa: F401

    kwp = float(client.get(f"/api/v1/devices/{portal_env.device_a}").json()["kwp"])
    for day in (first, first + timedelta(days=20), today - timedelta(days=1)):
        assert abs(days[day] - _expected_day_kwh(kwp, day, portal_env.now)) < 0.01, day


def test_influxdb_down_is_a_readable_503(portal_env: PortalEnv) -> None:
    """A fault that cannot be produced with the shared server: point the app at a closed port."""
    from dataclasses import replace

    from collector.devtools.services import free_port
    from collector.portal.app import create_app
    from collector.portal.serving import serve_in_thread
    from collector.timeseries.influx import InfluxClient

    dead = InfluxClient(f"http://127.0.0.1:{free_port()}", "x", retries=0, timeout_s=2)
    app = create_app(replace(portal_env.config), influx=dead)
    with serve_in_thread(app) as url:
        env = replace(portal_env, url=url)
        client = login(env, portal_env.email_a, PASSWORD_A)
        page = client.get("/overview")
        assert page.status_code == 503 and "niet bereikbaar" in page.text
        api = client.get(
            f"/api/v1/devices/{portal_env.device_a}/daily-energy?first=2026-01-01&last=2026-01-02"
        )
        assert api.status_code == 503 and "unavailable" in api.json()["detail"]
        assert client.get("/statements").status_code == 200  # the store still answers


def test_guarantee_in_the_contract_year(portal_env: PortalEnv) -> None:
    """Member A rents with huur-garantie (800 kWh/kWp per contract year from 24 October)."""
    from collector.settlement.periods import contract_year

    client = login(portal_env, portal_env.email_a, PASSWORD_A)
    html = client.get("/overview").text
    kwp = float(client.get(f"/api/v1/devices/{portal_env.device_a}").json()["kwp"])
    today = prod.local_day(datetime.now(UTC))
    year = contract_year(date(2022, 10, 24), today)
    produced = sum(
        _expected_day_kwh(kwp, year.start_day + timedelta(days=i), portal_env.now)
        for i in range((today - year.start_day).days + 1)
    )
    to_date = 800 * kwp * prod.typical_share(year.start_day, today, year.end_day)

    def shown(element_id: str) -> float:
        m = re.search(rf'id="{element_id}">([0-9.]+) kWh', html)
        assert m, element_id
        return float(m.group(1).replace(".", ""))

    assert abs(shown("contract-year-kwh") - produced) <= 1.0
    assert abs(shown("guarantee-ytd") - to_date) <= 1.0
    assert year.start_day.strftime("%d-%m-%Y") in html
