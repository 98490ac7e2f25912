"""P1 telegrams into one :class:`~zonnewijk_wire.MeterReading` per interval (default 5 min).

Intervals are fixed on the gateway's clock (UTC, NTP): with ``interval_s`` = 300 they end at
:00, :05, :10 ... A telegram belongs to the interval in which it was *received*
(``end - interval_s < received_at <= end``), so every telegram counts in exactly one interval
and the inverter readings of the same gateway share its clock. A reading carries:

- the lifetime counters of the interval's last telegram (at most one telegram period, 1 s on
  DSMR 5 and 10 s on DSMR 4, before the edge): consecutive readings' counters differ by the
  energy of the telegrams between them, so no Wh is counted in two intervals or lost;
- the means of the telegrams' import and export power, and the extremes of import - export;
- per phase the means of power, voltage and current; the tariff, the gas meter (when
  configured, i.e. opted in) and the protocol of the last telegram.

Never a wrong reading: a telegram whose counters fell, or rose faster than a home's
connection can carry (:data:`MAX_GRID_POWER_W`), is held back; three that agree with each
other and not with the old series are taken as a meter reset (``meter_changed``), anything
else is dropped and counted as implausible. A new equipment id (hash) is a meter swap: the
old meter's interval closes at its last telegram (``partial_interval``) and the new meter's
readings start a new series (``meter_changed``). An interval with fewer than 90 % of the
telegrams its protocol sends is flagged ``partial_interval``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway_firmware.p1.identity import hash_meter_id
from gateway_firmware.p1.telegram import P1Telegram
from zonnewijk_wire import GasReading, MeterFlag, MeterReading, MeterSource, PhaseValues

__all__ = [
    "MAX_GRID_POWER_W",
    "AggregatorStats",
    "IntervalAggregator",
    "telegram_period_s",
]

#: Most power a home's connection carries (3 x 80 A at 230 V is 55 kW), with margin [W].
MAX_GRID_POWER_W = 60_000.0
#: A counter register's step tolerance on top of the power bound [Wh].
COUNTER_SLACK_WH = 10.0
#: Telegrams that must agree before lower counters are taken as a reset [telegrams].
RESET_CONFIRMATIONS = 3
#: Share of the expected telegrams below which an interval is flagged partial [-].
PARTIAL_BELOW = 0.9

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_COUNTER_FIELDS = (
    "import_energy_t1_wh",
    "import_energy_t2_wh",
    "export_energy_t1_wh",
    "export_energy_t2_wh",
)


def telegram_period_s(protocol: str) -> float:
    """Seconds between telegrams: 1 for DSMR 5 and eMUCS, 10 for DSMR 4 and 2.2/3.0 [s]."""
    return 1.0 if protocol.startswith(("DSMR 5", "eMUCS")) else 10.0


def interval_end(received_at: datetime, interval_s: int) -> datetime:
    """The end of the interval a telegram received at ``received_at`` belongs to [UTC]."""
    seconds = (received_at - _EPOCH) / timedelta(seconds=1)
    return _EPOCH + timedelta(seconds=math.ceil(seconds / interval_s) * interval_s)


@dataclass
class AggregatorStats:
    """What the aggregator saw (for the gateway's status and the tests)."""

    telegrams: int = 0
    implausible: int = 0
    meter_changes: int = 0
    version_changes: int = 0
    readings: int = 0
    last_event: str = ""


@dataclass
class _PhaseSums:
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, value: float | None) -> None:
        if value is not None:
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] = self.counts.get(name, 0) + 1

    def mean(self, name: str) -> float | None:
        count = self.counts.get(name)
        return None if not count else self.sums[name] / count


@dataclass
class _Bucket:
    start: datetime
    end: datetime
    new_series: bool
    samples: int = 0
    import_sum_w: float = 0.0
    export_sum_w: float = 0.0
    power_samples: int = 0
    net_min_w: float = math.inf
    net_max_w: float = -math.inf
    phases: dict[str, _PhaseSums] = field(default_factory=dict)
    last: P1Telegram | None = None
    last_at: datetime | None = None
    gas: GasReading | None = None
    sentinel: bool = False


class IntervalAggregator:
    """Aggregates one P1 meter's telegrams (pure: no I/O, the caller brings the times).

    Parameters
    ----------
    device_id
        The meter's device id on the wire (registered on the gateway with the member's consent).
    interval_s
        Length of an interval; divides an hour (60, 300, 900, 3600...) [s].
    salt
        The gateway's salt for the equipment id hash (:mod:`gateway_firmware.p1.identity`).
    gas
        Include the gas meter (only when the member opted in to gas).
    previous_hash
        The equipment id hash the gateway saw last before this start (a swap while it was off
        is then flagged too), or None.
    """

    def __init__(
        self,
        device_id: str,
        *,
        interval_s: int = 300,
        salt: bytes,
        gas: bool = False,
        previous_hash: str | None = None,
    ) -> None:
        if interval_s <= 0 or 3600 % interval_s:
            raise ValueError(f"interval_s must divide an hour, got {interval_s}")
        self.device_id = device_id
        self.interval_s = interval_s
        self.salt = salt
        self.gas = gas
        self.stats = AggregatorStats()
        self.meter_hash: str | None = previous_hash
        self.protocol: str | None = None
        self._bucket: _Bucket | None = None
        self._accepted: P1Telegram | None = None
        self._accepted_at: datetime | None = None
        self._candidates: list[tuple[datetime, P1Telegram]] = []
        self._new_series = False

    # --- feeding ------------------------------------------------------------------------

    def add(self, received_at: datetime, telegram: P1Telegram) -> list[MeterReading]:
        """Take one decoded telegram received at ``received_at`` [UTC]; returns the readings
        of the intervals it closed (usually none, one at an interval's edge)."""
        self.stats.telegrams += 1
        out = self.close_due(received_at, grace_s=0.0)
        id_hash = hash_meter_id(self.salt, telegram.equipment_id) if telegram.equipment_id else None
        if id_hash is not None and self.meter_hash is not None and id_hash != self.meter_hash:
            out.extend(self._close_early())
            self._start_series(f"meter changed (equipment id hash {id_hash[:8]}...)")
        if id_hash is not None:
            self.meter_hash = id_hash
        if self.protocol is not None and telegram.protocol != self.protocol:
            self.stats.version_changes += 1
            self.stats.last_event = (
                f"P1 version changed from {self.protocol} to {telegram.protocol}"
            )
        self.protocol = telegram.protocol
        verdict = self._check_counters(received_at, telegram)
        if verdict == "hold":
            return out
        if verdict == "reset":
            out.extend(self._close_early())
            self._start_series("meter counters restarted (reset)")
            for at, held in self._candidates:
                self._accept(at, held)
            self._candidates.clear()
            return out
        self._accept(received_at, telegram)
        return out

    def close_due(self, now: datetime, *, grace_s: float) -> list[MeterReading]:
        """Close the current interval when ``now`` is past its end by ``grace_s`` [s]."""
        bucket = self._bucket
        if bucket is None or now < bucket.end + timedelta(seconds=grace_s):
            return []
        if grace_s == 0.0 and now <= bucket.end:
            return []
        self._bucket = None
        return self._emit(bucket, bucket.end)

    # --- counters -------------------------------------------------------------------------

    def _check_counters(self, received_at: datetime, telegram: P1Telegram) -> str:
        """``ok``, ``hold`` (implausible for now) or ``reset`` (confirmed lower series)."""
        previous, previous_at = self._accepted, self._accepted_at
        if previous is None or previous_at is None:
            return "ok"
        if _follows(previous, previous_at, telegram, received_at):
            if self._candidates:  # the old series goes on: the held ones were glitches
                self._drop_candidates("counters that fell and came back")
            return "ok"
        fell = any(getattr(telegram, name) < getattr(previous, name) for name in _COUNTER_FIELDS)
        if not fell:
            self.stats.implausible += 1
            self.stats.last_event = (
                "dropped a telegram whose counters rose faster than the connection allows"
            )
            return "hold"
        if self._candidates:
            last_at, last = self._candidates[-1]
            if not _follows(last, last_at, telegram, received_at):
                self._drop_candidates("counters that fell, inconsistently")
        self._candidates.append((received_at, telegram))
        if len(self._candidates) >= RESET_CONFIRMATIONS:
            return "reset"
        return "hold"

    def _drop_candidates(self, why: str) -> None:
        self.stats.implausible += len(self._candidates)
        self.stats.last_event = f"dropped {len(self._candidates)} telegram(s): {why}"
        self._candidates.clear()

    def _start_series(self, why: str) -> None:
        self.stats.meter_changes += 1
        self.stats.last_event = why
        self._new_series = True
        self._accepted = None
        self._accepted_at = None

    # --- intervals ------------------------------------------------------------------------

    def _accept(self, received_at: datetime, telegram: P1Telegram) -> None:
        end = interval_end(received_at, self.interval_s)
        bucket = self._bucket
        if bucket is None:
            start = end - timedelta(seconds=self.interval_s)
            if self._new_series:
                start = max(start, received_at - timedelta(microseconds=1))
            bucket = _Bucket(start=start, end=end, new_series=self._new_series)
            self._new_series = False
            self._bucket = bucket
        bucket.samples += 1
        if telegram.import_power_w is not None and telegram.export_power_w is not None:
            bucket.import_sum_w += telegram.import_power_w
            bucket.export_sum_w += telegram.export_power_w
            bucket.power_samples += 1
            net = telegram.import_power_w - telegram.export_power_w
            bucket.net_min_w = min(bucket.net_min_w, net)
            bucket.net_max_w = max(bucket.net_max_w, net)
        for phase in telegram.phases:
            sums = bucket.phases.setdefault(phase.phase, _PhaseSums())
            sums.add("import_power_w", phase.import_power_w)
            sums.add("export_power_w", phase.export_power_w)
            sums.add("voltage_v", phase.voltage_v)
            sums.add("current_a", phase.current_a)
        if self.gas:
            if telegram.gas is not None:
                bucket.gas = GasReading(ts=telegram.gas.ts, gas_m3=telegram.gas.gas_m3)
            bucket.sentinel = bucket.sentinel or "gas" in telegram.sentinels
        bucket.last, bucket.last_at = telegram, received_at
        self._accepted, self._accepted_at = telegram, received_at

    def _close_early(self) -> list[MeterReading]:
        """Close the current interval at its last telegram (before a swap or a reset)."""
        bucket = self._bucket
        self._bucket = None
        if bucket is None or bucket.last_at is None:
            return []
        return self._emit(bucket, bucket.last_at, early=True)

    def _emit(self, bucket: _Bucket, ts: datetime, *, early: bool = False) -> list[MeterReading]:
        last = bucket.last
        if last is None or bucket.samples == 0:
            return []
        interval_s = max(1, round((ts - bucket.start).total_seconds()))
        expected = interval_s / telegram_period_s(last.protocol)
        flags: list[MeterFlag] = []
        if bucket.new_series:
            flags.append(MeterFlag.METER_CHANGED)
        if early or bucket.samples < PARTIAL_BELOW * expected:
            flags.append(MeterFlag.PARTIAL_INTERVAL)
        if bucket.sentinel and bucket.gas is None:
            flags.append(MeterFlag.SENTINEL)
        has_power = bucket.power_samples > 0
        reading = MeterReading(
            device_id=self.device_id,
            ts=ts,
            source=MeterSource.P1,
            interval_s=interval_s,
            samples=bucket.samples,
            import_energy_wh=last.import_energy_wh,
            export_energy_wh=last.export_energy_wh,
            import_energy_t1_wh=last.import_energy_t1_wh,
            import_energy_t2_wh=last.import_energy_t2_wh,
            export_energy_t1_wh=last.export_energy_t1_wh,
            export_energy_t2_wh=last.export_energy_t2_wh,
            tariff=last.tariff if last.tariff in (1, 2) else None,
            import_power_w=bucket.import_sum_w / bucket.power_samples if has_power else None,
            export_power_w=bucket.export_sum_w / bucket.power_samples if has_power else None,
            net_power_min_w=bucket.net_min_w if has_power else None,
            net_power_max_w=bucket.net_max_w if has_power else None,
            phases=tuple(
                PhaseValues(
                    phase=name,
                    import_power_w=sums.mean("import_power_w"),
                    export_power_w=sums.mean("export_power_w"),
                    voltage_v=sums.mean("voltage_v"),
                    current_a=sums.mean("current_a"),
                )
                for name, sums in sorted(bucket.phases.items())
            ),
            gas=bucket.gas,
            meter_id_hash=self.meter_hash,
            protocol=last.protocol,
            flags=tuple(flags),
        )
        self.stats.readings += 1
        return [reading]


def _follows(
    previous: P1Telegram, previous_at: datetime, telegram: P1Telegram, received_at: datetime
) -> bool:
    """Whether ``telegram``'s counters can follow ``previous``'s: none fell, none rose faster
    than :data:`MAX_GRID_POWER_W` allows in the time between them."""
    elapsed_s = max((received_at - previous_at).total_seconds(), 1.0)
    most_wh = MAX_GRID_POWER_W * elapsed_s / 3600.0 + COUNTER_SLACK_WH
    for name in _COUNTER_FIELDS:
        rise = getattr(telegram, name) - getattr(previous, name)
        if rise < 0 or rise > most_wh:
            return False
    return True
