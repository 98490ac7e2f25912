"""How much RAM Mosquitto needs for messages queued for an offline collector (a tool for
sizing ``max_queued_messages``; not in the ``make bench`` suite).

    .venv/bin/python bench/_broker_queue_memory.py [--messages 1000000 3000000] [--bytes 338]

A private Mosquitto with unbounded queues; a persistent MQTT v5 session subscribes to
``zonnewijk/v1/+/readings`` at QoS 1 and goes away (the collector is down); one client then
publishes ``--messages`` QoS 1 messages of ``--bytes`` bytes (338 B: one live reading as a
gateway sends it every poll, docs/field-faults.md). Prints the broker's RSS before and after
and the bytes of RAM per queued message.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.devtools.services import Mosquitto


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def queue_for_offline_collector(port: int) -> None:
    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    props.SessionExpiryInterval = 86400
    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="away", protocol=mqtt.MQTTv5)
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.connect("127.0.0.1", port, clean_start=False, properties=props)
    sub.loop_start()
    sub.subscribe("zonnewijk/v1/+/readings", qos=1)
    if not subscribed.wait(10):
        raise RuntimeError("the broker did not acknowledge the subscription")
    sub.disconnect()
    sub.loop_stop()


def publish(port: int, count: int, size: int) -> float:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw", protocol=mqtt.MQTTv5)
    pub.max_inflight_messages_set(1000)
    pub.max_queued_messages_set(0)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    payload = b"x" * size
    started = time.monotonic()
    last = None
    for i in range(count):
        last = pub.publish(f"zonnewijk/v1/gw-{i % 2125:04d}/readings", payload, qos=1)
        if i % 5000 == 4999:
            last.wait_for_publish(60)
    if last is not None:
        last.wait_for_publish(60)
    elapsed = time.monotonic() - started
    pub.disconnect()
    pub.loop_stop()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--bytes", type=int, default=338)
    args = parser.parse_args()
    for count in args.messages:
        config = "max_queued_messages 0\nmax_queued_bytes 0\nmax_inflight_messages 1000"
        with Mosquitto.create(extra_config=config) as broker:
            assert broker.process is not None
            pid = broker.process.pid
            queue_for_offline_collector(broker.port)
            before = rss_mb(pid)
            seconds = publish(broker.port, count, args.bytes)
            time.sleep(1)
            after = rss_mb(pid)
            per_message = (after - before) * 1024 * 1024 / count
            print(
                f"{count:,} messages of {args.bytes} B queued in {seconds:.0f} s: broker RSS "
                f"{before:.0f} -> {after:,.0f} MB, {per_message:,.0f} B of RAM a message "
                f"({per_message / args.bytes:.2f} x its payload)"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
