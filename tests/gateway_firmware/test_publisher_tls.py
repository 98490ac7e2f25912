"""The publisher over TLS with a client certificate and a per-gateway password, against a real
Mosquitto with a private CA made by ``openssl``."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.devtools.services import Mosquitto
from gateway_firmware.config import MqttConfig, SpoolConfig, TlsConfig
from gateway_firmware.publisher import Publisher
from gateway_firmware.spool import Spool
from zonnewijk_wire import Reading

pytestmark = pytest.mark.skipif(
    shutil.which("openssl") is None or shutil.which("mosquitto_passwd") is None,
    reason="needs openssl and mosquitto_passwd (Debian: openssl, mosquitto)",
)


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass
class Pki:
    ca: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def make_pki(d: Path) -> Pki:
    """A CA, a server certificate for 127.0.0.1, a client certificate, and an unrelated CA."""
    for name in ("ca", "other-ca"):
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
            "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=zonnewijk {name}",
            cwd=d,
        )  # fmt: skip
    for name, extra in (("server", "subjectAltName=IP:127.0.0.1"), ("client", "")):
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d,
        )  # fmt: skip
        ext = ["-extfile", f"{name}.ext"] if extra else []
        if extra:
            (d / f"{name}.ext").write_text(extra + "\n")
        _openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", *ext, cwd=d,
        )  # fmt: skip
    return Pki(d / "ca.crt", d / "client.crt", d / "client.key", d / "other-ca.crt")


@pytest.fixture
def tls_broker() -> Iterator[tuple[Mosquitto, Pki]]:
    broker = Mosquitto.create(allow_anonymous=False)
    d = broker.directory
    pki = make_pki(d)
    subprocess.run(
        ["mosquitto_passwd", "-c", "-b", str(d / "passwd"), "gw-tls", "s3cret-gateway"],
        check=True,
        capture_output=True,
    )
    broker.extra_config = "\n".join(
        [
            f"cafile {d / 'ca.crt'}",
            f"certfile {d / 'server.crt'}",
            f"keyfile {d / 'server.key'}",
            "require_certificate true",
            f"password_file {d / 'passwd'}",
        ]
    )
    with broker:
        yield broker, pki


def publisher(tmp: Path, port: int, spool: Spool, **mqtt: object) -> Publisher:
    config = MqttConfig.model_validate(
        {"host": "127.0.0.1", "port": port, "reconnect_min_s": 1, "reconnect_max_s": 1, **mqtt}
    )
    return Publisher(
        gateway_id="gw-tls",
        mqtt_config=config,
        spool=spool,
        spool_config=SpoolConfig(path=spool.path),
        firmware_version="t",
    )


def run_until(pub: Publisher, done: object, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(done) and done():
            return True
        pub.wait(min(pub.step(), 0.05))
    return False


def test_tls_with_client_certificate_and_password(
    tmp_path: Path, tls_broker: tuple[Mosquitto, Pki]
) -> None:
    broker, pki = tls_broker
    tls = TlsConfig(ca_file=pki.ca, cert_file=pki.client_cert, key_file=pki.client_key)
    with Spool(tmp_path / "s.db") as spool:
        reading = Reading(device_id="inv-1", ts=datetime.now(UTC), ac_energy_wh=5.0)
        spool.append([reading])
        pub = publisher(
            tmp_path, broker.port, spool, tls=tls, username="gw-tls", password="s3cret-gateway"
        )
        pub.start()
        try:
            assert run_until(pub, lambda: spool.depth() == 0), pub.stats
            assert pub.stats.connects == 1
        finally:
            pub.stop()


@pytest.mark.parametrize("mistake", ["wrong_password", "wrong_ca"])
def test_refused_connections_keep_readings(
    tmp_path: Path, tls_broker: tuple[Mosquitto, Pki], mistake: str
) -> None:
    broker, pki = tls_broker
    ca = pki.other_ca if mistake == "wrong_ca" else pki.ca
    tls = TlsConfig(ca_file=ca, cert_file=pki.client_cert, key_file=pki.client_key)
    password = "wrong" if mistake == "wrong_password" else "s3cret-gateway"
    with Spool(tmp_path / "s.db") as spool:
        spool.append([Reading(device_id="inv-1", ts=datetime.now(UTC), ac_energy_wh=5.0)])
        pub = publisher(tmp_path, broker.port, spool, tls=tls, username="gw-tls", password=password)
        pub.start()
        try:
            if mistake == "wrong_password":
                assert run_until(pub, lambda: pub.stats.connect_refusals >= 1)
            else:
                # the TLS handshake fails (unknown CA) and is retried with backoff
                assert run_until(pub, lambda: pub.stats.connect_failures >= 2)
            assert pub.stats.connects == 0
            assert spool.depth() == 1
        finally:
            pub.stop(timeout_s=0.2)
