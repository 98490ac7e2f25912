"""MQTT publishing of spooled readings with paho-mqtt 2 at QoS 1.

A reading leaves the spool only when the broker acknowledged (PUBACK) the message carrying it:
each published message's id (``mid``) maps to the spool ids of its readings, and paho's
``on_publish`` (called on PUBACK) hands the mid to the gateway's main thread, which deletes
those readings. paho keeps unacknowledged messages and sends them again after a reconnect, so
the mapping stays valid for the life of the process; after a restart everything still in the
spool is sent again (a reading that arrives twice overwrites itself in InfluxDB).

Inverter readings go to ``.../readings`` (:class:`~zonnewijk_wire.ReadingsBatch`), grid-meter
readings to ``.../meter`` (:class:`~zonnewijk_wire.MeterBatch`); a message holds one kind.

Two lanes share the connection:

- **live**: a reading just polled is sent at once, in its own small batch;
- **replay**: the backlog (everything in the spool not in flight) is sent oldest first in
  batches of ``replay_batch_size``, at most ``replay_window`` messages awaiting PUBACK and at
  most ``replay_readings_per_s`` readings per second, so live readings keep flowing during a
  long replay.

Threading: paho runs its network loop in its own thread (``loop_start``); the callbacks only
put events on a queue. Every other method, and all spool access, runs on the caller's thread.

The connection carries a last will (retained :class:`~zonnewijk_wire.GatewayStatus`
``offline``); on every connect the gateway publishes a retained ``online`` status (spool depth,
dropped readings, firmware version, last poll result) and each device's retained
:class:`~zonnewijk_wire.DeviceInfo`.
"""

from __future__ import annotations

import logging
import queue
import random
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from gateway_firmware.backoff import backoff_delay_s
from gateway_firmware.config import MqttConfig, SpoolConfig
from gateway_firmware.spool import Spool, Spoolable, SpooledReading, kind_of
from gateway_firmware.spool_guard import GuardedSpool
from zonnewijk_wire import (
    DeviceInfo,
    GatewayStatus,
    MeterBatch,
    MeterFlag,
    MeterReading,
    Reading,
    ReadingFlag,
    ReadingsBatch,
    device_info_topic,
    encode,
    encode_batch,
    meter_topic,
    readings_topic,
    status_topic,
)

log = logging.getLogger(__name__)

#: Live messages allowed to wait for a PUBACK before live readings are left to the replay lane.
LIVE_WINDOW = 16
#: Pause of the replay lane after the broker refused a readings message (ACL) [s].
REFUSED_PAUSE_S = 60.0


@dataclass
class PublisherStats:
    """What the publisher did (for status, logs, tests and the benchmark)."""

    connects: int = 0
    disconnects: int = 0
    connect_refusals: int = 0
    connect_failures: int = 0
    #: the randomised wait chosen before the latest reconnection attempt [s]
    last_backoff_s: float = 0.0
    live_messages: int = 0
    replay_messages: int = 0
    readings_sent: int = 0
    readings_acked: int = 0
    refused_messages: Counter[str] = field(default_factory=Counter)


@dataclass
class _InFlight:
    ids: list[int]
    replay: bool


def _now() -> datetime:
    return datetime.now(UTC)


class Publisher:
    """Publishes a gateway's spooled readings, status and device info to the broker.

    Parameters
    ----------
    gateway_id
        This gateway's id (topic level and MQTT username by convention).
    mqtt_config
        Broker, credentials, TLS, session and reconnect settings.
    spool
        The spool the readings come from; used on the caller's thread only.
    spool_config
        Replay batch size, rate and window.
    firmware_version
        Reported in the status message.
    client_id
        MQTT client id; must be stable so the broker keeps the session.
    status_interval_s
        How often the retained ``online`` status is refreshed [s].
    clock
        Monotonic clock [s], replaceable in tests.
    rng
        Draws the randomised reconnect waits (:mod:`gateway_firmware.backoff`).
    """

    def __init__(
        self,
        *,
        gateway_id: str,
        mqtt_config: MqttConfig,
        spool: Spool | GuardedSpool,
        spool_config: SpoolConfig,
        firmware_version: str,
        client_id: str | None = None,
        status_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.gateway_id = gateway_id
        self.mqtt_config = mqtt_config
        self.spool = spool
        self.batch_size = spool_config.replay_batch_size
        self.replay_rate = spool_config.replay_readings_per_s
        self.replay_window = spool_config.replay_window
        self.firmware_version = firmware_version
        self.client_id = client_id or f"zonnewijk-gw-{gateway_id}"
        self.status_interval_s = status_interval_s
        self.stats = PublisherStats()
        self.last_poll: str | None = None
        self._clock = clock
        self._rng = rng or random.Random()
        #: failed connection attempts since the last successful connect (network thread only)
        self._attempts = 0
        self._events: queue.SimpleQueue[tuple[str, int, bool, str]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._connected = threading.Event()
        self._inflight: dict[int, _InFlight] = {}
        self._sent_ids: set[int] = set()
        self._replay_cursor = 0
        self._replay_paused_until = -1e18
        self._replay_inflight = 0
        self._live_inflight = 0
        self._tokens = float(self.batch_size)
        self._tokens_at = clock()
        self._device_infos: dict[str, DeviceInfo] = {}
        self._last_status_at = -1e18
        self._reported_dropped = spool.dropped_total()
        self._started = False
        #: extra fields of the status message (config version, package, channel: issue 21)
        self.status_extra: dict[str, Any] = {}
        self._subscriptions: dict[str, Callable[[str, bytes], None]] = {}
        self._messages: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._client = self._make_client()

    # --- connection -------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        cfg = self.mqtt_config
        v5 = cfg.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
        )
        username = cfg.username
        if username:
            client.username_pw_set(username, cfg.password_value())
        if cfg.tls is not None:
            client.tls_set(
                ca_certs=str(cfg.tls.ca_file),
                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        will = GatewayStatus(
            gateway_id=self.gateway_id, state="offline", firmware_version=self.firmware_version
        )
        client.will_set(status_topic(self.gateway_id), encode(will), qos=1, retain=True)
        # paho's own backoff is the same for every gateway; the first wait is set here and every
        # later one by _set_backoff (paho calls on_disconnect / on_connect_fail before it waits).
        client.reconnect_delay_set(*self._next_backoff())  # type: ignore[arg-type]
        # We bound what we hand to paho ourselves; paho must never refuse or hold back a message.
        client.max_inflight_messages_set(self.replay_window + LIVE_WINDOW + 16)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        """Start connecting in the background (paho's network thread reconnects with backoff)."""
        cfg = self.mqtt_config
        props: Properties | None = None
        clean_start: mqtt.CleanStartOption = mqtt.MQTT_CLEAN_START_FIRST_ONLY
        if cfg.protocol == "5":
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = cfg.session_expiry_s
            clean_start = False
        self._client.connect_async(
            cfg.host,
            cfg.effective_port,
            keepalive=cfg.keepalive_s,
            clean_start=clean_start,
            properties=props,
        )
        self._client.loop_start()
        self._started = True
        log.info(
            "connecting to %s:%d as %s (%s, TLS %s)",
            cfg.host,
            cfg.effective_port,
            self.client_id,
            f"MQTT v{cfg.protocol}",
            "on" if cfg.tls else "off",
        )

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Publish a retained ``offline`` status, wait briefly for PUBACKs, disconnect."""
        if not self._started:
            return
        if self.connected:
            offline = GatewayStatus(
                gateway_id=self.gateway_id,
                state="offline",
                ts=_now(),
                firmware_version=self.firmware_version,
                spool_depth=self.spool.depth(),
                spool_dropped=self.spool.dropped_total(),
                last_poll=self.last_poll,
            )
            info = self._client.publish(
                status_topic(self.gateway_id), encode(offline), qos=1, retain=True
            )
            deadline = self._clock() + timeout_s
            while self._clock() < deadline and (self._inflight or not info.is_published()):
                self.wait(0.05)
                self._handle_events()
        self._client.disconnect()
        self._client.loop_stop()
        self._handle_events()
        self._started = False

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout_s: float) -> bool:
        return self._connected.wait(timeout_s)

    def _next_backoff(self) -> tuple[float, float]:
        cfg = self.mqtt_config
        delay = backoff_delay_s(
            self._attempts, float(cfg.reconnect_min_s), float(cfg.reconnect_max_s), self._rng
        )
        self.stats.last_backoff_s = delay
        return delay, delay

    def _set_backoff(self, client: mqtt.Client) -> None:
        """Choose the randomised wait before paho's next attempt, and count the attempt."""
        client.reconnect_delay_set(*self._next_backoff())  # type: ignore[arg-type]
        self._attempts += 1

    # paho callbacks: network thread; they only record events (and choose the next backoff).

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason_code.is_failure:
            self._events.put(("refused", 0, False, str(reason_code)))
        else:
            self._attempts = 0
            self._connected.set()
            self._events.put(("connected", 0, bool(flags.session_present), ""))
        self._wake.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._set_backoff(client)
        self._events.put(("connect_failed", 0, False, ""))
        self._wake.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.DisconnectFlags,
        reason_code: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        self._set_backoff(client)
        if was_connected:
            self._events.put(("disconnected", 0, False, str(reason_code)))
        self._wake.set()

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Properties,
    ) -> None:
        self._events.put(("puback", mid, not reason_code.is_failure, str(reason_code)))
        self._wake.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._messages.put((message.topic, bytes(message.payload)))
        self._wake.set()

    # --- main-thread API ------------------------------------------------------------------------

    def subscribe(self, topic: str, handler: Callable[[str, bytes], None]) -> None:
        """Call ``handler(topic, payload)`` on the caller's thread (in :meth:`step`) for each
        message on ``topic``; subscribed now and after every connect."""
        self._subscriptions[topic] = handler
        if self.connected:
            self._client.subscribe(topic, qos=1)

    def device_info(self, device_id: str) -> DeviceInfo | None:
        return self._device_infos.get(device_id)

    def publish_retained(self, topic: str, payload: bytes) -> None:
        """Publish a retained QoS 1 message (when connected; paho resends it after a drop)."""
        self._publish_retained(topic, payload)

    def wait(self, timeout_s: float) -> None:
        """Sleep until a broker event arrives or ``timeout_s`` passes [s]."""
        if self._wake.wait(max(0.0, timeout_s)):
            self._wake.clear()

    def set_device_info(self, info: DeviceInfo) -> None:
        """Remember a device's info and publish it (retained) now and on every connect."""
        self._device_infos[info.device_id] = info
        if self.connected:
            self._publish_retained(device_info_topic(self.gateway_id, info.device_id), encode(info))

    @staticmethod
    def messages_for(readings: Sequence[Spoolable]) -> int:
        """How many messages :meth:`send_live` sends for these readings (one per run of one
        kind)."""
        return len(_runs_of_one_kind([(0, r) for r in readings]))

    def can_send_live(self) -> bool:
        """Whether readings handed to :meth:`send_live` now would be sent at once."""
        return self.connected and self._live_inflight < LIVE_WINDOW

    def send_live(self, readings: Sequence[tuple[int, Spoolable]]) -> bool:
        """Send readings that were just spooled (spool id, reading) at once, one message per
        kind (inverter readings, meter readings).

        Returns False when they were left to the replay lane (not connected, or too many live
        messages already waiting for a PUBACK).
        """
        if not readings or not self.can_send_live():
            return False
        for run in _runs_of_one_kind(list(readings)):
            self._publish_batch(run, replay=False)
        return True

    def step(self) -> float:
        """Handle broker events, refresh the status, send backlog; returns the seconds until
        more backlog could be sent (``inf`` when there is nothing to wait for) [s]."""
        self._handle_events()
        self._maybe_publish_status(self.status_interval_s)
        return self._replay()

    def rescan(self) -> None:
        """Look at the whole backlog again (readings that came back into the spool with lower
        ids, after a storage fault); readings in flight are not sent twice."""
        self._replay_cursor = 0
        self._wake.set()

    @property
    def in_flight_readings(self) -> int:
        return len(self._sent_ids)

    def publish_status(self) -> None:
        """Publish the retained ``online`` status now (when connected)."""
        if not self.connected:
            return
        status = GatewayStatus(
            gateway_id=self.gateway_id,
            state="online",
            ts=_now(),
            firmware_version=self.firmware_version,
            spool_depth=self.spool.depth(),
            spool_dropped=self.spool.dropped_total(),
            last_poll=self.last_poll,
            **self.status_extra,
        )
        self._publish_retained(status_topic(self.gateway_id), encode(status))
        self._last_status_at = self._clock()

    # --- internals --------------------------------------------------------------------------

    def _publish_retained(self, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1, retain=True)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            log.warning("publishing %s failed: %s", topic, mqtt.error_string(info.rc))

    def _publish_batch(self, readings: list[tuple[int, Spoolable]], *, replay: bool) -> None:
        """Publish readings of one kind as one message."""
        meters = [r for _, r in readings if isinstance(r, MeterReading)]
        batch: ReadingsBatch | MeterBatch
        if meters:
            assert len(meters) == len(readings), "one kind per message"
            topic = meter_topic(self.gateway_id)
            batch = MeterBatch(
                gateway_id=self.gateway_id,
                seq=self.spool.next_seq(),
                sent_at=_now(),
                readings=tuple(meters),
            )
        else:
            topic = readings_topic(self.gateway_id)
            batch = ReadingsBatch(
                gateway_id=self.gateway_id,
                seq=self.spool.next_seq(),
                sent_at=_now(),
                readings=tuple(r for _, r in readings if isinstance(r, Reading)),
            )
        info = self._client.publish(topic, encode_batch(batch), qos=1)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            # paho did not keep the message: leave the readings to the replay lane.
            log.warning("publish refused by the MQTT client: %s", mqtt.error_string(info.rc))
            self._requeue([i for i, _ in readings])
            return
        ids = [i for i, _ in readings]
        if info.mid in self._inflight:
            log.error("message id %d reused while in flight; its readings will be resent", info.mid)
            self._requeue(self._inflight.pop(info.mid).ids)
        self._inflight[info.mid] = _InFlight(ids, replay)
        self._sent_ids.update(ids)
        self.stats.readings_sent += len(ids)
        if replay:
            self._replay_inflight += 1
            self.stats.replay_messages += 1
        else:
            self._live_inflight += 1
            self.stats.live_messages += 1

    def _requeue(self, ids: list[int]) -> None:
        self._sent_ids.difference_update(ids)
        if ids:
            self._replay_cursor = min(self._replay_cursor, min(ids) - 1)

    def _handle_events(self) -> None:
        acked: list[int] = []
        announce = False
        while True:
            try:
                kind, mid, ok, reason = self._events.get_nowait()
            except queue.Empty:
                break
            if kind == "puback":
                entry = self._inflight.pop(mid, None)
                if entry is None:
                    continue  # a status or device info message
                if entry.replay:
                    self._replay_inflight -= 1
                else:
                    self._live_inflight -= 1
                if ok:
                    acked.extend(entry.ids)
                    self._sent_ids.difference_update(entry.ids)
                else:
                    self.stats.refused_messages[reason] += 1
                    log.error(
                        "broker refused a readings message (%s); its %d readings stay in the "
                        "spool and will be sent again - check this gateway's ACL",
                        reason,
                        len(entry.ids),
                    )
                    self._requeue(entry.ids)
                    # sending the backlog again at once would be refused again: pause it
                    self._replay_paused_until = self._clock() + REFUSED_PAUSE_S
            elif kind == "connected":
                self.stats.connects += 1
                announce = True
                log.info(
                    "connected to the broker (session present: %s), %d readings in the spool",
                    ok,
                    self.spool.depth(),
                )
            elif kind == "disconnected":
                self.stats.disconnects += 1
                log.warning(
                    "lost the broker connection (%s); readings keep going to the spool", reason
                )
            elif kind == "connect_failed":
                self.stats.connect_failures += 1
                n = self.stats.connect_failures
                if n in (1, 10) or n % 100 == 0:  # loud, but not every few seconds for days
                    cfg = self.mqtt_config
                    log.warning(
                        "cannot reach the broker at %s:%d (%d attempts so far): network, DNS "
                        "or TLS (mqtt.tls.ca_file, the Pi's clock); retrying with backoff",
                        cfg.host,
                        cfg.effective_port,
                        n,
                    )
            elif kind == "refused":
                self.stats.connect_refusals += 1
                log.error(
                    "broker refused the connection: %s - check mqtt.username/password and TLS",
                    reason,
                )
        if announce and self.connected and self._subscriptions:
            self._client.subscribe([(topic, 1) for topic in self._subscriptions])
        while True:
            try:
                topic, payload = self._messages.get_nowait()
            except queue.Empty:
                break
            handler = self._subscriptions.get(topic)
            if handler is not None:
                try:
                    handler(topic, payload)
                except Exception:  # a bad message must never stop the gateway
                    log.exception("handling a message on %s failed", topic)
        if acked:
            self.spool.delete(acked)
            self.stats.readings_acked += len(acked)
        if announce and self.connected:
            self.publish_status()
            for info in self._device_infos.values():
                self._publish_retained(
                    device_info_topic(self.gateway_id, info.device_id), encode(info)
                )

    def _maybe_publish_status(self, interval_s: float | None = None) -> None:
        dropped = self.spool.dropped_total()
        if dropped != self._reported_dropped:
            log.error(
                "the spool has dropped %d readings in total (%d new); reported in the status",
                dropped,
                dropped - self._reported_dropped,
            )
            self._reported_dropped = dropped
            self.publish_status()
        elif interval_s is not None and self._clock() - self._last_status_at >= interval_s:
            self.publish_status()

    def _replay(self) -> float:
        if not self.connected:
            return float("inf")
        now = self._clock()
        if now < self._replay_paused_until:
            return self._replay_paused_until - now
        self._tokens = min(
            float(self.batch_size), self._tokens + (now - self._tokens_at) * self.replay_rate
        )
        self._tokens_at = now
        while self._replay_inflight < self.replay_window:
            rows = self._next_backlog()
            if not rows:
                return float("inf")
            # one message holds one kind: send the leading run, the rest comes next round
            other = next((i for i, r in enumerate(rows) if r.kind != rows[0].kind), len(rows))
            rows = rows[:other]
            if self._tokens < len(rows):
                return (len(rows) - self._tokens) / self.replay_rate
            self._tokens -= len(rows)
            self._publish_batch([(row.id, _flag_replayed(row.item())) for row in rows], replay=True)
            self._replay_cursor = max(self._replay_cursor, rows[-1].id)
        return float("inf")  # woken by the next PUBACK

    def _next_backlog(self) -> list[SpooledReading]:
        """Up to one batch of spooled readings that are not in flight, oldest first."""
        cursor = self._replay_cursor
        while True:
            rows = self.spool.after(cursor, self.batch_size)
            if not rows:
                return []
            free = [r for r in rows if r.id not in self._sent_ids]
            if free:
                return free
            cursor = rows[-1].id
            self._replay_cursor = cursor


def _flag_replayed(item: Spoolable) -> Spoolable:
    """The reading with its kind's ``replayed`` flag added (once)."""
    if isinstance(item, MeterReading):
        if MeterFlag.REPLAYED in item.flags:
            return item
        return item.model_copy(update={"flags": (*item.flags, MeterFlag.REPLAYED)})
    if ReadingFlag.REPLAYED in item.flags:
        return item
    return item.model_copy(update={"flags": (*item.flags, ReadingFlag.REPLAYED)})


def _runs_of_one_kind(
    readings: list[tuple[int, Spoolable]],
) -> list[list[tuple[int, Spoolable]]]:
    """Consecutive readings of one kind, in their order (one message each)."""
    runs: list[list[tuple[int, Spoolable]]] = []
    for entry in readings:
        if runs and kind_of(runs[-1][-1][1]) == kind_of(entry[1]):
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs
