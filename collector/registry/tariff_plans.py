"""Tariff plans as registry data: a plan's versions, prices, guarantee, indexation and VAT.

The fleet file and the store name each contract's plan; the settlement prices a period by it
(:mod:`collector.settlement.tariffs`). A plan has versions, each valid from a date until the
next one starts; all amounts are ``Decimal`` and excl. VAT. ``config/tariffs/*.yaml`` holds the
cooperative's plans; :func:`load_tariff_plans` reads and checks such a file.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ZERO = Decimal(0)

NonNegativeDecimal = Annotated[Decimal, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[Decimal, Field(ge=0, le=1, allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Guarantee(_Strict):
    """A yield guarantee: guaranteed energy per contract year and the shortfall compensation.

    Exactly one of ``kwh_per_year`` (per site) and ``kwh_per_kwp_per_year`` (scaled by the
    site's peak power) is given.
    """

    kwh_per_year: NonNegativeDecimal | None = None
    kwh_per_kwp_per_year: NonNegativeDecimal | None = None
    compensation_eur_per_kwh: NonNegativeDecimal

    @model_validator(mode="after")
    def _exactly_one_amount(self) -> Self:
        if (self.kwh_per_year is None) == (self.kwh_per_kwp_per_year is None):
            raise ValueError("give exactly one of kwh_per_year and kwh_per_kwp_per_year")
        return self

    def guaranteed_kwh(self, kwp: Decimal) -> Decimal:
        """Guaranteed energy of one full contract year.

        Parameters
        ----------
        kwp : Decimal
            The site's peak power [kWp].
        """
        if self.kwh_per_year is not None:
            return self.kwh_per_year
        assert self.kwh_per_kwp_per_year is not None
        return self.kwh_per_kwp_per_year * kwp


class TariffVersion(_Strict):
    """The prices of a plan from ``valid_from`` until the next version starts (all excl. VAT)."""

    valid_from: date
    monthly_fee_eur: NonNegativeDecimal = ZERO
    price_eur_per_kwh: NonNegativeDecimal = ZERO
    guarantee: Guarantee | None = None
    indexation_per_year: Annotated[Decimal, Field(ge=-1, le=1, allow_inf_nan=False)] = Field(
        default=ZERO,
        description="fraction added to every price on each anniversary of valid_from, compounding",
    )
    vat_rate: Fraction
    note: str = ""


class TariffPlan(_Strict):
    """A tariff plan: an id and its versions in order of ``valid_from``."""

    plan_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
    name: str = ""
    versions: Annotated[list[TariffVersion], Field(min_length=1)]

    @model_validator(mode="after")
    def _versions_in_order(self) -> Self:
        for before, after in zip(self.versions, self.versions[1:], strict=False):
            if after.valid_from <= before.valid_from:
                raise ValueError(
                    f"versions must be in strictly increasing valid_from order: "
                    f"{after.valid_from} follows {before.valid_from}"
                )
        return self

    def version_at(self, day: date) -> TariffVersion:
        """The version in force on ``day``; :class:`TariffError` before the first version."""
        found: TariffVersion | None = None
        for version in self.versions:
            if version.valid_from <= day:
                found = version
            else:
                break
        if found is None:
            raise TariffError(
                f"plan {self.plan_id!r} has no version in force on {day} "
                f"(first version starts {self.versions[0].valid_from})"
            )
        return found

    def version_label(self, version: TariffVersion) -> str:
        """A stable name of one version, ``plan_id@valid_from``."""
        return f"{self.plan_id}@{version.valid_from.isoformat()}"


class TariffPlanFile(_Strict):
    """The ``config/tariffs/*.yaml`` file: a list of plans."""

    plans: list[TariffPlan]

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for plan in self.plans:
            if plan.plan_id in seen:
                raise ValueError(f"plan id {plan.plan_id!r} is declared twice")
            seen.add(plan.plan_id)
        return self


class TariffError(ValueError):
    """A tariff plan cannot be used for what was asked; the message says why."""


def load_tariff_plans(path: Path) -> dict[str, TariffPlan]:
    """Read and validate a tariff plan file (YAML) into plans by id.

    Raises :class:`TariffError` naming the file and the field on any problem. Prices may be
    written as strings (``"0.1234"``) or numbers; numbers are read via their decimal text.
    """
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TariffError(f"{path}: cannot read tariff plans: {exc}") from exc
    return parse_tariff_plans(data, source=str(path))


def parse_tariff_plans(data: Any, *, source: str = "<data>") -> dict[str, TariffPlan]:
    """Validate already-parsed tariff plan data (``{"plans": [...]}``) into plans by id."""
    try:
        parsed = TariffPlanFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}"
            for err in exc.errors()
        )
        raise TariffError(f"{source}: invalid tariff plans: {problems}") from exc
    return {plan.plan_id: plan for plan in parsed.plans}
