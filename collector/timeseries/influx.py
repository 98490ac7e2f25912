"""A small InfluxDB v1 HTTP API adapter: line protocol, writes, InfluxQL queries.

Why not ``influxdb-client``: see ARCHITECTURE.md, decision 1. The v1 API (``POST /write``,
``GET/POST /query``) is served by InfluxDB 1.x, 2.x (DBRP compatibility) and 3 Core alike.

Errors are never swallowed: a rejected write raises :class:`InfluxWriteError` (with the server's
message), a statement error inside an HTTP 200 query response raises
:class:`InfluxQueryError`, and a server that cannot be reached after the retries raises
:class:`InfluxUnavailable`.
"""

from __future__ import annotations

import functools
import gzip
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import requests

log = logging.getLogger(__name__)

Precision = Literal["ns", "u", "ms", "s"]
FieldValue = float | int | bool | str

_PRECISION_NS: dict[str, int] = {"ns": 1, "u": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


class InfluxError(RuntimeError):
    """Base class of every InfluxDB failure."""


class InfluxUnavailable(InfluxError):
    """The server could not be reached, or answered 5xx, after all retries."""


class InfluxWriteError(InfluxError):
    """The server refused a write (4xx); retrying the same data will not help."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"InfluxDB refused the write (HTTP {status}): {message}")
        self.status = status
        self.message = message


class InfluxQueryError(InfluxError):
    """A query failed: HTTP error, or a statement error reported inside HTTP 200."""


# --- line protocol ----------------------------------------------------------------------------


def _escape(value: str, specials: str) -> str:
    if "\n" in value or "\r" in value:
        raise ValueError(f"line protocol cannot carry a newline: {value!r}")
    if value.endswith("\\"):
        raise ValueError(f"line protocol cannot end a key or tag value with a backslash: {value!r}")
    out = value
    for ch in specials:
        out = out.replace(ch, "\\" + ch)
    return out


@functools.lru_cache(maxsize=8192)  # names, tags and field keys repeat on every line
def escape_measurement(name: str) -> str:
    """Escape a measurement name (commas and spaces)."""
    if not name:
        raise ValueError("measurement name is empty")
    return _escape(name, ", ")


@functools.lru_cache(maxsize=8192)
def escape_key(key: str) -> str:
    """Escape a tag key, tag value or field key (commas, equals signs and spaces)."""
    if not key:
        raise ValueError("tag keys, tag values and field keys cannot be empty")
    return _escape(key, ",= ")


def format_field_value(value: FieldValue) -> str:
    """Line-protocol text of a field value: float, ``i``-suffixed integer, boolean or string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value}i"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"InfluxDB cannot store {value}")
        return repr(value)
    if isinstance(value, str):
        if "\n" in value or "\r" in value:
            raise ValueError(f"string field cannot carry a newline: {value!r}")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise TypeError(f"unsupported field type {type(value).__name__}")


def timestamp_in(ts: datetime, precision: Precision) -> int:
    """Integer timestamp of an aware datetime in the given precision."""
    if ts.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    delta = ts.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    ns = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    return ns // _PRECISION_NS[precision]


@dataclass(frozen=True)
class Point:
    """One line of line protocol. Tags identify the series; fields carry the values."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    time: datetime

    def to_line(self, precision: Precision = "ms") -> str:
        if not self.fields:
            raise ValueError(f"point of {self.measurement!r} has no fields")
        head = escape_measurement(self.measurement)
        for key in sorted(self.tags):
            value = self.tags[key]
            if value == "":
                continue
            head += f",{escape_key(key)}={escape_key(value)}"
        body = ",".join(
            f"{escape_key(k)}={format_field_value(v)}" for k, v in sorted(self.fields.items())
        )
        return f"{head} {body} {timestamp_in(self.time, precision)}"


def to_lines(points: Iterable[Point], precision: Precision = "ms") -> str:
    return "\n".join(p.to_line(precision) for p in points)


# --- client -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """One series of a query result."""

    name: str
    columns: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]
    tags: Mapping[str, str] = field(default_factory=dict)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.values]


#: Default size from which write bodies are compressed [bytes].
GZIP_MIN_BYTES = 4096


@dataclass
class InfluxClient:
    """Client for one database on an InfluxDB server reached over its v1 HTTP API."""

    url: str
    database: str
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0
    retries: int = 3
    backoff_s: float = 0.5
    #: Write bodies this large or larger are gzip-compressed; None: never.
    gzip_min_bytes: int | None = GZIP_MIN_BYTES
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        if self.username:
            self.session.auth = (self.username, self.password or "")

    # -- plumbing --

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self.session.request(
                    method, self.url + path, timeout=self.timeout_s, **kwargs
                )
            except requests.RequestException as exc:
                last = exc
            else:
                if response.status_code < 500:
                    return response
                last = InfluxUnavailable(
                    f"HTTP {response.status_code} from {self.url}{path}: {_error_text(response)}"
                )
            if attempt < self.retries:
                time.sleep(self.backoff_s * (2**attempt))
        raise InfluxUnavailable(f"InfluxDB at {self.url} unavailable: {last}") from last

    def ping(self) -> bool:
        """True when the server answers ``/ping``; never raises."""
        try:
            r = self.session.get(self.url + "/ping", timeout=min(self.timeout_s, 2.0))
        except requests.RequestException:
            return False
        return r.status_code == 204

    # -- writes --

    def write_lines(
        self,
        lines: str | Sequence[str],
        *,
        precision: Precision = "ms",
        retention_policy: str | None = None,
    ) -> None:
        """Write line protocol. Raises :class:`InfluxWriteError` on 4xx."""
        body = lines if isinstance(lines, str) else "\n".join(lines)
        if not body:
            return
        data = body.encode()
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if self.gzip_min_bytes is not None and len(data) >= self.gzip_min_bytes:
            data = gzip.compress(data, compresslevel=1)
            headers["Content-Encoding"] = "gzip"
        params = {"db": self.database, "precision": precision}
        if retention_policy:
            params["rp"] = retention_policy
        r = self._request("POST", "/write", params=params, data=data, headers=headers)
        if r.status_code != 204:
            raise InfluxWriteError(r.status_code, _error_text(r))

    def write_points(
        self,
        points: Iterable[Point],
        *,
        precision: Precision = "ms",
        retention_policy: str | None = None,
        batch_size: int = 5000,
    ) -> int:
        """Write points in batches; returns how many were written."""
        batch: list[str] = []
        written = 0
        for point in points:
            batch.append(point.to_line(precision))
            if len(batch) >= batch_size:
                self.write_lines(batch, precision=precision, retention_policy=retention_policy)
                written += len(batch)
                batch = []
        if batch:
            self.write_lines(batch, precision=precision, retention_policy=retention_policy)
            written += len(batch)
        return written

    # -- queries --

    def query(
        self,
        q: str,
        *,
        epoch: Precision | None = "ms",
        params: Mapping[str, Any] | None = None,
        database: str | None = None,
    ) -> list[list[Series]]:
        """Run one or more InfluxQL statements; returns the series of each statement.

        Raises :class:`InfluxQueryError` when any statement failed, even inside HTTP 200.
        Statements that change state (CREATE, DROP, ...) are sent with POST.
        """
        form: dict[str, str] = {"q": q}
        db = self.database if database is None else database
        if db:
            form["db"] = db
        if epoch:
            form["epoch"] = epoch
        if params:
            form["params"] = json.dumps(dict(params))
        method = "GET" if _is_read_only(q) else "POST"
        if method == "GET":
            r = self._request("GET", "/query", params=form)
        else:
            r = self._request("POST", "/query", data=form)
        if r.status_code != 200:
            raise InfluxQueryError(f"HTTP {r.status_code} for {q!r}: {_error_text(r)}")
        payload = r.json()
        if "error" in payload:
            raise InfluxQueryError(f"{payload['error']} (query: {q!r})")
        out: list[list[Series]] = []
        for result in payload.get("results", []):
            if "error" in result:
                raise InfluxQueryError(f"{result['error']} (query: {q!r})")
            out.append(
                [
                    Series(
                        name=s.get("name", ""),
                        columns=tuple(s.get("columns", ())),
                        values=tuple(tuple(v) for v in s.get("values", ())),
                        tags=s.get("tags", {}) or {},
                    )
                    for s in result.get("series", [])
                ]
            )
        return out

    def query_records(self, q: str, **kwargs: Any) -> list[dict[str, Any]]:
        """Rows of a single-statement query as dicts (tags merged in), across all series."""
        results = self.query(q, **kwargs)
        rows: list[dict[str, Any]] = []
        for series in results[0] if results else []:
            for record in series.records():
                record.update(series.tags)
                rows.append(record)
        return rows

    def create_database(self) -> None:
        """Create the database; a no-op when it exists."""
        self.query(f'CREATE DATABASE "{_quote_ident(self.database)}"', database="", epoch=None)


def _quote_ident(name: str) -> str:
    return name.replace("\\", "\\\\").replace('"', '\\"')


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return f'"{_quote_ident(name)}"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_read_only(q: str) -> bool:
    return all(
        stmt.strip().upper().startswith(("SELECT", "SHOW")) and " INTO " not in stmt.upper()
        for stmt in q.split(";")
        if stmt.strip()
    )


def _error_text(r: requests.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text.strip()[:500]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return r.text.strip()[:500]
