"""Bad links: the gateway publishes through a fault-injecting proxy, nothing is lost or doubled.

A real gateway (subprocess) polls simulated inverters (pymodbus over TCP) and publishes through
:class:`~collector.devtools.faulty_link.FaultyLink` to a real Mosquitto; the real collector,
connected to the broker directly, writes InfluxDB. After each fault the link heals, the
inverters go quiet, the gateway drains its spool, and InfluxDB must hold every reading the
spool's audit table committed, exactly once.

Durations are scaled down so each test takes seconds: the gateway's keepalive is 5 s (the
configuration's minimum; 60 s in the field), so a black hole of 14 s and a partition of 15 s
(standing for the issue's 10 minutes) each outlast the keepalive detection (at most two
keepalive periods) and several reconnection attempts into the cut. A longer partition takes
the same path for longer: the spool holds what is polled meanwhile.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from collector.devtools.faulty_link import FaultyLink
from collector.devtools.services import Mosquitto, free_port
from collector.ingest.pipeline import Collector, MqttConnection
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from collector.timeseries.influx import InfluxClient
from gateway_firmware import health
from gateway_firmware.spool import Spool
from tests.gateway_firmware.gateway_process import start_gateway, wait_until

REPO = Path(__file__).resolve().parents[2]
KEEPALIVE_S = 5

pytestmark = pytest.mark.slow


@dataclass
class Outcome:
    committed: int
    stored: int
    lost: int
    doubled: int
    delivered: int
    replayed: int
    #: readings in the spool (not yet acknowledged) as the fault ended
    held_at_fault_end: int
    log: str


class _Production:
    """A counter that rises as a 1.08 kW inverter's would (ticks of 0.1 s)."""

    def __init__(self, sim: SimulatedInverters) -> None:
        self.sim = sim
        self.energy = 1_000_000.0

    def tick(self) -> None:
        self.energy += 0.03
        self.sim.set_values(1, ac_energy_wh=self.energy, ac_power_w=1080.0)


def _depth(health_port: int) -> int:
    """What the gateway says waits for a PUBACK: acknowledged readings may stay in the spool
    file until its next commit, so the file alone would overstate it."""
    try:
        depth = health.spool_depth(health.read_health(health_port))
    except OSError:
        return -1  # not answering yet
    return -1 if depth is None else depth


@pytest.fixture
def broker() -> Iterator[Mosquitto]:
    with Mosquitto.create() as b:
        yield b


def _run_through_fault(
    tmp_path: Path,
    broker: Mosquitto,
    influx: InfluxClient,
    fault: Callable[[FaultyLink, _Production, Callable[[float], None]], None],
) -> Outcome:
    gw = f"gw-link-{uuid.uuid4().hex[:6]}"
    spool_path = tmp_path / "spool.sqlite3"
    sim = SimulatedInverters({1: layout_for("sunspec-int")})
    sim.start()
    production = _Production(sim)
    link = FaultyLink("127.0.0.1", broker.port, seed=18)
    link.start()
    config = tmp_path / "gateway.yaml"
    health_port = free_port()
    config.write_text(
        f"""
gateway_id: {gw}
mqtt: {{host: 127.0.0.1, port: {link.port}, keepalive_s: {KEEPALIVE_S},
        reconnect_min_s: 1, reconnect_max_s: 2}}
spool: {{path: {spool_path}, audit: true, replay_batch_size: 20}}
status_interval_s: 5
health_port: {health_port}
devices:
  - {{device_id: inv-1, host: 127.0.0.1, port: {sim.port}, unit: 1, interval_s: 1,
      timeout_s: 0.5}}
"""
    )
    conn = MqttConnection(
        host="127.0.0.1",
        port=broker.port,
        client_id=f"col-{gw}",
        share_group=None,  # see test_chaos.py: Debian's Mosquitto and $share after a restart
    )
    collector = Collector(mqtt_connection=conn, influx=influx)
    collector.start()
    log_path = tmp_path / "gateway.log"
    gateway: subprocess.Popen[bytes] | None = None

    def run_for(seconds: float) -> None:
        """Keep the inverters producing for ``seconds`` while the gateway polls [s]."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            production.tick()
            time.sleep(0.1)
            assert gateway is not None and gateway.poll() is None, "the gateway exited"

    def log_text() -> str:
        return log_path.read_text(errors="replace")

    def stored_rows() -> list[dict[str, Any]]:
        return influx.query_records(f'SELECT * FROM "inverter" WHERE "gateway" = \'{gw}\'')

    try:
        with log_path.open("ab") as log:
            gateway = start_gateway(config, log)
            wait_until(
                "the gateway did not connect", lambda: "connected to the broker" in log_text(), 20
            )
            run_for(2.0)
            fault(link, production, run_for)
            held = _depth(health_port)
            link.clear()
            sim.stop()  # the inverters go quiet: polls fail, nothing new is committed
            wait_until("the spool did not drain", lambda: _depth(health_port) == 0, 60)
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(20) == 0
        with Spool(spool_path, read_only=True) as spool:
            committed = spool.audited()
        keys = {(c.device_id, c.ts_ms) for c in committed}
        wait_until(
            "the collector did not store everything", lambda: len(stored_rows()) >= len(keys), 30
        )
        assert collector.wait_idle(10)
        rows = stored_rows()
    finally:
        if gateway is not None and gateway.poll() is None:
            gateway.kill()
        collector.stop()
        link.stop()
        sim.stop()
    stored = [(r["device"], r["time"]) for r in rows]
    outcome = Outcome(
        committed=len(committed),
        stored=len(set(stored) & keys),
        lost=len(keys - set(stored)),
        doubled=len(stored) - len(set(stored)) + len(set(stored) - keys),
        delivered=collector.stats.readings_stored,
        replayed=sum("replayed" in (r.get("flags") or "") for r in rows),
        held_at_fault_end=held,
        log=log_text(),
    )
    print(
        f"committed {outcome.committed} stored {outcome.stored} lost {outcome.lost} "
        f"doubled {outcome.doubled} (held at the fault's end {outcome.held_at_fault_end}, "
        f"replayed {outcome.replayed}; readings the collector received: {outcome.delivered})"
    )
    assert len(keys) == len(committed), "two committed readings share a key"
    assert outcome.committed >= 10, "too few readings to prove anything"
    assert outcome.lost == 0
    assert outcome.doubled == 0
    assert collector.stats.rejected_total() == 0
    assert "Traceback" not in outcome.log, outcome.log[-3000:]
    return outcome


def test_latency_of_seconds_with_jitter(
    tmp_path: Path, broker: Mosquitto, influx: InfluxClient
) -> None:
    def fault(link: FaultyLink, _: _Production, run_for: Callable[[float], None]) -> None:
        link.set_latency(2.0, 1.0)  # 1 to 3 s each way
        run_for(8.0)

    outcome = _run_through_fault(tmp_path, broker, influx, fault)
    assert outcome.held_at_fault_end > 0, "no reading was ever waiting for its PUBACK"


def test_throttled_below_the_production_rate(
    tmp_path: Path, broker: Mosquitto, influx: InfluxClient
) -> None:
    def fault(link: FaultyLink, _: _Production, run_for: Callable[[float], None]) -> None:
        link.set_rate(100)  # 100 B/s: less than a reading a second needs
        run_for(8.0)

    outcome = _run_through_fault(tmp_path, broker, influx, fault)
    assert outcome.held_at_fault_end > 0, "the throttle never held anything back"


def test_black_hole_is_detected_by_the_keepalive(
    tmp_path: Path, broker: Mosquitto, influx: InfluxClient
) -> None:
    def fault(link: FaultyLink, _: _Production, run_for: Callable[[float], None]) -> None:
        link.black_hole()  # no RST, no FIN: TCP alone would wait for ever
        run_for(14.0)

    outcome = _run_through_fault(tmp_path, broker, influx, fault)
    assert "lost the broker connection" in outcome.log, "the stalled link was never noticed"
    assert outcome.replayed > 0


def test_connections_reset(tmp_path: Path, broker: Mosquitto, influx: InfluxClient) -> None:
    def fault(link: FaultyLink, _: _Production, run_for: Callable[[float], None]) -> None:
        for _round in range(3):
            link.reset()
            run_for(2.5)

    outcome = _run_through_fault(tmp_path, broker, influx, fault)
    assert outcome.log.count("lost the broker connection") >= 3


def test_flapping_link(tmp_path: Path, broker: Mosquitto, influx: InfluxClient) -> None:
    def fault(link: FaultyLink, _: _Production, run_for: Callable[[float], None]) -> None:
        link.flap(up_s=2.0, down_s=1.5)
        run_for(10.0)

    outcome = _run_through_fault(tmp_path, broker, influx, fault)
    assert outcome.log.count("lost the broker connection") >= 2


def test_partition_scaled_down_from_ten_minutes(
    tmp_path: Path, broker: Mosquitto, influx: InfluxClient
) -> None:
    def fault(link: FaultyLink, _: _Production, run_for: Callable[[float], None]) -> None:
        link.partition()
        run_for(15.0)  # stands for 10 minutes: see the module docstring

    outcome = _run_through_fault(tmp_path, broker, influx, fault)
    assert "lost the broker connection" in outcome.log
    assert outcome.replayed > 0
