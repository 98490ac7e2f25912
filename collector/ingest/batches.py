"""Batching: processed messages into one write, with a ``gateway_seen`` point per gateway."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from collector.ingest.intake import Delivery
from collector.ingest.process import ProcessedMessage
from collector.timeseries.influx import Point
from collector.timeseries.measurements import GATEWAY_SEEN_MEASUREMENT

__all__ = ["PreparedBatch", "prepare_batch"]


@dataclass
class PreparedBatch:
    """A batch of deliveries turned into lines, waiting for the writer."""

    deliveries: list[Delivery]
    processed: list[ProcessedMessage]
    lines: list[str]
    #: Per gateway: readings stored and the newest reading's time.
    seen: dict[str, tuple[int, datetime | None]]
    now: datetime


def prepare_batch(
    deliveries: list[Delivery], processed: Sequence[ProcessedMessage], now: datetime
) -> PreparedBatch:
    """The batch's lines plus a ``gateway_seen`` point per gateway (CPU only, no I/O)."""
    seen: dict[str, tuple[int, datetime | None]] = {}
    for m in processed:
        if m.gateway_id and m.readings:
            count, newest = seen.get(m.gateway_id, (0, None))
            if newest is None or (m.newest_reading and m.newest_reading > newest):
                newest = m.newest_reading
            seen[m.gateway_id] = (count + m.readings, newest)
    extra = [
        Point(
            GATEWAY_SEEN_MEASUREMENT,
            {"gateway": gw},
            {
                "readings": n,
                "newest_reading_ms": int(newest.timestamp() * 1000) if newest else 0,
            },
            now,
        )
        for gw, (n, newest) in seen.items()
    ]
    lines = [line for m in processed for line in m.lines] + [p.to_line() for p in extra]
    return PreparedBatch(deliveries, list(processed), lines, seen, now)
