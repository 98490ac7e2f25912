"""InfluxDB schema management: retention policies, rollups (continuous queries) and backfill.

``zonnewijk db init`` calls :func:`init_database`; it is idempotent and brings an existing
database to the declared state (a changed duration is altered, a changed continuous query is
dropped and re-created). ``docs/influxdb-schema.md`` documents the result.

Raw readings stay in the default retention policy ``autogen`` (where every writer and reader
already looks); rollups go to ``rollup_5m`` and ``rollup_1d`` under the same measurement names,
so a dashboard over a year reads ``"rollup_1d"."inverter"`` instead of millions of raw points.
Daily rollups are Europe/Amsterdam calendar days (``tz()``).

A continuous query only recomputes its recent window (``RESAMPLE ... FOR``). Late data older
than that (a gateway's spool after days offline) is rolled up by :func:`backfill_rollups`,
which runs the very same ``SELECT ... INTO`` over the affected days; the collector calls it
through :class:`RollupBackfiller`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import requests

from collector.timeseries.influx import InfluxClient, InfluxQueryError, quote_ident, quote_string

log = logging.getLogger(__name__)

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
RAW_RP = "autogen"


@dataclass(frozen=True)
class RetentionPolicy:
    """A retention policy: how long data is kept, and how it is sharded."""

    name: str
    duration: str  # InfluxQL duration literal, "INF" for ever
    shard_duration: str
    default: bool = False


@dataclass(frozen=True)
class Rollup:
    """One downsampling: a ``SELECT ... INTO`` run as a continuous query and as backfill."""

    name: str
    source: str
    target_rp: str
    interval: str  # "5m", "1d"
    selects: tuple[str, ...]
    group_tags: tuple[str, ...]
    tz: str | None
    resample_every: str
    resample_for: str

    def select_into(self, database: str, where: str | None = None) -> str:
        """The ``SELECT ... INTO`` statement; ``where`` restricts time for a backfill."""
        db = quote_ident(database)
        into = f"{db}.{quote_ident(self.target_rp)}.{quote_ident(self.source)}"
        source = f"{db}.{quote_ident(RAW_RP)}.{quote_ident(self.source)}"
        group = ", ".join([f"time({self.interval})", *(quote_ident(t) for t in self.group_tags)])
        q = f"SELECT {', '.join(self.selects)} INTO {into} FROM {source}"
        if where:
            q += f" WHERE {where}"
        q += f" GROUP BY {group}"
        if self.tz:
            q += f" tz({quote_string(self.tz)})"
        return q

    def create_statement(self, database: str) -> str:
        """``CREATE CONTINUOUS QUERY`` for this rollup."""
        return (
            f"CREATE CONTINUOUS QUERY {quote_ident(self.name)} ON {quote_ident(database)} "
            f"RESAMPLE EVERY {self.resample_every} FOR {self.resample_for} "
            f"BEGIN {self.select_into(database)} END"
        )


def _power_selects(fields: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for f in fields:
        out.append(f'mean("{f}") AS "{f}_mean"')
        out.append(f'max("{f}") AS "{f}_max"')
    return tuple(out)


INVERTER_SELECTS: tuple[str, ...] = (
    *_power_selects(("ac_power_w",)),
    'last("ac_energy_wh") AS "ac_energy_wh_last"',
    'mean("ac_voltage_v") AS "ac_voltage_v_mean"',
    'max("cabinet_temp_c") AS "cabinet_temp_c_max"',
    'count("ac_power_w") AS "samples"',
)
DC_SELECTS: tuple[str, ...] = (
    *_power_selects(("dc_power_w",)),
    'mean("dc_voltage_v") AS "dc_voltage_v_mean"',
    'mean("dc_current_a") AS "dc_current_a_mean"',
)


def retention_policies(
    *, raw_duration: str = "INF", rollup_5m_duration: str = "INF", rollup_1d_duration: str = "INF"
) -> tuple[RetentionPolicy, ...]:
    """The declared retention policies (durations are InfluxQL literals, ``INF`` = for ever)."""
    return (
        RetentionPolicy(RAW_RP, raw_duration, "7d", default=True),
        RetentionPolicy("rollup_5m", rollup_5m_duration, "30d"),
        RetentionPolicy("rollup_1d", rollup_1d_duration, "365d"),
    )


def rollups(*, every_5m: str = "5m", every_1d: str = "1h") -> tuple[Rollup, ...]:
    """The declared rollups; ``every_*`` may be shortened (tests) without changing results."""
    return (
        Rollup("cq_inverter_5m", "inverter", "rollup_5m", "5m", INVERTER_SELECTS,
               ("gateway", "device"), None, every_5m, "1h"),
        Rollup("cq_dc_5m", "dc", "rollup_5m", "5m", DC_SELECTS,
               ("gateway", "device", "mppt"), None, every_5m, "1h"),
        Rollup("cq_inverter_1d", "inverter", "rollup_1d", "1d", INVERTER_SELECTS,
               ("gateway", "device"), "Europe/Amsterdam", every_1d, "2d"),
        Rollup("cq_dc_1d", "dc", "rollup_1d", "1d", DC_SELECTS,
               ("gateway", "device", "mppt"), "Europe/Amsterdam", every_1d, "2d"),
    )  # fmt: skip


def _duration_s(literal: str) -> float | None:
    """Seconds of an InfluxQL duration literal or of InfluxDB's ``168h0m0s``; None = infinite."""
    text = literal.strip().lower()
    if text in ("inf", "0s", "0"):
        return None
    units = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
    total = 0.0
    number = ""
    for ch in text:
        if ch.isdigit() or ch == ".":
            number += ch
        elif ch in units and number:
            total += float(number) * units[ch]
            number = ""
        else:
            raise ValueError(f"not a duration: {literal!r}")
    if number:
        raise ValueError(f"duration {literal!r} lacks a unit (d, h, m, s, w)")
    return total


def init_database(
    client: InfluxClient,
    *,
    policies: Iterable[RetentionPolicy] | None = None,
    queries: Iterable[Rollup] | None = None,
) -> list[str]:
    """Create or update the database, retention policies and continuous queries.

    Idempotent: running it again changes nothing and returns no actions.
    Returns what was done, one line per change.
    """
    policies = tuple(policies if policies is not None else retention_policies())
    queries = tuple(queries if queries is not None else rollups())
    db = client.database
    actions: list[str] = []
    existing_dbs = {
        row["name"] for row in client.query_records("SHOW DATABASES", database="", epoch=None)
    }
    if db not in existing_dbs:
        client.create_database()
        actions.append(f"created database {db}")
    current = {
        row["name"]: row
        for row in client.query_records(f"SHOW RETENTION POLICIES ON {quote_ident(db)}")
    }
    for rp in policies:
        row = current.get(rp.name)
        clause = f"DURATION {rp.duration} REPLICATION 1 SHARD DURATION {rp.shard_duration}"
        if rp.default:
            clause += " DEFAULT"
        if row is None:
            client.query(
                f"CREATE RETENTION POLICY {quote_ident(rp.name)} ON {quote_ident(db)} {clause}",
                epoch=None,
            )
            actions.append(f"created retention policy {rp.name} ({rp.duration})")
            continue
        same = (
            _duration_s(str(row["duration"])) == _duration_s(rp.duration)
            and _duration_s(str(row["shardGroupDuration"])) == _duration_s(rp.shard_duration)
            and bool(row["default"]) == rp.default
        )
        if not same:
            client.query(
                f"ALTER RETENTION POLICY {quote_ident(rp.name)} ON {quote_ident(db)} {clause}",
                epoch=None,
            )
            actions.append(f"altered retention policy {rp.name} ({rp.duration})")
    cqs_before = set(continuous_query_names(client))
    for cq in queries:
        statement = cq.create_statement(db)
        try:
            client.query(statement, epoch=None)
        except InfluxQueryError as exc:
            if "already exists" not in str(exc):
                raise
            client.query(
                f"DROP CONTINUOUS QUERY {quote_ident(cq.name)} ON {quote_ident(db)}", epoch=None
            )
            client.query(statement, epoch=None)
            actions.append(f"replaced continuous query {cq.name}")
        else:
            if cq.name not in cqs_before:
                actions.append(f"created continuous query {cq.name}")
    existing_after = set(continuous_query_names(client))
    missing = [cq.name for cq in queries if cq.name not in existing_after]
    if missing:
        raise InfluxQueryError(f"continuous queries missing after init: {missing}")
    return actions


def continuous_query_names(client: InfluxClient) -> list[str]:
    """Names of the continuous queries on the client's database."""
    names: list[str] = []
    for series in client.query("SHOW CONTINUOUS QUERIES", epoch=None)[0]:
        if series.name == client.database:
            names.extend(str(row[0]) for row in series.values)
    return names


def _day_start(ts: datetime) -> datetime:
    local = ts.astimezone(AMSTERDAM)
    return datetime(local.year, local.month, local.day, tzinfo=AMSTERDAM)


def backfill_windows(start: datetime, end: datetime, chunk_days: int) -> list[str]:
    """``WHERE`` clauses of whole Europe/Amsterdam days covering [start, end), each at most
    ``chunk_days`` days long (a 1-day rollup's buckets never straddle two windows)."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("backfill range must be timezone-aware")
    if chunk_days < 1:
        raise ValueError("chunk_days must be at least 1")
    first = _day_start(start).date()
    last = _day_start(end).date()  # the day holding ``end`` is included
    out: list[str] = []
    day = first
    while day <= last:
        upto = min(last + timedelta(days=1), day + timedelta(days=chunk_days))
        lo = datetime(day.year, day.month, day.day, tzinfo=AMSTERDAM)
        hi = datetime(upto.year, upto.month, upto.day, tzinfo=AMSTERDAM)  # DST-safe
        out.append(
            f"time >= {quote_string(lo.isoformat())} AND time < {quote_string(hi.isoformat())}"
        )
        day = upto
    return out


def backfill_rollups(
    client: InfluxClient,
    start: datetime,
    end: datetime,
    *,
    queries: Iterable[Rollup] | None = None,
    chunk_days: int = 31,
    workers: int = 1,
) -> int:
    """Recompute every rollup for the Amsterdam days touching [start, end).

    Parameters
    ----------
    client
        The database to roll up.
    start, end
        The time range that received late data, timezone-aware [UTC].
    queries
        Rollups to run (default: all declared).
    chunk_days
        Each ``SELECT ... INTO`` covers at most this many days: a year of history is a dozen
        statements of seconds each rather than one that may outlast the client's timeout.
    workers
        Statements run at once (InfluxDB runs one statement on one core: an import on a
        two-core machine passes 2; the collector keeps 1, it is ingesting meanwhile).

    Returns the number of rollups recomputed.
    """
    selected = tuple(queries if queries is not None else rollups())
    statements = [
        rollup.select_into(client.database, where)
        for where in backfill_windows(start, end, chunk_days)
        for rollup in selected
    ]
    if workers <= 1 or len(statements) <= 1:
        for statement in statements:
            client.query(statement, epoch=None)
        return len(selected)
    local = threading.local()

    def run(statement: str) -> None:
        # one HTTP session per thread: a requests.Session is not promised to be thread-safe
        mine = getattr(local, "client", None)
        if mine is None:
            mine = local.client = dataclasses.replace(client, session=requests.Session())
        mine.query(statement, epoch=None)

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backfill") as pool:
        for future in [pool.submit(run, s) for s in statements]:
            future.result()
    return len(selected)


class RollupBackfiller:
    """Collects the time span of late readings and backfills rollups at most every ``period_s``.

    Readings newer than ``recent_s`` are left to the continuous queries.
    """

    def __init__(
        self,
        client: InfluxClient,
        *,
        recent_s: float = 3000.0,
        period_s: float = 60.0,
        workers: int = 1,
    ) -> None:
        self.client = client
        self.workers = workers
        self.recent_s = recent_s
        self.period_s = period_s
        self._span: tuple[datetime, datetime] | None = None
        self._last_run = time.monotonic()
        self._lock = threading.Lock()
        self._ready = False
        self.runs = 0

    def _schema_ready(self) -> bool:
        """True once the rollup retention policies exist (``zonnewijk db init`` made them)."""
        if self._ready:
            return True
        try:
            names = {r["name"] for r in self.client.query_records("SHOW RETENTION POLICIES")}
        except Exception as exc:
            log.warning("cannot check the rollup schema (%s); backfill waits", exc)
            return False
        needed = {q.target_rp for q in rollups()}
        if not needed <= names:
            log.warning(
                "late data is not rolled up: retention policies %s missing; run "
                "`zonnewijk db init`",
                ", ".join(sorted(needed - names)),
            )
            return False
        self._ready = True
        return True

    def note(self, oldest: datetime, newest: datetime, now: datetime) -> None:
        """Record stored readings between ``oldest`` and ``newest`` [UTC]."""
        if (now - oldest).total_seconds() < self.recent_s:
            return
        with self._lock:
            if self._span is None:
                self._span = (oldest, newest)
            else:
                self._span = (min(self._span[0], oldest), max(self._span[1], newest))

    def run_if_due(self, *, force: bool = False) -> bool:
        """Backfill the recorded span if the period has passed; True when it ran."""
        with self._lock:
            span = self._span
            due = force or time.monotonic() - self._last_run >= self.period_s
            if span is None or not due:
                return False
            self._span = None
            self._last_run = time.monotonic()
        if not self._schema_ready():
            return False
        try:
            backfill_rollups(self.client, span[0], span[1], workers=self.workers)
        except Exception:
            log.exception("rollup backfill for %s .. %s failed; will retry", *span)
            with self._lock:
                if self._span is not None:
                    span = (min(span[0], self._span[0]), max(span[1], self._span[1]))
                self._span = span
            return False
        self.runs += 1
        log.info("rolled up late data from %s to %s", span[0].isoformat(), span[1].isoformat())
        return True
