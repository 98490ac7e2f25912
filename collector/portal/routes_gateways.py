"""The operator's gateway pages (issue 21): versions, channels, configuration, diagnostics.

- ``GET /operator/gateways``: every gateway's package version, channel, configuration version
  (and a refused one), since when it runs its version, when its readings were last stored,
  its latest diagnostics; a "request diagnostics" button per enrolled gateway.
- ``POST /operator/gateways/{id}/diagnostics``: sends the signed diagnostics command and waits
  at most ``diagnostics_timeout_s`` (the web worker waits with it, bounded); the bundle, or the
  unanswered request, is stored (``gateway_diagnostics``). One request at a time per portal
  process: the portal has one broker user, and the broker makes its name the client id.
- ``GET /operator/gateways/{id}/diagnostics``: the newest bundle made readable (``?id=N``: an
  earlier one), with the gateway's earlier requests.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import Response

from collector.portal.gateways_view import (
    format_bytes,
    format_duration_s,
    gateway_lines,
    is_known,
    readable_pairs,
)
from collector.portal.i18n import translate
from collector.portal.web import (
    NotFound,
    check_csrf,
    language_of,
    portal_of,
    redirect,
    render,
    require_operator,
)
from collector.remote.delivery import DeliveryError
from collector.remote.diagnostics import ask_and_store, diagnostics_by_id, diagnostics_history
from collector.remote.releases import version_counts
from zonnewijk_wire.common import ID_PATTERN

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
GatewayId = Annotated[str, Path(pattern=ID_PATTERN)]
#: How long a second request waits for the one running before it is told to try again [s].
BUSY_WAIT_S = 2.0
_one_request = threading.Lock()


def _gateways_page(request: Request, notice: str | None = None) -> Response:
    portal = portal_of(request)
    lang = language_of(request)
    with portal.sessions() as session:
        lines = gateway_lines(session, portal.influx, datetime.now(UTC))
    counts = version_counts(line.report for line in lines if line.report is not None)
    versions = ", ".join(f"{c} {v} × {n}" for (c, v), n in counts.items()) or "–"
    return render(
        request,
        "operator_gateways.html",
        {
            "lines": lines,
            "summary": translate("op.gw.summary", lang, n=len(lines), versions=versions),
            "notice": notice,
            "timeout_s": f"{portal.config.diagnostics_timeout_s:.0f}",
        },
    )


@router.get("/operator/gateways")
def operator_gateways(request: Request) -> Response:
    require_operator(request)
    return _gateways_page(request)


@router.post("/operator/gateways/{gateway_id}/diagnostics")
def operator_request_diagnostics(
    request: Request, gateway_id: GatewayId, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    ws = require_operator(request)
    check_csrf(request, csrf_token)
    portal = portal_of(request)
    lang = language_of(request)
    with portal.sessions() as session:
        if not is_known(session, gateway_id):
            raise NotFound()
    login = portal.config.fleet_broker
    if login is None:
        reason = translate("op.gw.no_broker", lang)
        return _gateways_page(
            request, translate("op.gw.not_sent", lang, gateway=gateway_id, reason=reason)
        )
    if not _one_request.acquire(timeout=BUSY_WAIT_S):
        reason = translate("op.gw.busy", lang)
        return _gateways_page(
            request, translate("op.gw.not_sent", lang, gateway=gateway_id, reason=reason)
        )
    try:
        stored = ask_and_store(
            portal.sessions,
            login,
            gateway_id,
            requested_by=ws.account.email,
            timeout_s=portal.config.diagnostics_timeout_s,
        )
    except DeliveryError as exc:
        log.warning("diagnostics request to %s not sent: %s", gateway_id, exc)
        return _gateways_page(
            request, translate("op.gw.not_sent", lang, gateway=gateway_id, reason=str(exc))
        )
    finally:
        _one_request.release()
    return redirect(f"/operator/gateways/{gateway_id}/diagnostics?id={stored.id}")


@router.get("/operator/gateways/{gateway_id}/diagnostics")
def operator_diagnostics(
    request: Request,
    gateway_id: GatewayId,
    id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> Response:
    require_operator(request)
    portal = portal_of(request)
    lang = language_of(request)
    with portal.sessions() as session:
        if not is_known(session, gateway_id):
            raise NotFound()
        history = diagnostics_history(session, gateway_id)
        chosen = diagnostics_by_id(session, gateway_id, id) if id is not None else None
    if id is not None and chosen is None:
        raise NotFound()
    notice = None
    if chosen is not None and not chosen.answered:
        # the request just made (or an earlier one) went unanswered: say so, show the newest
        # bundle that did come
        notice = translate(
            "op.gw.no_answer",
            lang,
            gateway=gateway_id,
            seconds=f"{portal.config.diagnostics_timeout_s:.0f}",
        )
        chosen = None
    shown = chosen or next((d for d in history if d.answered), None)
    return render(
        request,
        "operator_gateway_diagnostics.html",
        {
            "gateway_id": gateway_id,
            "shown": shown,
            "sections": _sections(shown.document, lang) if shown and shown.document else [],
            "history": history,
            "notice": notice,
            "bytes": format_bytes,
            "duration": format_duration_s,
        },
    )


def _sections(document: dict[str, Any], lang: str) -> list[tuple[str, str, list[tuple[str, str]]]]:
    """The bundle's key-value sections: (html id, title, rows)."""
    yes, no = translate("op.diag.yes", lang), translate("op.diag.no", lang)
    out = []
    for name in ("spool", "broker", "clock", "disk", "memory"):
        section = document.get(name)
        rows = readable_pairs(section, yes=yes, no=no) if isinstance(section, dict) else []
        out.append((f"diag-{name}", translate(f"op.diag.{name}", lang), rows))
    return out
