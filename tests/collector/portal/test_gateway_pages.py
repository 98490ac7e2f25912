"""The operator's gateway pages (issue 21): versions, channels and configuration from real
statuses in InfluxDB, diagnostics bundles from the store; members and forms without a valid
CSRF token refused; a request to a gateway that stays silent answered within the timeout."""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import replace
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select

from collector.devtools.services import Mosquitto
from collector.ingest.process import process_message
from collector.portal.app import create_app
from collector.portal.serving import serve_in_thread
from collector.remote.delivery import BrokerLogin
from collector.remote.diagnostics import record_diagnostics
from collector.store.gateway_models import GatewayDiagnosticsRow, GatewayKeyRow
from zonnewijk_wire import status_topic
from zonnewijk_wire.control import DiagnosticsBundle

from .conftest import PASSWORD_A, PASSWORD_OP, PortalEnv, csrf_from, login


def _status(env: PortalEnv, gw: str, at: datetime, **fields: object) -> None:
    body = {"v": 1, "gateway_id": gw, "ts": at.isoformat(), "state": "online", **fields}
    processed = process_message(status_topic(gw), json.dumps(body).encode(), now=at)
    assert not processed.rejections
    env.influx.write_lines(processed.lines)


def _row(html: str, gateway_id: str) -> str:
    m = re.search(rf'<tr id="gw-{re.escape(gateway_id)}".*?</tr>', html, re.S)
    assert m, f"no row for {gateway_id}"
    return m.group(0)


def _sessions(env: PortalEnv):  # type: ignore[no-untyped-def]
    return env.accounts._sessions


def _bundle(gw: str, at: datetime, **fields: object) -> DiagnosticsBundle:
    return DiagnosticsBundle.model_validate(
        {
            "gateway_id": gw,
            "ts": at,
            "package_version": "1.1-1",
            "channel": "canary",
            "config_version": 2,
            "uptime_s": 93784.0,
            "devices": [
                {
                    "device_id": "zw001-inv1",
                    "profile": "sunspec",
                    "address": "192.0.2.5:502/1",
                    "last_result": "ok <b>1200 W</b>",
                    "polls": 41,
                    "failures": 1,
                    "manufacturer": "SMA",
                    "serial": "SN<9>",
                }
            ],
            "spool": {"depth": 3, "max_readings": 50000, "size_bytes": 123456789},
            "clock": {"timesyncd_synchronized": True, "utc_now": at.isoformat()},
            "disk": {"total_bytes": 32_000_000_000, "free_bytes": 21_000_000_000},
            "memory": {"total_bytes": 1_000_000_000, "available_bytes": 600_000_000},
            "load": [0.12, 0.3, 0.25],
            "log": ["01:00:00 INFO started", "01:00:05 ERROR <script>alert(1)</script>"],
            **fields,
        }
    )


def test_operator_sees_each_gateways_version_channel_config_and_diagnostics(
    portal_env: PortalEnv,
) -> None:
    at = portal_env.now - timedelta(minutes=10)
    _status(portal_env, "gw-zw001", at - timedelta(days=3), package_version="1.0-1",
            channel="canary", config_version=1)  # fmt: skip
    _status(portal_env, "gw-zw001", at, package_version="1.1-1", channel="canary",
            config_version=2)  # fmt: skip
    _status(portal_env, "gw-zw002", at, package_version="1.0-1", channel="stable",
            config_version=2, config_refused="3: none of its devices answered")  # fmt: skip
    with _sessions(portal_env).begin() as session:
        session.add(GatewayKeyRow(gateway_id="gw-zw001", command_key="ab" * 32, issued_at=at))
        stored = record_diagnostics(
            session, "gw-zw001", requested_at=at, requested_by=portal_env.email_op,
            bundle=_bundle("gw-zw001", at), received_at=at + timedelta(seconds=2),
        )  # fmt: skip
    op = login(portal_env, portal_env.email_op, PASSWORD_OP)
    r = op.get("/operator/gateways")
    assert r.status_code == 200
    assert 'href="/operator/gateways"' in op.get("/operator").text  # in the operator's menu
    first = _row(r.text, "gw-zw001")
    assert '<td class="package">1.1-1</td>' in first
    assert '<td class="channel">canary</td>' in first
    assert re.search(r'<td class="config">2\b', first)
    assert f'/operator/gateways/gw-zw001/diagnostics?id={stored.id}"' in first
    assert "<td>zw001</td>" in first  # the site
    assert "Diagnostiek opvragen" in first  # enrolled: the button is there
    second = _row(r.text, "gw-zw002")
    assert "geweigerd: 3: none of its devices answered" in second
    assert "niet aangemeld" in second and "Diagnostiek opvragen" not in second
    assert "nog geen" in second  # no diagnostics yet
    # every registry gateway is listed, also those that never sent a status
    assert len(re.findall(r'<tr id="gw-', r.text)) == 6
    assert "canary 1.1-1 × 1" in r.text and "stable 1.0-1 × 1" in r.text


def test_the_bundle_page_is_readable_and_escapes_what_the_gateway_sent(
    portal_env: PortalEnv,
) -> None:
    at = portal_env.now - timedelta(minutes=5)
    with _sessions(portal_env).begin() as session:
        answered = record_diagnostics(
            session, "gw-zw003", requested_at=at, requested_by="cli",
            bundle=_bundle("gw-zw003", at), received_at=at,
        )  # fmt: skip
        silent = record_diagnostics(
            session, "gw-zw003", requested_at=at + timedelta(minutes=1), requested_by="cli",
            bundle=None, received_at=None,
        )  # fmt: skip
    op = login(portal_env, portal_env.email_op, PASSWORD_OP)
    page = op.get("/operator/gateways/gw-zw003/diagnostics").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>" not in page
    assert "ok &lt;b&gt;1200 W&lt;/b&gt;" in page and "SN&lt;9&gt;" in page
    assert "117.7 MiB" in page  # spool size
    assert "19.6 GiB" in page  # free disk
    assert "1 d 2 h 3 min" in page  # uptime
    assert "41 / 1" in page  # polls / failures
    assert "geen antwoord" in page  # the newer, unanswered request in the history
    assert "notice" not in page  # the newest answered bundle is shown, no complaint
    notice = op.get(f"/operator/gateways/gw-zw003/diagnostics?id={silent.id}").text
    assert "heeft niet binnen 20 s geantwoord" in notice
    assert op.get(f"/operator/gateways/gw-zw003/diagnostics?id={answered.id}").status_code == 200
    assert op.get(f"/operator/gateways/gw-zw004/diagnostics?id={answered.id}").status_code == 404
    assert op.get("/operator/gateways/gw-zw003/diagnostics?id=999999").status_code == 404
    assert op.get("/operator/gateways/gw-nowhere/diagnostics").status_code == 404
    assert op.get("/operator/gateways/..%2Fetc/diagnostics").status_code == 404
    empty = op.get("/operator/gateways/gw-zw005/diagnostics").text
    assert "nog geen diagnose ontvangen" in empty


def _requests_of(env: PortalEnv, gateway_id: str) -> int:
    with _sessions(env)() as session:
        rows = session.scalars(
            select(GatewayDiagnosticsRow).where(GatewayDiagnosticsRow.gateway_id == gateway_id)
        ).all()
    return len(rows)


def test_members_anonymous_and_forged_forms_are_refused(portal_env: PortalEnv) -> None:
    before = _requests_of(portal_env, "gw-zw001")
    member = login(portal_env, portal_env.email_a, PASSWORD_A)
    token = csrf_from(member.get("/overview").text)
    assert member.get("/operator/gateways").status_code == 403
    assert member.get("/operator/gateways/gw-zw001/diagnostics").status_code == 403
    r = member.post("/operator/gateways/gw-zw001/diagnostics", data={"csrf_token": token})
    assert r.status_code == 403
    anon = httpx.Client(base_url=portal_env.url)
    r = anon.get("/operator/gateways")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    r = anon.post("/operator/gateways/gw-zw001/diagnostics", data={"csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == "/login"
    op = login(portal_env, portal_env.email_op, PASSWORD_OP)
    assert op.post("/operator/gateways/gw-zw001/diagnostics", data={}).status_code == 403
    forged = op.post("/operator/gateways/gw-zw001/diagnostics", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    foreign = op.post("/operator/gateways/gw-zw001/diagnostics", data={"csrf_token": token})
    assert foreign.status_code == 403  # the member's token is not the operator's
    assert _requests_of(portal_env, "gw-zw001") == before  # nothing was asked


def test_the_pages_in_english(portal_env: PortalEnv) -> None:
    op = login(portal_env, portal_env.email_op, PASSWORD_OP)
    op.cookies.set("zw_lang", "en")
    page = op.get("/operator/gateways").text
    assert "Gateways: software and diagnostics" in page and "Request diagnostics" in page
    assert "Package version" in page and "Diagnostiek" not in page


def test_without_a_broker_the_page_says_so(portal_env: PortalEnv) -> None:
    op = login(portal_env, portal_env.email_op, PASSWORD_OP)
    token = csrf_from(op.get("/operator/gateways").text)
    r = op.post("/operator/gateways/gw-zw001/diagnostics", data={"csrf_token": token})
    assert r.status_code == 200
    assert "geen verbinding met de broker ingesteld" in r.text
    unknown = op.post("/operator/gateways/gw-nowhere/diagnostics", data={"csrf_token": token})
    assert unknown.status_code == 404


def test_a_silent_gateway_is_reported_within_the_timeout(
    portal_env: PortalEnv, mosquitto: Mosquitto
) -> None:
    config = replace(
        portal_env.config,
        fleet_broker=BrokerLogin(host="127.0.0.1", port=mosquitto.port),
        diagnostics_timeout_s=4.0,
    )
    with _sessions(portal_env).begin() as session:
        session.add(
            GatewayKeyRow(gateway_id="gw-zw006", command_key="cd" * 32, issued_at=portal_env.now)
        )
    with serve_in_thread(create_app(config, influx=portal_env.influx)) as url:
        env = replace(portal_env, url=url)
        op = login(env, env.email_op, PASSWORD_OP)
        token = csrf_from(op.get("/operator/gateways").text)
        first: list[httpx.Response] = []
        started = time.monotonic()
        asking = threading.Thread(
            target=lambda: first.append(
                op.post("/operator/gateways/gw-zw006/diagnostics", data={"csrf_token": token})
            )
        )
        asking.start()
        time.sleep(0.5)
        # a second request while the first waits: told to try again, not queued for long
        other = login(env, env.email_op, PASSWORD_OP)
        second_token = csrf_from(other.get("/operator/gateways").text)
        busy = other.post(
            "/operator/gateways/gw-zw006/diagnostics", data={"csrf_token": second_token}
        )
        assert busy.status_code == 200 and "er loopt al een diagnoseverzoek" in busy.text
        asking.join(10)
        assert 4 <= time.monotonic() - started < 8
        [r] = first
        assert r.status_code == 303
        assert r.headers["location"].startswith("/operator/gateways/gw-zw006/diagnostics?id=")
        page = op.get(r.headers["location"]).text
        assert "Gateway gw-zw006 heeft niet binnen 4 s geantwoord" in page
        assert "geen antwoord" in page and env.email_op in page
        assert _requests_of(env, "gw-zw006") == 1  # the busy one sent nothing
        # a gateway that was never enrolled: nothing is sent, the page says why
        r = op.post("/operator/gateways/gw-zw005/diagnostics", data={"csrf_token": token})
        assert r.status_code == 200 and "not enrolled" in r.text
