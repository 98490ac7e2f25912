"""E-mail: each member their statement PDF, the operators a summary of the run (SMTP)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from collector.statements import formatting
from collector.statements.config import SmtpConfig
from collector.statements.render import RenderedStatement

SUBJECTS = {
    "nl": "Uw afrekening van {month}",
    "en": "Your statement for {month}",
}
BODIES = {
    "nl": "Beste lid,\n\nIn de bijlage vindt u de afrekening van {month} voor lidnummer "
    "{member}.\n\nMet vriendelijke groet,\n{coop}\n",
    "en": "Dear member,\n\nAttached is your statement for {month}, member number "
    "{member}.\n\nKind regards,\n{coop}\n",
}


class MailError(RuntimeError):
    """The SMTP server could not be reached or refused a message."""


@dataclass
class MailReport:
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def statement_message(
    statement: RenderedStatement, *, period: str, sender: str, cooperative: str
) -> EmailMessage:
    """The member's e-mail with the PDF attached, in the statement's language."""
    if statement.email is None:
        raise MailError(f"member {statement.member_id} has no e-mail address")
    month = formatting.month_name(period, statement.language)
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = statement.email
    msg["Subject"] = SUBJECTS[statement.language].format(month=month)
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    msg.set_content(
        BODIES[statement.language].format(month=month, member=statement.member_id, coop=cooperative)
    )
    msg.add_attachment(
        statement.pdf_path.read_bytes(),
        maintype="application",
        subtype="pdf",
        filename=statement.pdf_path.name,
    )
    return msg


def summary_message(
    *, sender: str, operators: Sequence[str], subject: str, body: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(operators)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg.set_content(body)
    return msg


class Mailer:
    """Sends messages over one SMTP connection (STARTTLS and login when configured)."""

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config

    def send_all(
        self,
        messages: Sequence[tuple[str, EmailMessage]],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> MailReport:
        """Send ``(key, message)`` pairs; a refused message is reported under its key."""
        report = MailReport()
        cfg = self.config
        try:
            with smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout_s) as smtp:
                if cfg.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if cfg.username:
                    smtp.login(cfg.username, cfg.password() or "")
                for i, (key, msg) in enumerate(messages, start=1):
                    try:
                        smtp.send_message(msg)
                        report.sent.append(key)
                    except smtplib.SMTPException as exc:
                        report.failed[key] = str(exc)
                    if progress is not None:
                        progress(i, len(messages))
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"SMTP {cfg.host}:{cfg.port} failed: {exc}") from exc
        return report
