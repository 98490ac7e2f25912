"""``GET /api/v1/gateways``: which software each gateway runs, for operators (issue 21).

Each gateway's package version, release channel and configuration version as its status
reports them, when it started its version and whether it went offline since, and how many
gateways run each version per channel: what an operator checks before promoting a canary
release (``zonnewijk gateways release-check`` applies the rule).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel

from collector.portal.api import AUTH, Operator
from collector.portal.web import portal_of
from collector.remote.releases import load_reports, version_counts

router = APIRouter(prefix="/api/v1", tags=["api"])


class GatewayVersionOut(BaseModel):
    gateway_id: str
    state: str | None
    package_version: str | None
    channel: str | None
    config_version: int | None
    config_refused: str | None
    reported_at: datetime | None
    running_since: datetime | None
    offline_since_upgrade: int
    last_stored: datetime | None


class VersionCountOut(BaseModel):
    channel: str
    package_version: str
    gateways: int


class FleetVersionsOut(BaseModel):
    gateways: list[GatewayVersionOut]
    versions: list[VersionCountOut]


@router.get("/gateways", response_model=FleetVersionsOut, responses=AUTH)
def gateways(caller: Operator, request: Request) -> FleetVersionsOut:
    reports = load_reports(portal_of(request).influx, now=datetime.now(UTC))
    return FleetVersionsOut(
        gateways=[
            GatewayVersionOut(
                gateway_id=r.gateway_id,
                state=r.state,
                package_version=r.package_version,
                channel=r.channel,
                config_version=r.config_version,
                config_refused=r.config_refused,
                reported_at=r.reported_at,
                running_since=r.since,
                offline_since_upgrade=r.offline_since,
                last_stored=r.last_stored,
            )
            for r in reports
        ],
        versions=[
            VersionCountOut(channel=c, package_version=v, gateways=n)
            for (c, v), n in version_counts(reports).items()
        ],
    )
