"""Request plumbing shared by the portal's routes: who is asking, CSRF, language, rendering.

- Session cookie ``zw_session``: HttpOnly, SameSite=Lax, Secure when the request came over
  TLS (or the configuration says the portal sits behind TLS). The server keeps the session;
  logout revokes it there.
- CSRF: every form carries a token. Logged in, it is the session's own random token; before
  login (login, password reset, invitation) it is an HMAC of a random cookie value
  (signed double submit). Cookie-authenticated API calls that change something need the
  session's token in an ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from sqlalchemy.orm import Session, sessionmaker

from collector.portal.accounts import AccountService, WebSession
from collector.portal.config import PortalConfig
from collector.portal.i18n import DEFAULT_LANGUAGE, LANGUAGES, format_kwh, format_number, translate
from collector.portal.scope import MemberScope, member_scope
from collector.timeseries.influx import InfluxClient

SESSION_COOKIE = "zw_session"
PRE_CSRF_COOKIE = "zw_csrf"
LANG_COOKIE = "zw_lang"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


class LoginRequired(Exception):
    """No valid session: send the browser to the login page."""


class Forbidden(Exception):
    """A logged-in account asked for something that is not theirs."""


class NotFound(Exception):
    """Nothing there (also said for things that exist but belong to someone else)."""


class CsrfFailed(Exception):
    """A form without a valid CSRF token."""


@dataclass
class Portal:
    """Everything the routes share; one per app (``app.state.portal``)."""

    config: PortalConfig
    sessions: sessionmaker[Session]
    influx: InfluxClient
    accounts: AccountService
    templates: Jinja2Templates
    #: refused requests by reason (login, csrf, forbidden, not_found, rate_limited)
    rejects: dict[str, int]

    def count_reject(self, reason: str) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + 1


def portal_of(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


def is_tls(request: Request, config: PortalConfig) -> bool:
    return config.secure_cookies or request.url.scheme == "https"


def set_session_cookie(response: Response, request: Request, token: str) -> None:
    config = portal_of(request).config
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=is_tls(request, config),
        max_age=14 * 24 * 3600,
        path="/",
    )


def current_session(request: Request) -> WebSession | None:
    """The request's live session, looked up once per request."""
    if hasattr(request.state, "web_session"):
        cached: WebSession | None = request.state.web_session
        return cached
    token = request.cookies.get(SESSION_COOKIE, "")
    found = portal_of(request).accounts.session_for(token) if token else None
    request.state.web_session = found
    return found


def require_login(request: Request) -> WebSession:
    ws = current_session(request)
    if ws is None:
        raise LoginRequired()
    return ws


def require_member(request: Request) -> tuple[WebSession, MemberScope]:
    ws = require_login(request)
    if ws.account.member_id is None:
        raise Forbidden()
    with portal_of(request).sessions() as session:
        return ws, member_scope(session, ws.account.member_id)


def require_operator(request: Request) -> WebSession:
    ws = require_login(request)
    if not ws.account.is_operator:
        raise Forbidden()
    return ws


# --- CSRF -------------------------------------------------------------------------------


def _pre_token(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), b"csrf:" + nonce.encode(), hashlib.sha256).hexdigest()


def csrf_token_for(request: Request, response_cookies: dict[str, str]) -> str:
    """The token to put in a form on this page."""
    ws = current_session(request)
    if ws is not None:
        return ws.csrf_token
    nonce = request.cookies.get(PRE_CSRF_COOKIE) or response_cookies.get(PRE_CSRF_COOKIE)
    if not nonce or len(nonce) > 100:
        nonce = secrets.token_urlsafe(24)
        response_cookies[PRE_CSRF_COOKIE] = nonce
    return _pre_token(portal_of(request).config.secret_key, nonce)


def check_csrf(request: Request, submitted: str | None) -> None:
    """Refuse a form whose token is missing or wrong (raises :class:`CsrfFailed`)."""
    if not submitted:
        raise CsrfFailed()
    ws = current_session(request)
    if ws is not None:
        expected = ws.csrf_token
    else:
        nonce = request.cookies.get(PRE_CSRF_COOKIE, "")
        if not nonce:
            raise CsrfFailed()
        expected = _pre_token(portal_of(request).config.secret_key, nonce)
    if not hmac.compare_digest(expected.encode(), submitted.encode()):
        raise CsrfFailed()


# --- language and rendering --------------------------------------------------------------


def language_of(request: Request) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    ws = current_session(request)
    if ws is not None and ws.account.language in LANGUAGES:
        return ws.account.language
    return DEFAULT_LANGUAGE


def local_time(value: datetime | None, fmt: str = "%d-%m-%Y %H:%M") -> str:
    return "–" if value is None else value.astimezone(AMSTERDAM).strftime(fmt)


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """A page in the request's language with the helpers every template uses."""
    portal = portal_of(request)
    lang = language_of(request)
    new_cookies: dict[str, str] = {}
    csrf = csrf_token_for(request, new_cookies)
    ws = current_session(request)

    def t(key: str, **values: Any) -> str:
        return translate(key, lang, **values)

    full = {
        "request": request,
        "t": t,
        "lang": lang,
        "csrf_token": csrf,
        "account": ws.account if ws else None,
        "kwh": lambda v, d=1: format_kwh(v, lang, d),
        "num": lambda v, d=2: format_number(v, lang, d),
        "money": lambda v, d=2: "€ " + format_number(v, lang, d),
        "local_time": local_time,
        "svg": Markup,
        "path": request.url.path,
        **context,
    }
    response = portal.templates.TemplateResponse(request, template, full, status_code=status_code)
    for name, value in new_cookies.items():
        response.set_cookie(
            name, value, httponly=True, samesite="lax", secure=is_tls(request, portal.config)
        )
    response.headers["Cache-Control"] = "no-store"
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None) -> str:
    """Only same-site paths as redirect targets (no ``//host`` or ``https://...``)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value
