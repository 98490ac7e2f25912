"""Diagnostics requests and bundles in the store (``gateway_diagnostics``, migration 0007), on a
migrated SQLite database; and a request to a gateway that is not there, over a real Mosquitto."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session, sessionmaker

from collector.devtools.services import Mosquitto
from collector.remote.delivery import BrokerLogin, DeliveryError
from collector.remote.diagnostics import (
    ask_and_store,
    diagnostics_by_id,
    diagnostics_history,
    latest_answered,
    record_diagnostics,
)
from collector.store.db import current_revision, downgrade, migrate, session_factory
from collector.store.gateway_models import GatewayDiagnosticsRow, GatewayKeyRow
from collector.store.testing import temporary_database
from zonnewijk_wire.control import DiagnosticsBundle

T0 = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


@pytest.fixture
def engine() -> Iterator[Engine]:
    with temporary_database("sqlite") as engine:
        yield engine


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return session_factory(engine)


def bundle(gateway_id: str, at: datetime, **fields: object) -> DiagnosticsBundle:
    return DiagnosticsBundle.model_validate(
        {"gateway_id": gateway_id, "ts": at, "package_version": "1.2-1", **fields}
    )


def test_migration_0007_adds_and_removes_the_table(engine: Engine) -> None:
    assert current_revision(engine) == "0007_gateway_diagnostics"
    columns = {c["name"] for c in inspect(engine).get_columns("gateway_diagnostics")}
    assert columns == {"id", "gateway_id", "requested_at", "received_at", "requested_by", "bundle"}
    assert downgrade(engine, "0006_meter_consents") == "0006_meter_consents"
    assert "gateway_diagnostics" not in inspect(engine).get_table_names()
    assert migrate(engine) == "0007_gateway_diagnostics"
    assert "gateway_diagnostics" in inspect(engine).get_table_names()


def test_requests_answers_and_silences_are_kept(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        first = record_diagnostics(
            session, "gw-a", requested_at=T0, requested_by="beheer@zonnewijk.test",
            bundle=bundle("gw-a", T0, log=["line <1>"]), received_at=T0 + timedelta(seconds=2),
        )  # fmt: skip
        silent = record_diagnostics(
            session, "gw-a", requested_at=T0 + timedelta(hours=1), requested_by="cli",
            bundle=None, received_at=T0 + timedelta(hours=1),
        )  # fmt: skip
        record_diagnostics(
            session, "gw-b", requested_at=T0, requested_by="cli",
            bundle=bundle("gw-b", T0), received_at=T0,
        )  # fmt: skip
    assert silent.received_at is None and not silent.answered  # no answer: no receipt time
    with sessions() as session:
        history = diagnostics_history(session, "gw-a")
        assert [d.id for d in history] == [silent.id, first.id]  # newest first
        assert history[1].document is not None
        assert history[1].document["log"] == ["line <1>"]
        assert history[1].document["package_version"] == "1.2-1"
        assert history[1].received_at == T0 + timedelta(seconds=2)
        latest = latest_answered(session)
        assert set(latest) == {"gw-a", "gw-b"}
        assert latest["gw-a"].id == first.id  # the newer request went unanswered
        assert diagnostics_by_id(session, "gw-a", first.id) == history[1]
        assert diagnostics_by_id(session, "gw-b", first.id) is None  # not gw-b's


def test_a_bundle_of_another_gateway_is_refused(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session, pytest.raises(ValueError, match="gw-b cannot be stored"):
        record_diagnostics(
            session, "gw-a", requested_at=T0, requested_by="cli",
            bundle=bundle("gw-b", T0), received_at=T0,
        )  # fmt: skip
    with sessions() as session:
        assert session.scalars(select(GatewayDiagnosticsRow)).all() == []


def test_a_silent_gateway_is_stored_as_unanswered_within_the_timeout(
    sessions: sessionmaker[Session], mosquitto: Mosquitto
) -> None:
    login = BrokerLogin(host="127.0.0.1", port=mosquitto.port)
    with pytest.raises(DeliveryError, match="not enrolled"):
        ask_and_store(sessions, login, "gw-x", requested_by="cli", timeout_s=1)
    with sessions.begin() as session:
        session.add(GatewayKeyRow(gateway_id="gw-x", command_key="ab" * 32, issued_at=T0))
    started = time.monotonic()
    stored = ask_and_store(sessions, login, "gw-x", requested_by="cli", timeout_s=1.0)
    assert time.monotonic() - started < 4
    assert not stored.answered and stored.requested_by == "cli"
    with sessions() as session:
        assert [d.id for d in diagnostics_history(session, "gw-x")] == [stored.id]
    # an unreachable broker: nothing sent, nothing stored
    with pytest.raises(DeliveryError, match="cannot reach the broker"):
        ask_and_store(
            sessions, BrokerLogin(host="127.0.0.1", port=1), "gw-x", requested_by="cli",
            timeout_s=1,
        )  # fmt: skip
    with sessions() as session:
        assert len(diagnostics_history(session, "gw-x")) == 1
