"""What the ingest tests share: a listener on the collector's dead-letter topic."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.devtools.services import Mosquitto
from zonnewijk_wire import DEADLETTER_TOPIC


@dataclass
class DeadLetters:
    """The dead letters the collector published, in order."""

    received: list[dict[str, object]] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout_s: float = 5.0) -> bool:
        return self.arrived.wait(timeout_s)


@pytest.fixture
def dead_letters(mosquitto: Mosquitto) -> Iterator[DeadLetters]:
    letters = DeadLetters()
    subscribed = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-deadletters")

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        letters.received.append(json.loads(msg.payload))
        letters.arrived.set()

    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect("127.0.0.1", mosquitto.port)
    client.subscribe(DEADLETTER_TOPIC, qos=1)
    client.loop_start()
    assert subscribed.wait(5), "could not subscribe to the dead-letter topic"
    yield letters
    client.loop_stop()
    client.disconnect()
