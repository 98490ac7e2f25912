"""What InfluxDB already holds of a device, for an import to be idempotent.

A point's identity is measurement + tags + time (``docs/influxdb-schema.md``): a reading
imported twice would overwrite itself. The importer asks first, so it can count duplicates
(and write nothing for them) and refuse a reading that would overwrite a stored one with
other values (``conflicts_with_stored``) instead of changing history silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.timeseries.influx import FieldValue, InfluxClient, Point, quote_ident, quote_string
from collector.timeseries.measurements import (
    IMPORTED_COUNTER_MEASUREMENT,
    INVERTER_MEASUREMENT,
)

#: What identifies a stored reading's values for the duplicate check: (counter, power) [Wh, W].
Values = tuple[float | None, float | None]


def from_ms(ms: int) -> datetime:
    """The UTC instant of an epoch time in milliseconds, exactly."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def _series(gateway_tag: str, device_id: str) -> str:
    return f'"gateway" = {quote_string(gateway_tag)} AND "device" = {quote_string(device_id)}'


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def existing_points(
    client: InfluxClient, gateway_tag: str, device_id: str, first_ms: int, last_ms: int
) -> dict[int, Values]:
    """The stored ``inverter`` points of one series in ``[first_ms, last_ms]``, by time [ms]."""
    rows = client.query_records(
        f'SELECT "ac_energy_wh", "ac_power_w", "state" FROM {quote_ident(INVERTER_MEASUREMENT)} '
        f"WHERE {_series(gateway_tag, device_id)} "
        f"AND time >= {first_ms}ms AND time <= {last_ms}ms",
        epoch="ms",
    )
    return {
        int(r["time"]): (_float(r.get("ac_energy_wh")), _float(r.get("ac_power_w"))) for r in rows
    }


def last_counter(
    client: InfluxClient, gateway_tag: str, device_id: str, at_ms: int, *, inclusive: bool
) -> tuple[int, float] | None:
    """The series' last stored lifetime counter before ``at_ms`` (or at it) [ms, Wh]."""
    op = "<=" if inclusive else "<"
    rows = client.query_records(
        f'SELECT last("ac_energy_wh") FROM {quote_ident(INVERTER_MEASUREMENT)} '
        f"WHERE {_series(gateway_tag, device_id)} AND time {op} {at_ms}ms",
        epoch="ms",
    )
    if not rows or rows[0].get("last") is None:
        return None
    return int(rows[0]["time"]), float(rows[0]["last"])


@dataclass(frozen=True)
class StoredSpan:
    """An ``imported_counter`` point: a span of a device's imported counter."""

    gateway_id: str
    device_id: str
    start_ms: int
    end_ms: int
    first_wh: float
    last_wh: float
    intervals: int
    source: str


def stored_spans(client: InfluxClient, gateway_id: str, device_id: str) -> list[StoredSpan]:
    """Every stored span of a device's imported counter, oldest first."""
    rows = client.query_records(
        f"SELECT * FROM {quote_ident(IMPORTED_COUNTER_MEASUREMENT)} "
        f"WHERE {_series(gateway_id, device_id)}",
        epoch="ms",
    )
    return sorted(
        (
            StoredSpan(
                gateway_id,
                device_id,
                int(r["time"]),
                int(r["end_ms"]),
                float(r["first_wh"]),
                float(r["last_wh"]),
                int(r.get("intervals") or 0),
                str(r.get("source") or ""),
            )
            for r in rows
            if r.get("end_ms") is not None
        ),
        key=lambda s: s.start_ms,
    )


def span_point(span: StoredSpan) -> Point:
    """The ``imported_counter`` point of a span."""
    fields: dict[str, FieldValue] = {
        "end_ms": int(span.end_ms),
        "first_wh": float(span.first_wh),
        "last_wh": float(span.last_wh),
        "intervals": int(span.intervals),
        "source": span.source.replace("\n", " ")[:200] or "import",
    }
    return Point(
        IMPORTED_COUNTER_MEASUREMENT,
        {"gateway": span.gateway_id, "device": span.device_id},
        fields,
        from_ms(span.start_ms),
    )
