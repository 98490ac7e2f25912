"""The fleet file's models: cooperative, members, sites, devices, contracts, tariff plans.

Pydantic models, unknown keys rejected. Conventions:

- Dates (``start_date``, ``end_date``, ``installed_on``, ``removed_on``, ``valid_from``) are
  Europe/Amsterdam calendar days and **inclusive**: a contract with ``end_date: 2026-03-15``
  covers 15 March; its successor starts on ``2026-03-16``.
- Instants (a replacement's or a counter reset's ``at``) are timestamps with an explicit offset,
  stored as UTC.
- Money and prices are :class:`decimal.Decimal`; YAML numbers are read as exact decimals.
- Tariff plans are registry data (:mod:`collector.registry.tariff_plans`).

Reading, checking and writing the file: :mod:`collector.registry.fleet_file`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    PrivateAttr,
    model_validator,
)
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException

from collector.registry.tariff_plans import TariffPlan
from zonnewijk_wire import ID_PATTERN

FLEET_FILE_VERSION: Literal[1] = 1
_AMS = ZoneInfo("Europe/Amsterdam")

#: Inverter families the gateway can read (SunSpec discovered, the others from config/devices).
DeviceFamily = Literal["sunspec-int", "sunspec-float", "huawei", "sungrow", "growatt"]
DEVICE_FAMILIES: tuple[str, ...] = ("sunspec-int", "sunspec-float", "huawei", "sungrow", "growatt")

Identifier = Annotated[
    str,
    Field(
        pattern=ID_PATTERN,
        description="letters, digits, '_', '.', '-'; starts with a letter or digit; ≤ 64 chars",
    ),
]
NonEmpty = Annotated[str, Field(min_length=1, max_length=200)]


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp needs an explicit offset, e.g. 2026-03-14T11:20:00Z")
    return value.astimezone(UTC)


def _iban(value: str) -> str:
    try:
        return str(IBAN(value).compact)
    except SchwiftyException as exc:
        raise ValueError(f"not a valid IBAN ({exc})") from None


def _bic(value: str) -> str:
    try:
        return str(BIC(value).compact)
    except SchwiftyException as exc:
        raise ValueError(f"not a valid BIC ({exc})") from None


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
Iban = Annotated[str, BeforeValidator(_strip), AfterValidator(_iban)]
Bic = Annotated[str, BeforeValidator(_strip), AfterValidator(_bic)]
Kwp = Annotated[Decimal, Field(gt=0, le=1000, max_digits=10, decimal_places=4)]
EnergyWh = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=3)]

_NL_POSTCODE = re.compile(r"^[1-9][0-9]{3} ?[A-Z]{2}$")


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, str_strip_whitespace=True, coerce_numbers_to_str=True
    )


class Address(_Model):
    """A postal address."""

    street: NonEmpty = Field(description="street and house number, e.g. 'Dieze 12a'")
    postal_code: NonEmpty
    city: NonEmpty
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "NL"

    @model_validator(mode="after")
    def _dutch_postcode(self) -> Self:
        if self.country == "NL" and not _NL_POSTCODE.match(self.postal_code):
            raise ValueError(
                f"postal_code {self.postal_code!r} is not a Dutch postcode like '8011 AB'"
            )
        return self


class Cooperative(_Model):
    """The cooperative itself (the lessor on every contract)."""

    name: NonEmpty
    address: Address
    email: EmailStr | None = None
    iban: Iban | None = None
    creditor_id: NonEmpty | None = Field(default=None, description="SEPA creditor identifier")


class Member(_Model):
    """A member (resident) who rents panels."""

    member_id: Identifier
    name: NonEmpty
    address: Address
    email: EmailStr
    language: Literal["nl", "en"] = "nl"
    iban: Iban | None = None
    bic: Bic | None = None
    mandate_id: Annotated[str, Field(min_length=1, max_length=35)] | None = Field(
        default=None, description="SEPA direct debit mandate reference"
    )
    mandate_date: date | None = Field(default=None, description="date the mandate was signed")

    @model_validator(mode="after")
    def _mandate(self) -> Self:
        if (self.mandate_id is None) != (self.mandate_date is None):
            raise ValueError("mandate_id and mandate_date go together: give both or neither")
        if self.mandate_id is not None and self.iban is None:
            raise ValueError("a direct debit mandate needs the member's iban")
        return self


class Site(_Model):
    """A roof with panels; one gateway reads its inverter(s)."""

    site_id: Identifier
    address: Address
    lat: Annotated[float, Field(ge=-90, le=90, description="latitude [deg]")]
    lon: Annotated[float, Field(ge=-180, le=180, description="longitude [deg]")]
    kwp: Kwp = Field(description="installed peak power of the panels [kWp]")
    tilt_deg: Annotated[float, Field(ge=0, le=90, description="panel tilt from horizontal [deg]")]
    azimuth_deg: Annotated[
        float, Field(ge=0, lt=360, description="panel azimuth, 0 north, 90 east, 180 south [deg]")
    ]
    gateway_id: Identifier


class CounterReset(_Model):
    """A known jump of a device's lifetime energy counter (reset, firmware swap)."""

    at: UtcDatetime = Field(description="when the counter jumped [UTC]")
    last_energy_wh: EnergyWh = Field(description="the counter's last reading before [Wh]")
    first_energy_wh: EnergyWh = Field(description="the counter's first reading after [Wh]")
    reason: NonEmpty | None = None


class Replacement(_Model):
    """This device replaced an older one: the old counter's last and the new one's first."""

    device_id: Identifier = Field(description="the device that was replaced")
    at: UtcDatetime = Field(description="when the new device took over [UTC]")
    old_last_energy_wh: EnergyWh = Field(description="old device's last counter reading [Wh]")
    new_first_energy_wh: EnergyWh = Field(description="new device's first counter reading [Wh]")
    reason: NonEmpty | None = None


class Device(_Model):
    """An inverter: the meter whose lifetime counter measures a site's production."""

    device_id: Identifier
    site_id: Identifier
    gateway_id: Identifier | None = Field(
        default=None, description="defaults to the site's gateway"
    )
    family: DeviceFamily
    model: NonEmpty | None = Field(default=None, description="vendor model name, free text")
    ac_rating_w: Annotated[int, Field(gt=0, le=1_000_000, description="AC rating [W]")]
    mppt_count: Annotated[int, Field(ge=1, le=32)] = 1
    kwp: Kwp = Field(description="panels connected to this inverter [kWp]")
    installed_on: date
    removed_on: date | None = Field(default=None, description="last day in service (inclusive)")
    replaces: Replacement | None = None
    replaced_by: Identifier | None = Field(
        default=None, description="the device that replaced this one (must say `replaces`)"
    )
    counter_resets: tuple[CounterReset, ...] = ()

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.removed_on is not None and self.removed_on < self.installed_on:
            raise ValueError(
                f"removed_on {self.removed_on} is before installed_on {self.installed_on}"
            )
        if self.replaces is not None and self.replaces.device_id == self.device_id:
            raise ValueError("a device cannot replace itself")
        if self.replaced_by is not None and self.removed_on is None:
            raise ValueError("a replaced device needs removed_on (its last day in service)")
        ats = [r.at for r in self.counter_resets]
        if ats != sorted(ats) or len(set(ats)) != len(ats):
            raise ValueError("counter_resets must be in time order without duplicates")
        return self

    def in_service_on(self, day: date) -> bool:
        """Whether the device measured the site on a calendar day."""
        return self.installed_on <= day and (self.removed_on is None or day <= self.removed_on)


class Contract(_Model):
    """A member renting a site's panels from start_date to end_date (inclusive)."""

    contract_id: Identifier
    member_id: Identifier
    site_id: Identifier
    start_date: date
    end_date: date | None = Field(default=None, description="last day (inclusive); open if none")
    tariff_plan_id: Identifier
    year_anchor: date | None = Field(
        default=None,
        description="contract years start on this date's day and month; default start_date",
    )

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.end_date is not None and self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self

    @property
    def contract_year_anchor(self) -> date:
        """The date from which contract years are counted."""
        return self.year_anchor or self.start_date

    @property
    def end_exclusive(self) -> date | None:
        """The first day no longer covered, or None for an open contract."""
        return None if self.end_date is None else self.end_date + timedelta(days=1)

    def active_on(self, day: date) -> bool:
        """Whether the contract covers a calendar day."""
        return self.start_date <= day and (self.end_date is None or day <= self.end_date)

    def overlaps(self, first_day: date, last_day: date) -> bool:
        """Whether the contract covers any day of [first_day, last_day] (inclusive)."""
        return self.start_date <= last_day and (self.end_date is None or first_day <= self.end_date)


class Fleet(_Model):
    """The whole fleet file."""

    version: Literal[1] = FLEET_FILE_VERSION
    cooperative: Cooperative
    tariff_plans: tuple[TariffPlan, ...] = ()
    members: tuple[Member, ...] = ()
    sites: tuple[Site, ...] = ()
    devices: tuple[Device, ...] = ()
    contracts: tuple[Contract, ...] = ()

    # Look-up indexes, built on first use; keyed by the section tuple's identity, so a
    # model_copy(update=...) with a new section never sees a stale index.
    _indexes: dict[str, tuple[object, dict[str, Any]]] = PrivateAttr(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        # Equal when the data are equal, whichever look-up indexes happen to be built.
        if not isinstance(other, Fleet):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in type(self).model_fields)

    __hash__ = None  # type: ignore[assignment]  # tariff plans hold lists: never hashable

    def _index(self, section: str, attr: str) -> dict[str, Any]:
        items: tuple[Any, ...] = getattr(self, section)
        cached = self._indexes.get(section)
        if cached is None or cached[0] is not items:
            cached = (items, {getattr(item, attr): item for item in items})
            self._indexes[section] = cached
        return cached[1]

    def _get(self, section: str, attr: str, wanted: str) -> Any:
        try:
            return self._index(section, attr)[wanted]
        except KeyError:
            raise KeyError(f"no {attr} {wanted!r} in the fleet") from None

    # -- look-ups used by the settlement engine ------------------------------------------
    def member(self, member_id: str) -> Member:
        """The member with this id; KeyError if there is none."""
        member: Member = self._get("members", "member_id", member_id)
        return member

    def site(self, site_id: str) -> Site:
        """The site with this id; KeyError if there is none."""
        site: Site = self._get("sites", "site_id", site_id)
        return site

    def device(self, device_id: str) -> Device:
        """The device with this id; KeyError if there is none."""
        device: Device = self._get("devices", "device_id", device_id)
        return device

    def tariff_plan(self, plan_id: str) -> TariffPlan:
        """The tariff plan with this id; KeyError if there is none."""
        plan: TariffPlan = self._get("tariff_plans", "plan_id", plan_id)
        return plan

    def contract(self, contract_id: str) -> Contract:
        """The contract with this id; KeyError if there is none."""
        contract: Contract = self._get("contracts", "contract_id", contract_id)
        return contract

    def gateway_of(self, device: Device) -> str:
        """The gateway that reads a device (its own or its site's)."""
        return device.gateway_id or self.site(device.site_id).gateway_id

    def devices_of_site(self, site_id: str) -> list[Device]:
        """All devices that ever measured a site, oldest first."""
        return sorted(
            (d for d in self.devices if d.site_id == site_id),
            key=lambda d: (d.installed_on, d.device_id),
        )

    def contracts_in(self, first_day: date, last_day: date) -> list[Contract]:
        """Contracts covering any day of [first_day, last_day], by site and start date."""
        return sorted(
            (c for c in self.contracts if c.overlaps(first_day, last_day)),
            key=lambda c: (c.site_id, c.start_date, c.contract_id),
        )
