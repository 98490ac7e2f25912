"""Interval energy into a counter flagged as imported: pure, no I/O.

Vendor exports often give the energy of each 5 or 15 minutes (or each day) but no lifetime
counter. Settlement measures energy as counter differences, so the intervals of a device are
summed into a counter: at the start of a run of back-to-back intervals a reading with the
running total, then one at each interval's end. A run stops where an interval is missing or
was refused; the next starts a new *span*. Each span is recorded
(:class:`Span`, stored as an ``imported_counter`` point): settlement starts a new counter
segment at a span's first reading and after its last, so the energy of a gap, or between an
imported counter and a real one, is estimated and never read off two different counters.

The running total continues from the last imported total stored before the first interval,
so importing a month file and then the next one gives the same readings as importing both at
once, and importing a file again gives the same readings again (idempotent).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from collector.importing.rows import RowInterval


@dataclass(frozen=True)
class CounterPoint:
    """One reading of an imported counter."""

    line: int
    device_id: str
    ts: datetime
    counter_wh: float
    #: The interval's mean power; None at a span's first reading [W].
    mean_power_w: float | None
    extra: dict[str, object] | None = None


@dataclass
class Span:
    """Back-to-back intervals of one device, counted on one imported counter."""

    device_id: str
    start: datetime
    end: datetime
    first_wh: float
    last_wh: float
    intervals: int = 0
    #: Whether the span was already stored and is extended here.
    resumed: bool = False

    @property
    def energy_wh(self) -> float:
        return self.last_wh - self.first_wh


@dataclass(frozen=True)
class Resume:
    """Where a device's imported counter stands before an import: its last stored total and,
    when the stored span ends right there, that span."""

    at: datetime
    counter_wh: float
    span_start: datetime | None = None
    span_first_wh: float | None = None
    span_intervals: int = 0


@dataclass
class _Device:
    counter_wh: float = 0.0
    span: Span | None = None


@dataclass
class CounterBuilder:
    """Turns each device's accepted intervals, in time order, into counter readings and spans."""

    _devices: dict[str, _Device] = field(default_factory=dict)
    closed: list[Span] = field(default_factory=list)

    def known(self, device_id: str) -> bool:
        return device_id in self._devices

    def resume(self, device_id: str, state: Resume | None) -> None:
        """Start a device from what is stored (None: nothing imported before)."""
        device = _Device()
        if state is not None:
            device.counter_wh = state.counter_wh
            if state.span_start is not None and state.span_first_wh is not None:
                device.span = Span(
                    device_id,
                    state.span_start,
                    state.at,
                    state.span_first_wh,
                    state.counter_wh,
                    state.span_intervals,
                    resumed=True,
                )
        self._devices[device_id] = device

    def add(self, interval: RowInterval, mean_power_w: float) -> list[CounterPoint] | str:
        """The readings of one accepted interval, or why it cannot be counted.

        Intervals of a device must come in time order without overlapping.
        """
        device = self._devices.setdefault(interval.device_id, _Device())
        span = device.span
        points: list[CounterPoint] = []
        if span is not None and interval.start < span.end:
            return (
                f"interval {interval.start.isoformat()}..{interval.end.isoformat()} overlaps the "
                f"previous one (to {span.end.isoformat()}): intervals must not overlap and must "
                "come in time order"
            )
        if span is None or interval.start > span.end:
            if span is not None:
                self.closed.append(span)
            span = device.span = Span(
                interval.device_id,
                interval.start,
                interval.start,
                device.counter_wh,
                device.counter_wh,
            )
            points.append(
                CounterPoint(
                    interval.line, interval.device_id, interval.start, device.counter_wh, None
                )
            )
        device.counter_wh += interval.energy_wh
        span.end = interval.end
        span.last_wh = device.counter_wh
        span.intervals += 1
        points.append(
            CounterPoint(
                interval.line,
                interval.device_id,
                interval.end,
                device.counter_wh,
                mean_power_w,
                interval.extra,
            )
        )
        return points

    def finish(self) -> list[Span]:
        """Every span, the open ones closed; the builder is empty afterwards."""
        for device in self._devices.values():
            if device.span is not None:
                self.closed.append(device.span)
                device.span = None
        spans, self.closed = self.closed, []
        return sorted(spans, key=lambda s: (s.device_id, s.start))
