"""Send simulated readings through MQTT as the gateways would, so the real collector stores them.

Each batch line goes to ``zonnewijk/v1/<gateway_id>/readings`` with QoS 1, in send order;
each gateway's device info is published once, retained, first. At most ``window`` messages
are unacknowledged at a time, so memory stays flat over a year of history and a slow broker
or collector slows the publisher down instead of losing messages.

:func:`publish_history` is the backfill API the demo uses (the last 60 days of the fleet).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.simulator.engine import Simulation
from collector.simulator.faults import FaultSchedule
from collector.simulator.fleet import Fleet
from collector.simulator.jsonl import Lines
from collector.simulator.output import Progress, stream_lines
from zonnewijk_wire import DeviceInfo, device_info_topic, encode, readings_topic

log = logging.getLogger(__name__)


class PublishError(RuntimeError):
    """The broker refused the connection or a publish failed."""


@dataclass
class PublishTotals:
    messages: int = 0
    readings: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def messages_per_s(self) -> float:
        return self.messages / self.seconds if self.seconds > 0 else 0.0


class _Publisher:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None,
        password: str | None,
        client_id: str,
        window: int,
        timeout_s: float,
    ) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(min(window, 1000))
        self.window = window
        self.timeout_s = timeout_s
        self.pending: deque[mqtt.MQTTMessageInfo] = deque()
        try:
            self.client.connect(host, port, keepalive=60)
        except OSError as exc:
            raise PublishError(f"cannot reach the MQTT broker at {host}:{port}: {exc}") from None
        self.client.loop_start()
        deadline = time.monotonic() + timeout_s
        while not self.client.is_connected():
            if time.monotonic() > deadline:
                self.close()
                raise PublishError(
                    f"the MQTT broker at {host}:{port} did not accept the connection within "
                    f"{timeout_s} s (check credentials and ACLs)"
                )
            time.sleep(0.01)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise PublishError(f"publish to {topic} failed: {mqtt.error_string(info.rc)}")
        self.pending.append(info)
        while len(self.pending) > self.window:
            self._wait_oldest()

    def _wait_oldest(self) -> None:
        info = self.pending.popleft()
        info.wait_for_publish(self.timeout_s)
        if not info.is_published():
            raise PublishError(
                f"the broker did not acknowledge a message within {self.timeout_s} s"
            )

    def flush(self) -> None:
        while self.pending:
            self._wait_oldest()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def publish_lines(
    blocks: Iterable[Lines],
    gateway_ids: list[str],
    host: str,
    port: int,
    *,
    device_infos: Iterable[DeviceInfo] = (),
    username: str | None = None,
    password: str | None = None,
    window: int = 500,
    timeout_s: float = 30.0,
    progress: Progress | None = None,
    total_readings: int | None = None,
) -> PublishTotals:
    """Publish blocks of batch lines, one MQTT message per line.

    Parameters
    ----------
    blocks : iterable of Lines
        Formatted batches in send order [-]
    gateway_ids : list of str
        Gateway id by site index [-]
    host, port : str, int
        MQTT broker [-]
    window : int
        Most unacknowledged messages at a time [-]
    """
    totals = PublishTotals()
    started = time.perf_counter()
    publisher = _Publisher(
        host,
        port,
        username=username,
        password=password,
        client_id=f"zonnewijk-sim-{os.getpid()}",
        window=window,
        timeout_s=timeout_s,
    )
    try:
        for info in device_infos:
            publisher.publish(
                device_info_topic(info.gateway_id, info.device_id), encode(info), retain=True
            )
        for block in blocks:
            for line, site in zip(block.split(), block.line_site, strict=True):
                publisher.publish(readings_topic(gateway_ids[int(site)]), line)
                totals.messages += 1
                totals.bytes += len(line)
            totals.readings += block.readings
            if progress is not None and total_readings:
                totals.seconds = time.perf_counter() - started
                progress(
                    min(totals.readings / total_readings, 1.0),
                    totals.readings,
                    f"{totals.messages} messages, {totals.messages_per_s:,.0f} msg/s",
                )
        publisher.flush()
        if progress is not None:
            totals.seconds = time.perf_counter() - started
            progress(1.0, totals.readings, f"{totals.messages} messages, done")
    finally:
        publisher.close()
    totals.seconds = time.perf_counter() - started
    return totals


def device_infos(fleet: Fleet) -> list[DeviceInfo]:
    """What each simulated gateway announces about its inverter."""
    return [
        DeviceInfo(
            gateway_id=site.gateway_id,
            device_id=site.device_id,
            manufacturer=site.manufacturer,
            model=site.model,
            serial=site.serial,
            profile=site.family,
        )
        for site in fleet.sites
    ]


def publish_history(
    fleet: Fleet,
    start: datetime,
    end: datetime,
    interval_s: int,
    mqtt_host: str,
    mqtt_port: int,
    progress: Progress | None = None,
    *,
    faults: FaultSchedule | None = None,
    username: str | None = None,
    password: str | None = None,
    batch_s: int = 3600,
) -> PublishTotals:
    """Simulate ``[start, end)`` and publish it through MQTT (the demo's backfill).

    Parameters
    ----------
    fleet : Fleet
        The simulated sites [-]
    start, end : datetime
        Window, UTC; ``start`` on the interval grid from midnight [-]
    interval_s : int
        Reading interval [s]
    mqtt_host, mqtt_port : str, int
        Broker the collector listens on [-]
    progress : callable, optional
        Called with (fraction done, readings, message) [-]
    faults : FaultSchedule, optional
        Faults to inject; none by default [-]
    """
    sim = Simulation(fleet, start, end, interval_s, faults, batch_s=batch_s)
    return publish_lines(
        stream_lines(sim),
        [s.gateway_id for s in fleet.sites],
        mqtt_host,
        mqtt_port,
        device_infos=device_infos(fleet),
        username=username,
        password=password,
        progress=progress,
        total_readings=sim.n_steps * len(fleet),
    )
