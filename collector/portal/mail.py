"""Sending the portal's e-mails (invitations, password resets) over SMTP."""

from __future__ import annotations

import smtplib
from email.message import EmailMessage

from collector.portal.config import PortalConfig


class MailNotConfiguredError(RuntimeError):
    """No SMTP server configured (set ZONNEWIJK_SMTP_HOST)."""


def send_mail(config: PortalConfig, to: str, subject: str, body: str) -> None:
    """Send a plain-text e-mail; raises on SMTP errors so the caller can report them."""
    if not config.smtp_host:
        raise MailNotConfiguredError("no SMTP server configured: set ZONNEWIJK_SMTP_HOST")
    message = EmailMessage()
    message["From"] = config.mail_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    with smtplib.SMTP(config.smtp_host, config.smtp_port, timeout=10) as smtp:
        smtp.send_message(message)
