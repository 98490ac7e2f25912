"""The fleet file: valid example loads, every kind of mistake is reported with line and field."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from collector.registry.fleet_file import (
    Fleet,
    FleetFileError,
    Problem,
    dump_fleet_yaml,
    load_fleet_file,
    parse_fleet,
    validate_fleet,
)

ROOT = Path(__file__).resolve().parents[3]
SMALL = ROOT / "config" / "fleet.small.yaml"
EXAMPLE = ROOT / "config" / "fleet.example.yaml"


@pytest.fixture(scope="module")
def small_text() -> str:
    return SMALL.read_text(encoding="utf-8")


def line_containing(text: str, needle: str, occurrence: int = 1) -> int:
    """1-based line number of the n-th line containing ``needle``."""
    seen = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return number
    raise AssertionError(f"{needle!r} not in text")


def problems_of(text: str) -> list[Problem]:
    with pytest.raises(FleetFileError) as info:
        parse_fleet(text, "test.yaml")
    return info.value.problems


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)


def test_small_example_loads_with_exact_decimals() -> None:
    fleet = load_fleet_file(SMALL)
    assert [m.member_id for m in fleet.members] == ["M0001", "M0002", "M0003"]
    assert fleet.site("S001").kwp == Decimal("4.2")
    plan = fleet.tariff_plan("zon-per-kwh")
    assert plan.versions[0].price_eur_per_kwh == Decimal("0.095")
    assert plan.versions[0].vat_rate == Decimal("0.21")
    member = fleet.member("M0001")
    assert member.iban == "NL02ABNA0123456789"  # spaces removed
    assert member.language == "nl"
    new = fleet.device("inv-s001-b")
    assert new.replaces is not None
    assert new.replaces.at == datetime(2026, 5, 11, 11, 40, tzinfo=UTC)
    assert new.replaces.old_last_energy_wh == Decimal(4312870)
    assert fleet.gateway_of(fleet.device("inv-s001-a")) == "gw-s001"


def test_example_files_in_config_are_valid() -> None:
    for path in sorted((ROOT / "config").glob("fleet.*.yaml")):
        fleet = load_fleet_file(path)
        assert fleet.sites, path


def test_dump_round_trips(small_text: str) -> None:
    fleet = parse_fleet(small_text)
    text = dump_fleet_yaml(fleet, header="generated\nby a test")
    assert text.startswith("# generated\n# by a test\n")
    assert parse_fleet(text) == fleet


def test_move_out_and_in_helpers() -> None:
    fleet = load_fleet_file(SMALL)
    bram, chloe = fleet.contracts[1], fleet.contracts[2]
    assert bram.active_on(date(2026, 3, 15)) and not bram.active_on(date(2026, 3, 16))
    assert chloe.active_on(date(2026, 3, 16)) and not chloe.active_on(date(2026, 3, 15))
    assert bram.end_exclusive == date(2026, 3, 16)
    march = fleet.contracts_in(date(2026, 3, 1), date(2026, 3, 31))
    assert [c.contract_id for c in march] == ["C0001", "C0002", "C0003"]
    april = fleet.contracts_in(date(2026, 4, 1), date(2026, 4, 30))
    assert [c.contract_id for c in april] == ["C0001", "C0003"]
    assert chloe.contract_year_anchor == date(2026, 3, 16)
    assert fleet.contracts[0].contract_year_anchor == date(2025, 3, 1)
    assert [d.device_id for d in fleet.devices_of_site("S001")] == ["inv-s001-a", "inv-s001-b"]


def test_field_errors_name_line_and_field(small_text: str) -> None:
    text = replace_once(small_text, "email: bram@example.org", "email: bram-at-example")
    text = replace_once(text, "    model: SMA SB3.6\n", "    model: SMA SB3.6\n    colour: red\n")
    text = replace_once(text, "iban: NL02 ABNA 0123 4567 89", "iban: NL03 ABNA 0123 4567 89")
    text = replace_once(text, "language: en", "language: fr")
    text = replace_once(text, "    tilt_deg: 35", "    tilt_deg: 135")
    got = {(p.field, p.line) for p in problems_of(text)}
    assert got == {
        ("members[0].iban", line_containing(text, "iban: NL03")),
        ("members[1].email", line_containing(text, "bram-at-example")),
        ("members[2].language", line_containing(text, "language: fr")),
        ("sites[0].tilt_deg", line_containing(text, "tilt_deg: 135")),
        ("devices[0].colour", line_containing(text, "colour: red")),
    }


def test_messages_are_actionable(small_text: str) -> None:
    text = replace_once(
        small_text, "    model: SMA SB3.6\n", "    model: SMA SB3.6\n    colour: red\n"
    )
    text = replace_once(text, "iban: NL02 ABNA 0123 4567 89", "iban: NL03 ABNA 0123 4567 89")
    with pytest.raises(FleetFileError) as info:
        parse_fleet(text, "fleet.yaml")
    message = str(info.value)
    assert "fleet.yaml: 2 problem(s)" in message
    assert (
        f"fleet.yaml:{line_containing(text, 'colour')}: devices[0].colour: unknown field" in message
    )
    assert "members[0].iban: not a valid IBAN" in message


def test_missing_required_field_points_at_its_entry(small_text: str) -> None:
    text = replace_once(small_text, "    email: chloe@example.org\n", "")
    [problem] = problems_of(text)
    assert problem.field == "members[2].email"
    assert problem.message == "Field required"
    assert problem.line == line_containing(text, "member_id: M0003")


def test_postcode_and_mandate_rules(small_text: str) -> None:
    text = replace_once(
        small_text, "postal_code: 8011 AB, city: Zwolle}", "postal_code: 80, city: Zwolle}"
    )
    [problem] = problems_of(text)
    assert problem.field == "members[0].address"
    assert problem.message == "postal_code '80' is not a Dutch postcode like '8011 AB'"
    text = replace_once(small_text, "    mandate_date: 2025-02-20\n", "")
    [problem] = problems_of(text)
    assert problem.field == "members[0]"
    assert "mandate_id and mandate_date go together" in problem.message


def test_yaml_syntax_error_has_line(small_text: str) -> None:
    text = replace_once(small_text, "    name: Bram Jansen", "    name: [Bram Jansen")
    [problem] = problems_of(text)
    assert problem.message.startswith("YAML syntax")
    assert problem.line is not None
    assert abs(problem.line - line_containing(text, "[Bram Jansen")) <= 2


def test_duplicate_key_is_rejected(small_text: str) -> None:
    text = replace_once(
        small_text, "    kwp: 4.2\n    tilt_deg", "    kwp: 4.2\n    kwp: 5\n    tilt_deg"
    )
    [problem] = problems_of(text)
    assert problem.field == "sites[0].kwp"
    assert problem.line == line_containing(text, "kwp: 5")
    assert "first on line" in problem.message


def test_reference_errors(small_text: str) -> None:
    text = replace_once(
        small_text,
        "    site_id: S002\n    start_date: 2025-03-01",
        "    site_id: S009\n    start_date: 2025-03-01",
    )
    text = replace_once(text, "    tariff_plan_id: zon-basis", "    tariff_plan_id: zon-luxe")
    text = replace_once(
        text, "    gateway_id: gw-s002\n    family", "    gateway_id: gw-nowhere\n    family"
    )
    text = replace_once(
        text, "    member_id: M0003\n    site_id", "    member_id: M0042\n    site_id"
    )
    got = {(p.field, p.line): p.message for p in problems_of(text)}
    assert got == {
        (
            "devices[2].gateway_id",
            line_containing(text, "gw-nowhere"),
        ): "unknown gateway 'gw-nowhere': no site has this gateway_id",
        (
            "contracts[0].tariff_plan_id",
            line_containing(text, "zon-luxe"),
        ): "unknown tariff plan 'zon-luxe'",
        ("contracts[1].site_id", line_containing(text, "site_id: S009")): "unknown site 'S009'",
        (
            "contracts[2].member_id",
            line_containing(text, "member_id: M0042"),
        ): "unknown member 'M0042'",
    }


def test_overlapping_contracts_on_a_site(small_text: str) -> None:
    text = replace_once(small_text, "start_date: 2026-03-16", "start_date: 2026-03-15")
    [problem] = problems_of(text)
    assert problem.field == "contracts[2].start_date"
    assert problem.line == line_containing(text, "start_date: 2026-03-15")
    assert "'C0002'" in problem.message and "2026-03-15" in problem.message


def test_open_contract_blocks_a_later_one(small_text: str) -> None:
    text = replace_once(small_text, "    end_date: 2026-03-15\n", "")
    [problem] = problems_of(text)
    assert "open end" in problem.message


def test_device_gateway_must_be_its_sites(small_text: str) -> None:
    text = replace_once(
        small_text, "    gateway_id: gw-s002\n    family", "    gateway_id: gw-s001\n    family"
    )
    [problem] = problems_of(text)
    assert problem.field == "devices[2].gateway_id"
    assert "serves site 'S001'" in problem.message


def test_replacement_consistency(small_text: str) -> None:
    text = replace_once(small_text, "    removed_on: 2026-05-11\n", "    removed_on: 2026-05-01\n")
    problems = problems_of(text)
    assert [(p.field, p.line) for p in problems] == [
        ("devices[1].replaces.at", line_containing(text, "at: 2026-05-11T13:40")),
    ]
    assert "removed_on day 2026-05-01" in problems[0].message

    text = replace_once(small_text, "    replaced_by: inv-s001-b\n", "    replaced_by: inv-s002\n")
    got = {p.field: p.message for p in problems_of(text)}
    assert "does not say `replaces" in got["devices[0].replaced_by"]
    assert got["devices[1].replaces.device_id"] == "'inv-s001-a' says it was replaced by 'inv-s002'"

    text = replace_once(small_text, "      device_id: inv-s001-a\n", "      device_id: inv-s002\n")
    messages = [p.message for p in problems_of(text)]
    assert any("is on site 'S002', not 'S001'" in m for m in messages)


def test_replaced_device_needs_removed_on(small_text: str) -> None:
    text = replace_once(small_text, "    removed_on: 2026-05-11\n", "")
    [problem] = problems_of(text)
    assert problem.field == "devices[0]"
    assert "needs removed_on" in problem.message


def test_contract_before_first_tariff_version(small_text: str) -> None:
    text = replace_once(
        small_text,
        "start_date: 2025-03-01\n    tariff_plan_id: zon-basis",
        "start_date: 2024-12-01\n    tariff_plan_id: zon-basis",
    )
    text = replace_once(text, "installed_on: 2025-03-01", "installed_on: 2024-12-01")
    [problem] = problems_of(text)
    assert problem.field == "contracts[0].start_date"
    assert "no version in force on 2024-12-01" in problem.message


def test_timestamps_need_an_offset(small_text: str) -> None:
    text = replace_once(small_text, "at: 2026-05-11T13:40:00+02:00", "at: 2026-05-11T13:40:00")
    [problem] = problems_of(text)
    assert problem.field == "devices[1].replaces.at"
    assert "explicit offset" in problem.message


def test_duplicate_ids(small_text: str) -> None:
    text = replace_once(small_text, "member_id: M0003\n    name", "member_id: M0002\n    name")
    problems = problems_of(text)
    assert problems[0].field == "members[2].member_id"
    assert problems[0].message == "duplicate member_id 'M0002' (also members[1])"


def test_not_a_mapping() -> None:
    [problem] = problems_of("- just\n- a list\n")
    assert "mapping" in problem.message


def test_validate_fleet_for_code_built_fleets() -> None:
    fleet = load_fleet_file(SMALL)
    broken = Fleet.model_validate(
        fleet.model_dump()
        | {"contracts": [*fleet.model_dump()["contracts"], fleet.contracts[0].model_dump()]}
    )
    with pytest.raises(FleetFileError, match="duplicate contract_id 'C0001'"):
        validate_fleet(broken)
    validate_fleet(fleet)


def test_lookups_follow_copies_and_do_not_affect_equality() -> None:
    fleet = load_fleet_file(SMALL)
    assert fleet.member("M0002").name == "Bram Jansen"  # builds the member index
    assert fleet == load_fleet_file(SMALL)
    fewer = fleet.model_copy(update={"members": fleet.members[:1]})
    assert fewer != fleet
    with pytest.raises(KeyError, match="no member_id 'M0002'"):
        fewer.member("M0002")
    assert fleet.contract("C0003").member_id == "M0003"
    assert fleet.tariff_plan("zon-basis").versions[0].monthly_fee_eur == Decimal("12.50")
    with pytest.raises(KeyError):
        fleet.site("S999")


def test_bad_identifier_message(small_text: str) -> None:
    text = replace_once(small_text, "gateway_id: gw-s001", "gateway_id: 'gw s001!'")
    [problem] = problems_of(text)
    assert problem.field == "sites[0].gateway_id"
    assert problem.message.startswith("'gw s001!' is not a valid id: use letters, digits")
