"""The HTML pages: the member side and the operator side."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import Response
from sqlalchemy import select

from collector.faults.alerts import (
    AlertNotFoundError,
    AlertResolvedError,
    AlertService,
    AlertStatus,
)
from collector.portal import ledger_views, svg
from collector.portal.accounts import AccountError
from collector.portal.i18n import translate
from collector.portal.mail import MailNotConfiguredError, send_mail
from collector.portal.overview import alert_sentence, build_overview, member_alerts
from collector.portal.web import (
    NotFound,
    check_csrf,
    language_of,
    portal_of,
    redirect,
    render,
    require_member,
    require_operator,
)
from collector.store.models import MemberRow

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
OptForm = Annotated[str | None, Form()]


def _now() -> datetime:
    return datetime.now(UTC)


# --- member side -------------------------------------------------------------------------


@router.get("/overview")
def overview(request: Request) -> Response:
    _ws, scope = require_member(request)
    portal = portal_of(request)
    lang = language_of(request)

    def t(key: str) -> str:
        return translate(key, lang)

    with portal.sessions() as session:
        ov = build_overview(session, portal.influx, scope, _now(), lang)
    alerts = member_alerts(AlertService(portal.sessions), scope)
    charts = {
        "curve": svg.power_curve_svg(
            ov.curve,
            ov.day_start,
            ov.day_end,
            title=t("overview.curve"),
            empty_text=t("overview.no_data_today"),
        ),
        "days": svg.bars_svg(
            ov.days,
            title=t("overview.days"),
            legend=(t("overview.this_year"), t("overview.last_year")),
            label_every=5,
        ),
        "months": svg.bars_svg(
            ov.months,
            title=t("overview.months"),
            legend=(t("overview.this_year"), t("overview.last_year")),
        ),
        "years": svg.bars_svg(ov.years, title=t("overview.years")),
    }
    if ov.guarantee is not None:
        charts["guarantee"] = svg.progress_svg(
            ov.guarantee.produced_kwh,
            ov.guarantee.guarantee_to_date_kwh,
            title=t("overview.guarantee"),
            labels=(t("overview.contract_year"), t("overview.guarantee")),
        )
    return render(
        request,
        "overview.html",
        {
            "ov": ov,
            "charts": charts,
            "alerts": [(a, alert_sentence(a, lang)) for a in alerts],
            "has_devices": bool(scope.device_ids),
        },
    )


@router.get("/alerts")
def my_alerts(request: Request) -> Response:
    _ws, scope = require_member(request)
    lang = language_of(request)
    alerts = member_alerts(AlertService(portal_of(request).sessions), scope, limit=100)
    return render(
        request, "member_alerts.html", {"alerts": [(a, alert_sentence(a, lang)) for a in alerts]}
    )


@router.get("/statements")
def my_statements(request: Request) -> Response:
    ws, _scope = require_member(request)
    with portal_of(request).sessions() as session:
        rows = ledger_views.statements_of(session, ws.account.member_id)
    return render(request, "statements.html", {"statements": rows, "base": "/statements"})


@router.get("/statements/{run_id}/{contract_id}")
def my_statement(request: Request, run_id: str, contract_id: str) -> Response:
    ws, _scope = require_member(request)
    with portal_of(request).sessions() as session:
        detail = ledger_views.statement_detail(session, run_id, contract_id, ws.account.member_id)
    if detail is None:
        raise NotFound()
    return render(request, "statement.html", {"s": detail})


def _pdf(request: Request, run_id: str, member_id: str) -> Response:
    from collector.statements.data import StatementDataError, load_statement
    from collector.statements.render import render_pdf, statement_filename

    portal = portal_of(request)
    with portal.sessions() as session:
        try:
            data = load_statement(
                session, run_id, member_id, language=language_of(request), influx=portal.influx
            )
        except StatementDataError:
            raise NotFound() from None
    return Response(
        render_pdf(data),
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{statement_filename(data, "pdf")}"'
        },
    )


@router.get("/statements/{run_id}/{contract_id}/pdf")
def my_statement_pdf(request: Request, run_id: str, contract_id: str) -> Response:
    """The statement as PDF (the statements area's layout), for the member's own contract."""
    ws, _scope = require_member(request)
    assert ws.account.member_id is not None
    with portal_of(request).sessions() as session:
        detail = ledger_views.statement_detail(session, run_id, contract_id, ws.account.member_id)
    if detail is None:
        raise NotFound()
    return _pdf(request, run_id, ws.account.member_id)


# --- operator side -----------------------------------------------------------------------


@router.get("/operator")
def fleet(request: Request) -> Response:
    require_operator(request)
    portal = portal_of(request)
    service = AlertService(portal.sessions)
    live = service.list(status=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED], limit=10_000)
    per_device: dict[str, int] = {}
    for a in live:
        per_device[a.device_id] = per_device.get(a.device_id, 0) + 1
    now = _now()
    with portal.sessions() as session:
        devices = ledger_views.fleet_status(session, portal.influx, per_device, now)
    reporting = [d for d in devices if d.last_seen and (now - d.last_seen).total_seconds() < 1800]
    power_kw = sum(d.power_w or 0.0 for d in reporting) / 1000
    return render(
        request,
        "operator_fleet.html",
        {
            "devices": devices,
            "summary": {
                "n": len(devices),
                "reporting": len(reporting),
                "power": f"{power_kw:.1f}",
                "alerts": len(live),
            },
        },
    )


@router.get("/operator/alerts")
def operator_alerts(request: Request, status: str = "live") -> Response:
    require_operator(request)
    service = AlertService(portal_of(request).sessions)
    wanted = (
        [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]
        if status == "live"
        else [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.RESOLVED]
    )
    return render(
        request,
        "operator_alerts.html",
        {"alerts": service.list(status=wanted, limit=500), "status": status},
    )


@router.post("/operator/alerts/{alert_id}/ack")
def operator_ack(
    request: Request, alert_id: Annotated[int, Path(ge=1, le=2**31 - 1)], csrf_token: OptForm = None
) -> Response:
    ws = require_operator(request)
    check_csrf(request, csrf_token)
    try:
        AlertService(portal_of(request).sessions).acknowledge(
            alert_id, by=ws.account.email, now=_now()
        )
    except AlertNotFoundError:
        raise NotFound() from None
    except AlertResolvedError:
        pass
    return redirect("/operator/alerts")


@router.get("/operator/settlements")
def operator_runs(request: Request) -> Response:
    require_operator(request)
    with portal_of(request).sessions() as session:
        rows = ledger_views.runs(session)
    return render(request, "operator_runs.html", {"runs": rows})


@router.get("/operator/settlements/{run_id}")
def operator_run(request: Request, run_id: str) -> Response:
    require_operator(request)
    with portal_of(request).sessions() as session:
        rows = [s for s in ledger_views.statements_of(session, None) if s["run_id"] == run_id]
    if not rows:
        raise NotFound()
    return render(
        request,
        "statements.html",
        {"statements": rows, "base": "/operator/statements", "run_id": run_id},
    )


@router.get("/operator/statements/{run_id}/{contract_id}")
def operator_statement(request: Request, run_id: str, contract_id: str) -> Response:
    require_operator(request)
    with portal_of(request).sessions() as session:
        detail = ledger_views.statement_detail(session, run_id, contract_id, None)
    if detail is None:
        raise NotFound()
    return render(request, "statement.html", {"s": detail})


@router.get("/operator/statements/{run_id}/{contract_id}/pdf")
def operator_statement_pdf(request: Request, run_id: str, contract_id: str) -> Response:
    require_operator(request)
    with portal_of(request).sessions() as session:
        detail = ledger_views.statement_detail(session, run_id, contract_id, None)
    if detail is None:
        raise NotFound()
    return _pdf(request, run_id, str(detail["member_id"]))


def _members_page(request: Request, notice: str | None = None, link: str | None = None) -> Response:
    portal = portal_of(request)
    accounts = {a.member_id: a for a in portal.accounts.list() if a.member_id}
    operators = [a for a in portal.accounts.list() if a.is_operator]
    with portal.sessions() as session:
        members = session.scalars(select(MemberRow).order_by(MemberRow.member_id)).all()
        rows = [(m.member_id, m.name, m.email, accounts.get(m.member_id)) for m in members]
    return render(
        request,
        "operator_members.html",
        {"members": rows, "operators": operators, "notice": notice, "link": link},
    )


@router.get("/operator/members")
def operator_members(request: Request) -> Response:
    require_operator(request)
    return _members_page(request)


@router.post("/operator/members/{member_id}/invite")
def operator_invite(request: Request, member_id: str, csrf_token: OptForm = None) -> Response:
    require_operator(request)
    check_csrf(request, csrf_token)
    portal = portal_of(request)
    lang = language_of(request)
    try:
        account = portal.accounts.create_member_account(member_id)
        token = portal.accounts.issue_link(account.account_id, "invite")
    except AccountError as exc:
        return _members_page(request, notice=str(exc))
    link = f"{portal.config.base_url.rstrip('/')}/invite/{token}"
    if portal.config.smtp_host:
        try:
            send_mail(
                portal.config,
                account.email,
                translate("invite.mail_subject", account.language),
                translate(
                    "invite.mail_body", account.language, name=account.display_name, link=link
                ),
            )
            return _members_page(
                request, notice=translate("op.members.mailed", lang, email=account.email)
            )
        except (MailNotConfiguredError, OSError) as exc:
            log.error("invitation mail for %s failed: %s", member_id, exc)
    return _members_page(
        request,
        notice=translate("op.members.link", lang, name=account.display_name),
        link=link,
    )


@router.post("/operator/accounts/{account_id}/{action}")
def operator_account(
    request: Request,
    account_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    action: str,
    csrf_token: OptForm = None,
) -> Response:
    ws = require_operator(request)
    check_csrf(request, csrf_token)
    if action not in ("deactivate", "activate"):
        raise NotFound()
    if account_id == ws.account.account_id and action == "deactivate":
        return _members_page(request, notice="you cannot deactivate your own account")
    try:
        portal_of(request).accounts.set_active(account_id, action == "activate")
    except AccountError:
        raise NotFound() from None
    return redirect("/operator/members")
