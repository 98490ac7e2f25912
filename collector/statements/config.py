"""Settings of statements, exports, payments and the monthly job: ``config/statements.yaml``.

Ledger accounts per line kind, SEPA options, SMTP, and the day of the month the job runs.
Secrets never live in the file: the SMTP password comes from ``ZONNEWIJK_SMTP_PASSWORD``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "config" / "statements.yaml"


class StatementsConfigError(ValueError):
    """The statements configuration is missing or wrong; the message says where."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LedgerAccounts(_Model):
    """Ledger account (grootboekrekening) per statement line kind, and the VAT account."""

    monthly_fee: str = Field(min_length=1)
    energy: str = Field(min_length=1)
    energy_correction: str = Field(min_length=1)
    guarantee_compensation: str = Field(min_length=1)
    vat: str = Field(min_length=1)


class SepaConfig(_Model):
    """SEPA batch options; the creditor's name, IBAN and creditor id come from the registry."""

    direct_debit_schema: Literal["pain.008.001.02", "pain.008.001.08"] = "pain.008.001.02"
    credit_transfer_schema: Literal["pain.001.001.03", "pain.001.001.09"] = "pain.001.001.03"
    creditor_bic: str | None = Field(
        default=None, description="the cooperative's BIC; derived from its IBAN when absent"
    )
    #: Business days are not computed: collection is this many calendar days after the run.
    collection_delay_days: Annotated[int, Field(ge=2, le=60)] = 7
    sequence_type: Literal["FRST", "RCUR", "OOFF", "FNAL"] = "RCUR"


class SmtpConfig(_Model):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 25
    starttls: bool = False
    username: str | None = None
    sender: EmailStr = "administratie@zonnewijk.example"
    operators: list[EmailStr] = Field(default_factory=list)
    timeout_s: Annotated[float, Field(gt=0)] = 30.0

    def password(self) -> str | None:
        """The SMTP password from ``ZONNEWIJK_SMTP_PASSWORD`` (never from the file)."""
        return os.environ.get("ZONNEWIJK_SMTP_PASSWORD")


class ScheduleConfig(_Model):
    """When the monthly job runs: on ``day_of_month`` of the month after, at ``hour`` local."""

    day_of_month: Annotated[int, Field(ge=1, le=28)] = 5
    hour: Annotated[int, Field(ge=0, le=23)] = 6
    correct_months: Annotated[int, Field(ge=0, le=24)] = 3


class StatementsConfig(_Model):
    language: Literal["nl", "en"] = "nl"
    ledger_accounts: LedgerAccounts
    sepa: SepaConfig = SepaConfig()
    smtp: SmtpConfig = SmtpConfig()
    schedule: ScheduleConfig = ScheduleConfig()


def load_config(path: Path | None = None) -> StatementsConfig:
    """Read and check the configuration (default ``config/statements.yaml``)."""
    path = path or Path(os.environ.get("ZONNEWIJK_STATEMENTS_CONFIG", DEFAULT_CONFIG))
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise StatementsConfigError(f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise StatementsConfigError(f"{path} is not valid YAML: {exc}") from None
    try:
        return StatementsConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise StatementsConfigError(f"{path}: {problems}") from None
