"""A member's statement for one settlement run, read from the ledger and the registry.

Everything printed on a statement comes from issued ledger rows (lines, parts, counter
readings, guarantees) and the registry (cooperative, member); nothing is recomputed, so a
statement rendered today shows what was issued. The one exception is the self-consumption
box, information that is not billed: it comes from the home's meter days in InfluxDB while the
member's consent keeps them.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from collector.settlement.periods import parse_month
from collector.statements.self_consumption import (
    MonthSelfConsumption,
    SiteDays,
    month_self_consumption,
)
from collector.store.ledger_models import (
    SettlementCounterRow,
    SettlementLineRow,
    SettlementPartRow,
    SettlementRunRow,
    SettlementStatementRow,
)
from collector.store.models import (
    CooperativeRow,
    CounterResetRow,
    DeviceReplacementRow,
    MemberRow,
)
from collector.timeseries.influx import InfluxClient, InfluxError

log = logging.getLogger(__name__)

ZERO = Decimal(0)
KWH_PER_WH = Decimal("0.001")


class StatementDataError(LookupError):
    """The run, member or cooperative asked for is not in the store; the message says which."""


@dataclass(frozen=True)
class Party:
    """A name and postal address."""

    name: str
    street: str
    postal_code: str
    city: str
    country: str
    email: str | None = None
    iban: str | None = None
    mandate_id: str | None = None


@dataclass(frozen=True)
class MeterReading:
    """A counter's value at the start and end of its stretch in the period, as billed.

    An inverter replaced (or a counter reset) within the period gives two stretches, each
    with its own start and end. ``None`` where no reading covers that edge (the energy there
    was estimated).

    Parameters
    ----------
    start_kwh, end_kwh : Decimal or None
        The lifetime counter at the stretch's first and last boundary [kWh].
    """

    device_id: str
    start_at: datetime | None
    start_kwh: Decimal | None
    end_at: datetime | None
    end_kwh: Decimal | None

    @property
    def difference_kwh(self) -> Decimal | None:
        """End minus start [kWh], when both are known."""
        if self.start_kwh is None or self.end_kwh is None:
            return None
        return self.end_kwh - self.start_kwh


@dataclass(frozen=True)
class Line:
    """A statement line as issued; ``corrects`` is the month a correction line corrects."""

    contract_id: str
    line_no: int
    kind: str
    description: str
    quantity: Decimal
    unit: str
    unit_price_eur: Decimal
    amount_eur: Decimal
    vat_rate: Decimal
    vat_eur: Decimal
    period_start: date
    period_end: date
    corrects: str | None = None


@dataclass(frozen=True)
class GuaranteePosition:
    """A contract year's yield against its guarantee [kWh]."""

    contract_id: str
    year_start: date
    year_end: date
    guaranteed_kwh: Decimal
    yield_kwh: Decimal
    shortfall_kwh: Decimal
    final: bool
    #: False when the ledger lacks part of a final year: no credit was made automatically.
    complete: bool = True


@dataclass(frozen=True)
class ContractSummary:
    contract_id: str
    site_id: str
    start_day: date | None
    end_day: date | None
    measured_kwh: Decimal
    estimated_kwh: Decimal
    completeness: Decimal
    meters: tuple[MeterReading, ...]


@dataclass(frozen=True)
class VatGroup:
    """The lines at one VAT rate: their amounts excl. VAT and their VAT, summed [EUR]."""

    rate: Decimal
    base_eur: Decimal
    vat_eur: Decimal


@dataclass(frozen=True)
class StatementData:
    """Everything a member's statement for one run shows."""

    run_id: str
    period: str
    period_start: date
    period_end: date  # exclusive
    issued_at: datetime
    cooperative: Party
    member_id: str
    member: Party
    language: str
    contracts: tuple[ContractSummary, ...]
    lines: tuple[Line, ...]
    guarantees: tuple[GuaranteePosition, ...]
    code_version: str
    anomalies: tuple[str, ...] = field(default=())
    #: The home's own use of its solar energy, shown for information when its smart meter is
    #: read with consent (:mod:`collector.statements.self_consumption`); None: no box.
    self_consumption: MonthSelfConsumption | None = None

    @property
    def measured_kwh(self) -> Decimal:
        return sum((c.measured_kwh for c in self.contracts), ZERO)

    @property
    def estimated_kwh(self) -> Decimal:
        return sum((c.estimated_kwh for c in self.contracts), ZERO)

    @property
    def completeness(self) -> Decimal:
        """Measured / (measured + estimated) of all the member's contracts [1]."""
        total = self.measured_kwh + self.estimated_kwh
        return Decimal(1) if total == 0 else (self.measured_kwh / total)

    @property
    def regular_lines(self) -> tuple[Line, ...]:
        return tuple(line for line in self.lines if line.corrects is None)

    @property
    def correction_lines(self) -> tuple[Line, ...]:
        return tuple(line for line in self.lines if line.corrects is not None)

    @property
    def total_excl_vat_eur(self) -> Decimal:
        return sum((line.amount_eur for line in self.lines), ZERO)

    @property
    def vat_eur(self) -> Decimal:
        return sum((line.vat_eur for line in self.lines), ZERO)

    @property
    def total_incl_vat_eur(self) -> Decimal:
        return self.total_excl_vat_eur + self.vat_eur

    @property
    def vat_groups(self) -> tuple[VatGroup, ...]:
        """VAT per rate, highest rate first."""
        base: dict[Decimal, Decimal] = defaultdict(Decimal)
        vat: dict[Decimal, Decimal] = defaultdict(Decimal)
        for line in self.lines:
            key = line.vat_rate.normalize()
            base[key] += line.amount_eur
            vat[key] += line.vat_eur
        return tuple(VatGroup(r, base[r], vat[r]) for r in sorted(base, reverse=True))


def _party(row: CooperativeRow | MemberRow) -> Party:
    return Party(
        name=row.name,
        street=row.street,
        postal_code=row.postal_code,
        city=row.city,
        country=row.country,
        email=row.email,
        iban=row.iban,
        mandate_id=row.mandate_id if isinstance(row, MemberRow) else None,
    )


def cooperative(session: Session) -> Party:
    """The cooperative from the registry."""
    row = session.get(CooperativeRow, 1)
    if row is None:
        raise StatementDataError(
            "the registry has no cooperative: load the fleet file (zonnewijk registry load)"
        )
    return _party(row)


def run(session: Session, run_id: str) -> SettlementRunRow:
    """An issued run by id (``2026-10.1``)."""
    row = session.get(SettlementRunRow, run_id)
    if row is None:
        known = ", ".join(session.scalars(select(SettlementRunRow.run_id))) or "none"
        raise StatementDataError(f"no settlement run {run_id!r} (issued runs: {known})")
    return row


def members_of_run(session: Session, run_id: str) -> list[str]:
    """Member ids with a statement in a run, sorted."""
    return sorted(
        set(
            session.scalars(
                select(SettlementStatementRow.member_id).where(
                    SettlementStatementRow.run_id == run_id
                )
            )
        )
    )


#: (instant, counter [Wh], role): "at" a boundary, "stop" the last and "resume" the first
#: value around a replacement or reset.
_Point = tuple[datetime, Decimal, str]


def _registry_points(
    session: Session, devices: set[str], start: datetime, end: datetime
) -> dict[str, list[_Point]]:
    points: dict[str, list[_Point]] = defaultdict(list)
    for rep in session.scalars(select(DeviceReplacementRow)):
        if not start <= rep.at <= end:
            continue
        if rep.replaced_device_id in devices or rep.device_id in devices:
            points[rep.replaced_device_id].append((rep.at, rep.old_last_energy_wh, "stop"))
            points[rep.device_id].append((rep.at, rep.new_first_energy_wh, "resume"))
    for reset in session.scalars(
        select(CounterResetRow).where(CounterResetRow.device_id.in_(devices))
    ):
        if start <= reset.at <= end:
            points[reset.device_id].append((reset.at, reset.last_energy_wh, "stop"))
            points[reset.device_id].append((reset.at, reset.first_energy_wh, "resume"))
    return points


def meter_readings(
    counters: list[SettlementCounterRow],
    registry: dict[str, list[_Point]],
    start: datetime,
    end: datetime,
) -> list[MeterReading]:
    """Start and end counter of every device stretch within ``[start, end]``.

    ``counters`` are the ledger's boundary counters of one contract; ``registry`` the known
    replacements and resets (last and first values) per device.
    """
    by_device: dict[str, list[_Point]] = defaultdict(list)
    for c in counters:
        if start <= c.at <= end:
            by_device[c.device_id].append((c.at, c.counter_wh, "at"))
    for device in list(by_device):
        by_device[device].extend(registry.get(device, []))
    for device, points in registry.items():
        if device not in by_device and any(role == "resume" for _, _, role in points):
            by_device[device].extend(points)
    order = {"stop": 0, "at": 1, "resume": 2}
    out: list[MeterReading] = []
    for device, found in by_device.items():
        points = sorted(set(found), key=lambda p: (p[0], order[p[2]]))
        stretch: list[_Point] = []
        stretches = []
        for point in points:
            if point[2] == "resume" and stretch:
                stretches.append(stretch)
                stretch = []
            stretch.append(point)
            if point[2] == "stop":
                stretches.append(stretch)
                stretch = []
        if stretch:
            stretches.append(stretch)
        for part in stretches:
            first, last = part[0], part[-1]
            has_start = len(part) > 1 or first[0] < end
            has_end = len(part) > 1 or first[0] >= end or first[2] == "stop"
            if len(part) == 1 and first[2] == "stop":
                has_start = False
            out.append(
                MeterReading(
                    device_id=device,
                    start_at=first[0] if has_start else None,
                    start_kwh=first[1] * KWH_PER_WH if has_start else None,
                    end_at=last[0] if has_end else None,
                    end_kwh=last[1] * KWH_PER_WH if has_end else None,
                )
            )
    epoch = datetime.min.replace(tzinfo=start.tzinfo)
    return sorted(out, key=lambda m: (m.start_at or m.end_at or epoch, m.device_id))


def load_statement(
    session: Session,
    run_id: str,
    member_id: str,
    *,
    language: str | None = None,
    influx: InfluxClient | None = None,
) -> StatementData:
    """A member's statement for a run (all their contracts in it).

    ``language`` overrides the member's own (``nl``/``en``). With ``influx``, the month's
    self-consumption of the member's homes is added where their meters are read with consent.
    """
    run_row = run(session, run_id)
    member_row = session.get(MemberRow, member_id)
    if member_row is None:
        raise StatementDataError(f"member {member_id} is not in the registry")
    statements = list(
        session.scalars(
            select(SettlementStatementRow)
            .where(
                SettlementStatementRow.run_id == run_id,
                SettlementStatementRow.member_id == member_id,
            )
            .order_by(SettlementStatementRow.contract_id)
        )
    )
    if not statements:
        raise StatementDataError(f"member {member_id} has no statement in run {run_id}")
    contract_ids = [s.contract_id for s in statements]
    line_rows = list(
        session.scalars(
            select(SettlementLineRow)
            .where(
                SettlementLineRow.run_id == run_id,
                SettlementLineRow.contract_id.in_(contract_ids),
            )
            .order_by(SettlementLineRow.contract_id, SettlementLineRow.line_no)
        )
    )
    corrections = {
        (p.contract_id, p.start_day, p.end_day): p.period
        for p in session.scalars(
            select(SettlementPartRow).where(
                SettlementPartRow.run_id == run_id,
                SettlementPartRow.contract_id.in_(contract_ids),
                SettlementPartRow.kind == "correction",
            )
        )
    }
    counters: dict[str, list[SettlementCounterRow]] = defaultdict(list)
    for c in session.scalars(
        select(SettlementCounterRow).where(
            SettlementCounterRow.run_id == run_id,
            SettlementCounterRow.contract_id.in_(contract_ids),
        )
    ):
        counters[c.contract_id].append(c)

    period = parse_month(run_row.period)
    lines = []
    for row in line_rows:
        corrects = None
        if row.kind == "energy_correction":
            corrects = corrections.get(
                (row.contract_id, row.period_start, row.period_end),
                row.period_start.strftime("%Y-%m"),
            )
        lines.append(
            Line(
                contract_id=row.contract_id,
                line_no=row.line_no,
                kind=row.kind,
                description=row.description,
                quantity=row.quantity,
                unit=row.unit,
                unit_price_eur=row.unit_price_eur,
                amount_eur=row.amount_eur,
                vat_rate=row.vat_rate,
                vat_eur=row.vat_eur,
                period_start=row.period_start,
                period_end=row.period_end,
                corrects=corrects,
            )
        )
    devices = {c.device_id for rows in counters.values() for c in rows}
    registry = _registry_points(session, devices, period.start_utc, period.end_utc)
    contracts = []
    guarantees = []
    anomalies: list[str] = []
    for s in statements:
        contracts.append(
            ContractSummary(
                contract_id=s.contract_id,
                site_id=s.site_id,
                start_day=s.start_day,
                end_day=s.end_day,
                measured_kwh=s.measured_kwh,
                estimated_kwh=s.estimated_kwh,
                completeness=s.completeness,
                meters=tuple(
                    meter_readings(
                        counters[s.contract_id], registry, period.start_utc, period.end_utc
                    )
                ),
            )
        )
        for g in json.loads(s.guarantees_json):
            guarantees.append(
                GuaranteePosition(
                    contract_id=s.contract_id,
                    year_start=date.fromisoformat(g["year_start"]),
                    year_end=date.fromisoformat(g["year_end"]),
                    guaranteed_kwh=Decimal(g["guaranteed_kwh"]),
                    yield_kwh=Decimal(g["yield_kwh"]),
                    shortfall_kwh=Decimal(g["shortfall_kwh"]),
                    final=bool(g["final"]),
                    complete=bool(g.get("complete", True)),
                )
            )
        anomalies.extend(
            f"{a.get('device_id', '?')}: {a.get('kind', '?')}" for a in json.loads(s.anomalies_json)
        )
    return StatementData(
        run_id=run_id,
        period=run_row.period,
        period_start=period.start_day,
        period_end=period.end_day,
        issued_at=run_row.issued_at,
        cooperative=cooperative(session),
        member_id=member_id,
        member=_party(member_row),
        language=language or member_row.language or "nl",
        contracts=tuple(contracts),
        lines=tuple(lines),
        guarantees=tuple(guarantees),
        code_version=run_row.code_version,
        anomalies=tuple(anomalies),
        self_consumption=_self_consumption(influx, statements),
    )


def _self_consumption(
    influx: InfluxClient | None, statements: list[SettlementStatementRow]
) -> MonthSelfConsumption | None:
    if influx is None:
        return None
    spans = [
        SiteDays(s.site_id, s.start_day, s.end_day)
        for s in statements
        if s.start_day is not None and s.end_day is not None
    ]
    try:
        return month_self_consumption(influx, spans)
    except InfluxError as exc:  # the box is information; the statement goes out without it
        log.warning("statement without self-consumption: InfluxDB did not answer (%s)", exc)
        return None
