"""The demo's portal: both printed logins work against the demo's InfluxDB."""

from __future__ import annotations

from pathlib import Path

import httpx

from collector.portal.demo import demo_portal
from collector.simulator.fleet import generate_fleet
from collector.timeseries.influx import InfluxClient

from .conftest import csrf_from


def test_demo_logins(influx: InfluxClient, tmp_path: Path) -> None:
    fleet = generate_fleet(3, 1)
    with demo_portal(
        fleet, influx_url=influx.url, influx_db=influx.database, workdir=tmp_path
    ) as portal:
        assert portal.member_password in portal.banner()
        for email, password, home in (
            (portal.member_email, portal.member_password, "/overview"),
            (portal.operator_email, portal.operator_password, "/operator"),
        ):
            client = httpx.Client(base_url=portal.url)
            token = csrf_from(client.get("/login").text)
            r = client.post(
                "/login", data={"email": email, "password": password, "csrf_token": token}
            )
            assert r.status_code == 303 and r.headers["location"] == home
            assert client.get(home).status_code == 200
