"""CSV import of members and contracts: every row checked, good rows in, rejects counted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from collector.registry.csv_import import CsvFormatError, ImportReport, RowProblem, import_csv
from collector.registry.fleet_file import Fleet, load_fleet_file
from collector.registry.store_read import read_fleet
from collector.registry.store_sync import sync_fleet
from collector.store.db import session_factory
from collector.store.models import RegistryLoadRow
from collector.store.testing import Backend, DatabaseUnavailableError, temporary_database

SMALL = Path(__file__).resolve().parents[3] / "config" / "fleet.small.yaml"


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    backend: Backend = request.param
    try:
        with temporary_database(backend) as eng:
            with session_factory(eng).begin() as session:
                sync_fleet(session, load_fleet_file(SMALL), source="fleet.small.yaml")
            yield eng
    except DatabaseUnavailableError as exc:
        pytest.skip(str(exc))


def run_import(engine: Engine, path: Path, *, dry_run: bool = False) -> ImportReport:
    session = session_factory(engine)()
    try:
        report = import_csv(session, path, dry_run=dry_run)
        if dry_run:
            session.rollback()
        else:
            session.commit()
        return report
    finally:
        session.close()


def stored(engine: Engine) -> Fleet:
    with session_factory(engine)() as session:
        return read_fleet(session)


def write(tmp_path: Path, text: str, name: str = "leden.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


# A spreadsheet export: Dutch headings, semicolons, Dutch dates, a byte-order mark.
DUTCH = """\
Lidnummer;Naam;Straat;Postcode;Plaats;E-mail;Taal;IBAN;Contractnummer;Dak;Startdatum;Einddatum;Tarief
M0101;Dirk Bos;Dieze 20;8011 AC;Zwolle;dirk@example.org;NL;NL02ABNA0123456789;;;;;
M0102;Eva Smit;Dieze 22;8011 AC;Zwolle;eva-at-example.org;nl;;;;;;
M0103;Fleur Mol;Dieze 24;8011 AC;Zwolle;fleur@example.org;en;;C0103;S404;01-01-2027;;zon-per-kwh
M0104;Gijs Kok;Dieze 26;8011 AC;Zwolle;gijs@example.org;nl;;C0104;S002;2026-06-01;;zon-per-kwh
M0105;Hanna Veen;Dieze 28;8011 AC;Zwolle;hanna@example.org;nl;;C0105;S002;31-02-2027;;zon-per-kwh
M0106;Ivo Dam;Dieze 30;80;Zwolle;ivo@example.org;nl;;;;;;
M0001;;;;;;;;C0001;S001;;31-12-2026;
M0101;;;;;;;;C0101;S001;1-1-2027;;zon-basis
"""


def test_good_rows_are_imported_and_bad_rows_reported(engine: Engine, tmp_path: Path) -> None:
    report = run_import(engine, write(tmp_path, DUTCH, bom=True))
    assert report.rows == 8
    assert report.problems == [
        RowProblem(
            3, "email", "value is not a valid email address: An email address must have an @-sign."
        ),
        RowProblem(4, "site_id", "unknown site 'S404' (sites come from the fleet file)"),
        RowProblem(
            5, "start_date", "overlaps contract C0003 on site S002 (2026-03-16 to open end)"
        ),
        RowProblem(
            6,
            "start_date",
            "Input should be a valid date or datetime, day value is outside expected range",
        ),
        RowProblem(7, "postal_code", "postal_code '80' is not a Dutch postcode like '8011 AB'"),
    ]
    assert (report.imported, report.rejected) == (3, 5)
    fleet = stored(engine)
    dirk = fleet.member("M0101")
    assert (dirk.name, dirk.language, dirk.iban) == ("Dirk Bos", "nl", "NL02ABNA0123456789")
    # Anna's contract got an end date (the other columns kept their stored values) ...
    anna = next(c for c in fleet.contracts if c.contract_id == "C0001")
    assert (anna.start_date, anna.end_date, anna.tariff_plan_id) == (
        date(2025, 3, 1),
        date(2026, 12, 31),
        "zon-basis",
    )
    # ... so Dirk can take over her roof on 1 January.
    dirk_contract = next(c for c in fleet.contracts if c.contract_id == "C0101")
    assert (dirk_contract.site_id, dirk_contract.start_date) == ("S001", date(2027, 1, 1))
    assert fleet.member("M0001").mandate_id == "ZW-M0001-1"  # untouched by the import


def test_move_in_after_move_out_in_one_file(engine: Engine, tmp_path: Path) -> None:
    text = (
        "contract_id,member_id,site_id,start_date,end_date,tariff_plan_id\n"
        "C0001,M0001,S001,2025-03-01,2026-12-31,zon-basis\n"
        "C0101,M0101,S001,2027-01-01,,zon-basis\n"
    )
    members = (
        "member_id,name,street,postal_code,city,email,language\n"
        "M0101,Dirk Bos,Dieze 20,8011 AC,Zwolle,dirk@example.org,nl\n"
    )
    report = run_import(engine, write(tmp_path, members, "members.csv"))
    assert (report.imported, report.rejected) == (1, 0)
    report = run_import(engine, write(tmp_path, text, "contracts.csv"))
    assert report.problems == []
    assert (report.imported, report.rejected) == (2, 0)
    fleet = stored(engine)
    s001 = [
        (c.contract_id, c.start_date, c.end_date) for c in fleet.contracts if c.site_id == "S001"
    ]
    assert s001 == [
        ("C0001", date(2025, 3, 1), date(2026, 12, 31)),
        ("C0101", date(2027, 1, 1), None),
    ]
    assert report.load.updated == {"contract": 1}
    assert report.load.inserted == {"contract": 1}
    # Importing the same file again changes nothing.
    again = run_import(engine, write(tmp_path, text, "contracts.csv"))
    assert (again.imported, again.rejected, again.load.changed) == (2, 0, False)


def test_rows_with_only_one_part_in_a_combined_file(engine: Engine, tmp_path: Path) -> None:
    text = (
        "member_id;name;street;postal_code;city;email;contract_id;site_id;start_date;tariff_plan_id\n"
        "M0201;Jan;Dieze 1;8011 AB;Zwolle;not-an-email;;;;\n"
        "M0201;Jan;Dieze 1;8011 AB;Zwolle;jan@example.org;;;;\n"
        "M0202;Kees;Dieze 3;8011 AB;Zwolle;kees@@example.org;;;;\n"
        "M0202;;;;;;C0202;S002;2027-01-01;zon-per-kwh\n"
        "M0201;;;;;;C0201;S002;2026-01-01;zon-per-kwh\n"
        "M0201;;;;;;;;;\n"
    )
    report = run_import(engine, write(tmp_path, text))
    assert [(p.row, p.column, p.message) for p in report.problems if p.column != "email"] == [
        (5, "member_id", "unknown member 'M0202'"),  # its member row (4) was rejected
        (5, "start_date", "overlaps contract C0003 on site S002 (2026-03-16 to open end)"),
        (6, "start_date", "overlaps contract C0002 on site S002 (2025-03-01 to 2026-03-15)"),
        (6, "start_date", "overlaps contract C0003 on site S002 (2026-03-16 to open end)"),
        (7, None, "only a member_id: nothing to import"),
    ]
    assert [p.row for p in report.problems if p.column == "email"] == [2, 4]
    assert (report.imported, report.rejected) == (1, 5)
    assert stored(engine).member("M0201").email == "jan@example.org"


def test_rejects_are_counted_in_the_load_record(engine: Engine, tmp_path: Path) -> None:
    text = (
        "member_id,name,street,postal_code,city,email,language\n"
        "M0301,Kim,Dieze 1,8011 AB,Zwolle,kim@example.org,nl\n"
        "M0302,Lot,Dieze 3,8011 AB,Zwolle,lot@example.org,de\n"
        "M0303,,Dieze 5,8011 AB,Zwolle,x@example.org,nl\n"
    )
    report = run_import(engine, write(tmp_path, text))
    assert [(p.row, p.column) for p in report.problems] == [(3, "language"), (4, "name")]
    assert report.summary().endswith("3 row(s), imported 1, rejected 2 (1 inserted, 0 updated)")
    with session_factory(engine)() as session:
        last = session.scalars(
            select(RegistryLoadRow).order_by(RegistryLoadRow.load_id.desc())
        ).first()
    assert last is not None
    assert (last.kind, last.inserted, last.rejected) == ("csv", 1, 2)
    assert [m.member_id for m in stored(engine).members][-1] == "M0301"


def test_dry_run_writes_nothing(engine: Engine, tmp_path: Path) -> None:
    text = "member_id,name,street,postal_code,city,email\nM0401,Mo,Dieze 1,8011 AB,Zwolle,mo@example.org\n"
    report = run_import(engine, write(tmp_path, text), dry_run=True)
    assert report.imported == 1
    assert "would import 1" in report.summary()
    assert "M0401" not in {m.member_id for m in stored(engine).members}


def test_member_update_is_logged(engine: Engine, tmp_path: Path) -> None:
    text = (
        "member_id,name,street,postal_code,city,email,language,iban\n"
        "M0002,Bram Jansen,Dieze 14,8011 AB,Zwolle,bram@example.org,nl,NL91 ABNA 0417 1643 00\n"
    )
    report = run_import(engine, write(tmp_path, text))
    assert report.load.updated == {"member": 1}
    [change] = report.load.changes
    assert (change.field, change.old_value, change.new_value) == (
        "iban",
        None,
        "NL91ABNA0417164300",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("member_id,naam,colour\nM1,x,red\n", "unknown column(s) colour"),
        ("member_id,name,naam\nM1,x,y\n", "given twice: name"),
        ("member_id\nM1\n", "no member columns"),
    ],
)
def test_file_level_errors(engine: Engine, tmp_path: Path, text: str, message: str) -> None:
    session = session_factory(engine)()
    try:
        with pytest.raises(CsvFormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
            import_csv(session, write(tmp_path, text))
    finally:
        session.close()


def test_too_many_cells(engine: Engine, tmp_path: Path) -> None:
    text = (
        "member_id,name,street,postal_code,city,email\nM1,a,b,8011 AB,Zwolle,a@example.org,extra\n"
    )
    report = run_import(engine, write(tmp_path, text))
    assert report.problems == [RowProblem(2, None, "7 cells but the header has 6")]
