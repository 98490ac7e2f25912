"""Portal tables (member portal and operator API, issue 10), on the shared Base.

- ``portal_accounts``: a person who can log in; a member account belongs to one member
  (``member_id``), an operator account to none. The password is an argon2 hash, NULL until
  the invitation is accepted.
- ``portal_sessions``: server-side sessions; the cookie carries a random token, the table its
  SHA-256, so a leaked table cannot be replayed. Logout sets ``revoked_at``.
- ``portal_one_time_tokens``: invitation and password-reset links (hashed, single use, expire).
- ``portal_api_tokens``: operator API tokens (hashed; shown once when created).
- ``portal_login_attempts``: every login attempt, which is what the rate limit counts (so it
  holds across server instances and restarts).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from collector.store.models import ID, Base
from collector.store.types import UtcDateTime


class AccountRow(Base):
    __tablename__ = "portal_accounts"

    account_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: lower-cased e-mail address, the login name
    email: Mapped[str] = mapped_column(String(320), unique=True)
    #: member | operator
    role: Mapped[str] = mapped_column(String(16))
    member_id: Mapped[str | None] = mapped_column(
        ForeignKey("members.member_id"), index=True, unique=True
    )
    display_name: Mapped[str] = mapped_column(String(200))
    language: Mapped[str] = mapped_column(String(2))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    password_set_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class PortalSessionRow(Base):
    __tablename__ = "portal_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("portal_accounts.account_id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class OneTimeTokenRow(Base):
    __tablename__ = "portal_one_time_tokens"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("portal_accounts.account_id", ondelete="CASCADE"), index=True
    )
    #: invite | reset
    purpose: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ApiTokenRow(Base):
    __tablename__ = "portal_api_tokens"

    token_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class LoginAttemptRow(Base):
    __tablename__ = "portal_login_attempts"
    __table_args__ = (
        Index("ix_portal_login_attempts_email_at", "email", "at"),
        Index("ix_portal_login_attempts_remote_at", "remote", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320))
    remote: Mapped[str] = mapped_column(ID)
    at: Mapped[datetime] = mapped_column(UtcDateTime())
    success: Mapped[bool] = mapped_column(Boolean)
