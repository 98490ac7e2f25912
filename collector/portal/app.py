"""The portal's FastAPI application: member pages, operator pages and the ``/api/v1`` API."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from collector.enrolment import http as enrolment_http
from collector.enrolment.service import BrokerSetup, EnrolmentService
from collector.portal import (
    api,
    fleet_api,
    routes_auth,
    routes_gateways,
    routes_pages,
    routes_self_consumption,
)
from collector.portal.accounts import AccountService
from collector.portal.config import PortalConfig
from collector.portal.i18n import translate
from collector.portal.web import (
    TEMPLATES_DIR,
    CsrfFailed,
    Forbidden,
    LoginRequired,
    NotFound,
    Portal,
    language_of,
    portal_of,
    redirect,
    render,
)
from collector.store.db import make_engine, session_factory
from collector.timeseries.influx import InfluxClient, InfluxError

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


def create_app(
    config: PortalConfig,
    *,
    influx: InfluxClient | None = None,
    enrolment_broker: BrokerSetup | None = None,
) -> FastAPI:
    """The portal for ``config``; the store must be migrated (``zonnewijk db migrate``).

    With ``enrolment_broker`` the portal also serves gateway enrolment
    (:mod:`collector.enrolment.http`); without it that route answers 404 (not served here).
    """
    engine = make_engine(config.database_url)
    sessions = session_factory(engine)
    app = FastAPI(
        title="Zonnewijk portal API",
        version="1",
        description=(
            "Fleet, devices, aggregated readings, alerts and settlement runs of the Zonnewijk "
            "solar cooperative. Operators authenticate with a bearer token "
            "(`zonnewijk tokens create`); a member's session cookie sees only the member's "
            "own devices."
        ),
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # Swagger UI would load scripts from a CDN; the CSP forbids that
        redoc_url=None,
    )
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    app.state.portal = Portal(
        config=config,
        sessions=sessions,
        influx=influx
        or InfluxClient(
            config.influx_url,
            config.influx_db,
            username=config.influx_username,
            password=config.influx_password,
        ),
        accounts=AccountService(sessions),
        templates=templates,
        rejects={},
    )
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    app.include_router(routes_auth.router)
    app.include_router(routes_pages.router)
    app.include_router(routes_self_consumption.router)
    app.include_router(routes_gateways.router)
    app.include_router(api.router)
    app.include_router(fleet_api.router)
    app.include_router(enrolment_http.router)
    if enrolment_broker is not None:
        app.state.enrolment = EnrolmentService(sessions, enrolment_broker)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Invitation and reset tokens live in URLs: never send them on as a referrer.
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["X-Frame-Options"] = "DENY"
        if request.url.scheme == "https" or config.secure_cookies:
            response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        portal_of(request).count_reject("login_required")
        return redirect("/login")

    # Refusals that show a plain message page; each is counted by its reason.
    for exc_type, reason, status in (
        (Forbidden, "forbidden", 403),
        (NotFound, "not_found", 404),
        (CsrfFailed, "csrf", 403),
    ):
        app.add_exception_handler(exc_type, _message_page(reason, status))

    @app.exception_handler(InfluxError)
    async def _influx_down(request: Request, exc: InfluxError) -> Response:
        log.error("InfluxDB failed for %s: %s", request.url.path, exc)
        portal_of(request).count_reject("influx_unavailable")
        if request.url.path.startswith("/api/"):
            return JSONResponse(
                {"detail": "the measurements database is unavailable; try again later"},
                status_code=503,
            )
        return render(
            request,
            "message.html",
            {"message": translate("error.influx", language_of(request))},
            status_code=503,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if request.url.path.startswith("/api/") or exc.status_code != 404:
            from fastapi.exception_handlers import http_exception_handler

            return await http_exception_handler(request, exc)
        return render(
            request,
            "message.html",
            {"message": translate("error.not_found", language_of(request))},
            status_code=404,
        )

    return app


def _message_page(
    reason: str, status_code: int
) -> Callable[[Request, Exception], Awaitable[Response]]:
    """An exception handler that counts ``reason`` and shows the translated ``error.<reason>``."""

    async def handler(request: Request, _exc: Exception) -> Response:
        portal_of(request).count_reject(reason)
        return render(
            request,
            "message.html",
            {"message": translate(f"error.{reason}", language_of(request))},
            status_code=status_code,
        )

    return handler
