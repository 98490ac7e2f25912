"""Self-consumption of a home's solar energy: pure functions, no I/O.

Inputs are three lifetime energy counters of one household: the inverter's production
(``ac_energy_wh``) and the grid meter's import and export (``import_energy_wh``,
``export_energy_wh``, T1 + T2). They do not share a clock or an interval: the inverter is
polled every few seconds to a minute, the meter reading closes every 5 minutes on the
gateway's clock, and gateways may differ.

**Alignment.** Every counter is interpolated linearly in time onto one grid of UTC edges,
``step_s`` apart (default 900 s, the quarter-hour of Dutch settlement) and anchored at the
Unix epoch, so a grid edge falls on every local midnight in Europe/Amsterdam (the offset is
whole hours). The energy of an interval is the counter at its end minus the counter at its
start. An edge that no pair of readings at most ``max_gap_s`` apart surrounds has no value,
and an interval with an edge without value, or whose counter went backwards (a reset, a
swapped meter), is *missing*: it counts towards ``missing_s``, never towards energy.

**Balance per interval.** With production P, import I and export E of one interval:

- exported solar ``min(E, P)`` - what left the house cannot be more than the panels made;
- self-consumed ``P - min(E, P)`` = ``max(P - E, 0)``;
- unattributed export ``max(E - P, 0)`` - export beyond production in the interval (clock
  skew, a battery or a second generator behind the meter); reported, never self-consumed;
- consumption ``I + self-consumed``.

So each solar Wh of an interval is either self-consumed or exported, never both:
``self_consumed_wh + exported_solar_wh == production_wh`` for every interval. Sums over a
day or month add intervals, so the identity holds for every period too.

**Ratios.** Self-consumption rate = self-consumed / production; self-sufficiency =
self-consumed / consumption; ``None`` where the denominator is zero.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime

from collector.settlement.periods import AMSTERDAM, Period, day_period, local_day_of

#: Default grid step [s]: the quarter-hour.
DEFAULT_STEP_S = 900
#: Readings further apart than this are a gap that is not interpolated across [s].
DEFAULT_MAX_GAP_S = 1800.0
#: Fewest households in an aggregate, so that no single home stands out.
MIN_HOUSEHOLDS = 5


class SelfConsumptionError(ValueError):
    """The inputs cannot be balanced; the message says why."""


@dataclass(frozen=True)
class CounterSample:
    """One reading of a lifetime energy counter."""

    ts: datetime
    energy_wh: float


def _epoch_s(instant: datetime) -> float:
    if instant.tzinfo is None:
        raise SelfConsumptionError(f"{instant.isoformat()} has no time zone; give UTC instants")
    return instant.timestamp()


def grid_edges_s(start: datetime, end: datetime, step_s: int = DEFAULT_STEP_S) -> list[float]:
    """The grid edges [epoch s] covering ``[start, end)``; both must lie on the grid."""
    if step_s <= 0 or 3600 % step_s != 0:
        raise SelfConsumptionError(f"step {step_s} s must divide an hour")
    start_s, end_s = _epoch_s(start), _epoch_s(end)
    if start_s % step_s or end_s % step_s:
        raise SelfConsumptionError(
            f"{start.isoformat()}..{end.isoformat()} does not lie on the {step_s} s grid"
        )
    if end_s <= start_s:
        raise SelfConsumptionError(f"{start.isoformat()}..{end.isoformat()} is empty")
    return [start_s + k * step_s for k in range(int((end_s - start_s) // step_s) + 1)]


def counter_at_edges_wh(
    samples: Sequence[CounterSample],
    edges_s: Sequence[float],
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> list[float | None]:
    """The counter [Wh] at each edge, interpolated between the readings around it.

    ``None`` where no reading pair at most ``max_gap_s`` apart surrounds the edge (an edge
    exactly on a reading takes that reading). Samples need not be sorted; non-finite ones are
    ignored.
    """
    clean = sorted(
        (_epoch_s(s.ts), float(s.energy_wh)) for s in samples if math.isfinite(s.energy_wh)
    )
    ts = [t for t, _ in clean]
    out: list[float | None] = []
    for edge in edges_s:
        i = bisect.bisect_left(ts, edge)
        if i < len(ts) and ts[i] == edge:
            out.append(clean[i][1])
            continue
        if i == 0 or i == len(ts):
            out.append(None)
            continue
        (t0, e0), (t1, e1) = clean[i - 1], clean[i]
        if t1 - t0 > max_gap_s:
            out.append(None)
            continue
        out.append(e0 + (e1 - e0) * (edge - t0) / (t1 - t0))
    return out


def interval_energies_wh(counter_wh: Sequence[float | None]) -> list[float | None]:
    """Energy per interval [Wh] from the counter at its edges; ``None`` where an edge has no
    value or the counter went backwards (reset or swap: not an energy)."""
    out: list[float | None] = []
    for a, b in itertools.pairwise(counter_wh):
        if a is None or b is None or b < a:
            out.append(None)
        else:
            out.append(b - a)
    return out


@dataclass(frozen=True)
class Balance:
    """Energy balance of a household over a span [Wh, s]."""

    production_wh: float = 0.0
    import_wh: float = 0.0
    export_wh: float = 0.0
    self_consumed_wh: float = 0.0
    exported_solar_wh: float = 0.0
    unattributed_export_wh: float = 0.0
    covered_s: float = 0.0
    missing_s: float = 0.0

    @property
    def consumption_wh(self) -> float:
        """What the home used: import plus self-consumed solar [Wh]."""
        return self.import_wh + self.self_consumed_wh

    @property
    def self_consumption_ratio(self) -> float | None:
        """Self-consumed share of production [1]; ``None`` without production."""
        return self.self_consumed_wh / self.production_wh if self.production_wh > 0 else None

    @property
    def self_sufficiency_ratio(self) -> float | None:
        """Self-consumed share of consumption [1]; ``None`` without consumption."""
        use = self.consumption_wh
        return self.self_consumed_wh / use if use > 0 else None

    @property
    def completeness(self) -> float:
        """Share of the span with all three counters [1]."""
        total = self.covered_s + self.missing_s
        return self.covered_s / total if total > 0 else 0.0

    def __add__(self, other: Balance) -> Balance:
        return Balance(
            production_wh=self.production_wh + other.production_wh,
            import_wh=self.import_wh + other.import_wh,
            export_wh=self.export_wh + other.export_wh,
            self_consumed_wh=self.self_consumed_wh + other.self_consumed_wh,
            exported_solar_wh=self.exported_solar_wh + other.exported_solar_wh,
            unattributed_export_wh=self.unattributed_export_wh + other.unattributed_export_wh,
            covered_s=self.covered_s + other.covered_s,
            missing_s=self.missing_s + other.missing_s,
        )

    def to_json(self) -> dict[str, float | None]:
        return {
            "production_kwh": round(self.production_wh / 1000, 3),
            "consumption_kwh": round(self.consumption_wh / 1000, 3),
            "import_kwh": round(self.import_wh / 1000, 3),
            "export_kwh": round(self.export_wh / 1000, 3),
            "self_consumed_kwh": round(self.self_consumed_wh / 1000, 3),
            "unattributed_export_kwh": round(self.unattributed_export_wh / 1000, 3),
            "self_consumption_ratio": _round(self.self_consumption_ratio),
            "self_sufficiency_ratio": _round(self.self_sufficiency_ratio),
            "completeness": round(self.completeness, 4),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def balance_interval(
    production_wh: float, import_wh: float, export_wh: float, duration_s: float
) -> Balance:
    """The balance of one interval (see the module text)."""
    exported_solar_wh = min(export_wh, production_wh)
    return Balance(
        production_wh=production_wh,
        import_wh=import_wh,
        export_wh=export_wh,
        self_consumed_wh=production_wh - exported_solar_wh,
        exported_solar_wh=exported_solar_wh,
        unattributed_export_wh=max(export_wh - production_wh, 0.0),
        covered_s=duration_s,
    )


@dataclass(frozen=True)
class IntervalBalance:
    """The balance of one grid interval ``[start, start + step)``."""

    start: datetime
    balance: Balance


def production_energies_wh(
    counters: Sequence[Sequence[CounterSample]],
    edges_s: Sequence[float],
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> list[float | None]:
    """Production per interval [Wh] summed over a home's inverters; ``None`` where any of
    them has no value. No inverters: 0 (a home without panels in the span)."""
    out: list[float | None] = [0.0] * (len(edges_s) - 1)
    for samples in counters:
        energies = interval_energies_wh(counter_at_edges_wh(samples, edges_s, max_gap_s))
        for k, wh in enumerate(energies):
            current = out[k]
            out[k] = None if current is None or wh is None else current + wh
    return out


def balance_intervals(
    production: Sequence[Sequence[CounterSample]],
    imports: Sequence[CounterSample],
    exports: Sequence[CounterSample],
    start: datetime,
    end: datetime,
    step_s: int = DEFAULT_STEP_S,
    max_gap_s: float = DEFAULT_MAX_GAP_S,
) -> list[IntervalBalance]:
    """The household's balance per grid interval of ``[start, end)``.

    ``production`` holds one lifetime counter per inverter of the home.
    """
    edges = grid_edges_s(start, end, step_s)
    meter_in = interval_energies_wh(counter_at_edges_wh(imports, edges, max_gap_s))
    meter_out = interval_energies_wh(counter_at_edges_wh(exports, edges, max_gap_s))
    solar = production_energies_wh(production, edges, max_gap_s)
    out: list[IntervalBalance] = []
    for k, (p, i, e) in enumerate(zip(solar, meter_in, meter_out, strict=True)):
        at = datetime.fromtimestamp(edges[k], UTC)
        if p is None or i is None or e is None:
            out.append(IntervalBalance(at, Balance(missing_s=float(step_s))))
        else:
            out.append(IntervalBalance(at, balance_interval(p, i, e, float(step_s))))
    return out


def total(intervals: Iterable[IntervalBalance]) -> Balance:
    """The sum of interval balances."""
    result = Balance()
    for item in intervals:
        result = result + item.balance
    return result


def by_day(intervals: Iterable[IntervalBalance]) -> dict[date, Balance]:
    """Interval balances summed per Europe/Amsterdam calendar day."""
    out: dict[date, Balance] = {}
    for item in intervals:
        day = local_day_of(item.start)
        out[day] = out.get(day, Balance()) + item.balance
    return out


def by_month(intervals: Iterable[IntervalBalance]) -> dict[str, Balance]:
    """Interval balances summed per Europe/Amsterdam calendar month (``YYYY-MM``)."""
    out: dict[str, Balance] = {}
    for item in intervals:
        day = local_day_of(item.start)
        key = f"{day.year:04d}-{day.month:02d}"
        out[key] = out.get(key, Balance()) + item.balance
    return out


def by_year(intervals: Iterable[IntervalBalance]) -> dict[int, Balance]:
    """Interval balances summed per Europe/Amsterdam calendar year."""
    out: dict[int, Balance] = {}
    for item in intervals:
        year = local_day_of(item.start).year
        out[year] = out.get(year, Balance()) + item.balance
    return out


def period_span(period: Period) -> tuple[datetime, datetime]:
    """A calendar period's UTC boundaries, for :func:`balance_intervals`."""
    return period.start_utc, period.end_utc


def day_span(day: date) -> tuple[datetime, datetime]:
    """One local day's UTC boundaries (23 or 25 hours at the clock changes)."""
    return period_span(day_period(day))


@dataclass(frozen=True)
class GroupBalance:
    """A balance of several households, published only with enough of them."""

    households: int
    balance: Balance


def aggregate_households(
    balances: Mapping[str, Balance], min_households: int = MIN_HOUSEHOLDS
) -> GroupBalance | None:
    """The sum over households (fleet, street, neighbourhood); ``None`` with fewer than
    ``min_households`` that have any covered time, so that no single home stands out."""
    present = [b for b in balances.values() if b.covered_s > 0]
    if len(present) < max(min_households, 1):
        return None
    result = Balance()
    for b in present:
        result = result + b
    return GroupBalance(len(present), result)


def surplus_hours(
    intervals: Iterable[IntervalBalance], min_days: int = 7, min_share: float = 0.5
) -> list[int]:
    """Local hours of the day (0-23) in which the panels usually make more than the home uses.

    An hour counts as surplus on a day when the home exported solar energy in that hour
    (production exceeded use). It is *usually* surplus when that held on at least
    ``min_share`` of the days with data in that hour, and there were at least ``min_days``.
    """
    per_hour_days: dict[int, dict[date, float]] = {}
    for item in intervals:
        if item.balance.covered_s <= 0:
            continue
        local = item.start.astimezone(AMSTERDAM)
        days = per_hour_days.setdefault(local.hour, {})
        days[local.date()] = days.get(local.date(), 0.0) + item.balance.exported_solar_wh
    hours: list[int] = []
    for hour in sorted(per_hour_days):
        exported = per_hour_days[hour]
        if len(exported) >= min_days:
            share = sum(1 for wh in exported.values() if wh > 0) / len(exported)
            if share >= min_share:
                hours.append(hour)
    return hours


def hour_ranges(hours: Sequence[int]) -> list[tuple[int, int]]:
    """Consecutive hours as ``(first, end)`` ranges: [11, 12, 13, 16] -> [(11, 14), (16, 17)]."""
    ranges: list[tuple[int, int]] = []
    for hour in sorted(set(hours)):
        if ranges and ranges[-1][1] == hour:
            ranges[-1] = (ranges[-1][0], hour + 1)
        else:
            ranges.append((hour, hour + 1))
    return ranges


def utc_grid_floor(instant: datetime, step_s: int = DEFAULT_STEP_S) -> datetime:
    """The grid edge at or before ``instant``."""
    s = _epoch_s(instant)
    return datetime.fromtimestamp(s - s % step_s, UTC)
