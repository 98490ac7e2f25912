"""Login, logout, invitation links, password reset, language switch."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from collector.portal.accounts import AccountError, RateLimitedError
from collector.portal.i18n import LANGUAGES, translate
from collector.portal.mail import MailNotConfiguredError, send_mail
from collector.portal.web import (
    LANG_COOKIE,
    SESSION_COOKIE,
    check_csrf,
    current_session,
    is_tls,
    language_of,
    portal_of,
    redirect,
    render,
    require_login,
    safe_next,
    set_session_cookie,
)

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
FormStr = Annotated[str, Form()]
OptForm = Annotated[str | None, Form()]


def _remote(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _home(request: Request) -> str:
    ws = current_session(request)
    if ws is None:
        return "/login"
    return "/operator" if ws.account.is_operator else "/overview"


@router.get("/")
def home(request: Request) -> Response:
    return redirect(_home(request))


@router.get("/login")
def login_page(request: Request) -> Response:
    if current_session(request) is not None:
        return redirect(_home(request))
    return render(request, "login.html", {"error": None, "email": ""})


@router.post("/login")
def login(
    request: Request,
    email: FormStr = "",
    password: FormStr = "",
    csrf_token: OptForm = None,
) -> Response:
    portal = portal_of(request)
    check_csrf(request, csrf_token)
    lang = language_of(request)
    try:
        token, ws = portal.accounts.login(email, password, remote=_remote(request))
    except RateLimitedError:
        portal.count_reject("rate_limited")
        return render(
            request,
            "login.html",
            {"error": translate("login.limited", lang), "email": email},
            status_code=429,
        )
    except AccountError:
        portal.count_reject("login")
        return render(
            request,
            "login.html",
            {"error": translate("login.wrong", lang), "email": email},
            status_code=401,
        )
    response = redirect("/operator" if ws.account.is_operator else "/overview")
    set_session_cookie(response, request, token)
    return response


@router.post("/logout")
def logout(request: Request, csrf_token: OptForm = None) -> Response:
    ws = require_login(request)
    check_csrf(request, csrf_token)
    portal_of(request).accounts.logout(ws.token_sha256)
    response = redirect("/login")
    response.delete_cookie(
        SESSION_COOKIE,
        httponly=True,
        samesite="lax",
        secure=is_tls(request, portal_of(request).config),
    )
    return response


@router.get("/lang/{code}")
def switch_language(request: Request, code: str, next: str | None = None) -> Response:
    response = redirect(safe_next(next))
    if code in LANGUAGES:
        response.set_cookie(LANG_COOKIE, code, samesite="lax", max_age=365 * 24 * 3600)
    return response


def _password_form(request: Request, purpose: str, token: str, error: str | None) -> HTMLResponse:
    return render(
        request,
        "set_password.html",
        {"purpose": purpose, "token": token, "error": error},
        status_code=200 if error is None else 400,
    )


def _link_page(request: Request, purpose: str, token: str) -> Response:
    try:
        portal_of(request).accounts.link_account(token, purpose)
    except AccountError:
        portal_of(request).count_reject("link")
        return render(
            request,
            "message.html",
            {"message": translate("link.invalid", language_of(request))},
            status_code=404,
        )
    return _password_form(request, purpose, token, None)


def _link_submit(
    request: Request, purpose: str, token: str, password: str, repeat: str, csrf: str | None
) -> Response:
    check_csrf(request, csrf)
    lang = language_of(request)
    if password != repeat:
        return _password_form(request, purpose, token, translate("password.mismatch", lang))
    accounts = portal_of(request).accounts
    try:
        account = accounts.link_account(token, purpose)
    except AccountError:
        return render(
            request, "message.html", {"message": translate("link.invalid", lang)}, status_code=404
        )
    try:
        accounts.use_link(token, purpose, password)
    except AccountError:
        return _password_form(request, purpose, token, translate("password.too_short", lang))
    session_token, ws = accounts.open_session(account.account_id)
    response = redirect("/operator" if ws.account.is_operator else "/overview")
    set_session_cookie(response, request, session_token)
    return response


@router.get("/invite/{token}")
def invite_page(request: Request, token: str) -> Response:
    return _link_page(request, "invite", token)


@router.post("/invite/{token}")
def invite_submit(
    request: Request,
    token: str,
    password: FormStr = "",
    repeat: FormStr = "",
    csrf_token: OptForm = None,
) -> Response:
    return _link_submit(request, "invite", token, password, repeat, csrf_token)


@router.get("/reset")
def reset_page(request: Request) -> Response:
    return render(request, "reset.html", {"sent": False})


@router.post("/reset")
def reset_request(request: Request, email: FormStr = "", csrf_token: OptForm = None) -> Response:
    check_csrf(request, csrf_token)
    portal = portal_of(request)
    account = portal.accounts.by_email(email)
    allowed = portal.accounts.reset_allowed(email, remote=_remote(request))
    if not allowed:
        portal.count_reject("reset_limited")
    if allowed and account is not None and account.active and account.has_password:
        token = portal.accounts.issue_link(account.account_id, "reset")
        link = f"{portal.config.base_url.rstrip('/')}/reset/{token}"
        lang = account.language
        try:
            send_mail(
                portal.config,
                account.email,
                translate("reset.mail_subject", lang),
                translate("reset.mail_body", lang, name=account.display_name, link=link),
            )
        except (MailNotConfiguredError, OSError) as exc:
            log.error("password reset mail to account %s failed: %s", account.account_id, exc)
    # The same answer whether or not the address is known.
    return render(request, "reset.html", {"sent": True})


@router.get("/reset/{token}")
def reset_link_page(request: Request, token: str) -> Response:
    return _link_page(request, "reset", token)


@router.post("/reset/{token}")
def reset_submit(
    request: Request,
    token: str,
    password: FormStr = "",
    repeat: FormStr = "",
    csrf_token: OptForm = None,
) -> Response:
    return _link_submit(request, "reset", token, password, repeat, csrf_token)
