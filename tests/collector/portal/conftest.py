"""Portal fixtures: a migrated store with a small simulated registry, InfluxDB with a year of
synthetic history, accounts for two members and an operator, and the app served by uvicorn on
a free port (in a thread)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from collector.devtools.services import Influxd
from collector.portal.accounts import AccountService
from collector.portal.app import create_app
from collector.portal.config import PortalConfig
from collector.portal.sample_data import SampleDevice, write_sample_history
from collector.portal.serving import serve_in_thread
from collector.registry.store_sync import sync_fleet
from collector.simulator.fleet import generate_fleet
from collector.simulator.fleet_export import to_registry_fleet
from collector.store.db import make_engine, migrate, session_factory
from collector.store.models import DeviceRow, SiteRow
from collector.timeseries.influx import InfluxClient

PASSWORD_A = "zonnig-dak-4-ever"
PASSWORD_B = "andere-buur-22x"
PASSWORD_OP = "operator-sterk-99"
#: member A has a yield guarantee (huur-garantie), member B does not
MEMBER_A, MEMBER_B = "M0004", "M0001"


@dataclass
class PortalEnv:
    url: str
    config: PortalConfig
    accounts: AccountService
    influx: InfluxClient
    database_url: str
    api_token: str
    device_a: str
    device_b: str
    email_a: str
    email_b: str
    email_op: str
    now: datetime
    app: object
    alert_a: int
    alert_b: int
    run_id: str
    contract_a: str
    contract_b: str


def serve(app: object) -> Iterator[str]:
    """The app on a free port (uvicorn in a thread) while the loop body runs."""
    with serve_in_thread(app) as url:
        yield url


@pytest.fixture(scope="module")
def portal_env(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PortalEnv]:
    tmp: Path = tmp_path_factory.mktemp("portal")
    database_url = f"sqlite:///{tmp}/store.sqlite3"
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        sync_fleet(session, to_registry_fleet(generate_fleet(6, 1)), source="test")
    with sessions() as session:
        devices = [
            SampleDevice(site.gateway_id, dev.device_id, float(dev.kwp))
            for dev, site in session.execute(
                select(DeviceRow, SiteRow).join(SiteRow, SiteRow.site_id == DeviceRow.site_id)
            ).all()
        ]
    influx = InfluxClient(influxd.url, f"portal_{uuid.uuid4().hex[:10]}")
    influx.create_database()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start = (now - timedelta(days=400)).replace(hour=0, minute=0)
    # Hourly for the year behind us, 5-minute readings for the last two days.
    recent = now.replace(hour=0, minute=0) - timedelta(days=2)
    write_sample_history(influx, devices, start, recent, step_s=3600)
    write_sample_history(
        influx,
        [
            SampleDevice(
                d.gateway_id, d.device_id, d.kwp, counter_start_wh=_counter_at(d, start, recent)
            )
            for d in devices
        ],
        recent,
        now,
        step_s=300,
    )
    config = PortalConfig(
        database_url=database_url,
        influx_url=influxd.url,
        influx_db=influx.database,
        secret_key="test-secret-key-" + uuid.uuid4().hex,
        base_url="http://portal.test",
    )
    accounts = AccountService(sessions)
    a = accounts.create_member_account(MEMBER_A)
    b = accounts.create_member_account(MEMBER_B)
    op = accounts.create_operator_account("beheer@zonnewijk.test", "Beheerder")
    for account, password in ((a, PASSWORD_A), (b, PASSWORD_B), (op, PASSWORD_OP)):
        accounts.use_link(accounts.issue_link(account.account_id, "invite"), "invite", password)
    _, api_token = accounts.create_api_token("tests")
    from .ledger_fixture import add_alert, add_run

    alert_a = add_alert(sessions, "zw004-inv1")
    alert_b = add_alert(sessions, "zw001-inv1", kind="device_offline")
    run_id = add_run(
        sessions, "2026-10", [("C0004", MEMBER_A, "zw004"), ("C0001", MEMBER_B, "zw001")]
    )
    app = create_app(config)
    by_member = {MEMBER_A: "zw004-inv1", MEMBER_B: "zw001-inv1"}
    for url in serve(app):
        yield PortalEnv(
            url=url,
            config=config,
            accounts=accounts,
            influx=influx,
            database_url=database_url,
            api_token=api_token,
            device_a=by_member[MEMBER_A],
            device_b=by_member[MEMBER_B],
            email_a=a.email,
            email_b=b.email,
            email_op=op.email,
            now=now,
            app=app,
            alert_a=alert_a,
            alert_b=alert_b,
            run_id=run_id,
            contract_a="C0004",
            contract_b="C0001",
        )
    influx.query(f'DROP DATABASE "{influx.database}"', database="", epoch=None)
    engine.dispose()


def _counter_at(device: SampleDevice, start: datetime, end: datetime) -> float:
    from collector.portal.sample_data import sample_power_w

    total = device.counter_start_wh
    ts = start
    while ts < end:
        total += sample_power_w(ts, device.kwp)
        ts += timedelta(hours=1)
    return total


def login(env: PortalEnv, email: str, password: str) -> httpx.Client:
    """An HTTP client logged in through the login form (with its CSRF token)."""
    client = httpx.Client(base_url=env.url, follow_redirects=False, timeout=30)
    page = client.get("/login")
    token = csrf_from(page.text)
    r = client.post("/login", data={"email": email, "password": password, "csrf_token": token})
    assert r.status_code == 303, r.text
    return client


def csrf_from(html: str) -> str:
    import re

    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)
