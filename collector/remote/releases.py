"""What the fleet runs, and whether a release may leave the canary channel.

Each gateway reports its Debian package version and release channel in its status
(``gateway_status``: ``package_version``, ``channel``; ``state`` online/offline, the broker's
last will saying offline when a gateway dies). :func:`load_reports` reads, per gateway, the
newest status, the first time it reported each version, how often it went offline since, and
when its readings were last stored (``gateway_seen``).

A release is promoted from ``canary`` to ``stable`` only when :func:`canary_verdict` says
so: every canary gateway runs it, has run it for the hold time, did not go offline since it
started it (a crash or a restart loop shows as the broker's will), and its readings still
flow. Pure functions over :class:`GatewayReport`; I/O only in :func:`load_reports`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from collector.timeseries.influx import InfluxClient
from collector.timeseries.measurements import (
    GATEWAY_SEEN_MEASUREMENT,
    GATEWAY_STATUS_MEASUREMENT,
)

#: How long canary gateways must run a release before it may go to stable.
DEFAULT_HOLD = timedelta(hours=24)
#: Readings stored this recently count as flowing.
DEFAULT_FRESH = timedelta(minutes=30)


@dataclass(frozen=True)
class GatewayReport:
    """What is known of one gateway's software and health.

    ``since`` is when it first reported its current ``package_version``; ``offline_since``
    counts its ``offline`` statuses from then on; ``last_stored`` is when its readings were
    last stored.
    """

    gateway_id: str
    state: str | None
    package_version: str | None
    channel: str | None
    config_version: int | None
    reported_at: datetime | None
    since: datetime | None
    offline_since: int
    last_stored: datetime | None
    #: why the newest configuration sent was not applied ("version: reason"), as its newest
    #: own status says; None when it runs the newest one
    config_refused: str | None = None


@dataclass(frozen=True)
class Verdict:
    """Whether a version may be promoted, and per gateway why not."""

    version: str
    promote: bool
    problems: dict[str, str]
    gateways: int


def version_counts(reports: Iterable[GatewayReport]) -> dict[tuple[str, str], int]:
    """Gateways per (channel, package version); unknown values as ``"?"``."""
    out: dict[tuple[str, str], int] = {}
    for r in reports:
        key = (r.channel or "?", r.package_version or "?")
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


def canary_verdict(
    reports: Sequence[GatewayReport],
    version: str,
    now: datetime,
    *,
    channel: str = "canary",
    hold: timedelta = DEFAULT_HOLD,
    fresh: timedelta = DEFAULT_FRESH,
) -> Verdict:
    """May ``version`` leave ``channel``? Every gateway of the channel must vouch for it.

    Parameters
    ----------
    reports
        Every gateway's report (:func:`load_reports`).
    version
        The package version to promote.
    now
        The time of the decision, UTC.
    channel
        The channel that tested it.
    hold
        How long each gateway must have run it.
    fresh
        How recently its readings must have been stored.
    """
    problems: dict[str, str] = {}
    members = [r for r in reports if r.channel == channel]
    for r in members:
        if r.package_version != version:
            problems[r.gateway_id] = f"runs {r.package_version or 'an unknown version'}"
        elif r.since is None or now - r.since < hold:
            ran = "no time" if r.since is None else str(now - r.since).split(".")[0]
            problems[r.gateway_id] = f"has run it for {ran}, needs {hold}"
        elif r.offline_since:
            problems[r.gateway_id] = f"went offline {r.offline_since} times since it started it"
        elif r.state != "online":
            problems[r.gateway_id] = f"is {r.state or 'silent'}"
        elif r.last_stored is None or now - r.last_stored > fresh:
            problems[r.gateway_id] = "has no readings stored recently"
    if not members:
        problems["-"] = f"no gateway is on the {channel} channel"
    return Verdict(version, not problems, problems, len(members))


def _ts(ms: object) -> datetime:
    return datetime.fromtimestamp(int(str(ms)) / 1000, UTC)


def load_reports(
    client: InfluxClient, *, now: datetime, lookback: timedelta = timedelta(days=30)
) -> list[GatewayReport]:
    """Every gateway that sent a status within ``lookback``, from ``gateway_status`` and
    ``gateway_seen``."""
    window = f"time > '{(now - lookback).strftime('%Y-%m-%dT%H:%M:%SZ')}'"
    history: dict[str, list[dict[str, object]]] = {}
    for r in client.query_records(
        'SELECT "state", "package_version", "channel", "config_version", "config_refused" '
        f'FROM "{GATEWAY_STATUS_MEASUREMENT}" WHERE {window} GROUP BY "gateway"',
        epoch="ms",
    ):
        history.setdefault(str(r.get("gateway")), []).append(r)
    stored: dict[str, datetime] = {}
    for r in client.query_records(
        f'SELECT last("readings") FROM "{GATEWAY_SEEN_MEASUREMENT}" WHERE {window} '
        'GROUP BY "gateway"',
        epoch="ms",
    ):
        stored[str(r.get("gateway"))] = _ts(r["time"])
    return [
        _report(gateway, rows, stored.get(gateway)) for gateway, rows in sorted(history.items())
    ]


def _report(
    gateway: str, rows: list[dict[str, object]], last_stored: datetime | None
) -> GatewayReport:
    """One gateway's report from its status points in time order."""
    current = next((r["package_version"] for r in reversed(rows) if r.get("package_version")), None)
    channel = next((r["channel"] for r in reversed(rows) if r.get("channel")), None)
    config = next((r["config_version"] for r in reversed(rows) if r.get("config_version")), None)
    since: datetime | None = None
    offline = 0
    for r in rows:
        version = r.get("package_version")
        if version and version != current:
            since, offline = None, 0  # an older version: what counts starts later
        elif version == current and since is None:
            since = _ts(r["time"])
        elif since is not None and r.get("state") == "offline":
            offline += 1
    # the gateway's own statuses carry config_version; the broker's will does not
    own = next((r for r in reversed(rows) if r.get("config_version") is not None), None)
    refused = own.get("config_refused") if own is not None else None
    last = rows[-1]
    return GatewayReport(
        gateway_id=gateway,
        state=str(last["state"]) if last.get("state") else None,
        package_version=str(current) if current else None,
        channel=str(channel) if channel else None,
        config_version=int(str(config)) if config is not None else None,
        reported_at=_ts(last["time"]),
        since=since,
        offline_since=offline,
        last_stored=last_stored,
        config_refused=str(refused) if refused else None,
    )
