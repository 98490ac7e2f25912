"""Fleet fixtures (enrolment and remote configuration tests): a registry, a TLS Mosquitto with
authentication on, a private CA, and the enrolment endpoint served over HTTPS by uvicorn (the
real parts a Pi talks to). A conftest imports :func:`fleet_server` to offer it."""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy.orm import Session, sessionmaker

from collector.broker.security import add_collector, broker_auth_config
from collector.devtools.pki import Pki, make_pki
from collector.devtools.services import Mosquitto
from collector.enrolment.http import create_enrolment_app
from collector.enrolment.service import BrokerSetup, EnrolmentService
from collector.portal.serving import serve_in_thread
from collector.registry.fleet_file import load_fleet_file
from collector.registry.store_sync import sync_fleet
from collector.store.db import session_factory
from collector.store.testing import temporary_database
from gateway_firmware.config import load_config
from gateway_firmware.service import GatewayService

FLEET = Path(__file__).resolve().parents[2] / "config" / "fleet.small.yaml"


class Clock:
    """A settable UTC clock (codes expire; tests do not wait two days)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class FleetServer:
    url: str
    database_url: str
    sessions: sessionmaker[Session]
    service: EnrolmentService
    broker: Mosquitto
    pki: Pki
    collector_password: str
    ops_password: str
    clock: Clock


@pytest.fixture
def fleet_server() -> Iterator[FleetServer]:
    broker = Mosquitto.create(allow_anonymous=False)
    d = broker.directory
    pki = make_pki(d / "pki")
    pw, acl = d / "passwd", d / "zonnewijk.acl"
    collector = add_collector("collector-1", password_file=pw, acl_file=acl)
    ops = add_collector("collector-ops", password_file=pw, acl_file=acl)
    broker.extra_config = "\n".join(
        [
            f"certfile {pki.server_cert}",
            f"keyfile {pki.server_key}",
            broker_auth_config(pw, acl),
            "use_username_as_clientid true",
        ]
    )
    with temporary_database("sqlite") as engine, broker:
        sessions = session_factory(engine)
        with sessions() as session, session.begin():
            sync_fleet(session, load_fleet_file(FLEET))
        assert broker.process is not None
        clock = Clock()
        service = EnrolmentService(
            sessions,
            BrokerSetup(
                host="127.0.0.1",
                port=broker.port,
                password_file=pw,
                acl_file=acl,
                ca_file=pki.ca_cert,
                reload_command=f"kill -HUP {broker.process.pid}",
            ),
            clock=clock,
        )
        app = create_enrolment_app(service)
        with serve_in_thread(app, tls_cert=pki.server_cert, tls_key=pki.server_key) as url:
            yield FleetServer(
                url=url,
                database_url=engine.url.render_as_string(hide_password=False),
                sessions=sessions,
                service=service,
                broker=broker,
                pki=pki,
                collector_password=collector.password,
                ops_password=ops.password,
                clock=clock,
            )


class Subscriber:
    """A TLS MQTT client that records what arrives on its filters, and how connecting went."""

    def __init__(self, port: int, ca: Path, username: str, password: str, *filters: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.refused = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)
        self.client.tls_set(ca_certs=str(ca), cert_reqs=ssl.CERT_REQUIRED)
        self._filters = filters
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.on_message = lambda c, u, m: self.messages.append((m.topic, bytes(m.payload)))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_connect(self, c: object, u: object, f: object, rc: object, p: object) -> None:
        self.refused = bool(getattr(rc, "is_failure", False))
        if not self.refused and self._filters:
            self.client.subscribe([(f, 1) for f in self._filters])
        self.connected.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def wait_for(predicate: Callable[[], Any], what: str, timeout_s: float = 20.0) -> Any:
    """``predicate()`` once it is truthy, polled every 0.1 s; AssertionError after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Running:
    """An enrolled gateway's service running in a thread from its config file."""

    def __init__(self, config_path: Path) -> None:
        self.service = GatewayService(load_config(config_path))
        self.thread = threading.Thread(target=self.service.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.service.request_stop()
        self.thread.join(15)
        assert not self.thread.is_alive()
