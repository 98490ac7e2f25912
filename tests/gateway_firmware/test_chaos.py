"""Chaos: kill -9 the gateway and stop/restart the broker while it polls and publishes.

Afterwards the collector's InfluxDB must hold every reading the gateway committed, exactly
once, with the values it read. "Committed" is what the spool's audit table recorded in the
same transaction as the reading (a reading polled but not yet committed when the process was
killed never existed as far as billing is concerned: nothing was acknowledged for it).
"""

from __future__ import annotations

import random
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.devtools.services import Mosquitto
from collector.ingest.pipeline import Collector, MqttConnection
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from collector.timeseries.influx import InfluxClient
from gateway_firmware.spool import Spool
from tests.gateway_firmware.gateway_process import start_gateway

REPO = Path(__file__).resolve().parents[2]
GW = "gw-chaos"


def _broker() -> Mosquitto:
    # Mosquitto started as root drops to its own user and then cannot save its persistence
    # file into the 0700 temporary directory; a broker restart would then lose the collector's
    # queued messages. Keep it as root in tests (production runs it as its own user on its
    # own directory).
    return Mosquitto.create()


class Production(threading.Thread):
    """Makes the simulated inverters' counters rise, so every reading is different."""

    def __init__(self, sim: SimulatedInverters) -> None:
        super().__init__(daemon=True)
        self.sim = sim
        self.stop_event = threading.Event()

    def run(self) -> None:
        energy = {1: 2_000_000.0, 2: 3_000_000.0}
        step = 0
        while not self.stop_event.wait(0.2):
            step += 1
            for unit in (1, 2):
                energy[unit] += unit
                self.sim.set_values(
                    unit,
                    ac_energy_wh=energy[unit],
                    ac_power_w=float(1000 + (step * 7 + unit) % 900),
                )


def _depth(spool_path: Path) -> int:
    with Spool(spool_path, read_only=True) as spool:
        return spool.stats().depth


def _stored(influx: InfluxClient) -> list[dict[str, Any]]:
    return influx.query_records(f'SELECT * FROM "inverter" WHERE "gateway" = \'{GW}\'')


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with _broker() as b:
        yield b


@pytest.mark.slow
def test_kill_9_and_broker_restarts_lose_nothing_and_count_nothing_twice(
    tmp_path: Path, broker: Mosquitto, influx: InfluxClient
) -> None:
    rng = random.Random(20261128)
    spool_path = tmp_path / "spool.sqlite3"
    sim = SimulatedInverters({1: layout_for("sunspec-int"), 2: layout_for("sunspec-float")})
    sim.start()
    production = Production(sim)
    production.start()
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"""
gateway_id: {GW}
mqtt: {{host: 127.0.0.1, port: {broker.port}, reconnect_min_s: 1, reconnect_max_s: 1}}
spool: {{path: {spool_path}, audit: true, replay_batch_size: 50}}
status_interval_s: 5
devices:
  - {{device_id: inv-1, host: 127.0.0.1, port: {sim.port}, unit: 1, interval_s: 1, timeout_s: 0.5}}
  - {{device_id: inv-2, host: 127.0.0.1, port: {sim.port}, unit: 2, interval_s: 1, timeout_s: 0.5}}
"""
    )
    # share_group=None: Mosquitto 2.0.11 (Debian's) does not restore $share subscriptions
    # from its persistence file, so messages published after a broker restart and before the
    # collector subscribes again are routed to nobody. A plain subscription of a persistent
    # session is restored. (Found by this test; reported to the collector's owner.)
    conn = MqttConnection(
        host="127.0.0.1",
        port=broker.port,
        client_id=f"col-chaos-{uuid.uuid4().hex[:6]}",
        share_group=None,
    )
    collector = Collector(mqtt_connection=conn, influx=influx)
    collector.start()
    log_path = tmp_path / "gateway.log"
    kills = broker_restarts = 0
    gateway: subprocess.Popen[bytes] | None = None
    try:
        with log_path.open("ab") as log:
            for cycle in range(6):
                gateway = start_gateway(config, log)
                time.sleep(rng.uniform(1.5, 3.0))
                if cycle % 3 != 2:
                    broker.terminate()  # the broker goes away while the gateway polls
                    broker_restarts += 1
                    time.sleep(rng.uniform(1.0, 2.5))
                    if cycle % 3 == 1:  # ... and the gateway dies while it is away
                        gateway.kill()
                        gateway.wait(10)
                        kills += 1
                        gateway = start_gateway(config, log)
                        time.sleep(rng.uniform(0.5, 1.5))
                    broker.start()
                time.sleep(rng.uniform(0.3, 2.0))  # replaying, or in the middle of a publish
                gateway.kill()
                gateway.wait(10)
                kills += 1
            # The end: the inverters go quiet (polls fail), the gateway drains its spool.
            production.stop_event.set()
            production.join(5)
            sim.stop()
            log.flush()
            offset = log_path.stat().st_size
            gateway = start_gateway(config, log)
            deadline = time.monotonic() + 30
            while "connected to the broker" not in log_path.read_bytes()[offset:].decode(
                errors="replace"
            ):
                assert time.monotonic() < deadline, "the gateway did not reconnect"
                time.sleep(0.1)
            while _depth(spool_path) > 0:
                assert time.monotonic() < deadline, "the spool did not drain"
                time.sleep(0.2)
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(20) == 0
        with Spool(spool_path, read_only=True) as spool:
            committed = spool.audited()
            assert spool.stats().depth == 0
        # The gateway's part is done (everything PUBACKed); wait for the collector's.
        deadline = time.monotonic() + 30
        while len(_stored(influx)) < len(committed) and time.monotonic() < deadline:
            time.sleep(0.25)
        time.sleep(1.0)  # anything late (a duplicate) would land now
        rows = _stored(influx)
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.kill()
        collector.stop()
        production.stop_event.set()
        sim.stop()
    assert kills >= 6 and broker_restarts >= 4

    stored = {(r["device"], r["time"]): r for r in rows}
    assert len(committed) >= 30, "the chaos run polled too little to prove anything"
    keys = [(c.device_id, c.ts_ms) for c in committed]
    assert len(set(keys)) == len(keys)
    missing = [k for k in keys if k not in stored]
    assert not missing, f"{len(missing)} committed readings never reached InfluxDB: {missing[:5]}"
    extra = set(stored) - set(keys)
    assert not extra, f"{len(extra)} points in InfluxDB that the gateway never committed"
    assert len(rows) == len(committed)  # exactly once
    for c in committed:
        reading = c.reading()
        row = stored[(c.device_id, c.ts_ms)]
        assert row["ac_energy_wh"] == reading.ac_energy_wh, c
        assert row["ac_power_w"] == reading.ac_power_w, c
        assert row["state"] == reading.state.value
    # outages really happened: part of the data came through the replay lane
    replayed = [r for r in rows if "replayed" in (r.get("flags") or "")]
    assert replayed, "nothing was replayed: the chaos did not bite"
    assert collector.stats.rejected_total() == 0
    log_text = log_path.read_text(errors="replace")
    assert "Traceback" not in log_text, log_text[-3000:]
