"""What the operator's gateway pages show: one line per gateway, and a bundle made readable.

A gateway is listed when the registry has a site for it, it was enrolled, it sent a status
(:func:`~collector.remote.releases.load_reports`) or it was asked for diagnostics.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from collector.remote.diagnostics import StoredDiagnostics, latest_answered
from collector.remote.releases import GatewayReport, load_reports
from collector.store.gateway_models import GatewayConfigRow, GatewayDiagnosticsRow, GatewayKeyRow
from collector.store.models import SiteRow
from collector.timeseries.influx import InfluxClient


@dataclass(frozen=True)
class GatewayLine:
    gateway_id: str
    site_ids: tuple[str, ...]
    #: has a command key that is not revoked (can be sent a diagnostics request)
    enrolled: bool
    report: GatewayReport | None
    #: the newest configuration version the server keeps for it
    server_config_version: int | None
    latest: StoredDiagnostics | None


def gateway_lines(session: Session, influx: InfluxClient, now: datetime) -> list[GatewayLine]:
    """Every known gateway, by id."""
    sites: dict[str, list[str]] = {}
    for site_id, gateway_id in session.execute(
        select(SiteRow.site_id, SiteRow.gateway_id).order_by(SiteRow.site_id)
    ):
        sites.setdefault(gateway_id, []).append(site_id)
    keys = {k.gateway_id: k.revoked_at is None for k in session.scalars(select(GatewayKeyRow))}
    configs: dict[str, int] = {
        gateway_id: version
        for gateway_id, version in session.execute(
            select(GatewayConfigRow.gateway_id, func.max(GatewayConfigRow.version)).group_by(
                GatewayConfigRow.gateway_id
            )
        )
    }
    asked = set(session.scalars(select(GatewayDiagnosticsRow.gateway_id).distinct()))
    reports = {r.gateway_id: r for r in load_reports(influx, now=now)}
    latest = latest_answered(session)
    ids = sorted(set(sites) | set(keys) | set(reports) | asked)
    return [
        GatewayLine(
            gateway_id=g,
            site_ids=tuple(sites.get(g, ())),
            enrolled=keys.get(g, False),
            report=reports.get(g),
            server_config_version=configs.get(g),
            latest=latest.get(g),
        )
        for g in ids
    ]


def is_known(session: Session, gateway_id: str) -> bool:
    """Whether the store knows ``gateway_id`` (a site, a key or a diagnostics request)."""
    return any(
        session.scalar(select(column).where(column == gateway_id).limit(1)) is not None
        for column in (
            SiteRow.gateway_id,
            GatewayKeyRow.gateway_id,
            GatewayDiagnosticsRow.gateway_id,
        )
    )


def format_bytes(value: object) -> str:
    """``123456789`` as ``117.7 MiB``; anything not a whole number as it is."""
    if not isinstance(value, int) or isinstance(value, bool):
        return "–" if value is None else str(value)
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def format_duration_s(seconds: float | None) -> str:
    """``93784`` as ``1 d 2 h 3 min``."""
    if seconds is None:
        return "–"
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h {minutes} min"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s"


def readable_pairs(section: dict[str, Any], *, yes: str, no: str) -> list[tuple[str, str]]:
    """A bundle's section (spool, broker, clock, disk, memory) as (name, text) rows:
    ``*_bytes`` in binary units, booleans as ``yes``/``no``, missing values as a dash."""
    rows: list[tuple[str, str]] = []
    for name, value in section.items():
        if name.endswith("_bytes"):
            text = format_bytes(value)
        elif isinstance(value, bool):
            text = yes if value else no
        elif value is None:
            text = "–"
        else:
            text = str(value)
        rows.append((name.replace("_", " "), text))
    return rows
