"""What enrolment refuses, each with its reason, counted and logged, against the real HTTPS
endpoint: expired, unknown and malformed codes, a server the Pi does not trust, a broker that
cannot be reloaded (the code then stays valid), and two Pis racing with one code."""

from __future__ import annotations

import dataclasses
import ssl
import threading
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fleet_fixtures import FleetServer
from sqlalchemy import select

from collector.enrolment.service import EnrolmentError, EnrolmentRefusedError
from collector.remote.draft import Transport
from collector.store.gateway_models import EnrolmentEventRow
from gateway_firmware.cli import main as zonnewijk_gateway
from zonnewijk_wire.enrolment import (
    ENROL_PATH,
    EnrolmentRequest,
    display_code,
    normalise_code,
)

TCP = Transport(host="192.0.2.10")


def post(fleet_server: FleetServer, body: object) -> httpx.Response:
    return httpx.post(
        fleet_server.url + ENROL_PATH,
        json=body,
        verify=ssl.create_default_context(cafile=fleet_server.pki.ca_cert),
        timeout=10,
    )


def refusals(fleet_server: FleetServer) -> list[str | None]:
    with fleet_server.sessions() as session:
        return list(
            session.scalars(
                select(EnrolmentEventRow.reason)
                .where(EnrolmentEventRow.event == "refused")
                .order_by(EnrolmentEventRow.id)
            )
        )


def test_expired_unknown_and_malformed_codes(fleet_server: FleetServer) -> None:
    created = fleet_server.service.create_code(
        "S002", created_by="test", lifetime=timedelta(hours=1), transport=TCP
    )
    fleet_server.clock.now += timedelta(hours=1, seconds=1)
    r = post(fleet_server, {"code": created.display})
    assert (r.status_code, r.json()["reason"]) == (410, "expired")
    assert "expired" in r.json()["detail"]
    unknown = "0" * 16
    r = post(fleet_server, {"code": unknown})
    assert (r.status_code, r.json()["reason"]) == (404, "unknown_code")
    r = post(fleet_server, {"code": "not-a-code"})
    assert (r.status_code, r.json()["reason"]) == (400, "malformed_code")
    r = post(fleet_server, {"code": created.code, "admin": True})  # unknown keys are refused
    assert (r.status_code, r.json()["reason"]) == (400, "malformed_request")
    assert refusals(fleet_server) == ["expired", "unknown_code", "malformed_code"]
    assert fleet_server.service.refused == {
        "expired": 1, "unknown_code": 1, "malformed_code": 1, "malformed_request": 1,
    }  # fmt: skip
    # nothing was issued: no gateway on the broker
    assert "gw-s002" not in fleet_server.service.broker.acl_file.read_text()


def test_the_pi_refuses_a_server_it_does_not_trust(
    fleet_server: FleetServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = fleet_server.service.create_code("S002", created_by="test", transport=TCP)
    rc = zonnewijk_gateway(
        ["enrol", fleet_server.url, created.display, "--ca-file",
         str(fleet_server.pki.other_ca_cert), "--config-dir", str(tmp_path / "etc"),
         "--state-dir", str(tmp_path / "var"), "--no-restart"]
    )  # fmt: skip
    assert rc == 1
    assert "certificate is not trusted" in capsys.readouterr().err
    assert not (tmp_path / "etc").exists()
    # the code never reached the server: it still works
    grant = fleet_server.service.redeem(EnrolmentRequest(code=created.code), remote="test")
    assert grant.gateway_id == "gw-s002"
    # plain HTTP is never used for enrolment
    assert zonnewijk_gateway(["enrol", "http://127.0.0.1:1", created.display]) == 1
    assert "HTTPS only" in capsys.readouterr().err


def test_a_failed_broker_reload_leaves_the_code_valid(fleet_server: FleetServer) -> None:
    created = fleet_server.service.create_code("S002", created_by="test", transport=TCP)
    good = fleet_server.service.broker
    fleet_server.service.broker = dataclasses.replace(good, reload_command="false")
    r = post(fleet_server, {"code": created.code})
    assert (r.status_code, r.json()["reason"]) == (503, "credentials_unavailable")
    assert "try again" in r.json()["detail"]
    fleet_server.service.broker = good
    r = post(fleet_server, {"code": created.code.lower()})  # any case, as typed
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.json()["gateway_id"] == "gw-s002"


def test_two_pis_racing_with_one_code_cannot_both_win(fleet_server: FleetServer) -> None:
    created = fleet_server.service.create_code("S002", created_by="test", transport=TCP)
    results: list[str] = []
    barrier = threading.Barrier(4)

    def redeem() -> None:
        barrier.wait()
        try:
            fleet_server.service.redeem(EnrolmentRequest(code=created.code), remote="race")
            results.append("won")
        except EnrolmentRefusedError as exc:
            results.append(exc.refusal.reason)

    threads = [threading.Thread(target=redeem) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["already_used"] * 3 + ["won"]


def test_codes_need_a_known_site_and_a_configuration(fleet_server: FleetServer) -> None:
    service = fleet_server.service
    with pytest.raises(EnrolmentError, match="not in the registry"):
        service.create_code("S999", created_by="test", transport=TCP)
    with pytest.raises(EnrolmentError, match="no configuration yet"):
        service.create_code("S002", created_by="test")
    with pytest.raises(EnrolmentError, match="between 5 minutes and 30 days"):
        service.create_code("S002", created_by="test", transport=TCP, lifetime=timedelta(days=31))
    with pytest.raises(EnrolmentError, match=r"devices\.0\.profile: 'no-such' is not a profile"):
        service.create_code(
            "S002",
            created_by="test",
            settings={"devices": [{"device_id": "inv-s002", "profile": "no-such", "host": "h"}]},
        )
    with pytest.raises(EnrolmentError, match=r"'inv-s001-b' belongs to gateway gw-s001"):
        service.create_code(
            "S002",
            created_by="test",
            settings={"devices": [{"device_id": "inv-s001-b", "host": "h"}]},
        )


@pytest.mark.parametrize(
    ("typed", "canonical"),
    [
        ("7KQ4-M2XD-9V0C-HT3R", "7KQ4M2XD9V0CHT3R"),
        ("7kq4 m2xd 9v0c ht3r", "7KQ4M2XD9V0CHT3R"),
        ("7KQ4-M2XD-9VOC-HT3R", "7KQ4M2XD9V0CHT3R"),  # O read as 0 (Crockford)
        ("7KQ4-M2XD-9V0C-HT3", None),  # one short
        ("7KQ4-M2XD-9V0C-HT3U", None),  # U is not in Crockford's alphabet
    ],
)
def test_codes_are_read_as_crockford_base32(typed: str, canonical: str | None) -> None:
    assert normalise_code(typed) == canonical
    if canonical is not None:
        assert normalise_code(display_code(canonical)) == canonical
