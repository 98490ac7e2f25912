"""What a member may see: the devices on the roofs they rent, and only while they rent them.

Every member route and API call goes through :func:`member_scope`; a device outside it is
answered with "not found", the same as a device that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.store.models import ContractRow, DeviceRow, SiteRow

AMSTERDAM = ZoneInfo("Europe/Amsterdam")


@dataclass(frozen=True)
class DeviceGrant:
    """One device a member may read, and the time window they may read it in."""

    device_id: str
    site_id: str
    contract_id: str
    kwp: float
    #: first local day of the member's contract on the device's site
    start_day: date
    #: last local day (inclusive), None while the contract runs
    end_day: date | None

    @property
    def start_utc(self) -> datetime:
        return datetime.combine(self.start_day, time(), AMSTERDAM).astimezone(ZoneInfo("UTC"))

    @property
    def end_utc(self) -> datetime | None:
        if self.end_day is None:
            return None
        return datetime.combine(
            date.fromordinal(self.end_day.toordinal() + 1), time(), AMSTERDAM
        ).astimezone(ZoneInfo("UTC"))


@dataclass(frozen=True)
class MemberScope:
    """Everything one member may read."""

    member_id: str
    grants: tuple[DeviceGrant, ...]

    @property
    def device_ids(self) -> tuple[str, ...]:
        return tuple(sorted({g.device_id for g in self.grants}))

    @property
    def contract_ids(self) -> tuple[str, ...]:
        return tuple(sorted({g.contract_id for g in self.grants}))

    def allows(self, device_id: str) -> bool:
        return any(g.device_id == device_id for g in self.grants)

    def window(self, device_id: str) -> tuple[datetime, datetime | None] | None:
        """The widest time window the member may read ``device_id`` in, or None."""
        grants = [g for g in self.grants if g.device_id == device_id]
        if not grants:
            return None
        start = min(g.start_utc for g in grants)
        ends = [g.end_utc for g in grants]
        end = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
        return start, end


def member_scope(session: Session, member_id: str) -> MemberScope:
    """The devices (and windows) of every contract of ``member_id``."""
    rows = session.execute(
        select(ContractRow, DeviceRow, SiteRow)
        .join(SiteRow, SiteRow.site_id == ContractRow.site_id)
        .join(DeviceRow, DeviceRow.site_id == ContractRow.site_id)
        .where(ContractRow.member_id == member_id)
        .order_by(ContractRow.start_date, DeviceRow.device_id)
    ).all()
    grants = []
    for contract, device, _site in rows:
        # A device only counts while it was installed during the contract.
        start = max(contract.start_date, device.installed_on)
        end_candidates = [d for d in (contract.end_date, device.removed_on) if d is not None]
        end = min(end_candidates) if end_candidates else None
        if end is not None and end < start:
            continue
        grants.append(
            DeviceGrant(
                device_id=device.device_id,
                site_id=contract.site_id,
                contract_id=contract.contract_id,
                kwp=float(device.kwp),
                start_day=start,
                end_day=end,
            )
        )
    return MemberScope(member_id, tuple(grants))
