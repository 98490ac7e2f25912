"""The collector and the gateway's clock (docs/clock.md): readings from the future or from before
the device's installation go to the dead-letter topic with a reason; readings flagged
``time_unknown`` are stored apart, where settlement does not look."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.devtools.services import Mosquitto
from collector.ingest.directory import DeviceRecord, StaticDirectory
from collector.ingest.pipeline import Collector, MqttConnection
from collector.ingest.process import process_message
from collector.ingest.validate import (
    QuickBounds,
    ReadingValidator,
    ValidationLimits,
    check_installed,
    check_reading,
    installation_start,
    max_ac_power_w,
    quick_accept,
)
from collector.timeseries.influx import InfluxClient
from collector.timeseries.measurements import INVERTER_MEASUREMENT
from tests.collector.ingest.conftest import DeadLetters
from zonnewijk_wire import (
    DcInput,
    MeterBatch,
    MeterFlag,
    MeterReading,
    Reading,
    ReadingFlag,
    ReadingsBatch,
    encode_batch,
    meter_topic,
    readings_topic,
)

NOW = datetime.now(UTC).replace(microsecond=0)
INSTALLED = (NOW - timedelta(days=10)).date()
RECORD = DeviceRecord("gw-clk", "inv-1", rated_ac_power_w=3000.0, installed_on=INSTALLED)
DIRECTORY = StaticDirectory.of([RECORD, DeviceRecord("gw-clk", "meter-1")])
LIMITS = ValidationLimits()


def reading(ts: datetime, *flags: ReadingFlag, energy_wh: float = 10_000.0) -> Reading:
    return Reading(
        device_id="inv-1",
        ts=ts,
        ac_power_w=1200.0,
        ac_energy_wh=energy_wh,
        dc=(DcInput(mppt=1, dc_power_w=1250.0),),
        flags=flags,
    )


def test_installation_day_starts_at_local_midnight() -> None:
    winter = date(2026, 12, 1)
    assert installation_start(winter) == datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    summer = date(2026, 6, 1)
    assert installation_start(summer) == datetime(2026, 5, 31, 22, 0, tzinfo=UTC)
    assert check_installed(datetime(2026, 11, 30, 23, 0, tzinfo=UTC), winter) is None
    problem = check_installed(datetime(2026, 11, 30, 22, 59, 59, tzinfo=UTC), winter)
    assert problem is not None and problem.reason == "before_installation"
    assert "2026-12-01" in problem.detail
    assert check_installed(datetime(1970, 1, 1, tzinfo=UTC), None) is None  # date unknown


@pytest.mark.parametrize(
    ("ts", "flags", "reason"),
    [
        (NOW - timedelta(hours=1), (), None),
        (NOW + timedelta(hours=2), (), "future_timestamp"),
        (NOW - timedelta(days=11), (), "before_installation"),
        (NOW - timedelta(days=11), (ReadingFlag.TIME_RESTAMPED,), "before_installation"),
        (datetime(1970, 1, 1, 0, 5, tzinfo=UTC), (ReadingFlag.TIME_UNKNOWN,), None),
        (NOW + timedelta(days=400), (ReadingFlag.TIME_UNKNOWN,), None),
    ],
)
def test_quick_accept_agrees_with_check_reading(
    ts: datetime, flags: tuple[ReadingFlag, ...], reason: str | None
) -> None:
    r = reading(ts, *flags)
    problem = check_reading(r, now=NOW, record=RECORD, previous_counter=None, limits=LIMITS)
    assert (problem.reason if problem else None) == reason
    quick = quick_accept(
        r,
        NOW,
        None,
        max_ac_power_w(RECORD.rated_ac_power_w, LIMITS),
        QuickBounds.of(LIMITS),
        installation_start(INSTALLED),
    )
    if quick:  # quick_accept may only say yes where check_reading does
        assert problem is None
    if reason is not None:
        assert not quick


def test_time_unknown_is_stored_apart_and_never_judged_by_its_counter() -> None:
    validator = ReadingValidator(directory=DIRECTORY, limits=LIMITS)
    batch = ReadingsBatch(
        gateway_id="gw-clk",
        seq=1,
        sent_at=NOW,
        readings=(
            reading(NOW - timedelta(minutes=2), energy_wh=20_000.0),
            # an earlier boot's reading: lower counter, 1970 stamp; neither refuses it
            reading(datetime(1970, 1, 1, 0, 5, tzinfo=UTC), ReadingFlag.TIME_UNKNOWN),
            reading(NOW - timedelta(minutes=1), energy_wh=20_001.0),
        ),
    )
    result = process_message(readings_topic("gw-clk"), encode_batch(batch), validator, now=NOW)
    assert result.rejections == []
    assert [p.measurement for p in result.points] == [
        "inverter",
        "dc",
        "inverter_time_unknown",
        "dc_time_unknown",
        "inverter",
        "dc",
    ]
    assert [line.split(",")[0] for line in result.lines] == [p.measurement for p in result.points]
    assert result.oldest_reading == NOW - timedelta(minutes=2)  # not 1970
    # the counter memory holds the newest timed counter, not the unknown-time one
    assert validator.counters.get("gw-clk", "inv-1") == (NOW - timedelta(minutes=1), 20_001.0)


def test_a_meter_reading_of_unknown_time_is_refused_with_its_reason() -> None:
    validator = ReadingValidator(directory=DIRECTORY, limits=LIMITS)
    meter = MeterReading(
        device_id="meter-1",
        ts=datetime(1970, 1, 1, 0, 5, tzinfo=UTC),
        source="sunspec",
        import_energy_wh=1000.0,
        flags=(MeterFlag.TIME_UNKNOWN,),
    )
    batch = MeterBatch(gateway_id="gw-clk", seq=1, sent_at=NOW, readings=(meter,))
    result = process_message(meter_topic("gw-clk"), encode_batch(batch), validator, now=NOW)
    assert [r.reason for r in result.rejections] == ["time_unknown"]
    assert result.lines == []


@pytest.fixture
def collector(mosquitto: Mosquitto, influx: InfluxClient) -> Iterator[Collector]:
    with Collector(
        mqtt_connection=MqttConnection(port=mosquitto.port, client_id="test-collector-clock"),
        influx=influx,
        validator=ReadingValidator(directory=DIRECTORY, limits=LIMITS),
        batch_max_wait_s=0.05,
    ) as c:
        yield c


def test_the_collector_dead_letters_wrong_times_and_keeps_unknown_times_apart(
    mosquitto: Mosquitto, influx: InfluxClient, collector: Collector, dead_letters: DeadLetters
) -> None:
    good = reading(NOW - timedelta(minutes=5), ReadingFlag.TIME_RESTAMPED)
    future = reading(NOW + timedelta(hours=2), energy_wh=10_001.0)
    before = reading(NOW - timedelta(days=11), energy_wh=9_000.0)
    unknown = reading(datetime(1970, 1, 1, 0, 0, 7, tzinfo=UTC), ReadingFlag.TIME_UNKNOWN)
    batch = ReadingsBatch(
        gateway_id="gw-clk", seq=1, sent_at=NOW, readings=(good, future, before, unknown)
    )
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="test-publisher-clock")
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    client.publish(readings_topic("gw-clk"), encode_batch(batch), qos=1).wait_for_publish(5)
    assert collector.wait_idle(10)
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while len(dead_letters.received) < 2 and datetime.now(UTC) < deadline:
        dead_letters.wait(0.2)
    client.loop_stop()
    reasons = sorted(str(d["reason"]) for d in dead_letters.received)
    assert reasons == ["before_installation", "future_timestamp"]
    assert all("detail" in d and d["original"] for d in dead_letters.received)
    timed = influx.query_records(f'SELECT * FROM "{INVERTER_MEASUREMENT}"')
    assert [(r["time"], r["flags"]) for r in timed] == [
        (int(good.ts.timestamp() * 1000), "time_restamped")
    ]
    apart = influx.query_records('SELECT * FROM "inverter_time_unknown"')
    assert [(r["time"], r["flags"], r["ac_energy_wh"]) for r in apart] == [
        (7000, "time_unknown", 10_000.0)
    ]
    assert influx.query_records('SELECT * FROM "dc_time_unknown"')[0]["dc_power_w"] == 1250.0
    assert collector.stats.rejected_total() == 2
