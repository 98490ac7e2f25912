"""Storage faults end to end: a real gateway whose SD card fills up, turns read-only and recovers.

A real gateway (subprocess) polls a simulated inverter (pymodbus over Modbus TCP) every second
and publishes through :class:`~collector.devtools.faulty_link.FaultyLink` to a real Mosquitto;
the real collector writes a real InfluxDB. The spool lives on its own small ext4 file system (a
loop device, ``errors=remount-ro``, as Raspberry Pi OS mounts its card), and the card fails:

1. **full**: a filler file takes every free block (``ENOSPC``); the gateway holds readings in
   memory and publishes them directly; the filler goes, the spool is written again;
2. **read-only**: the kernel remounts the card read-only after an error (ext4's
   ``trigger_fs_error``, the path a failing SD card takes), while the broker link is down, so
   the small memory buffer (4 readings) overflows: those readings are *not committed* and must
   be counted in the status topic's ``spool_dropped``; then the link comes back;
3. **repair**: the card is unmounted, checked (``e2fsck``) and mounted again (what a reboot
   does): the gateway reopens its spool, moves what memory still holds into it, and goes on.

A tmpfs cannot play the card here: ``mount -o remount,ro`` refuses (EBUSY) while the gateway
holds its files open for writing, and only the kernel's own error handling forces a file
system read-only under open files.

Afterwards: readings polled (the gateway's health endpoint) minus those reported not committed
(``spool_dropped``) are the committed ones, and InfluxDB must hold exactly that many, each
once (no two stored points carry the same power: the simulated one changes every 0.1 s),
every one the spool's audit table
recorded among them; the gateway never exits.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.devtools.faulty_link import FaultyLink
from collector.devtools.services import Mosquitto, free_port
from collector.ingest.pipeline import Collector, MqttConnection
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from collector.timeseries.influx import InfluxClient
from gateway_firmware import health
from gateway_firmware.spool import Spool
from tests.gateway_firmware.gateway_process import start_gateway, wait_until
from zonnewijk_wire import GatewayStatus, status_topic

REPO = Path(__file__).resolve().parents[2]
MEMORY_READINGS = 4

pytestmark = pytest.mark.slow


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(command), capture_output=True, text=True, check=False)


@dataclass
class Card:
    """A small ext4 file system on a loop device, mounted like a Pi's SD card."""

    image: Path
    mount_point: Path

    @property
    def device_name(self) -> str:
        source = _run("findmnt", "-n", "-o", "SOURCE", str(self.mount_point)).stdout.strip()
        return Path(source).name

    def mount(self) -> None:
        done = _run("mount", "-o", "loop,errors=remount-ro", str(self.image), str(self.mount_point))
        if done.returncode != 0:
            raise RuntimeError(f"mount failed: {done.stderr.strip()}")

    def fail_read_only(self) -> None:
        """The kernel's reaction to an I/O error on the card: remount read-only."""
        trigger = Path(f"/sys/fs/ext4/{self.device_name}/trigger_fs_error")
        trigger.write_text("test: simulated SD card I/O error")

    def unmount(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            done = _run("umount", str(self.mount_point))
            if done.returncode == 0:
                return
            assert time.monotonic() < deadline, f"umount: {done.stderr.strip()}"
            time.sleep(0.5)


@pytest.fixture
def card(tmp_path: Path) -> Iterator[Card]:
    if os.geteuid() != 0:
        pytest.skip("mounting a loop device needs root")
    for tool in ("mkfs.ext4", "e2fsck", "losetup", "findmnt"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed here")
    image = tmp_path / "card.img"
    with image.open("wb") as f:
        f.truncate(8 << 20)
    done = _run("mkfs.ext4", "-q", "-F", "-m", "0", str(image))
    if done.returncode != 0:
        pytest.skip(f"mkfs.ext4 failed: {done.stderr.strip()}")
    mount_point = tmp_path / "card"
    mount_point.mkdir()
    card = Card(image, mount_point)
    try:
        card.mount()
    except RuntimeError as exc:
        pytest.skip(f"cannot mount a loop device here: {exc}")
    try:
        if not Path(f"/sys/fs/ext4/{card.device_name}/trigger_fs_error").exists():
            pytest.skip("this kernel's ext4 has no trigger_fs_error")
        yield card
    finally:
        _run("umount", "-l", str(mount_point))


def _fill(directory: Path) -> Path:
    """Take every free block of the file system; returns the filler file."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for chunk in (1 << 20, 65536, 4096, 512, 1):
            try:
                while os.write(fd, b"\0" * chunk):
                    pass
            except OSError:
                continue
        os.fsync(fd)
    finally:
        os.close(fd)
    return filler


class _Statuses:
    """Every status message of one gateway, as the server sees them."""

    def __init__(self, broker: Mosquitto, gateway_id: str) -> None:
        self.seen: list[GatewayStatus] = []
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"st-{gateway_id}")
        self._client.on_message = self._on_message
        self._client.connect("127.0.0.1", broker.port)
        self._client.subscribe(status_topic(gateway_id), qos=1)
        self._client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.seen.append(GatewayStatus.model_validate_json(message.payload))

    def states(self) -> list[str | None]:
        with self._lock:
            return [s.spool_state for s in self.seen if s.state == "online"]

    def last(self) -> GatewayStatus:
        with self._lock:
            return self.seen[-1]

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def test_full_then_read_only_card_loses_nothing_committed(
    tmp_path: Path, card: Card, influx: InfluxClient
) -> None:
    gw = f"gw-card-{uuid.uuid4().hex[:6]}"
    spool_dir = card.mount_point / "spool"
    spool_dir.mkdir()
    spool_path = spool_dir / "spool.sqlite3"
    health_port = free_port()
    energy = [1_000_000.0]
    tick = [0]
    with Mosquitto.create() as broker:
        sim = SimulatedInverters({1: layout_for("sunspec-int")})
        sim.start()
        link = FaultyLink("127.0.0.1", broker.port, seed=18)
        link.start()
        statuses = _Statuses(broker, gw)
        config = tmp_path / "gateway.yaml"
        config.write_text(
            f"""
gateway_id: {gw}
mqtt: {{host: 127.0.0.1, port: {link.port}, keepalive_s: 5,
        reconnect_min_s: 1, reconnect_max_s: 2}}
spool: {{path: {spool_path}, audit: true, replay_batch_size: 20,
         memory_readings: {MEMORY_READINGS}}}
status_interval_s: 5
health_port: {health_port}
devices:
  - {{device_id: inv-1, host: 127.0.0.1, port: {sim.port}, unit: 1, interval_s: 1,
      timeout_s: 0.5}}
"""
        )
        conn = MqttConnection(
            host="127.0.0.1", port=broker.port, client_id=f"col-{gw}", share_group=None
        )
        collector = Collector(mqtt_connection=conn, influx=influx)
        collector.start()
        log_path = tmp_path / "gateway.log"
        gateway: subprocess.Popen[bytes] | None = None

        def produce_for(seconds: float) -> None:
            """Keep the inverter producing while the gateway polls; its power is a new whole
            number of watts every 0.1 s, so no two polls read the same one [s]."""
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                energy[0] += 0.03
                tick[0] += 1
                sim.set_values(1, ac_energy_wh=energy[0], ac_power_w=1000.0 + tick[0])
                time.sleep(0.1)
                assert gateway is not None and gateway.poll() is None, "the gateway exited"

        def produce_until(what: str, done: Callable[[], bool], timeout_s: float) -> None:
            deadline = time.monotonic() + timeout_s
            while not done():
                assert time.monotonic() < deadline, what
                produce_for(0.5)

        def spool_state() -> str:
            return str(health.read_health(health_port)["spool"]["state"])

        def stored_rows() -> list[dict[str, Any]]:
            return influx.query_records(f'SELECT * FROM "inverter" WHERE "gateway" = \'{gw}\'')

        try:
            with log_path.open("ab") as log:
                gateway = start_gateway(config, log)
                wait_until("the gateway did not connect", lambda: "connected to the broker" in
                      log_path.read_text(errors="replace"), 20)  # fmt: skip
                produce_for(3.0)

                # 1. the card fills up; space comes back
                filler = _fill(card.mount_point)
                produce_until("the full card was not noticed", lambda: spool_state() == "full", 60)
                produce_for(3.0)
                filler.unlink()
                produce_until("the spool did not recover", lambda: spool_state() == "ok", 30)
                produce_for(2.0)

                # 2. the link goes down and the card turns read-only: memory overflows
                link.go_down()
                card.fail_read_only()
                produce_until(
                    "the read-only card was not noticed", lambda: spool_state() == "read-only", 30
                )
                produce_for(4.0 + MEMORY_READINGS)
                assert health.read_health(health_port)["spool"]["memory_dropped"] > 0
                link.clear()
                produce_until(
                    "the memory buffer was not delivered",
                    lambda: health.read_health(health_port)["spool"]["memory_readings"] == 0,
                    40,
                )

                # 3. repair: unmount, check, mount again (as a reboot does)
                card.unmount()
                assert _run("e2fsck", "-f", "-y", str(card.image)).returncode in (0, 1, 2)
                card.mount()
                produce_until("the repaired card was not used", lambda: spool_state() == "ok", 30)
                produce_for(3.0)

                sim.stop()  # the inverter goes quiet: nothing new is polled
                wait_until(
                    "the spool did not drain",
                    lambda: health.read_health(health_port)["spool"]["depth"] == 0,
                    60,
                )
                polled = int(health.read_health(health_port)["readings_polled"])
                gateway.send_signal(signal.SIGTERM)
                assert gateway.wait(20) == 0
            with Spool(spool_path, read_only=True) as spool:
                audited = {(a.device_id, a.ts_ms) for a in spool.audited()}
            wait_until("the offline status did not arrive", lambda: statuses.last().state ==
                  "offline", 10)  # fmt: skip
            not_committed = statuses.last().spool_dropped or 0
            committed = polled - not_committed
            wait_until("the collector did not store everything",
                  lambda: len(stored_rows()) >= committed, 30)  # fmt: skip
            assert collector.wait_idle(10)
            rows = stored_rows()
        finally:
            if gateway is not None and gateway.poll() is None:
                gateway.kill()
            collector.stop()
            statuses.close()
            link.stop()
            sim.stop()
    log_text = log_path.read_text(errors="replace")
    stored_keys = {(r["device"], int(r["time"])) for r in rows}
    # one poll stored twice (under two stamps) would repeat its power
    powers = [r["ac_power_w"] for r in rows]
    doubled = len(powers) - len(set(powers))
    lost = max(committed - len(rows), 0) + len({(d, t) for d, t in audited} - stored_keys)
    print(
        f"polled {polled} not committed {not_committed} committed {committed} "
        f"stored {len(rows)} lost {lost} doubled {doubled} (spool audit {len(audited)}, "
        f"collector deliveries {collector.stats.readings_stored}); "
        f"status spool_state seen {sorted({s for s in statuses.states() if s})}"
    )
    assert not_committed > 0, "the memory buffer never overflowed: the test proves too little"
    assert {"full", "read-only", "ok"} <= set(statuses.states()), statuses.states()
    assert len(rows) == committed
    assert lost == 0
    assert doubled == 0
    assert collector.stats.rejected_total() == 0
    assert "Traceback" not in log_text, log_text[-3000:]
    assert log_text.count("gateway " + gw) == 1, "the gateway restarted"
