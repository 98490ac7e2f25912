"""The MQTT topics of wire format v1, all under ``zonnewijk/v1/<gateway_id>/``."""

from __future__ import annotations

from zonnewijk_wire.common import TOPIC_ROOT


def readings_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/readings"


def meter_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/meter"


def status_topic(gateway_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/status"


def device_info_topic(gateway_id: str, device_id: str) -> str:
    return f"{TOPIC_ROOT}/{gateway_id}/devices/{device_id}/info"


READINGS_FILTER = f"{TOPIC_ROOT}/+/readings"
METER_FILTER = f"{TOPIC_ROOT}/+/meter"
STATUS_FILTER = f"{TOPIC_ROOT}/+/status"
DEVICE_INFO_FILTER = f"{TOPIC_ROOT}/+/devices/+/info"
DEADLETTER_TOPIC = f"{TOPIC_ROOT}/_deadletter"


def gateway_id_from_topic(topic: str) -> str | None:
    """The gateway id a topic is under, or None when the topic is not ours."""
    parts = topic.split("/")
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != TOPIC_ROOT:
        return None
    return parts[2]
