"""The JSON API under ``/api/v1`` (OpenAPI at ``/api/v1/openapi.json``).

Who may call: operators with a bearer token (``zonnewijk tokens create``), and logged-in
accounts with their session cookie; a member session sees only the member's own devices, in
the member's contract windows, and every other device, alert or statement is "not found".
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select

from collector.faults.alerts import (
    AlertNotFoundError,
    AlertResolvedError,
    AlertService,
    AlertStatus,
)
from collector.portal import ledger_views
from collector.portal import production as prod
from collector.portal.scope import MemberScope, member_scope
from collector.portal.web import current_session, portal_of
from collector.store.models import DeviceRow
from collector.timeseries.influx import quote_string

router = APIRouter(prefix="/api/v1", tags=["api"])

#: Longest range one readings call may cover, per bucket size.
MAX_SPAN = {"5m": timedelta(days=7), "1h": timedelta(days=62), "1d": timedelta(days=800)}


@dataclass(frozen=True)
class Principal:
    """Who is calling: an operator (all data) or a member (``scope``)."""

    name: str
    operator: bool
    scope: MemberScope | None


class ErrorOut(BaseModel):
    detail: str


def principal(
    request: Request,
    authorization: Annotated[str | None, Header()] = None,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> Principal:
    portal = portal_of(request)
    if authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and portal.accounts.api_token_valid(token.strip()):
            return Principal("api-token", True, None)
        portal.count_reject("api_token")
        raise HTTPException(401, "invalid API token", headers={"WWW-Authenticate": "Bearer"})
    ws = current_session(request)
    if ws is None:
        portal.count_reject("api_login")
        raise HTTPException(401, "log in or send an operator token (Authorization: Bearer ...)")
    if request.method not in ("GET", "HEAD", "OPTIONS") and not (
        x_csrf_token and hmac.compare_digest(x_csrf_token.encode(), ws.csrf_token.encode())
    ):
        portal.count_reject("csrf")
        raise HTTPException(403, "send the session's CSRF token in X-CSRF-Token")
    if ws.account.is_operator:
        return Principal(ws.account.email, True, None)
    assert ws.account.member_id is not None
    with portal.sessions() as session:
        return Principal(ws.account.email, False, member_scope(session, ws.account.member_id))


Caller = Annotated[Principal, Depends(principal)]
#: database row ids: 32-bit positive integers (larger ones cannot exist and overflow SQLite)
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def operator_only(caller: Caller, request: Request) -> Principal:
    if not caller.operator:
        portal_of(request).count_reject("forbidden")
        raise HTTPException(403, "operators only")
    return caller


Operator = Annotated[Principal, Depends(operator_only)]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut}}
AUTH: dict[int | str, dict[str, Any]] = {401: {"model": ErrorOut}, 403: {"model": ErrorOut}}


class MeOut(BaseModel):
    name: str
    operator: bool
    member_id: str | None
    device_ids: list[str]


class DeviceOut(BaseModel):
    device_id: str
    site_id: str
    family: str
    model: str | None
    ac_rating_w: int
    kwp: float
    installed_on: date
    removed_on: date | None


class FleetDeviceOut(BaseModel):
    device_id: str
    site_id: str
    gateway_id: str | None
    member_name: str | None
    kwp: float
    last_seen: datetime | None
    ac_power_w: float | None
    state: str | None
    open_alerts: int


class ReadingOut(BaseModel):
    time: datetime
    ac_power_w_mean: float | None = Field(description="mean AC power in the bucket [W]")
    ac_power_w_max: float | None = Field(description="highest AC power in the bucket [W]")
    ac_energy_wh_last: float | None = Field(description="lifetime counter at bucket end [Wh]")


class DailyEnergyOut(BaseModel):
    day: date
    energy_kwh: float


class AlertOut(BaseModel):
    id: int
    kind: str
    device_id: str
    severity: str
    status: str
    message: str
    condition_since: datetime
    opened_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None


class AckIn(BaseModel):
    note: str | None = Field(default=None, max_length=2000)


class RunOut(BaseModel):
    run_id: str
    period: str
    status: str
    issued_at: datetime
    contracts: int
    total_excl_vat_eur: str
    vat_eur: str


class StatementOut(BaseModel):
    run_id: str
    period: str
    contract_id: str
    member_id: str
    site_id: str
    measured_kwh: str
    estimated_kwh: str
    total_excl_vat_eur: str
    vat_eur: str


def _statement_out(s: dict[str, Any]) -> StatementOut:
    return StatementOut(**{k: str(s[k]) for k in StatementOut.model_fields})


def _device_or_404(caller: Principal, request: Request, device_id: str) -> DeviceRow:
    if caller.scope is not None and not caller.scope.allows(device_id):
        portal_of(request).count_reject("not_found")
        raise HTTPException(404, f"no device {device_id!r}")
    with portal_of(request).sessions() as session:
        row = session.get(DeviceRow, device_id)
    if row is None:
        raise HTTPException(404, f"no device {device_id!r}")
    return row


def _device_out(row: DeviceRow) -> DeviceOut:
    return DeviceOut(
        device_id=row.device_id,
        site_id=row.site_id,
        family=row.family,
        model=row.model,
        ac_rating_w=row.ac_rating_w,
        kwp=float(row.kwp),
        installed_on=row.installed_on,
        removed_on=row.removed_on,
    )


@router.get("/me", response_model=MeOut, responses=AUTH)
def me(caller: Caller) -> MeOut:
    return MeOut(
        name=caller.name,
        operator=caller.operator,
        member_id=caller.scope.member_id if caller.scope else None,
        device_ids=list(caller.scope.device_ids) if caller.scope else [],
    )


@router.get("/fleet", response_model=list[FleetDeviceOut], responses=AUTH)
def fleet(caller: Operator, request: Request) -> list[FleetDeviceOut]:
    portal = portal_of(request)
    live = AlertService(portal.sessions).list(
        status=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED], limit=10_000
    )
    counts: dict[str, int] = {}
    for a in live:
        counts[a.device_id] = counts.get(a.device_id, 0) + 1
    with portal.sessions() as session:
        devices = ledger_views.fleet_status(session, portal.influx, counts, datetime.now(UTC))
    return [
        FleetDeviceOut(
            device_id=d.device_id,
            site_id=d.site_id,
            gateway_id=d.gateway_id,
            member_name=d.member_name,
            kwp=float(d.kwp),
            last_seen=d.last_seen,
            ac_power_w=d.power_w,
            state=d.state,
            open_alerts=d.open_alerts,
        )
        for d in devices
    ]


@router.get("/devices", response_model=list[DeviceOut], responses=AUTH)
def devices(caller: Caller, request: Request) -> list[DeviceOut]:
    with portal_of(request).sessions() as session:
        q = select(DeviceRow).order_by(DeviceRow.device_id)
        if caller.scope is not None:
            q = q.where(DeviceRow.device_id.in_(caller.scope.device_ids))
        return [_device_out(r) for r in session.scalars(q)]


@router.get("/devices/{device_id}", response_model=DeviceOut, responses=AUTH | NOT_FOUND)
def device(caller: Caller, request: Request, device_id: str) -> DeviceOut:
    return _device_out(_device_or_404(caller, request, device_id))


def _clamp(
    caller: Principal, device_id: str, start: datetime, end: datetime
) -> tuple[datetime, datetime]:
    if caller.scope is None:
        return start, end
    window = caller.scope.window(device_id)
    assert window is not None
    start = max(start, window[0])
    if window[1] is not None:
        end = min(end, window[1])
    return start, end


#: Readings outside these years do not exist; InfluxDB refuses some of them outright.
FIRST_YEAR, LAST_YEAR = 2000, 2100


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise HTTPException(422, f"{name} needs a timezone (e.g. 2026-11-28T00:00:00Z)")
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise HTTPException(422, f"{name} must lie between {FIRST_YEAR} and {LAST_YEAR}")
    return value.astimezone(UTC)


@router.get(
    "/devices/{device_id}/readings",
    response_model=list[ReadingOut],
    responses=AUTH | NOT_FOUND | {422: {"model": ErrorOut}},
)
def readings(
    caller: Caller,
    request: Request,
    device_id: str,
    start: Annotated[datetime, Query(description="range start, with timezone")],
    end: Annotated[datetime, Query(description="range end (exclusive), with timezone")],
    interval: Literal["5m", "1h", "1d"] = "1h",
) -> list[ReadingOut]:
    """AC power (mean, max) and the lifetime counter per bucket; Amsterdam days for ``1d``."""
    _device_or_404(caller, request, device_id)
    start, end = _aware(start, "start"), _aware(end, "end")
    if end <= start:
        raise HTTPException(422, "end must be after start")
    if end - start > MAX_SPAN[interval]:
        raise HTTPException(
            422, f"at most {MAX_SPAN[interval].days} days per call at interval {interval}"
        )
    start, end = _clamp(caller, device_id, start, end)
    if end <= start:
        return []
    tz = " tz('Europe/Amsterdam')" if interval == "1d" else ""
    q = (
        'SELECT mean("ac_power_w") AS "mean", max("ac_power_w") AS "max", '
        'last("ac_energy_wh") AS "wh" FROM "inverter" '
        f'WHERE "device" = {quote_string(device_id)} AND '
        f"time >= {quote_string(start.isoformat())} AND time < {quote_string(end.isoformat())} "
        f"GROUP BY time({interval}) fill(none){tz}"
    )
    rows = portal_of(request).influx.query_records(q)
    return [
        ReadingOut(
            time=datetime.fromtimestamp(int(r["time"]) / 1000, tz=UTC),
            ac_power_w_mean=r.get("mean"),
            ac_power_w_max=r.get("max"),
            ac_energy_wh_last=r.get("wh"),
        )
        for r in rows
    ]


@router.get(
    "/devices/{device_id}/daily-energy",
    response_model=list[DailyEnergyOut],
    responses=AUTH | NOT_FOUND | {422: {"model": ErrorOut}},
)
def daily_energy(
    caller: Caller,
    request: Request,
    device_id: str,
    first: date,
    last: date,
) -> list[DailyEnergyOut]:
    """Energy per Europe/Amsterdam day from the lifetime counter (indicative, not billing)."""
    _device_or_404(caller, request, device_id)
    if not (FIRST_YEAR <= first.year <= LAST_YEAR and FIRST_YEAR <= last.year <= LAST_YEAR):
        raise HTTPException(422, f"days must lie between {FIRST_YEAR} and {LAST_YEAR}")
    if last < first or (last - first).days > 800:
        raise HTTPException(422, "last must be on or after first, at most 800 days apart")
    today = prod.local_day(datetime.now(UTC))
    counters = prod.daily_counters_wh(
        portal_of(request).influx,
        [device_id],
        first - timedelta(days=1),
        min(last, today),
        today=today,
    )
    with portal_of(request).sessions() as session:
        events = prod.counter_events(session, [device_id])
    daily = prod.daily_energy_kwh(counters, caller.scope, events)
    return [
        DailyEnergyOut(day=d, energy_kwh=round(v, 3))
        for d, v in sorted(daily.items())
        if first <= d <= last
    ]


def _alert_out(a: Any) -> AlertOut:
    d = a.to_dict()
    return AlertOut(
        id=a.id,
        kind=d["kind"],
        device_id=a.device_id,
        severity=d["severity"],
        status=d["status"],
        message=a.message,
        condition_since=a.condition_since,
        opened_at=a.opened_at,
        acknowledged_at=a.acknowledged_at,
        acknowledged_by=a.acknowledged_by,
        resolved_at=a.resolved_at,
    )


@router.get("/alerts", response_model=list[AlertOut], responses=AUTH)
def alerts(
    caller: Caller,
    request: Request,
    status: Literal["live", "open", "acknowledged", "resolved", "all"] = "live",
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[AlertOut]:
    wanted: list[AlertStatus] | None
    if status == "live":
        wanted = [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]
    elif status == "all":
        wanted = None
    else:
        wanted = [AlertStatus(status)]
    service = AlertService(portal_of(request).sessions)
    if caller.scope is not None and not caller.scope.device_ids:
        return []
    found = service.list(
        status=wanted,
        device_ids=caller.scope.device_ids if caller.scope is not None else None,
        limit=limit,
    )
    out = [_alert_out(a) for a in found]
    if caller.scope is not None:
        for item in out:
            item.acknowledged_by = None
    return out


@router.post(
    "/alerts/{alert_id}/acknowledge",
    response_model=AlertOut,
    responses=AUTH | NOT_FOUND | {409: {"model": ErrorOut}},
)
def acknowledge(caller: Operator, request: Request, alert_id: RowId, body: AckIn) -> AlertOut:
    try:
        change = AlertService(portal_of(request).sessions).acknowledge(
            alert_id, by=caller.name, now=datetime.now(UTC), note=body.note
        )
    except AlertNotFoundError:
        raise HTTPException(404, f"no alert {alert_id}") from None
    except AlertResolvedError as exc:
        raise HTTPException(409, str(exc)) from None
    return _alert_out(change.alert)


@router.get("/settlement/runs", response_model=list[RunOut], responses=AUTH)
def settlement_runs(caller: Operator, request: Request) -> list[RunOut]:
    with portal_of(request).sessions() as session:
        rows = ledger_views.runs(session)
    return [
        RunOut(
            run_id=r["run_id"],
            period=r["period"],
            status=r["status"],
            issued_at=r["issued_at"],
            contracts=r["contracts"],
            total_excl_vat_eur=str(r["total_excl_vat_eur"]),
            vat_eur=str(r["vat_eur"]),
        )
        for r in rows
    ]


@router.get(
    "/settlement/runs/{run_id}/statements",
    response_model=list[StatementOut],
    responses=AUTH | NOT_FOUND,
)
def run_statements(caller: Operator, request: Request, run_id: str) -> list[StatementOut]:
    with portal_of(request).sessions() as session:
        rows = [s for s in ledger_views.statements_of(session, None) if s["run_id"] == run_id]
    if not rows:
        raise HTTPException(404, f"no settlement run {run_id!r}")
    return [_statement_out(s) for s in rows]


@router.get("/statements", response_model=list[StatementOut], responses=AUTH)
def statements(caller: Caller, request: Request) -> list[StatementOut]:
    """A member's own statements; an operator gets everyone's."""
    with portal_of(request).sessions() as session:
        rows = ledger_views.statements_of(
            session, caller.scope.member_id if caller.scope is not None else None
        )
    return [_statement_out(s) for s in rows]
