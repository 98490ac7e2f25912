"""Password reset by e-mail through a real local SMTP server (aiosmtpd), and invitations."""

from __future__ import annotations

import re
import time
from dataclasses import replace
from email import message_from_bytes
from email.message import Message
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from collector.devtools.services import free_port
from collector.portal.app import create_app

from .conftest import PortalEnv, csrf_from, serve


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _wait(inbox: Inbox, n: int) -> None:
    deadline = time.monotonic() + 10
    while len(inbox.messages) < n:
        assert time.monotonic() < deadline, "no e-mail arrived"
        time.sleep(0.05)


def test_reset_by_email(portal_env: PortalEnv) -> None:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        config = replace(portal_env.config, smtp_host="127.0.0.1", smtp_port=controller.port)
        account = portal_env.accounts.create_member_account("M0005")
        portal_env.accounts.use_link(
            portal_env.accounts.issue_link(account.account_id, "invite"),
            "invite",
            "oud-wachtwoord-1",
        )
        for url in serve(create_app(config)):
            client = httpx.Client(base_url=url)
            token = csrf_from(client.get("/reset").text)
            # Unknown addresses get the same answer and no e-mail.
            r = client.post("/reset", data={"email": "nobody@example.org", "csrf_token": token})
            assert r.status_code == 200
            r = client.post("/reset", data={"email": account.email, "csrf_token": token})
            assert r.status_code == 200 and r.text.count("onderweg") == 1
            _wait(inbox, 1)
            assert len(inbox.messages) == 1
            mail = inbox.messages[0]
            assert mail["To"] == account.email
            body = mail.get_payload(decode=True).decode()  # type: ignore[union-attr]
            m = re.search(r"http://portal\.test(/reset/[A-Za-z0-9_-]+)", body)
            assert m, body
            path = m.group(1)
            page = client.get(path)
            assert page.status_code == 200
            new = "nieuw-wachtwoord-2"
            r = client.post(
                path, data={"password": new, "repeat": new, "csrf_token": csrf_from(page.text)}
            )
            assert r.status_code == 303 and r.headers["location"] == "/overview"
            # The old password no longer works, the new one does, the link is spent.
            fresh = httpx.Client(base_url=url)
            tok = csrf_from(fresh.get("/login").text)
            old = fresh.post(
                "/login",
                data={"email": account.email, "password": "oud-wachtwoord-1", "csrf_token": tok},
            )
            assert old.status_code == 401
            ok = fresh.post(
                "/login", data={"email": account.email, "password": new, "csrf_token": tok}
            )
            assert ok.status_code == 303
            assert fresh.get(path).status_code == 404
            # At most three reset e-mails per address and hour; the answer stays the same.
            anon = httpx.Client(base_url=url)
            anon_token = csrf_from(anon.get("/reset").text)
            for _ in range(4):
                r = anon.post("/reset", data={"email": account.email, "csrf_token": anon_token})
                assert r.status_code == 200 and "onderweg" in r.text
            _wait(inbox, 3)
            time.sleep(1.0)
            assert len(inbox.messages) == 3
    finally:
        controller.stop()


def test_operator_invites_by_email(portal_env: PortalEnv) -> None:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        config = replace(portal_env.config, smtp_host="127.0.0.1", smtp_port=controller.port)
        for url in serve(create_app(config)):
            from .conftest import PASSWORD_OP

            op = httpx.Client(base_url=url)
            tok = csrf_from(op.get("/login").text)
            op.post(
                "/login",
                data={"email": portal_env.email_op, "password": PASSWORD_OP, "csrf_token": tok},
            )
            page = op.get("/operator/members")
            assert page.status_code == 200
            r = op.post("/operator/members/M0006/invite", data={"csrf_token": csrf_from(page.text)})
            assert r.status_code == 200 and "m0006@example.org" in r.text
            _wait(inbox, 1)
            assert "/invite/" in inbox.messages[0].get_payload(decode=True).decode()  # type: ignore[union-attr]
    finally:
        controller.stop()
