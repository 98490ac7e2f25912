"""The consent lifecycle end to end (issue 17): opt in, collect, withdraw, delete, against real
Mosquitto, InfluxDB and the relational store (SQLite, the registry of config/fleet.small.yaml).

Nothing of a meter is stored before its member's opt-in; gas only with gas in the scope;
nothing finer than the consented granularity; nothing after the withdrawal; and after the
purge no point of the meter is left in any retention policy."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from collector.devtools.services import Mosquitto
from collector.ingest.consent import CachedConsents, check_consent
from collector.ingest.directory import ConsentRecord
from collector.ingest.pipeline import Collector, MqttConnection
from collector.ingest.store_directory import StoreConsents, StoreDirectory
from collector.ingest.validate import ReadingValidator
from collector.registry.consent_purge import count_meter_points, purge_withdrawn
from collector.registry.consents import ConsentError, give_consent, withdraw_consent
from collector.registry.fleet_file import load_fleet_file
from collector.registry.store_sync import sync_fleet
from collector.store.consent_models import ConsentEventRow, MeterConsentRow
from collector.store.testing import temporary_database
from collector.timeseries.influx import InfluxClient
from collector.timeseries.schema import init_database
from tests.collector.ingest.conftest import DeadLetters
from zonnewijk_wire import (
    GasReading,
    MeterBatch,
    MeterFlag,
    MeterReading,
    MeterSource,
    PhaseValues,
    encode_batch,
    meter_topic,
)

FLEET = Path(__file__).resolve().parents[3] / "config" / "fleet.small.yaml"
GW, METER = "gw-s001", "S001-p1"
NOW = datetime.now(UTC).replace(microsecond=0)
T0 = (NOW - timedelta(hours=3)).replace(minute=0, second=0)


def reading(k: int, *, interval_s: int = 300, gas: bool = True) -> MeterReading:
    ts = T0 + timedelta(minutes=5 * k)
    return MeterReading(
        device_id=METER,
        ts=ts,
        source=MeterSource.P1,
        interval_s=interval_s,
        samples=interval_s,
        import_energy_wh=1_000_000.0 + 40 * k,
        export_energy_wh=500_000.0 + 90 * k,
        import_power_w=480.0,
        export_power_w=1080.0,
        phases=(PhaseValues(phase="L1", voltage_v=231.0),),
        gas=GasReading(ts=ts - timedelta(minutes=2), gas_m3=3100.0 + k / 100) if gas else None,
        meter_id_hash="9c1e5b7a0f3d2e44",
        protocol="DSMR 5.0",
    )


@pytest.fixture
def store() -> Iterator[Engine]:
    with temporary_database("sqlite") as engine:
        with Session(engine) as session, session.begin():
            sync_fleet(session, load_fleet_file(FLEET))
        yield engine


class Gateway:
    """Publishes meter messages as gw-s001 would."""

    def __init__(self, port: int) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"gw-{uuid.uuid4().hex[:6]}"
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.seq = 0

    def send(self, *readings: MeterReading) -> None:
        self.seq += 1
        batch = MeterBatch(
            gateway_id=GW, seq=self.seq, sent_at=datetime.now(UTC), readings=readings
        )
        self.client.publish(meter_topic(GW), encode_batch(batch), qos=1).wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def wait_for(predicate: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_opt_in_collect_withdraw_delete(
    store: Engine, mosquitto: Mosquitto, influx: InfluxClient, dead_letters: DeadLetters
) -> None:
    init_database(influx)  # the retention policies, rollups in their own
    validator = ReadingValidator(
        directory=StoreDirectory(store), consents=CachedConsents(StoreConsents(store), ttl_s=0.0)
    )
    conn = MqttConnection(port=mosquitto.port, client_id=f"col-{uuid.uuid4().hex[:6]}")
    gateway = Gateway(mosquitto.port)
    stored = lambda: count_meter_points(influx, GW, METER)  # noqa: E731
    with Collector(
        mqtt_connection=conn, influx=influx, validator=validator, batch_max_wait_s=0.05
    ) as col:
        rejected = col.stats.rejected_readings
        # 1. no consent yet: nothing is stored, and the dead letter carries no reading
        gateway.send(reading(0), reading(1))
        wait_for(lambda: rejected["no_consent"] == 2)
        assert stored() == 0
        wait_for(lambda: len(dead_letters.received) == 2)
        letter = dead_letters.received[0]
        assert letter["reason"] == "no_consent" and letter["original"] is None
        assert METER not in json.dumps(letter["original"]) and "9c1e5b7a" not in json.dumps(letter)

        # 2. the member opts in (electricity only, every 5 minutes) from T0 + 10 min
        with Session(store) as session, session.begin():
            with pytest.raises(ConsentError, match="no contract at site S001"):
                give_consent(session, member_id="M0002", site_id="S001", device_id=METER,
                             at=T0, recorded_by="test")  # fmt: skip
            give_consent(
                session, member_id="M0001", site_id="S001", device_id=METER,
                at=T0 + timedelta(minutes=10), recorded_by="volunteer Jan",
                evidence="signed form 2027-01-04",
            )  # fmt: skip
        gateway.send(reading(1), reading(2), reading(3), reading(4, interval_s=60))
        wait_for(lambda: rejected["before_consent"] == 1 and rejected["finer_than_consent"] == 1)
        wait_for(
            lambda: (
                len(influx.query_records(f"SELECT * FROM grid_meter WHERE device = '{METER}'")) == 2
            )
        )
        rows = influx.query_records(f"SELECT * FROM grid_meter WHERE device = '{METER}'")
        assert [r["import_energy_wh"] for r in rows] == [1_000_080.0, 1_000_120.0]
        assert influx.query_records("SELECT * FROM gas_meter") == []  # gas not in the scope
        assert len(influx.query_records("SELECT * FROM grid_phase")) == 2
        # (a rollup written by a later job lands in another retention policy: the purge finds it)
        influx.write_lines(
            [f"grid_meter,gateway={GW},device={METER},source=p1 import_energy_wh=1.0 "
             f"{int(T0.timestamp()) * 1000}"],
            retention_policy="rollup_1d",
        )  # fmt: skip
        assert stored() == 2 + 2 + 1
        # the daily job's balance of this home, and of a neighbour who stays opted in
        day_ms = int(T0.timestamp()) * 1000
        influx.write_lines(
            [f"household_energy_daily,site=S001,gateway={GW} production_kwh=9.5 {day_ms}",
             f"household_energy_daily,site=S002,gateway=gw-s002 production_kwh=8.0 {day_ms}"]
        )  # fmt: skip
        assert stored() == 2 + 2 + 1 + 1

        # 3. withdrawn: collection stops at once
        with Session(store) as session, session.begin():
            row = withdraw_consent(session, member_id="M0001", device_id=METER,
                                   at=datetime.now(UTC), actor="member (portal)")  # fmt: skip
            assert row.delete_by == row.withdrawn_at + timedelta(hours=24)  # type: ignore[operator]
        gateway.send(reading(5), reading(6))
        wait_for(lambda: rejected["consent_withdrawn"] == 2)
        assert stored() == 6

    # 4. the purge deletes every point of the meter, in every retention policy
    with Session(store) as session:
        [result] = purge_withdrawn(session, influx, now=datetime.now(UTC))
        assert (result.member_id, result.points_deleted, result.overdue) == ("M0001", 6, False)
        assert purge_withdrawn(session, influx, now=datetime.now(UTC)) == []  # done once
    assert stored() == 0
    left = influx.query_records("SELECT * FROM household_energy_daily")
    assert [r["gateway"] for r in left] == ["gw-s002"]  # the neighbour's day is untouched
    with Session(store) as session:
        consent = session.scalars(select(MeterConsentRow)).one()
        assert consent.deleted_at is not None and consent.evidence == "signed form 2027-01-04"
        kinds = [
            e.kind
            for e in session.scalars(select(ConsentEventRow).order_by(ConsentEventRow.event_id))
        ]
        assert kinds == ["given", "withdrawn", "deleted"]
    gateway.close()


def test_gas_is_kept_only_with_gas_in_the_scope() -> None:
    both = ConsentRecord("M1", T0, None, electricity=True, gas=True, granularity_s=900)
    kept, problem = check_consent(reading(3, interval_s=900), both, now=NOW)
    assert problem is None and kept is not None and kept.gas is not None
    finer, problem = check_consent(reading(3, interval_s=300), both, now=NOW)
    assert finer is None and problem is not None and problem.reason == "finer_than_consent"
    # an interval cut short by a meter swap is the member's granularity, not a finer one
    swapped = reading(3, interval_s=120).model_copy(update={"flags": (MeterFlag.PARTIAL_INTERVAL,)})
    assert check_consent(swapped, both, now=NOW)[1] is None
    gas_only = ConsentRecord("M1", T0, None, electricity=False, gas=True, granularity_s=300)
    assert check_consent(reading(3), gas_only, now=NOW)[1].reason == "not_in_scope"  # type: ignore[union-attr]
