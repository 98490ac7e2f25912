"""Benchmark: the member overview page's server time with a year of 5-minute data.

    .venv/bin/python bench/portal.py [--sites 122] [--days 365] [--requests 40]

Starts a private InfluxDB, writes ``--days`` of 5-minute readings for ``--sites`` inverters
(synthetic clear-sky history, :mod:`collector.portal.sample_data`), rolls them up with the
project's rollups (:func:`collector.timeseries.schema.backfill_rollups`), loads the simulated fleet's
registry into a SQLite store, serves the portal with uvicorn and requests ``/overview`` as
different members. Prints the write and rollup times and the page's time (median, p90, max),
once reading the daily rollup and once without rollups (raw readings only). Goal: median
under 300 ms (issue 10). Figures (``bench/_figures.py``): that median, and the median with the
rollup as a share of the median on raw readings, measured in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from _figures import at_most, report

from collector.devtools.services import Influxd
from collector.portal.accounts import AccountService
from collector.portal.app import create_app
from collector.portal.config import PortalConfig
from collector.portal.sample_data import SampleDevice, sample_lines
from collector.portal.serving import serve_in_thread
from collector.registry.store_sync import sync_fleet
from collector.simulator.fleet import generate_fleet
from collector.simulator.fleet_export import to_registry_fleet
from collector.store.db import make_engine, migrate, session_factory
from collector.timeseries.influx import InfluxClient
from collector.timeseries.schema import backfill_rollups, init_database


def _login(url: str, email: str, password: str) -> httpx.Client:
    import re

    client = httpx.Client(base_url=url, timeout=60)
    page = client.get("/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    r = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token.group(1)}
    )
    assert r.status_code == 303, r.status_code
    return client


def _time_pages(clients: list[httpx.Client], n: int) -> list[float]:
    times = []
    for i in range(n):
        client = clients[i % len(clients)]
        t0 = time.perf_counter()
        r = client.get("/overview")
        times.append((time.perf_counter() - t0) * 1000)
        assert r.status_code == 200 and "<svg" in r.text, r.status_code
    return times


def _report(label: str, times: list[float]) -> tuple[float, str]:
    ordered = sorted(times)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    text = (
        f"median {statistics.median(times):.0f} ms, p90 {p90:.0f} ms, "
        f"max {max(times):.0f} ms over {len(times)} requests"
    )
    print(f"{label}: {text}")
    return statistics.median(times), text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=122)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--members", type=int, default=20, help="distinct members logged in")
    args = parser.parse_args()

    fleet = generate_fleet(args.sites, 1)
    registry = to_registry_fleet(fleet)
    devices = [SampleDevice(s.gateway_id, s.device_id, s.kwp) for s in fleet.sites]
    with Influxd.create() as influxd, tempfile.TemporaryDirectory() as tmp:
        influx = InfluxClient(influxd.url, f"bench_{uuid.uuid4().hex[:8]}", timeout_s=600)
        init_database(influx)
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        start = (now - timedelta(days=args.days)).replace(minute=0)
        start = start.replace(minute=start.minute - start.minute % 5)
        t0 = time.perf_counter()
        points = 0
        for lines in sample_lines(devices, start, now, 300):
            for i in range(0, len(lines), 5000):
                influx.write_lines(lines[i : i + 5000], precision="ms")
            points += len(lines)
        write_s = time.perf_counter() - t0
        print(
            f"wrote {points:,} readings ({args.sites} sites x {args.days} days at 5 min) "
            f"in {write_s:.0f} s ({points / write_s:,.0f} points/s incl. generation)"
        )
        t0 = time.perf_counter()
        backfill_rollups(influx, start, now)
        rollup_s = time.perf_counter() - t0
        print(f"rolled up (5 min + daily) in {rollup_s:.0f} s")

        database_url = f"sqlite:///{Path(tmp)}/bench.sqlite3"
        engine = make_engine(database_url)
        migrate(engine)
        sessions = session_factory(engine)
        with sessions.begin() as session:
            sync_fleet(session, registry, source="bench")
        accounts = AccountService(sessions)
        members = [m.member_id for m in registry.members[: args.members]]
        emails = []
        for member_id in members:
            account = accounts.create_member_account(member_id)
            accounts.use_link(
                accounts.issue_link(account.account_id, "invite"), "invite", "bench-password-1"
            )
            emails.append(account.email)
        config = PortalConfig(
            database_url=database_url,
            influx_url=influxd.url,
            influx_db=influx.database,
            secret_key="bench-" + uuid.uuid4().hex,
        )
        with serve_in_thread(create_app(config)) as url:
            clients = [_login(url, e, "bench-password-1") for e in emails]
            _time_pages(clients, 3)  # warm up
            rollup_ms, rollup_text = _report(
                "overview, daily rollup", _time_pages(clients, args.requests)
            )
        # The same page when the rollups are missing: every day from raw readings.
        influx.query(f'DROP RETENTION POLICY "rollup_1d" ON "{influx.database}"', epoch=None)
        with serve_in_thread(create_app(config)) as url:
            clients = [_login(url, e, "bench-password-1") for e in emails]
            _time_pages(clients, 2)
            raw_ms, raw_text = _report(
                "overview, raw readings only", _time_pages(clients, max(10, args.requests // 4))
            )
        engine.dispose()
    report(
        "overview_median_ms",
        rollup_ms,
        "ms",
        at_most(300.0, "issue 10"),
        detail=f"{rollup_text}; {args.sites} sites x {args.days} days in InfluxDB",
    )
    report("overview_rollup_vs_raw", rollup_ms / raw_ms, "x", detail=f"raw only: {raw_text}")
    report("write_s", write_s, "s", detail=f"{points:,} readings, generating them included")
    report("rollup_backfill_s", rollup_s, "s", detail="one-off; continuous queries keep up later")


if __name__ == "__main__":
    main()
