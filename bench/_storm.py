"""The reconnect storm's machinery: thousands of simulated gateways on one asyncio loop.

Used by ``bench/reconnect_storm.py`` and, at a tiny size, by
``tests/bench/test_reconnect_storm.py``.

Each simulated gateway is a small MQTT v5 client written on asyncio streams (connect, publish
QoS 1, PUBACK, ping; nothing else), because the storm is about *many* connections: paho's
``connect`` is a blocking ``socket.create_connection`` and one paho client per gateway on one
loop would stall the loop whenever the broker's accept queue is full, while paho in a thread
per gateway does not reach 10,000. What is the gateway's own is reused, not copied:

- the reconnect wait is :func:`gateway_firmware.backoff.backoff_delay_s` with the gateway's
  defaults (``MqttConfig.reconnect_min_s`` 1 s, ``reconnect_max_s`` 120 s), counted as the
  publisher counts (attempt 0 after a lost connection, +1 per failure, 0 again on CONNACK);
- the session is the gateway's: MQTT v5, ``clean_start=False``, ``SessionExpiryInterval`` of
  ``MqttConfig.session_expiry_s`` (7 days), fixed client id, retained ``online`` status
  (:class:`zonnewijk_wire.GatewayStatus`) on every connect, retained ``offline`` will;
- the spool is replayed as ``gateway_firmware.publisher`` replays it: oldest first, batches
  of ``SpoolConfig.replay_batch_size`` readings (:class:`zonnewijk_wire.ReadingsBatch`,
  encoded by ``zonnewijk_wire.encode_batch``), at most ``replay_window`` messages awaiting a
  PUBACK, at most ``replay_readings_per_s`` readings a second; a message leaves the spool only
  on its PUBACK; after a reconnect the unacknowledged ones are sent again (DUP set), as paho
  does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import struct
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.devtools.services import Influxd, Mosquitto, free_port
from collector.timeseries.influx import InfluxClient
from gateway_firmware.backoff import backoff_delay_s
from gateway_firmware.config import MqttConfig, SpoolConfig
from zonnewijk_wire import (
    GatewayStatus,
    Reading,
    ReadingsBatch,
    encode,
    encode_batch,
    readings_topic,
    status_topic,
)

_MQTT = MqttConfig(host="127.0.0.1")
_SPOOL = SpoolConfig()
RECONNECT_MIN_S = float(_MQTT.reconnect_min_s)
RECONNECT_MAX_S = float(_MQTT.reconnect_max_s)
SESSION_EXPIRY_S = _MQTT.session_expiry_s
KEEPALIVE_S = _MQTT.keepalive_s
REPLAY_BATCH = _SPOOL.replay_batch_size
REPLAY_WINDOW = _SPOOL.replay_window
REPLAY_READINGS_PER_S = _SPOOL.replay_readings_per_s
REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")

# --- MQTT v5, the few packets a publishing gateway needs ----------------------------------------


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _string(s: str | bytes) -> bytes:
    data = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(data)) + data


def _packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + _varint(len(body)) + body


def connect_packet(
    client_id: str, *, keepalive_s: int, session_expiry_s: int, will: tuple[str, bytes] | None
) -> bytes:
    flags = 0  # clean_start = 0: resume the session
    payload = _string(client_id)
    if will is not None:
        flags |= 0x04 | (1 << 3) | 0x20  # will, QoS 1, retained
        payload += _varint(0) + _string(will[0]) + _string(will[1])
    props = b"\x11" + struct.pack("!I", session_expiry_s)
    body = _string("MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive_s)
    return _packet(0x10, body + _varint(len(props)) + props + payload)


def publish_packet(topic: str, payload: bytes, pid: int, *, dup: bool, retain: bool) -> bytes:
    first = 0x30 | (0x08 if dup else 0) | (1 << 1) | (0x01 if retain else 0)
    return _packet(first, _string(topic) + struct.pack("!H", pid) + b"\x00" + payload)


PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"


async def read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(packet type, body) of the next packet; IncompleteReadError when the broker closed."""
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first >> 4, await reader.readexactly(length)


class ConnectRefused(Exception):
    """The broker answered CONNECT with a reason code >= 0x80."""


# --- one gateway -------------------------------------------------------------------------------


@dataclass
class GatewayStats:
    connects: int = 0
    sessions_resumed: int = 0
    connect_failures: int = 0
    connections_lost: int = 0
    messages_sent: int = 0
    messages_resent: int = 0
    backoff_waits_s: list[float] = field(default_factory=list)
    #: monotonic time of the first CONNACK after :meth:`Fleet.mark` [s]
    reconnected_at: float | None = None
    #: monotonic time the last spool message was acknowledged [s]
    drained_at: float | None = None


class SimulatedGateway:
    """One gateway: a spool of encoded readings messages, replayed over a persistent session."""

    def __init__(
        self,
        gateway_id: str,
        host: str,
        port: int,
        rng: random.Random,
        *,
        window: int = REPLAY_WINDOW,
        readings_per_s: float = REPLAY_READINGS_PER_S,
        batch: int = REPLAY_BATCH,
    ) -> None:
        self.gateway_id = gateway_id
        self.client_id = f"zonnewijk-gw-{gateway_id}"
        self.host, self.port, self.rng = host, port, rng
        self.window, self.readings_per_s, self.batch = window, readings_per_s, batch
        #: (readings in it, payload), oldest first; the spool
        self.spool: list[tuple[int, bytes]] = []
        self.next_index = 0
        #: pid -> spool index, sent and not acknowledged
        self.inflight: dict[int, int] = {}
        self.acked = 0
        self.stats = GatewayStats()
        self.connected = asyncio.Event()
        self.spool_changed = asyncio.Event()
        self.stopping = False
        self.mark_at: float | None = None
        self._status_pid = 65535
        self._tokens = float(batch)
        self._tokens_at = time.monotonic()

    def load(self, messages: Sequence[tuple[int, bytes]]) -> None:
        self.spool.extend(messages)
        self.spool_changed.set()

    @property
    def drained(self) -> bool:
        return self.acked == len(self.spool)

    def _status(self) -> bytes:
        status = GatewayStatus(
            gateway_id=self.gateway_id,
            state="online",
            ts=datetime.now(UTC),
            spool_depth=sum(n for n, _ in self.spool[self.acked :]),
            firmware_version="storm-bench",
        )
        return encode(status)

    async def run(self) -> None:
        attempts = 0
        will = (
            status_topic(self.gateway_id),
            encode(GatewayStatus(gateway_id=self.gateway_id, state="offline")),
        )
        while not self.stopping:
            writer: asyncio.StreamWriter | None = None
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port), 30
                )
                writer.write(
                    connect_packet(
                        self.client_id,
                        keepalive_s=KEEPALIVE_S,
                        session_expiry_s=SESSION_EXPIRY_S,
                        will=will,
                    )
                )
                kind, body = await asyncio.wait_for(read_packet(reader), 30)
                if kind != 2 or len(body) < 2 or body[1] >= 0x80:
                    raise ConnectRefused(f"CONNACK {kind} {body[:2]!r}")
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ConnectRefused):
                self.stats.connect_failures += 1
                if writer is not None:
                    writer.close()
                await self._wait(attempts)
                attempts += 1
                continue
            attempts = 0
            self.stats.connects += 1
            self.stats.sessions_resumed += body[0] & 0x01
            if self.mark_at is not None and self.stats.reconnected_at is None:
                self.stats.reconnected_at = time.monotonic()
            await self._session(reader, writer)
            if self.stopping:
                return
            self.stats.connections_lost += 1
            await self._wait(attempts)
            attempts += 1

    async def _wait(self, attempts: int) -> None:
        delay = backoff_delay_s(attempts, RECONNECT_MIN_S, RECONNECT_MAX_S, self.rng)
        self.stats.backoff_waits_s.append(delay)
        await asyncio.sleep(delay)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connected.set()
        sender = asyncio.create_task(self._send(writer))
        pinger = asyncio.create_task(self._ping(writer))
        try:
            while True:
                kind, body = await read_packet(reader)
                if kind == 4:  # PUBACK
                    (pid,) = struct.unpack_from("!H", body)
                    if pid in self.inflight:
                        del self.inflight[pid]
                        self.acked += 1
                        if self.drained and self.mark_at is not None:
                            self.stats.drained_at = time.monotonic()
                        self.spool_changed.set()
                elif kind == 14:  # DISCONNECT from the broker
                    break
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self.connected.clear()
            sender.cancel()
            pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await sender
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await pinger
            writer.close()

    async def _send(self, writer: asyncio.StreamWriter) -> None:
        writer.write(
            publish_packet(
                status_topic(self.gateway_id), self._status(), self._status_pid, dup=False,
                retain=True,
            )
        )  # fmt: skip
        # Unacknowledged messages of the last connection go first, again (paho does this).
        for pid, index in sorted(self.inflight.items(), key=lambda item: item[1]):
            writer.write(self._publish(index, pid, dup=True))
            self.stats.messages_resent += 1
        await writer.drain()
        while True:
            while self.next_index < len(self.spool) and len(self.inflight) < self.window:
                readings = self.spool[self.next_index][0]
                await self._take_tokens(readings)
                pid = self.next_index % 65000 + 1
                self.inflight[pid] = self.next_index
                writer.write(self._publish(self.next_index, pid, dup=False))
                self.stats.messages_sent += 1
                self.next_index += 1
                await writer.drain()
            self.spool_changed.clear()
            await self.spool_changed.wait()

    def _publish(self, index: int, pid: int, *, dup: bool) -> bytes:
        return publish_packet(
            readings_topic(self.gateway_id), self.spool[index][1], pid, dup=dup, retain=False
        )

    async def _take_tokens(self, readings: int) -> None:
        """The publisher's replay rate: a bucket of ``batch`` readings refilled at the rate."""
        while True:
            now = time.monotonic()
            self._tokens = min(
                float(self.batch), self._tokens + (now - self._tokens_at) * self.readings_per_s
            )
            self._tokens_at = now
            if self._tokens >= readings or self._tokens >= self.batch:
                self._tokens -= readings
                return
            await asyncio.sleep((readings - self._tokens) / self.readings_per_s)

    async def _ping(self, writer: asyncio.StreamWriter) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE_S * 0.75)
            writer.write(PINGREQ)


# --- a day of readings -------------------------------------------------------------------------

_ID_DIGITS = 5


def gateway_name(n: int) -> str:
    return f"gw-{n:0{_ID_DIGITS}d}"


def day_messages(
    end: datetime, interval_s: int, batch: int = REPLAY_BATCH
) -> list[tuple[int, bytes]]:
    """A day of one inverter's readings up to ``end``, as the gateway's replay would batch
    them, for the placeholder gateway ``gw-XXXXX`` (see :func:`for_gateway`)."""
    count = 24 * 3600 // interval_s
    start = end - timedelta(seconds=interval_s * count)
    readings = [
        Reading(
            device_id="inv-XXXXX",
            ts=start + timedelta(seconds=interval_s * (i + 1)),
            ac_power_w=float(1500 + i % 700),
            ac_energy_wh=2_000_000.0 + 0.5 * i,
            ac_voltage_v=230.0 + (i % 7) / 10,
            grid_frequency_hz=50.0,
            cabinet_temp_c=31.5,
            vendor_state=4,
        )
        for i in range(count)
    ]
    messages = []
    for seq, first in enumerate(range(0, count, batch)):
        part = tuple(readings[first : first + batch])
        payload = encode_batch(
            ReadingsBatch(gateway_id="gw-XXXXX", seq=seq, sent_at=end, readings=part)
        )
        messages.append((len(part), payload))
    return messages


def for_gateway(messages: Sequence[tuple[int, bytes]], n: int) -> list[tuple[int, bytes]]:
    """The placeholder day with gateway ``n``'s ids (same length: a byte replace is exact)."""
    digits = f"{n:0{_ID_DIGITS}d}".encode()
    return [(k, p.replace(b"XXXXX", digits)) for k, p in messages]


# --- the fleet ---------------------------------------------------------------------------------


class Fleet:
    """``n`` simulated gateways on the running loop."""

    def __init__(self, n: int, host: str, port: int, seed: int = 18) -> None:
        rng = random.Random(seed)
        self.gateways = [
            SimulatedGateway(gateway_name(i), host, port, random.Random(rng.random()))
            for i in range(n)
        ]
        self._tasks: list[asyncio.Task[None]] = []

    async def connect_all(self, timeout_s: float, spread_s: float = 0.0) -> float:
        """Start every gateway (spread over ``spread_s``) and wait until all are connected."""
        started = time.monotonic()
        for i, gateway in enumerate(self.gateways):
            self._tasks.append(asyncio.create_task(gateway.run()))
            if spread_s and i % 50 == 49:
                await asyncio.sleep(spread_s * 50 / len(self.gateways))
        await asyncio.wait_for(
            asyncio.gather(*(g.connected.wait() for g in self.gateways)), timeout_s
        )
        return time.monotonic() - started

    def connected(self) -> int:
        return sum(g.connected.is_set() for g in self.gateways)

    def mark(self) -> float:
        """From now on, record each gateway's reconnection and drain times."""
        now = time.monotonic()
        for gateway in self.gateways:
            gateway.mark_at = now
        return now

    def load(self, messages: Sequence[tuple[int, bytes]]) -> None:
        for i, gateway in enumerate(self.gateways):
            gateway.load(for_gateway(messages, i))

    def drained(self) -> int:
        return sum(g.drained for g in self.gateways)

    def stat(self, name: str) -> int:
        return sum(int(getattr(g.stats, name)) for g in self.gateways)

    async def stop(self) -> None:
        for gateway in self.gateways:
            gateway.stopping = True
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# --- the storm: broker, collector, InfluxDB, fleet ---------------------------------------------


def raise_fd_limit(needed: int) -> tuple[int, int]:
    """Raise this process's RLIMIT_NOFILE (inherited by the broker and collector it starts) to
    at least ``needed`` where the hard limit (or root) allows; returns the new (soft, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        with contextlib.suppress(ValueError, OSError):  # only root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
            return needed, needed
    target = hard if hard == resource.RLIM_INFINITY else max(soft, min(hard, max(needed, soft)))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


#: config/mosquitto/zonnewijk.conf's bound of the collector's queue [B]
MAX_QUEUED_BYTES = 2_000_000_000


#: config/mosquitto/zonnewijk.conf's bound of the collector's queue [messages]
MAX_QUEUED_MESSAGES = 6_000_000


def storm_broker_config(
    max_queued_bytes: int = MAX_QUEUED_BYTES,
    memory_limit: int = 0,
    max_queued_messages: int = MAX_QUEUED_MESSAGES,
) -> str:
    """The bench broker's global limits (the same choices as config/mosquitto/zonnewijk.conf,
    which explains them); ``max_connections`` is the listener's."""
    return "\n".join(
        [
            # a day of the whole fleet for the collector's queue, bounded by bytes
            f"max_queued_messages {max_queued_messages}",
            f"max_queued_bytes {max_queued_bytes}",
            f"memory_limit {memory_limit}",
            "max_inflight_messages 1000",
            "max_packet_size 5000000",
            "persistent_client_expiration 14d",
        ]
    )


class StormMosquitto(Mosquitto):
    """A private Mosquitto with the storm's limits (the listener's max_connections)."""

    gateways: int = 0
    max_queued_bytes: int = MAX_QUEUED_BYTES
    memory_limit: int = 0
    max_queued_messages: int = MAX_QUEUED_MESSAGES

    def write_config(self) -> None:
        (self.directory / "data").mkdir(exist_ok=True)
        lines = [
            "per_listener_settings false",
            "user root" if os.geteuid() == 0 else "",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {self.directory / 'data'}/",
            "autosave_interval 60",
            storm_broker_config(self.max_queued_bytes, self.memory_limit, self.max_queued_messages),
            f"listener {self.port} 127.0.0.1",
            # every gateway, the collector(s), headroom for half-closed sockets of a reconnect
            f"max_connections {self.gateways + 200}",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages false",
            "",
        ]
        self.config_path.write_text("\n".join(lines))


def _proc_status(pid: int) -> dict[str, int]:
    values = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                values[key] = int(rest.split()[0]) // 1024
    return values


def cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def health(port: int) -> dict[str, object]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
            data: dict[str, object] = json.load(r)
            return data
    except (OSError, ValueError):
        return {}


@dataclass
class StormResult:
    gateways: int
    readings_per_gateway: int
    interval_s: int
    messages_sent: int
    readings_sent: int
    stored: int
    collector_readings_stored: int
    collector_messages: int
    recovery_s: float
    reconnected_s: float
    drained_s: float
    connect_s: float
    down_s: float
    messages_resent: int
    connect_failures: int
    sessions_resumed: int
    broker_peak_rss_mb: float
    collector_peak_rss_mb: float
    influx_peak_rss_mb: float
    broker_fds_peak: int
    fleet_fds_peak: int
    broker_cpu_share: float
    collector_cpu_share: float
    influx_cpu_share: float
    fleet_cpu_share: float
    fd_limit: int
    recovered: bool
    #: (seconds after the broker came back, gateways connected, readings stored)
    timeline: list[tuple[float, int, int]] = field(default_factory=list)
    max_backoff_s: float = 0.0
    #: the broker's log lines saying it dropped messages for a client (its queue was full)
    broker_drop_lines: int = 0
    #: the broker's log lines on memory (memory_limit reached)
    broker_memory_lines: int = 0
    broker_log_tail: str = ""
    #: collector processes (more than one: a shared subscription, STORM_SHARE_GROUP)
    collectors: int = 1
    #: stopped early: every gateway drained and nothing new stored for ``stall_s``
    stalled: bool = False
    collector_stored_each: list[int] = field(default_factory=list)
    #: each collector's CPU over the recovery (share of one core)
    collector_cpu_each: list[float] = field(default_factory=list)

    @property
    def lost(self) -> int:
        return self.readings_sent - self.stored

    @property
    def doubled(self) -> int:
        return max(0, self.collector_readings_stored - self.stored)

    @property
    def rate(self) -> float:
        return self.stored / self.recovery_s if self.recovery_s > 0 else float("nan")

    def line(self) -> str:
        return (
            f"reconnect_storm: gateways {self.gateways} readings {self.readings_sent} "
            f"stored {self.stored} lost {self.lost} doubled {self.doubled} "
            f"recovery_s {self.recovery_s:.1f}"
        )


#: the share group of a storm with several collectors ($share/<group>/zonnewijk/v1/+/readings)
STORM_SHARE_GROUP = "storm"


def _stored_by_collectors(ports: Sequence[int], previous: int) -> int:
    """Readings stored by all collectors together (``previous`` when one does not answer)."""
    total = 0
    for port in ports:
        h = health(port)
        if "readings_stored" not in h:
            return previous
        total += int(str(h["readings_stored"]))
    return total


def _count_stored(url: str, db: str) -> int:
    client = InfluxClient(url, db)
    rows = client.query_records('SELECT count("ac_power_w") FROM "inverter"')
    return int(rows[0]["count"]) if rows else 0


def _collector(
    broker_port: int,
    influx_url: str,
    metrics_port: int,
    log: Path,
    client_id: str = "storm-collector",
    share_group: str = "",
) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable, "-m", "collector.cli", "collect",
        "--mqtt-port", str(broker_port), "--influx-url", influx_url, "--influx-db", "storm",
        "--client-id", client_id, "--share-group", share_group, "--no-backfill",
        "--max-age-days", "30", "--metrics-port", str(metrics_port),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZONNEWIJK_")}
    env |= {"ZONNEWIJK_INFLUX_GZIP": "false", "PYTHONPATH": str(REPO)}
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)


async def _storm(
    gateways: int,
    interval_s: int,
    down_s: float,
    timeout_s: float,
    workdir: Path,
    say: Callable[[str], None],
    max_queued_bytes: int,
    memory_limit: int,
    collectors: int = 1,
    stall_s: float = 30.0,
    max_queued_messages: int = MAX_QUEUED_MESSAGES,
) -> StormResult:
    soft, _ = raise_fd_limit(gateways + 1000)
    say(f"RLIMIT_NOFILE {soft} for the fleet, the broker and the collector")
    loop = asyncio.get_running_loop()
    with Influxd.create() as influxd:
        broker = StormMosquitto.create()
        broker.gateways = gateways
        broker.max_queued_bytes = max_queued_bytes
        broker.memory_limit = memory_limit
        broker.max_queued_messages = max_queued_messages
        broker.keep_directory = True
        broker.start()
        # one collector: a plain subscription, as in production; several: a share group
        group = STORM_SHARE_GROUP if collectors > 1 else ""
        metrics_ports = [free_port() for _ in range(collectors)]
        procs = [
            _collector(
                broker.port, influxd.url, port, workdir / f"collector-{i}.log",
                client_id="storm-collector" if collectors == 1 else f"storm-collector-{i}",
                share_group=group,
            )
            for i, port in enumerate(metrics_ports)
        ]  # fmt: skip
        fleet = Fleet(gateways, "127.0.0.1", broker.port)
        try:
            deadline = time.monotonic() + 30
            for i, (proc, port) in enumerate(zip(procs, metrics_ports, strict=True)):
                while not health(port).get("mqtt_connected"):
                    if time.monotonic() > deadline or proc.poll() is not None:
                        log = (workdir / f"collector-{i}.log").read_text()[-2000:]
                        raise RuntimeError(f"collector {i} did not connect: {log}")
                    await asyncio.sleep(0.2)
            connect_s = await fleet.connect_all(timeout_s=120, spread_s=gateways / 1000)
            say(f"{gateways} gateways connected in {connect_s:.1f} s (persistent sessions)")
            messages = day_messages(datetime.now(UTC).replace(microsecond=0), interval_s)
            per_gateway = sum(n for n, _ in messages)
            sent = per_gateway * gateways
            await asyncio.sleep(1.0)  # the status messages of the first connects stored
            first_pid = broker.process.pid if broker.process else 0
            peak_broker = _proc_status(first_pid).get("VmHWM", 0)
            fleet.mark()
            broker.terminate()  # SIGTERM: a clean restart, sessions saved to disk
            say(f"broker stopped; each gateway now holds a day: {per_gateway} readings "
                f"in {len(messages)} message(s) of <= {REPLAY_BATCH} (every {interval_s} s)")  # fmt: skip
            gone = time.monotonic() + 10
            while fleet.connected() and time.monotonic() < gone:  # all saw the connection go
                await asyncio.sleep(0.05)
            fleet.load(messages)
            await asyncio.sleep(down_s)
            broker.start()
            up_at = time.monotonic()
            pid = broker.process.pid if broker.process else 0
            say(f"broker back after {down_s:g} s; gateways back off and replay")
            cpu0 = {"broker": cpu_s(pid), "collector": sum(cpu_s(p.pid) for p in procs),
                    "influx": cpu_s(influxd.process.pid if influxd.process else 0),
                    "fleet": cpu_s(os.getpid())}  # fmt: skip
            cpu0_each = [cpu_s(p.pid) for p in procs]
            fds_peak = fleet_fds = 0
            timeline: list[tuple[float, int, int]] = []
            stored_by_collector = 0
            recovered_at: float | None = None
            stalled_at: float | None = None
            progress = (-1, -1)
            progress_at = time.monotonic()
            collector_rss_peak = 0
            next_say = 0.0
            while time.monotonic() - up_at < timeout_s:
                await asyncio.sleep(0.25)
                fds_peak = max(fds_peak, fd_count(pid))
                fleet_fds = max(fleet_fds, fd_count(os.getpid()))
                collector_rss_peak = max(
                    collector_rss_peak, *(_proc_status(p.pid).get("VmRSS", 0) for p in procs)
                )
                stored_by_collector = await loop.run_in_executor(
                    None, _stored_by_collectors, metrics_ports, stored_by_collector
                )
                now_progress = (stored_by_collector, fleet.drained())
                if now_progress != progress:
                    progress, progress_at = now_progress, time.monotonic()
                elif (
                    fleet.drained() == gateways
                    and stored_by_collector < sent
                    and time.monotonic() - progress_at >= stall_s
                ):
                    # every gateway has every PUBACK (nothing more will be sent) and the
                    # collectors stored nothing new for stall_s: what is missing will not come
                    stalled_at = time.monotonic()
                    say(f"  stopped early: every gateway drained, {stored_by_collector} of "
                        f"{sent} readings stored and nothing new for {stall_s:g} s")  # fmt: skip
                    break
                t = time.monotonic() - up_at
                timeline.append((round(t, 2), fleet.connected(), stored_by_collector))
                if t >= next_say:
                    say(f"  t={t:5.1f} s: {fleet.connected()} connected, {fleet.drained()} "
                        f"drained, {stored_by_collector} readings stored")  # fmt: skip
                    next_say += 10
                if fleet.drained() == gateways and stored_by_collector >= sent:
                    recovered_at = time.monotonic()
                    break
            end = recovered_at or time.monotonic()
            window = max(end - up_at, 1e-6)
            cpu = {"broker": cpu_s(pid), "collector": sum(cpu_s(p.pid) for p in procs),
                   "influx": cpu_s(influxd.process.pid if influxd.process else 0),
                   "fleet": cpu_s(os.getpid())}  # fmt: skip
            await asyncio.sleep(3.0)  # a late redelivery would show up as a double
            finals = [await loop.run_in_executor(None, health, p) for p in metrics_ports]
            stored = await loop.run_in_executor(None, _count_stored, influxd.url, "storm")
            back = [g.stats.reconnected_at for g in fleet.gateways]
            drained = [g.stats.drained_at for g in fleet.gateways]
            waits = [w for g in fleet.gateways for w in g.stats.backoff_waits_s]
            result = StormResult(
                gateways=gateways,
                readings_per_gateway=per_gateway,
                interval_s=interval_s,
                messages_sent=fleet.stat("messages_sent"),
                readings_sent=sent,
                stored=stored,
                collector_readings_stored=sum(
                    int(str(f.get("readings_stored", 0))) for f in finals
                ),
                collector_messages=sum(int(str(f.get("messages", 0))) for f in finals),
                recovery_s=(end - up_at) if recovered_at else float("nan"),
                reconnected_s=max((b for b in back if b), default=up_at) - up_at
                if all(back)
                else float("nan"),
                drained_s=max((d for d in drained if d), default=up_at) - up_at
                if all(drained)
                else float("nan"),
                connect_s=connect_s,
                down_s=down_s,
                messages_resent=fleet.stat("messages_resent"),
                connect_failures=fleet.stat("connect_failures"),
                sessions_resumed=fleet.stat("sessions_resumed"),
                broker_peak_rss_mb=max(peak_broker, _proc_status(pid).get("VmHWM", 0)),
                collector_peak_rss_mb=max(
                    _proc_status(p.pid).get("VmHWM", collector_rss_peak) for p in procs
                ),
                influx_peak_rss_mb=_proc_status(influxd.process.pid if influxd.process else 0).get(
                    "VmHWM", 0
                ),
                broker_fds_peak=fds_peak,
                fleet_fds_peak=fleet_fds,
                broker_cpu_share=(cpu["broker"] - cpu0["broker"]) / window,
                collector_cpu_share=(cpu["collector"] - cpu0["collector"]) / window,
                influx_cpu_share=(cpu["influx"] - cpu0["influx"]) / window,
                fleet_cpu_share=(cpu["fleet"] - cpu0["fleet"]) / window,
                fd_limit=soft,
                recovered=recovered_at is not None,
                timeline=timeline,
                max_backoff_s=max(waits, default=0.0),
                collectors=collectors,
                stalled=stalled_at is not None,
                collector_stored_each=[int(str(f.get("readings_stored", 0))) for f in finals],
                collector_cpu_each=[
                    round((cpu_s(p.pid) - c0) / window, 3)
                    for p, c0 in zip(procs, cpu0_each, strict=True)
                ],
            )
            text = broker.log_path.read_text(errors="replace")
            result.broker_drop_lines = sum("dropped" in x for x in text.splitlines())
            result.broker_memory_lines = sum("memory" in x.lower() for x in text.splitlines())
            result.broker_log_tail = "\n".join(text.splitlines()[-8:])
        finally:
            await fleet.stop()
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            broker.keep_directory = False
            broker.stop()
    return result


def run_storm(
    gateways: int,
    *,
    interval_s: int = 300,
    down_s: float = 5.0,
    timeout_s: float = 200.0,
    workdir: Path,
    say: Callable[[str], None] = print,
    max_queued_bytes: int = MAX_QUEUED_BYTES,
    memory_limit: int = 0,
    collectors: int = 1,
    stall_s: float = 30.0,
    max_queued_messages: int = MAX_QUEUED_MESSAGES,
) -> StormResult:
    """All gateways connected, the broker restarted, a day of spool replayed; counted.

    ``collectors`` > 1 runs that many collector processes on one shared subscription;
    ``stall_s``: stop early once every gateway drained and nothing new was stored for this
    long (messages the broker dropped never arrive) [s].
    """
    return asyncio.run(
        _storm(
            gateways, interval_s, down_s, timeout_s, workdir, say, max_queued_bytes, memory_limit,
            collectors, stall_s, max_queued_messages,
        )
    )  # fmt: skip
