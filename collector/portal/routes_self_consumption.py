"""The member's self-consumption page (``/self-consumption``)."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import Response

from collector.portal import svg
from collector.portal.i18n import translate
from collector.portal.self_consumption_view import build_page
from collector.portal.web import language_of, portal_of, render, require_member

router = APIRouter(include_in_schema=False)


def advice_hours(ranges: list[tuple[int, int]], language: str) -> str:
    """``[(11, 14), (16, 17)]`` as "11:00-14:00 en 16:00-17:00"."""
    spans = [f"{a:02d}:00–{b:02d}:00" for a, b in ranges]
    if len(spans) <= 1:
        return "".join(spans)
    return ", ".join(spans[:-1]) + f" {translate('sc.and', language)} {spans[-1]}"


@router.get("/self-consumption")
def self_consumption(request: Request) -> Response:
    _ws, scope = require_member(request)
    portal = portal_of(request)
    lang = language_of(request)
    with portal.sessions() as session:
        page = build_page(session, portal.influx, scope, datetime.now(UTC))
    chart = svg.production_use_svg(
        page.curve,
        page.day_start,
        page.day_end,
        title=translate("sc.curve", lang),
        legend=(translate("sc.produced", lang), translate("sc.used", lang)),
        empty_text=translate("sc.no_data_today", lang),
    )
    advice = (
        translate("sc.advice", lang, hours=advice_hours(page.surplus_ranges, lang))
        if page.surplus_ranges
        else translate("sc.advice_none", lang)
    )
    return render(
        request,
        "self_consumption.html",
        {
            "page": page,
            "chart": chart,
            "advice": advice,
            "has_devices": bool(scope.device_ids),
        },
    )
