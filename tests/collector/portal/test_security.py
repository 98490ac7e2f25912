"""Attempts to read or change what is not one's own, all refused (issue 10's security list)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from collector.devtools.services import Influxd
from collector.faults.alerts import AlertService, AlertStatus
from collector.portal.accounts import MAX_FAILURES_PER_EMAIL, AccountService
from collector.portal.app import create_app
from collector.portal.config import PortalConfig
from collector.registry.store_sync import sync_fleet
from collector.simulator.fleet import generate_fleet
from collector.simulator.fleet_export import to_registry_fleet
from collector.store.db import make_engine, migrate, session_factory

from .conftest import PASSWORD_A, PASSWORD_B, PASSWORD_OP, PortalEnv, csrf_from, login, serve


@pytest.fixture
def member_a(portal_env: PortalEnv) -> Iterator[httpx.Client]:
    client = login(portal_env, portal_env.email_a, PASSWORD_A)
    yield client
    client.close()


def _api_paths_for_device(device: str) -> list[str]:
    day = datetime.now(UTC).date()
    start = (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        f"/api/v1/devices/{device}",
        f"/api/v1/devices/{device}/readings?start={start}&end={end}&interval=1h",
        f"/api/v1/devices/{device}/daily-energy?first={day - timedelta(days=3)}&last={day}",
    ]


def test_other_members_device_by_every_api_call(
    portal_env: PortalEnv, member_a: httpx.Client
) -> None:
    for path in _api_paths_for_device(portal_env.device_b):
        r = member_a.get(path)
        assert r.status_code == 404, (path, r.status_code, r.text)
    # The same calls on the member's own device work (the refusals are not an accident).
    for path in _api_paths_for_device(portal_env.device_a):
        assert member_a.get(path).status_code == 200, path
    listed = {d["device_id"] for d in member_a.get("/api/v1/devices").json()}
    assert listed == {portal_env.device_a}
    alerts = member_a.get("/api/v1/alerts", params={"status": "all"}).json()
    assert {a["device_id"] for a in alerts} == {portal_env.device_a}
    statements = member_a.get("/api/v1/statements").json()
    assert {s["contract_id"] for s in statements} == {portal_env.contract_a}
    me = member_a.get("/api/v1/me").json()
    assert me["operator"] is False and me["device_ids"] == [portal_env.device_a]


def test_other_members_data_by_every_page(portal_env: PortalEnv, member_a: httpx.Client) -> None:
    own = member_a.get(f"/statements/{portal_env.run_id}/{portal_env.contract_a}")
    assert own.status_code == 200 and "88" in own.text
    other = member_a.get(f"/statements/{portal_env.run_id}/{portal_env.contract_b}")
    assert other.status_code == 404
    listing = member_a.get("/statements").text
    assert portal_env.contract_a in listing and portal_env.contract_b not in listing
    overview = member_a.get("/overview").text
    assert "storing" in overview  # own fault alert in plain words
    assert "niet bereikbaar" not in overview  # B's offline alert stays B's
    alerts_page = member_a.get("/alerts").text
    assert "niet bereikbaar" not in alerts_page


OPERATOR_GETS = [
    "/operator",
    "/operator/alerts",
    "/operator/alerts?status=all",
    "/operator/settlements",
    "/operator/settlements/2026-10.1",
    "/operator/statements/2026-10.1/C0001",
    "/operator/members",
    "/operator/gateways",
    "/operator/gateways/gw-zw001/diagnostics",
]


def test_member_session_on_operator_routes(portal_env: PortalEnv, member_a: httpx.Client) -> None:
    for path in OPERATOR_GETS:
        assert member_a.get(path).status_code == 403, path
    token = csrf_from(member_a.get("/overview").text)
    posts = [
        f"/operator/alerts/{portal_env.alert_b}/ack",
        "/operator/members/M0002/invite",
        "/operator/accounts/1/deactivate",
        "/operator/gateways/gw-zw001/diagnostics",
    ]
    for path in posts:
        assert member_a.post(path, data={"csrf_token": token}).status_code == 403, path
    for path in (
        "/api/v1/fleet",
        "/api/v1/gateways",
        "/api/v1/settlement/runs",
        "/api/v1/settlement/runs/2026-10.1/statements",
    ):
        assert member_a.get(path).status_code == 403, path
    r = member_a.post(
        f"/api/v1/alerts/{portal_env.alert_b}/acknowledge",
        json={"note": "x"},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 403
    service = AlertService(portal_env.accounts._sessions)
    assert service.get(portal_env.alert_b).status == AlertStatus.OPEN
    assert portal_env.accounts.by_email("m0002@example.org") is None  # no invitation made


def test_logged_out_cookie_replayed(portal_env: PortalEnv) -> None:
    client = login(portal_env, portal_env.email_b, PASSWORD_B)
    cookie = client.cookies["zw_session"]
    assert client.get("/overview").status_code == 200
    token = csrf_from(client.get("/overview").text)
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    replay = httpx.Client(base_url=portal_env.url, cookies={"zw_session": cookie})
    r = replay.get("/overview")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert replay.get("/api/v1/me").status_code == 401
    assert replay.get(f"/api/v1/devices/{portal_env.device_b}").status_code == 401


def test_forms_without_csrf_token(portal_env: PortalEnv) -> None:
    fresh = httpx.Client(base_url=portal_env.url)
    r = fresh.post("/login", data={"email": portal_env.email_b, "password": PASSWORD_B})
    assert r.status_code == 403 and "zw_session" not in r.cookies
    op = login(portal_env, portal_env.email_op, PASSWORD_OP)
    assert op.post(f"/operator/alerts/{portal_env.alert_a}/ack", data={}).status_code == 403
    bad = op.post(f"/operator/alerts/{portal_env.alert_a}/ack", data={"csrf_token": "forged"})
    assert bad.status_code == 403
    service = AlertService(portal_env.accounts._sessions)
    assert service.get(portal_env.alert_a).status == AlertStatus.OPEN
    assert op.post("/logout", data={}).status_code == 403
    assert op.get("/operator").status_code == 200  # the session survived the forged logout
    # A cookie-authenticated API change needs the session's token in a header.
    r = op.post(f"/api/v1/alerts/{portal_env.alert_a}/acknowledge", json={})
    assert r.status_code == 403
    # Another session's token is not this session's.
    other = login(portal_env, portal_env.email_a, PASSWORD_A)
    foreign = csrf_from(other.get("/overview").text)
    assert (
        op.post(
            f"/operator/alerts/{portal_env.alert_a}/ack", data={"csrf_token": foreign}
        ).status_code
        == 403
    )


def test_api_tokens(portal_env: PortalEnv) -> None:
    anon = httpx.Client(base_url=portal_env.url)
    assert anon.get("/api/v1/fleet").status_code == 401
    bad = anon.get("/api/v1/fleet", headers={"Authorization": "Bearer zw_wrong"})
    assert bad.status_code == 401
    good = {"Authorization": f"Bearer {portal_env.api_token}"}
    fleet = anon.get("/api/v1/fleet", headers=good)
    assert fleet.status_code == 200 and len(fleet.json()) == 6
    token_id, token = portal_env.accounts.create_api_token("short-lived")
    assert (
        anon.get("/api/v1/fleet", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    portal_env.accounts.revoke_api_token(token_id)
    assert (
        anon.get("/api/v1/fleet", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )


def test_invite_link_is_single_use(portal_env: PortalEnv) -> None:
    account = portal_env.accounts.create_member_account("M0003")
    token = portal_env.accounts.issue_link(account.account_id, "invite")
    client = httpx.Client(base_url=portal_env.url)
    page = client.get(f"/invite/{token}")
    assert page.status_code == 200
    data = {
        "password": "een-goed-wachtwoord",
        "repeat": "een-goed-wachtwoord",
        "csrf_token": csrf_from(page.text),
    }
    assert client.post(f"/invite/{token}", data=data).status_code == 303
    again = httpx.Client(base_url=portal_env.url)
    assert again.get(f"/invite/{token}").status_code == 404
    assert again.post(f"/invite/{token}", data=data).status_code in (403, 404)


def test_hundred_wrong_passwords(influxd: Influxd, tmp_path: object) -> None:
    """Its own store: the failures it records would lock out the other tests' logins."""
    database_url = f"sqlite:///{tmp_path}/limit.sqlite3"
    engine = make_engine(database_url)
    migrate(engine)
    sessions = session_factory(engine)
    with sessions.begin() as session:
        sync_fleet(session, to_registry_fleet(generate_fleet(2, 1)), source="test")
    accounts = AccountService(sessions)
    account = accounts.create_member_account("M0001")
    accounts.use_link(
        accounts.issue_link(account.account_id, "invite"), "invite", "het-echte-wachtwoord"
    )
    config = PortalConfig(
        database_url=database_url,
        influx_url=influxd.url,
        influx_db="unused",
        secret_key="k" * 40 + uuid.uuid4().hex,
    )
    for url in serve(create_app(config)):
        client = httpx.Client(base_url=url)
        token = csrf_from(client.get("/login").text)
        codes = []
        for i in range(100):
            r = client.post(
                "/login",
                data={"email": account.email, "password": f"fout-{i}", "csrf_token": token},
            )
            codes.append(r.status_code)
            assert "zw_session" not in r.cookies
        assert codes[:MAX_FAILURES_PER_EMAIL] == [401] * MAX_FAILURES_PER_EMAIL
        assert set(codes[MAX_FAILURES_PER_EMAIL:]) == {429}
        # Even the right password is refused while the limit holds.
        r = client.post(
            "/login",
            data={"email": account.email, "password": "het-echte-wachtwoord", "csrf_token": token},
        )
        assert r.status_code == 429 and "zw_session" not in r.cookies
    # After the window the right password works again (15 minutes later).
    later = datetime.now(UTC) + timedelta(minutes=16)
    _token, ws = accounts.login(
        account.email, "het-echte-wachtwoord", remote="127.0.0.1", now=later
    )
    assert ws.account.account_id == account.account_id
    engine.dispose()


def test_cookie_flags(portal_env: PortalEnv) -> None:
    client = httpx.Client(base_url=portal_env.url)
    page = client.get("/login")
    r = client.post(
        "/login",
        data={
            "email": portal_env.email_b,
            "password": PASSWORD_B,
            "csrf_token": csrf_from(page.text),
        },
    )
    header = r.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=lax" in header
    assert "secure" not in header  # plain HTTP in this test
    # Behind TLS (a proxy saying so from a trusted address) the cookie is Secure.
    client2 = httpx.Client(base_url=portal_env.url, headers={"X-Forwarded-Proto": "https"})
    page = client2.get("/login")
    r = client2.post(
        "/login",
        data={
            "email": portal_env.email_b,
            "password": PASSWORD_B,
            "csrf_token": csrf_from(page.text),
        },
    )
    assert "secure" in r.headers["set-cookie"].lower()
    assert "default-src 'self'" in r.headers["content-security-policy"]


def test_statement_pdf_only_for_own_contract(portal_env: PortalEnv, member_a: httpx.Client) -> None:
    own = member_a.get(f"/statements/{portal_env.run_id}/{portal_env.contract_a}/pdf")
    assert own.status_code == 200, own.text[:500]
    assert own.content.startswith(b"%PDF") and "attachment" in own.headers["content-disposition"]
    other = member_a.get(f"/statements/{portal_env.run_id}/{portal_env.contract_b}/pdf")
    assert other.status_code == 404
    assert (
        member_a.get(
            f"/operator/statements/{portal_env.run_id}/{portal_env.contract_b}/pdf"
        ).status_code
        == 403
    )


def test_new_tenant_does_not_see_the_previous_history(portal_env: PortalEnv) -> None:
    """A member who starts renting a roof sees its device only from their first day."""
    from collector.store.models import ContractRow

    from .conftest import PASSWORD_A

    today = datetime.now(UTC).date()
    start = today - timedelta(days=10)
    sessions = portal_env.accounts._sessions
    with sessions.begin() as session:
        session.add(
            ContractRow(
                contract_id="C-NEW",
                member_id="M0006",
                site_id="zw001",
                start_date=start,
                end_date=None,
                tariff_plan_id="huur-basis",
                year_anchor=None,
            )
        )
    account = portal_env.accounts.create_member_account("M0006")
    portal_env.accounts.use_link(
        portal_env.accounts.issue_link(account.account_id, "invite"), "invite", PASSWORD_A
    )
    client = login(portal_env, account.email, PASSWORD_A)
    device = portal_env.device_b  # zw001-inv1, on the roof of member B since 2021
    days = client.get(
        f"/api/v1/devices/{device}/daily-energy",
        params={"first": (today - timedelta(days=40)).isoformat(), "last": today.isoformat()},
    ).json()
    assert days and min(d["day"] for d in days) == start.isoformat()
    readings = client.get(
        f"/api/v1/devices/{device}/readings",
        params={
            "start": (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "end": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "interval": "1d",
        },
    ).json()
    from collector.portal.production import local_midnight_utc

    first_allowed = local_midnight_utc(start)
    assert readings
    assert (
        min(datetime.fromisoformat(r["time"].replace("Z", "+00:00")) for r in readings)
        >= first_allowed
    )
    # Member B, renting since 2021, sees the days before.
    b = login(portal_env, portal_env.email_b, PASSWORD_B)
    b_days = b.get(
        f"/api/v1/devices/{device}/daily-energy",
        params={"first": (today - timedelta(days=40)).isoformat(), "last": today.isoformat()},
    ).json()
    assert min(d["day"] for d in b_days) < start.isoformat()
