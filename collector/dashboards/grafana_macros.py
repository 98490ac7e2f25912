"""Grafana's side of an InfluxQL panel query, reproduced so the committed queries can be run.

Grafana cannot run here, so tests and screenshots run each committed target themselves. This
module does what Grafana does between the dashboard JSON and InfluxDB:

1. the time range: dashboard ``time`` (``now-24h``, ``now/y``) or a panel's relative time
   override (``timeFrom``: ``15m``, ``7d``, ``now/d``), relative to "now" and rounded in the
   dashboard's time zone (Grafana's date math);
2. the interval: range ÷ max data points, rounded to Grafana's table of round intervals
   (grafana-plugin-sdk-go ``gtime.RoundInterval``) and never below the data source's
   ``timeInterval`` (10s); formatted as Grafana formats it (``gtime.FormatInterval``);
3. template variables, replaced the way the InfluxDB data source's ``interpolateQueryExpr``
   does: a single-valued variable is regex-escaped (unless numeric), a multi-valued or "All"
   variable has each value escaped and joined with ``|``, and "All" with a custom all value
   (``.*``) gives that value unescaped;
4. the macros, replaced by the InfluxDB backend (``pkg/tsdb/influxdb/influxql``):
   ``$timeFilter`` → ``time >= <from>ms and time <= <to>ms``, ``$interval`` and
   ``$__interval`` → the formatted interval, ``$__interval_ms`` → milliseconds.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

#: Data source minimum interval (dashboards/provisioning/datasources/influxdb.yaml timeInterval).
DEFAULT_MIN_INTERVAL = timedelta(seconds=10)
#: Pixels per grid column of a 1800 px wide dashboard; Grafana's max data points = panel width.
PX_PER_COLUMN = 75

_UNITS = {
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}

# (upper bound inclusive, rounded) in milliseconds: gtime.RoundInterval.
_ROUND_MS: tuple[tuple[int, int], ...] = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1_500, 1_000),
    (3_500, 2_000),
    (7_500, 5_000),
    (12_500, 10_000),
    (17_500, 15_000),
    (25_000, 20_000),
    (45_000, 30_000),
    (90_000, 60_000),
    (210_000, 120_000),
    (450_000, 300_000),
    (750_000, 600_000),
    (1_050_000, 900_000),
    (1_500_000, 1_200_000),
    (2_700_000, 1_800_000),
    (5_400_000, 3_600_000),
    (9_000_000, 7_200_000),
    (16_200_000, 10_800_000),
    (32_400_000, 21_600_000),
    (86_400_000, 43_200_000),
    (604_800_000, 86_400_000),
    (1_814_400_000, 604_800_000),
    (3_628_799_999, 2_592_000_000),
)

_DATE_MATH = re.compile(r"^now(?P<ops>(?:[+-]\d+[smhdwMy])*)(?:/(?P<round>[smhdwMy]))?$")
_OP = re.compile(r"([+-])(\d+)([smhdwMy])")
_SHORT = re.compile(r"^(\d+)([smhdwMy])$")


class MacroError(ValueError):
    """A time expression or variable Grafana would not accept."""


@dataclass(frozen=True)
class TimeRange:
    """An absolute query time range [UTC]."""

    start: datetime
    end: datetime

    @property
    def span(self) -> timedelta:
        return self.end - self.start


def _add(moment: datetime, amount: int, unit: str) -> datetime:
    if unit in _UNITS:
        return moment + amount * _UNITS[unit]
    months = amount * (12 if unit == "y" else 1)
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, _days_in_month(year, month + 1))
    return moment.replace(year=year, month=month + 1, day=day)


def _days_in_month(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1]


def _round_down(moment: datetime, unit: str) -> datetime:
    if unit == "s":
        return moment.replace(microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    if unit == "h":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "d":
        return day
    if unit == "w":  # Grafana's default week starts on Monday in ISO locales
        return day - timedelta(days=day.weekday())
    if unit == "M":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def parse_date_math(expr: str, now: datetime, tz: ZoneInfo, *, round_up: bool) -> datetime:
    """Resolve Grafana date math (``now``, ``now-6h``, ``now/d``, ``now-1M/M``) to UTC.

    Parameters
    ----------
    expr : str
        The expression [-]
    now : datetime
        The current instant, timezone-aware [-]
    tz : ZoneInfo
        The dashboard's time zone; rounding to days, months and years happens in it [-]
    round_up : bool
        Round to the end of the unit (the "to" side of a range) instead of its start [-]
    """
    match = _DATE_MATH.match(expr.strip())
    if not match:
        raise MacroError(f"not Grafana date math: {expr!r}")
    moment = now.astimezone(tz).replace(tzinfo=None)
    for sign, amount, unit in _OP.findall(match["ops"] or ""):
        moment = _add(moment, int(amount) * (1 if sign == "+" else -1), unit)
    if match["round"]:
        unit = match["round"]
        start = _round_down(moment, unit)
        if round_up:
            step_unit, step = ("d", 7) if unit == "w" else (unit, 1)
            moment = _add(start, step, step_unit) - timedelta(milliseconds=1)
        else:
            moment = start
    return moment.replace(tzinfo=tz).astimezone(UTC)


def dashboard_range(time_from: str, time_to: str, now: datetime, tz: ZoneInfo) -> TimeRange:
    """The absolute range of a dashboard's ``time`` setting."""
    return TimeRange(
        parse_date_math(time_from, now, tz, round_up=False),
        parse_date_math(time_to, now, tz, round_up=True),
    )


def panel_range(
    dashboard: TimeRange, time_from: str | None, now: datetime, tz: ZoneInfo
) -> TimeRange:
    """The range after a panel's relative time override (``timeFrom``), if it has one.

    ``15m`` means the last 15 minutes up to now; ``now/d`` means today (start to end of the
    local day), as Grafana's ``describeTextRange`` reads them.
    """
    if not time_from:
        return dashboard
    short = _SHORT.match(time_from)
    if short:
        return TimeRange(parse_date_math(f"now-{time_from}", now, tz, round_up=False), now)
    if time_from.startswith("now"):
        if "/" in time_from and not re.search(r"[+-]", time_from):
            return TimeRange(
                parse_date_math(time_from, now, tz, round_up=False),
                parse_date_math(time_from, now, tz, round_up=True),
            )
        return TimeRange(parse_date_math(time_from, now, tz, round_up=False), now)
    raise MacroError(f"not a relative time override: {time_from!r}")


def round_interval(interval: timedelta) -> timedelta:
    """Grafana's rounding of a computed interval to a "nice" one."""
    ms = interval / timedelta(milliseconds=1)
    for bound, rounded in _ROUND_MS:
        if ms <= bound:
            return timedelta(milliseconds=rounded)
    return timedelta(days=365)


def format_interval(interval: timedelta) -> str:
    """Grafana's text for an interval: ``10s``, ``5m``, ``1h``, ``1d``."""
    for suffix, unit in (
        ("y", timedelta(days=365)),
        ("d", timedelta(days=1)),
        ("h", timedelta(hours=1)),
        ("m", timedelta(minutes=1)),
        ("s", timedelta(seconds=1)),
        ("ms", timedelta(milliseconds=1)),
    ):
        if interval >= unit:
            return f"{interval // unit}{suffix}"
    return "1ms"


def query_interval(
    span: timedelta, max_data_points: int, min_interval: timedelta = DEFAULT_MIN_INTERVAL
) -> timedelta:
    """The ``$__interval`` of a query over ``span`` drawn with ``max_data_points`` points."""
    if max_data_points <= 0:
        raise MacroError("max data points must be positive")
    calculated = span / max_data_points
    return round_interval(max(calculated, min_interval))


def _escape_regex(value: str) -> str:
    # @grafana/data escapeRegex: characters special in a JavaScript regular expression.
    return re.sub(r"([\\^$*+?.()|\[\]{}/])", r"\\\1", value)


def _influx_special_regex_escape(value: str) -> str:
    value = value.replace("\\", "\\\\\\\\")
    return re.sub(r"([$^*{}\[\]'+?.()|])", r"\\\\\1", value)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Variable:
    """A template variable as the dashboard defines it, and the value(s) chosen."""

    name: str
    values: tuple[str, ...]
    multi: bool = False
    include_all: bool = False
    all_value: str | None = None
    all_selected: bool = False

    def interpolate(self) -> str:
        """The text Grafana's InfluxDB data source puts where ``$name`` stands."""
        if self.all_selected and self.all_value is not None:
            return self.all_value
        if not self.multi and not self.include_all:
            if len(self.values) != 1:
                raise MacroError(f"variable {self.name} takes one value, got {self.values}")
            value = self.values[0]
            return value if _is_number(value) else _escape_regex(value)
        escaped = [_influx_special_regex_escape(v) for v in self.values]
        return "|".join(escaped)


def interpolate_variables(query: str, variables: Sequence[Variable]) -> str:
    """Replace ``$name``, ``${name}`` and ``[[name]]`` by each variable's text."""
    out = query
    for variable in sorted(variables, key=lambda v: -len(v.name)):
        text = variable.interpolate()
        out = out.replace("${" + variable.name + "}", text)
        out = out.replace("[[" + variable.name + "]]", text)
        pattern = r"\$" + re.escape(variable.name) + r"(?![A-Za-z0-9_])"
        out = re.sub(pattern, text.replace("\\", "\\\\"), out)
    return out


def time_filter(time_range: TimeRange) -> str:
    """What ``$timeFilter`` becomes."""
    start_ms = int(time_range.start.timestamp() * 1000)
    end_ms = int(time_range.end.timestamp() * 1000)
    return f"time >= {start_ms}ms and time <= {end_ms}ms"


def apply_macros(query: str, time_range: TimeRange, interval: timedelta) -> str:
    """Replace the backend macros, in the InfluxDB data source's order."""
    text = format_interval(interval)
    out = query.replace("$timeFilter", time_filter(time_range))
    out = out.replace("$interval", text)
    out = out.replace("$__interval_ms", str(interval // timedelta(milliseconds=1)))
    return out.replace("$__interval", text)


def unresolved(query: str) -> list[str]:
    """Variables or macros left in a query (should be none before it runs)."""
    return re.findall(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\[\[[A-Za-z0-9_]+\]\]", query)


def render_query(
    query: str,
    *,
    time_range: TimeRange,
    interval: timedelta,
    variables: Sequence[Variable] = (),
    extra: Mapping[str, str] | None = None,
) -> str:
    """A target's query as InfluxDB receives it from Grafana."""
    out = interpolate_variables(query, variables)
    # Grafana's global variables, replaced in the browser with the panel's range [ms].
    start_ms = str(int(time_range.start.timestamp() * 1000))
    end_ms = str(int(time_range.end.timestamp() * 1000))
    for name, value in (("__from", start_ms), ("__to", end_ms)):
        out = out.replace("${" + name + "}", value)
        out = re.sub(r"\$" + name + r"(?![A-Za-z0-9_])", value, out)
    for key, value in (extra or {}).items():
        out = out.replace(key, value)
    return apply_macros(out, time_range, interval)


# --- SQL data sources (PostgreSQL) ------------------------------------------------------------

_SQL_TIME_FILTER = re.compile(r"\$__timeFilter\(([^)]+)\)")
_SQL_TIME_GROUP_ALIAS = re.compile(r"\$__timeGroupAlias\(([^,]+),\s*'?([0-9]+[smhdw])'?\)")
_SQL_TIME_GROUP = re.compile(r"\$__timeGroup\(([^,]+),\s*'?([0-9]+[smhdw])'?\)")


def _sql_instant(moment: datetime) -> str:
    return (
        "'"
        + moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{moment.microsecond // 1000:03d}Z'"
    )


def _seconds(text: str) -> int:
    return int(text[:-1]) * int(_UNITS[text[-1]].total_seconds())


def sql_variable_text(variable: Variable) -> str:
    """What Grafana's SQL data sources put where a variable stands: a single value as it is,
    several values (or All without a custom all value) quoted and joined with commas."""
    if variable.all_selected and variable.all_value is not None:
        return variable.all_value
    if not variable.multi and not variable.include_all:
        if len(variable.values) != 1:
            raise MacroError(f"variable {variable.name} takes one value, got {variable.values}")
        return variable.values[0]
    return ",".join("'" + v.replace("'", "''") + "'" for v in variable.values)


def render_sql(query: str, *, time_range: TimeRange, variables: Sequence[Variable] = ()) -> str:
    """A PostgreSQL target's SQL as Grafana's PostgreSQL data source sends it.

    Macros (Grafana's SQL data sources): ``$__timeFilter(col)`` →
    ``col BETWEEN '<from>' AND '<to>'``; ``$__timeGroupAlias(col, 1d)`` →
    ``floor(extract(epoch from col)/86400)*86400 AS "time"``; ``$__timeFrom()`` and
    ``$__timeTo()`` → the range's ends as timestamps.
    """
    out = query
    for variable in sorted(variables, key=lambda v: -len(v.name)):
        text = sql_variable_text(variable)
        out = out.replace("${" + variable.name + "}", text)
        pattern = r"\$" + re.escape(variable.name) + r"(?![A-Za-z0-9_])"
        out = re.sub(pattern, text.replace("\\", "\\\\"), out)
    start, end = _sql_instant(time_range.start), _sql_instant(time_range.end)
    out = _SQL_TIME_FILTER.sub(lambda m: f"{m[1]} BETWEEN {start} AND {end}", out)
    out = _SQL_TIME_GROUP_ALIAS.sub(
        lambda m: f'floor(extract(epoch from {m[1]})/{_seconds(m[2])})*{_seconds(m[2])} AS "time"',
        out,
    )
    out = _SQL_TIME_GROUP.sub(
        lambda m: f"floor(extract(epoch from {m[1]})/{_seconds(m[2])})*{_seconds(m[2])}", out
    )
    out = out.replace("$__timeFrom()", f"{start}::timestamptz")
    return out.replace("$__timeTo()", f"{end}::timestamptz")
