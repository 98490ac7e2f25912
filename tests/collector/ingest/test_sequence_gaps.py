"""Holes in a gateway's message sequence: counted after their grace, never for redeliveries."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.devtools.services import Mosquitto
from collector.ingest.pipeline import Collector, MqttConnection
from collector.ingest.sequence_gaps import ConfirmedGap, SequenceGaps
from collector.timeseries.influx import InfluxClient
from zonnewijk_wire import Reading, ReadingsBatch, encode_batch, readings_topic

T0 = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)


def test_an_unbroken_sequence_has_no_holes() -> None:
    gaps = SequenceGaps(grace_s=10)
    for seq in range(1, 101):
        gaps.observe("gw-1", seq, now_s=seq)
    assert gaps.open_holes() == 0
    assert gaps.confirm(now_s=1000) == []
    assert gaps.confirmed_total == 0


def test_a_hole_is_confirmed_after_its_grace_as_a_range() -> None:
    gaps = SequenceGaps(grace_s=60)
    for seq in (1, 2, 3, 7, 8):
        gaps.observe("gw-1", seq, now_s=100)
    assert gaps.open_holes() == 3
    assert gaps.confirm(now_s=159) == []  # within the grace: may still come
    assert gaps.confirm(now_s=160) == [ConfirmedGap("gw-1", 4, 6)]
    assert gaps.confirmed_total == 3
    assert gaps.open_holes() == 0
    assert gaps.confirm(now_s=500) == []  # counted once


def test_late_and_redelivered_messages_are_not_holes() -> None:
    """Replay and live interleave; a redelivery repeats a number."""
    gaps = SequenceGaps(grace_s=60)
    for seq in (10, 12, 11, 12, 10, 14, 13):
        gaps.observe("gw-1", seq, now_s=0)
    assert gaps.open_holes() == 0
    assert gaps.confirm(now_s=100) == []


def test_gateways_are_apart_and_ranges_split() -> None:
    gaps = SequenceGaps(grace_s=0)
    for gw, seq in (("a", 1), ("b", 5), ("a", 3), ("b", 6), ("a", 6), ("b", 9)):
        gaps.observe(gw, seq, now_s=0)
    gaps.observe("a", 4, now_s=0)  # fills one of a's holes
    found = gaps.confirm(now_s=0)
    assert found == [
        ConfirmedGap("a", 2, 2),
        ConfirmedGap("a", 5, 5),
        ConfirmedGap("b", 7, 8),
    ]
    assert sum(g.messages for g in found) == gaps.confirmed_total == 4


def test_a_gateway_starting_again_lower_raises_no_alarm() -> None:
    gaps = SequenceGaps(grace_s=0)
    gaps.observe("gw-1", 5000, now_s=0)
    for seq in range(1, 50):  # rebuilt from scratch: its numbers start again
        gaps.observe("gw-1", seq, now_s=0)
    assert gaps.confirm(now_s=0) == []


def test_a_restart_keeps_the_highest_numbers() -> None:
    """Without them a collector that was away, and restarted, would take the first number it
    sees after the hole as its baseline and miss exactly the loss it is there for."""
    before = SequenceGaps(grace_s=0)
    before.observe("gw-1", 40, now_s=0)
    after = SequenceGaps(grace_s=0)
    after.restore(before.highest())
    after.observe("gw-1", 45, now_s=1)
    assert after.confirm(now_s=1) == [ConfirmedGap("gw-1", 41, 44)]


def test_a_hole_too_wide_to_remember_is_counted_at_once() -> None:
    gaps = SequenceGaps(grace_s=3600, max_open_holes=100)
    gaps.observe("gw-1", 1, now_s=0)
    gaps.observe("gw-1", 1002, now_s=0)
    assert gaps.open_holes() == 0
    assert gaps.confirm(now_s=0) == [ConfirmedGap("gw-1", 2, 1001)]
    assert gaps.confirmed_total == 1000


def test_bad_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        SequenceGaps().observe("gw-1", -1, now_s=0)
    with pytest.raises(ValueError, match="grace_s"):
        SequenceGaps(grace_s=-1)


# --- the known loss, for real: Mosquitto drops what an offline collector's queue cannot hold ---


def _message(seq: int) -> bytes:
    ts = T0 + timedelta(seconds=10 * seq)
    reading = Reading(device_id="inv-001", ts=ts, ac_power_w=1000.0, ac_energy_wh=5e6 + seq)
    return encode_batch(
        ReadingsBatch(gateway_id="gw-001", seq=seq, sent_at=ts, readings=(reading,))
    )


def _collector(broker: Mosquitto, influx: InfluxClient, state: Path) -> Collector:
    return Collector(
        mqtt_connection=MqttConnection(port=broker.port, client_id="gap-collector"),
        influx=influx,
        batch_max_wait_s=0.05,
        sequence_state=state,
        sequence_grace_s=0.0,
    )


def test_messages_the_broker_dropped_for_an_offline_collector_are_counted(
    influx: InfluxClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The gateway gets its PUBACK (and would delete the readings); the broker's queue for the
    collector holds 2 messages; the collector, restarted, counts the ones that never came."""
    state = tmp_path / "sequences.json"
    with Mosquitto.create(extra_config="max_queued_messages 2") as broker:
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gw-001")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        try:
            with _collector(broker, influx, state) as first:
                pub.publish(readings_topic("gw-001"), _message(1), qos=1).wait_for_publish(5)
                assert first.wait_idle(10)
            assert json.loads(state.read_text())["highest"] == {"gw-001": 1}
            for seq in range(2, 8):  # the collector is away: its session queues them
                info = pub.publish(readings_topic("gw-001"), _message(seq), qos=1)
                info.wait_for_publish(5)
                assert info.is_published()  # acknowledged to the gateway
            with caplog.at_level(logging.WARNING), _collector(broker, influx, state) as second:
                assert second.wait_idle(10)
                pub.publish(readings_topic("gw-001"), _message(8), qos=1).wait_for_publish(5)
                assert second.wait_idle(10)
                found = second.check_sequences()
                gaps = second.stats.sequence_gaps
        finally:
            pub.loop_stop()
            pub.disconnect()
    rows = influx.query_records('SELECT "ac_energy_wh" FROM "inverter"')
    stored = {round(r["ac_energy_wh"] - 5e6) for r in rows}
    missing = set(range(1, 9)) - stored
    assert missing, "the broker was to drop some of the offline collector's messages"
    assert {1, 8} <= stored
    assert gaps == found == len(missing)
    assert "never arrived" in caplog.text
