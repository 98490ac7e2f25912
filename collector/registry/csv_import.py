"""CSV import of members and contracts (the cooperative's member spreadsheet).

One file; each row holds a member, a contract, or both (a member and the contract for their
roof); in a file with both kinds of columns, a row whose member cells (other than
``member_id``) are empty is a contract only, and the other way round. Which parts a file has follows from its header: member columns (``name``, ``email``,
...) and/or contract columns (``contract_id``, ``site_id``, ``start_date``, ...); ``member_id``
links the two. Dutch column names from a spreadsheet are accepted too (``lidnummer``,
``naam``, ``postcode``, ``startdatum``, ...; see :data:`COLUMN_ALIASES`). Separators ``,``
``;`` and tab are detected; an Excel byte-order mark is ignored; dates may be written
``2026-03-16`` or ``16-03-2026``. A row updates a stored member or contract: an empty cell keeps
the stored value, a single ``-`` clears an optional one (e.g. a contract's ``end_date``).

Every row is validated on its own (the fleet file's models) and against the store (known site
and tariff plan, member known or in the file, no overlapping contracts on a site). Rows with
a problem are rejected with their row number (as the spreadsheet numbers it: the header is
row 1) and column; the good rows are imported, and the rejects are counted in the load record.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from collector.registry.fleet_file import (
    Contract,
    Fleet,
    Member,
    validate_fleet,
)
from collector.registry.store_read import read_fleet
from collector.registry.store_sync import (
    ENTITY_BY_NAME,
    LoadReport,
    contract_row,
    file_sha256,
    member_row,
    record_load,
    upsert_rows,
)
from collector.registry.tariff_plans import TariffError

MEMBER_COLUMNS = (
    "member_id",
    "name",
    "street",
    "postal_code",
    "city",
    "country",
    "email",
    "language",
    "iban",
    "bic",
    "mandate_id",
    "mandate_date",
)
CONTRACT_COLUMNS = (
    "contract_id",
    "member_id",
    "site_id",
    "start_date",
    "end_date",
    "tariff_plan_id",
    "year_anchor",
)
ADDRESS_COLUMNS = ("street", "postal_code", "city", "country")
DATE_COLUMNS = ("mandate_date", "start_date", "end_date", "year_anchor")

#: Spreadsheet headings (normalised: lower case, spaces and dashes as ``_``) → column.
COLUMN_ALIASES: Mapping[str, str] = {
    "lidnummer": "member_id",
    "lid": "member_id",
    "naam": "name",
    "straat": "street",
    "adres": "street",
    "postcode": "postal_code",
    "plaats": "city",
    "woonplaats": "city",
    "land": "country",
    "e_mail": "email",
    "mail": "email",
    "taal": "language",
    "machtigingskenmerk": "mandate_id",
    "machtiging": "mandate_id",
    "machtigingsdatum": "mandate_date",
    "contractnummer": "contract_id",
    "contract": "contract_id",
    "dak": "site_id",
    "locatie": "site_id",
    "startdatum": "start_date",
    "ingangsdatum": "start_date",
    "einddatum": "end_date",
    "tarief": "tariff_plan_id",
    "tariefplan": "tariff_plan_id",
    "contractjaar_start": "year_anchor",
}

#: A cell holding only this clears an optional field (an empty cell keeps the stored value).
CLEAR = "-"

_DUTCH_DATE = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$")


@dataclass(frozen=True)
class RowProblem:
    """Why one row was rejected."""

    row: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"row {self.row}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass
class ImportReport:
    """What an import did: rows read, imported, rejected (with reasons)."""

    source: str
    rows: int = 0
    imported: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    load: LoadReport = field(default_factory=LoadReport)
    dry_run: bool = False

    @property
    def rejected(self) -> int:
        return len({p.row for p in self.problems})

    def summary(self) -> str:
        verb = "would import" if self.dry_run else "imported"
        ins, upd, _ = self.load.totals()
        return (
            f"{self.source}: {self.rows} row(s), {verb} {self.imported}, rejected {self.rejected}"
            f" ({ins} inserted, {upd} updated)"
        )


class CsvFormatError(ValueError):
    """The file as a whole cannot be read (no header, no known columns)."""


def normalise_header(name: str) -> str:
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return COLUMN_ALIASES.get(key, key)


def _sniff_dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample.splitlines()[0] if sample else sample, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def _date_text(value: str) -> str:
    match = _DUTCH_DATE.match(value)
    if match:
        day, month, year = match.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return value


def _cell(column: str, value: str) -> str:
    return _date_text(value) if column in DATE_COLUMNS else value


def _member_from(cells: Mapping[str, str | None], existing: Member | None) -> Member:
    """The member as the row describes it: the stored one with the row's columns over it.

    A column the file lacks or an empty cell keeps the stored value; ``-`` clears it.
    """
    flat: dict[str, Any] = member_row(existing) if existing is not None else {}
    flat.update({k: cells[k] for k in MEMBER_COLUMNS if k in cells})
    flat = {k: v for k, v in flat.items() if v is not None}
    if isinstance(flat.get("language"), str):
        flat["language"] = flat["language"].lower()
    address = {k: flat.pop(k) for k in ADDRESS_COLUMNS if k in flat}
    return Member.model_validate({**flat, "address": address})


def _contract_from(cells: Mapping[str, str | None], existing: Contract | None) -> Contract:
    flat: dict[str, Any] = contract_row(existing) if existing is not None else {}
    flat.update({k: cells[k] for k in CONTRACT_COLUMNS if k in cells})
    return Contract.model_validate({k: v for k, v in flat.items() if v is not None})


def _problems(row: int, exc: ValidationError) -> list[RowProblem]:
    out = []
    for err in exc.errors(include_url=False):
        names = [p for p in err["loc"] if isinstance(p, str) and p != "address"]
        column = names[-1] if names else None
        if column is None and err["loc"][:1] == ("address",):
            column = "postal_code" if "postal" in str(err["msg"]) else "street"
        out.append(RowProblem(row, column, str(err["msg"]).removeprefix("Value error, ")))
    return out


def import_csv(
    session: Session,
    path: str | Path,
    *,
    dry_run: bool = False,
) -> ImportReport:
    """Validate a members/contracts CSV and import its good rows into the store.

    The caller commits, or rolls back for a dry run (``dry_run`` only changes the wording).

    Raises
    ------
    CsvFormatError
        When the file has no header or none of the known columns.
    """
    path = Path(path)
    raw = path.read_bytes()
    report = ImportReport(source=str(path), dry_run=dry_run)
    text = raw.decode("utf-8-sig")
    reader = csv.reader(io.StringIO(text, newline=""), dialect=_sniff_dialect(text[:4096]))
    header_cells = next(reader, None)
    if not header_cells or not any(c.strip() for c in header_cells):
        raise CsvFormatError(f"{path}: empty file, expected a header row")
    header = [normalise_header(c) for c in header_cells]
    known = set(MEMBER_COLUMNS) | set(CONTRACT_COLUMNS)
    unknown = [h for h, c in zip(header, header_cells, strict=True) if h not in known and c.strip()]
    if unknown:
        raise CsvFormatError(
            f"{path}: unknown column(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}"
        )
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise CsvFormatError(f"{path}: column(s) given twice: {', '.join(dup)}")
    has_member = any(h in header for h in MEMBER_COLUMNS if h != "member_id")
    has_contract = "contract_id" in header
    if not has_member and not has_contract:
        raise CsvFormatError(
            f"{path}: no member columns (name, email, ...) and no contract_id column"
        )

    fleet = read_fleet(session)
    sites = {s.site_id for s in fleet.sites}
    plans = {p.plan_id: p for p in fleet.tariff_plans}
    members: dict[str, Member] = {m.member_id: m for m in fleet.members}
    contracts: dict[str, Contract] = {c.contract_id: c for c in fleet.contracts}
    member_rows: dict[str, tuple[int, Member]] = {}
    contract_rows: dict[str, int] = {}
    accepted_members: list[Member] = []
    accepted_contracts: list[Contract] = []

    for cells_list in reader:
        row = reader.line_num
        if not any(c.strip() for c in cells_list):
            continue
        report.rows += 1
        if len(cells_list) > len(header):
            report.problems.append(
                RowProblem(row, None, f"{len(cells_list)} cells but the header has {len(header)}")
            )
            continue
        # An empty cell keeps the stored value; a single "-" clears an optional one.
        cells: dict[str, str | None] = {
            h: None if v.strip() == CLEAR else _cell(h, v.strip())
            for h, v in zip(header, cells_list, strict=False)
            if v.strip()
        }
        problems: list[RowProblem] = []
        member = contract = None
        row_has_member = any(k in cells for k in MEMBER_COLUMNS if k != "member_id")
        row_has_contract = any(k in cells for k in CONTRACT_COLUMNS if k != "member_id")
        if not row_has_member and not row_has_contract:
            report.problems.append(RowProblem(row, None, "only a member_id: nothing to import"))
            continue
        if row_has_member:
            try:
                member = _member_from(cells, members.get(cells.get("member_id") or ""))
            except ValidationError as exc:
                problems += _problems(row, exc)
        if row_has_contract:
            try:
                contract = _contract_from(cells, contracts.get(cells.get("contract_id") or ""))
            except ValidationError as exc:
                problems += _problems(row, exc)
        if member is not None and member.member_id in member_rows:
            first_row, first = member_rows[member.member_id]
            if first != member:
                problems.append(
                    RowProblem(
                        row, "member_id", f"member {member.member_id} differs from row {first_row}"
                    )
                )
        if contract is not None:
            problems += _check_contract(
                row, contract, contract_rows, sites, plans, members, member, contracts
            )
            if row_has_member and member is None:  # its member part is already reported
                problems = [
                    p for p in problems if p.column != "member_id" or "unknown" not in p.message
                ]
        if problems:
            report.problems += problems
            continue
        if member is not None and member.member_id not in member_rows:
            member_rows[member.member_id] = (row, member)
            members[member.member_id] = member
            accepted_members.append(member)
        if contract is not None:
            contract_rows[contract.contract_id] = row
            contracts[contract.contract_id] = contract
            accepted_contracts.append(contract)
        report.imported += 1

    # Safety net: the registry after the import must pass the fleet file's checks.
    validate_fleet(
        Fleet(
            cooperative=fleet.cooperative,
            tariff_plans=fleet.tariff_plans,
            members=tuple(members.values()),
            sites=fleet.sites,
            devices=fleet.devices,
            contracts=tuple(contracts.values()),
        )
    )
    load = report.load
    upsert_rows(session, ENTITY_BY_NAME["member"], [member_row(m) for m in accepted_members], load)
    upsert_rows(
        session, ENTITY_BY_NAME["contract"], [contract_row(c) for c in accepted_contracts], load
    )
    if load.changed or report.problems:
        record_load(
            session,
            load,
            source=str(path),
            kind="csv",
            sha256=file_sha256(raw),
            rejected=report.rejected,
        )
    return report


def _check_contract(
    row: int,
    contract: Contract,
    contract_rows: Mapping[str, int],
    sites: set[str],
    plans: Mapping[str, Any],
    members: Mapping[str, Member],
    row_member: Member | None,
    contracts: Mapping[str, Contract],
) -> list[RowProblem]:
    problems = []
    if contract.contract_id in contract_rows:
        problems.append(
            RowProblem(
                row,
                "contract_id",
                f"contract {contract.contract_id} is already on row {contract_rows[contract.contract_id]}",
            )
        )
    if contract.member_id not in members and (
        row_member is None or row_member.member_id != contract.member_id
    ):
        problems.append(RowProblem(row, "member_id", f"unknown member {contract.member_id!r}"))
    if contract.site_id not in sites:
        problems.append(
            RowProblem(
                row,
                "site_id",
                f"unknown site {contract.site_id!r} (sites come from the fleet file)",
            )
        )
    plan = plans.get(contract.tariff_plan_id)
    if plan is None:
        problems.append(
            RowProblem(row, "tariff_plan_id", f"unknown tariff plan {contract.tariff_plan_id!r}")
        )
    else:
        try:
            plan.version_at(contract.start_date)
        except TariffError as exc:
            problems.append(RowProblem(row, "start_date", str(exc)))
    for other in contracts.values():
        if other.contract_id == contract.contract_id or other.site_id != contract.site_id:
            continue
        if _overlap(contract, other):
            problems.append(
                RowProblem(
                    row,
                    "start_date",
                    f"overlaps contract {other.contract_id} on site {other.site_id} "
                    f"({other.start_date} to {other.end_date or 'open end'})",
                )
            )
    return problems


def _overlap(a: Contract, b: Contract) -> bool:
    a_end = a.end_date or date.max
    b_end = b.end_date or date.max
    return a.start_date <= b_end and b.start_date <= a_end


__all__ = ["CsvFormatError", "ImportReport", "RowProblem", "import_csv"]
