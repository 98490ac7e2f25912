"""Accounts, sessions, one-time links, API tokens and the login rate limit (store side).

Secrets never reach the database in the clear: session cookies, invitation and reset links
and API tokens are random 256-bit tokens of which only the SHA-256 is stored; passwords are
argon2id hashes (argon2-cffi's defaults, re-hashed on login when those change).
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from collector.store.models import MemberRow
from collector.store.portal_models import (
    AccountRow,
    ApiTokenRow,
    LoginAttemptRow,
    OneTimeTokenRow,
    PortalSessionRow,
)

ROLES = ("member", "operator")
MIN_PASSWORD_LENGTH = 10
SESSION_LIFETIME = timedelta(days=14)
INVITE_LIFETIME = timedelta(days=14)
RESET_LIFETIME = timedelta(hours=2)
#: Failed logins allowed per e-mail address and per remote address in the window.
MAX_FAILURES_PER_EMAIL = 5
MAX_FAILURES_PER_REMOTE = 30
FAILURE_WINDOW = timedelta(minutes=15)
#: Password-reset e-mails per address per hour (more requests are answered but not sent).
MAX_RESETS_PER_HOUR = 3

_hasher = PasswordHasher()


class AccountError(ValueError):
    """A request about accounts that cannot be honoured; the message says why."""


class RateLimitedError(AccountError):
    """Too many failed logins; try again later."""


def token_sha256(token: str) -> str:
    """The stored form of a secret token."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random URL-safe token (256 bits)."""
    return secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(UTC)


def check_password_strength(password: str, email: str) -> None:
    """Refuse passwords that are too short or equal to the login name."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1000:
        raise AccountError("password too long: at most 1000 characters")
    if password.strip().lower() == email.strip().lower():
        raise AccountError("password must differ from the e-mail address")


@dataclass(frozen=True)
class Account:
    """A detached view of an account."""

    account_id: int
    email: str
    role: str
    member_id: str | None
    display_name: str
    language: str
    active: bool
    has_password: bool

    @classmethod
    def from_row(cls, row: AccountRow) -> Account:
        return cls(
            account_id=row.account_id,
            email=row.email,
            role=row.role,
            member_id=row.member_id,
            display_name=row.display_name,
            language=row.language,
            active=row.active,
            has_password=row.password_hash is not None,
        )

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"


@dataclass(frozen=True)
class WebSession:
    """A valid, unexpired, unrevoked session and its account."""

    token_sha256: str
    csrf_token: str
    account: Account


class AccountService:
    """Everything the portal does with accounts, on the relational store."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # --- accounts ------------------------------------------------------------------------

    def create_member_account(self, member_id: str, *, now: datetime | None = None) -> Account:
        """The account of a registry member (created once, from the member's e-mail)."""
        now = now or _now()
        with self._sessions.begin() as session:
            existing = session.scalar(select(AccountRow).where(AccountRow.member_id == member_id))
            if existing is not None:
                return Account.from_row(existing)
            member = session.get(MemberRow, member_id)
            if member is None:
                raise AccountError(f"no member {member_id!r} in the registry")
            email = member.email.strip().lower()
            clash = session.scalar(select(AccountRow).where(AccountRow.email == email))
            if clash is not None:
                raise AccountError(
                    f"e-mail {email} already belongs to account {clash.account_id}; "
                    "give the member their own address in the registry"
                )
            row = AccountRow(
                email=email,
                role="member",
                member_id=member_id,
                display_name=member.name,
                language="en" if member.language == "en" else "nl",
                password_hash=None,
                active=True,
                created_at=now,
            )
            session.add(row)
            session.flush()
            return Account.from_row(row)

    def create_operator_account(
        self, email: str, name: str, *, now: datetime | None = None
    ) -> Account:
        """An operator account (no member)."""
        email = email.strip().lower()
        if "@" not in email:
            raise AccountError(f"not an e-mail address: {email!r}")
        with self._sessions.begin() as session:
            existing = session.scalar(select(AccountRow).where(AccountRow.email == email))
            if existing is not None:
                if existing.role != "operator":
                    raise AccountError(f"{email} is a member account")
                return Account.from_row(existing)
            row = AccountRow(
                email=email,
                role="operator",
                member_id=None,
                display_name=name,
                language="nl",
                password_hash=None,
                active=True,
                created_at=now or _now(),
            )
            session.add(row)
            session.flush()
            return Account.from_row(row)

    def get(self, account_id: int) -> Account | None:
        with self._sessions() as session:
            row = session.get(AccountRow, account_id)
            return None if row is None else Account.from_row(row)

    def by_email(self, email: str) -> Account | None:
        with self._sessions() as session:
            row = session.scalar(
                select(AccountRow).where(AccountRow.email == email.strip().lower())
            )
            return None if row is None else Account.from_row(row)

    def list(self) -> list[Account]:
        with self._sessions() as session:
            rows = session.scalars(select(AccountRow).order_by(AccountRow.account_id))
            return [Account.from_row(r) for r in rows]

    def set_active(self, account_id: int, active: bool, *, now: datetime | None = None) -> None:
        """Deactivate (or reactivate) an account; deactivation ends its sessions."""
        now = now or _now()
        with self._sessions.begin() as session:
            row = session.get(AccountRow, account_id)
            if row is None:
                raise AccountError(f"no account {account_id}")
            row.active = active
            if not active:
                self._revoke_all(session, account_id, now)

    def set_language(self, account_id: int, language: str) -> None:
        if language not in ("nl", "en"):
            raise AccountError("language must be nl or en")
        with self._sessions.begin() as session:
            row = session.get(AccountRow, account_id)
            if row is not None:
                row.language = language

    # --- one-time links ------------------------------------------------------------------

    def issue_link(self, account_id: int, purpose: str, *, now: datetime | None = None) -> str:
        """A new invitation or reset token (returned once, stored hashed)."""
        if purpose not in ("invite", "reset"):
            raise AccountError(f"unknown link purpose {purpose!r}")
        now = now or _now()
        token = new_token()
        lifetime = INVITE_LIFETIME if purpose == "invite" else RESET_LIFETIME
        with self._sessions.begin() as session:
            row = session.get(AccountRow, account_id)
            if row is None:
                raise AccountError(f"no account {account_id}")
            if not row.active:
                raise AccountError(f"account {account_id} is deactivated")
            session.add(
                OneTimeTokenRow(
                    token_sha256=token_sha256(token),
                    account_id=account_id,
                    purpose=purpose,
                    created_at=now,
                    expires_at=now + lifetime,
                    used_at=None,
                )
            )
        return token

    def link_account(self, token: str, purpose: str, *, now: datetime | None = None) -> Account:
        """The account an unused, unexpired link belongs to; raises :class:`AccountError`."""
        now = now or _now()
        with self._sessions() as session:
            row = session.get(OneTimeTokenRow, token_sha256(token))
            self._check_link(row, purpose, now)
            assert row is not None
            account = session.get(AccountRow, row.account_id)
            assert account is not None
            return Account.from_row(account)

    @staticmethod
    def _check_link(row: OneTimeTokenRow | None, purpose: str, now: datetime) -> None:
        if row is None or row.purpose != purpose:
            raise AccountError("this link is not valid; ask the cooperative for a new one")
        if row.used_at is not None:
            raise AccountError("this link has been used already; ask for a new one")
        if row.expires_at <= now:
            raise AccountError("this link has expired; ask for a new one")

    def use_link(
        self, token: str, purpose: str, password: str, *, now: datetime | None = None
    ) -> Account:
        """Set the password through a link; the link is spent and old sessions end."""
        now = now or _now()
        with self._sessions.begin() as session:
            link = session.get(OneTimeTokenRow, token_sha256(token), with_for_update=True)
            self._check_link(link, purpose, now)
            assert link is not None
            row = session.get(AccountRow, link.account_id)
            assert row is not None
            if not row.active:
                raise AccountError("this account is deactivated")
            check_password_strength(password, row.email)
            link.used_at = now
            row.password_hash = _hasher.hash(password)
            row.password_set_at = now
            self._revoke_all(session, row.account_id, now)
            return Account.from_row(row)

    def reset_allowed(self, email: str, *, remote: str, now: datetime | None = None) -> bool:
        """Record a reset request; False when the address had too many in the last hour."""
        now = now or _now()
        email = "reset:" + email.strip().lower()[:300]
        with self._sessions.begin() as session:
            recent = session.scalar(
                select(func.count()).where(
                    LoginAttemptRow.email == email, LoginAttemptRow.at >= now - timedelta(hours=1)
                )
            )
            session.add(LoginAttemptRow(email=email, remote=remote[:64], at=now, success=False))
        return int(recent or 0) < MAX_RESETS_PER_HOUR

    # --- login and sessions --------------------------------------------------------------

    def failures(
        self, session: Session, *, email: str, remote: str, now: datetime
    ) -> tuple[int, int]:
        since = now - FAILURE_WINDOW
        by_email = session.scalar(
            select(func.count()).where(
                LoginAttemptRow.email == email,
                LoginAttemptRow.at >= since,
                LoginAttemptRow.success.is_(False),
            )
        )
        by_remote = session.scalar(
            select(func.count()).where(
                LoginAttemptRow.remote == remote,
                LoginAttemptRow.at >= since,
                LoginAttemptRow.success.is_(False),
            )
        )
        return int(by_email or 0), int(by_remote or 0)

    def login(
        self, email: str, password: str, *, remote: str, now: datetime | None = None
    ) -> tuple[str, WebSession]:
        """Check a password and open a session; returns the cookie token and the session.

        Raises :class:`RateLimitedError` after too many recent failures (checked before the
        password, so a correct guess is refused too) and :class:`AccountError` otherwise, with
        the same message for an unknown address and a wrong password.
        """
        now = now or _now()
        email = email.strip().lower()[:320]
        remote = remote[:64]
        with self._sessions() as session:
            by_email, by_remote = self.failures(session, email=email, remote=remote, now=now)
        if by_email >= MAX_FAILURES_PER_EMAIL or by_remote >= MAX_FAILURES_PER_REMOTE:
            self._record_attempt(email, remote, now, success=False)
            raise RateLimitedError("too many failed logins; wait 15 minutes or reset your password")
        with self._sessions() as session:
            row = session.scalar(select(AccountRow).where(AccountRow.email == email))
            ok = False
            if row is not None and row.password_hash is not None and row.active:
                try:
                    ok = _hasher.verify(row.password_hash, password)
                except (VerificationError, InvalidHashError):
                    ok = False
            else:
                # Spend the same time as a real check, so timing does not reveal accounts.
                with contextlib.suppress(VerificationError):
                    _hasher.verify(_DUMMY_HASH, password)
        self._record_attempt(email, remote, now, success=ok)
        if not ok or row is None:
            raise AccountError("wrong e-mail address or password")
        if _hasher.check_needs_rehash(row.password_hash or ""):
            with self._sessions.begin() as session:
                fresh = session.get(AccountRow, row.account_id)
                if fresh is not None:
                    fresh.password_hash = _hasher.hash(password)
        return self.open_session(row.account_id, now=now)

    def _record_attempt(self, email: str, remote: str, now: datetime, *, success: bool) -> None:
        with self._sessions.begin() as session:
            session.add(LoginAttemptRow(email=email, remote=remote, at=now, success=success))

    def open_session(
        self, account_id: int, *, now: datetime | None = None
    ) -> tuple[str, WebSession]:
        now = now or _now()
        token = new_token()
        csrf = secrets.token_urlsafe(24)
        with self._sessions.begin() as session:
            row = session.get(AccountRow, account_id)
            if row is None or not row.active:
                raise AccountError("account missing or deactivated")
            session.add(
                PortalSessionRow(
                    token_sha256=token_sha256(token),
                    account_id=account_id,
                    csrf_token=csrf,
                    created_at=now,
                    expires_at=now + SESSION_LIFETIME,
                    revoked_at=None,
                )
            )
            account = Account.from_row(row)
        return token, WebSession(token_sha256(token), csrf, account)

    def session_for(self, token: str, *, now: datetime | None = None) -> WebSession | None:
        """The live session of a cookie token, or None (unknown, expired, revoked, inactive)."""
        if not token or len(token) > 100:
            return None
        now = now or _now()
        digest = token_sha256(token)
        with self._sessions() as session:
            row = session.get(PortalSessionRow, digest)
            if row is None or row.revoked_at is not None or row.expires_at <= now:
                return None
            account = session.get(AccountRow, row.account_id)
            if account is None or not account.active:
                return None
            return WebSession(digest, row.csrf_token, Account.from_row(account))

    def logout(self, token_digest: str, *, now: datetime | None = None) -> None:
        """End a session on the server: its cookie is worthless afterwards."""
        with self._sessions.begin() as session:
            row = session.get(PortalSessionRow, token_digest)
            if row is not None and row.revoked_at is None:
                row.revoked_at = now or _now()

    @staticmethod
    def _revoke_all(session: Session, account_id: int, now: datetime) -> None:
        for row in session.scalars(
            select(PortalSessionRow).where(
                PortalSessionRow.account_id == account_id, PortalSessionRow.revoked_at.is_(None)
            )
        ):
            row.revoked_at = now

    # --- API tokens ----------------------------------------------------------------------

    def create_api_token(self, name: str, *, now: datetime | None = None) -> tuple[int, str]:
        """A new operator API token; the token is returned once and stored hashed."""
        name = name.strip()
        if not name:
            raise AccountError("give the token a name (who or what uses it)")
        token = "zw_" + new_token()
        with self._sessions.begin() as session:
            row = ApiTokenRow(
                name=name[:200],
                token_sha256=token_sha256(token),
                created_at=now or _now(),
                revoked_at=None,
            )
            session.add(row)
            session.flush()
            return row.token_id, token

    def api_token_valid(self, token: str) -> bool:
        if not token or len(token) > 100:
            return False
        with self._sessions() as session:
            row = session.scalar(
                select(ApiTokenRow).where(ApiTokenRow.token_sha256 == token_sha256(token))
            )
            return row is not None and row.revoked_at is None

    def revoke_api_token(self, token_id: int, *, now: datetime | None = None) -> None:
        with self._sessions.begin() as session:
            row = session.get(ApiTokenRow, token_id)
            if row is None:
                raise AccountError(f"no API token {token_id}")
            row.revoked_at = row.revoked_at or now or _now()


_DUMMY_HASH = _hasher.hash("not-a-real-password-" + secrets.token_hex(8))
