"""Timestamps of files: ISO 8601 with an offset, or local wall-clock times in a stated zone.

A local time that does not exist (the hour skipped when summer time starts) is refused; one
that happens twice (the hour repeated when it ends) is the first occurrence unless the same
device already had a reading at or after it, then the second: files list the repeated hour
twice, in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class TimestampError(ValueError):
    """A timestamp cannot be read; ``reason`` is the stable rejection reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def zone(name: str | None) -> ZoneInfo | None:
    """The IANA zone of ``--timezone`` (None: none given); an unknown name raises ValueError."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (give an IANA name: Europe/Amsterdam)"
        ) from None


def parse_naive(text: str, time_format: str | None) -> datetime:
    """A wall-clock or offset time from text: ``strftime`` format, or ISO 8601 when None.

    Raises TimestampError ``invalid_ts``.
    """
    value = text.strip()
    try:
        if time_format is not None:
            return datetime.strptime(value, time_format)  # noqa: DTZ007 - zone applied after
        return datetime.fromisoformat(value)
    except ValueError:
        expected = time_format or "ISO 8601 (2026-03-01T12:00:00+01:00)"
        raise TimestampError("invalid_ts", f"{value!r} is not a time in {expected}") from None


@dataclass
class LocalTimes:
    """Turns file timestamps into UTC, remembering each device's last time for the DST fold."""

    tz: ZoneInfo | None
    _last: dict[str, datetime] = field(default_factory=dict)

    def to_utc(self, parsed: datetime, device_id: str) -> datetime:
        """The UTC instant of ``parsed`` (aware: as given; naive: in the zone).

        Raises TimestampError ``invalid_ts`` (naive without a zone; a skipped local time).
        """
        if parsed.tzinfo is not None:
            out = parsed.astimezone(UTC)
        else:
            if self.tz is None:
                raise TimestampError(
                    "invalid_ts",
                    f"{parsed.isoformat()} has no UTC offset: give the file's time zone with "
                    "--timezone (e.g. Europe/Amsterdam)",
                )
            first = parsed.replace(tzinfo=self.tz, fold=0)
            second = parsed.replace(tzinfo=self.tz, fold=1)
            a, b = first.astimezone(UTC), second.astimezone(UTC)
            if _round_trip(first) != parsed:
                raise TimestampError("invalid_ts", _skipped(parsed, self.tz))
            out = a
            if a != b:  # the repeated hour: the second time round once the first was seen
                last = self._last.get(device_id)
                if last is not None and last >= a:
                    out = b
        last = self._last.get(device_id)
        if last is None or out > last:
            self._last[device_id] = out
        return out


def _round_trip(value: datetime) -> datetime:
    """The wall-clock time an aware local time shows after a trip through UTC."""
    assert value.tzinfo is not None
    return value.astimezone(UTC).astimezone(value.tzinfo).replace(tzinfo=None)


def _skipped(parsed: datetime, tz: ZoneInfo) -> str:
    return (
        f"{parsed.isoformat()} does not exist in {tz.key} (the clock skipped it when summer "
        "time began): the file's time zone may be wrong"
    )
