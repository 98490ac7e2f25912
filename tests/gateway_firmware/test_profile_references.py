"""Vendor profiles against independent register maps (issue 16, item 2).

Each register profile in ``config/devices/`` is compared, register by register, with a map
that somebody else published: a maintained open-source integration's register table,
transcribed by hand into ``tests/gateway_firmware/reference_maps/<profile>_registers.csv`` and
``<profile>_states.csv`` (the source repository, path and commit are named in each file's
header). Compared: address, read offset, register kind, type, word order, scale (after unit
conversion), unit, the values meaning "no value", string sizes, and the state codes.

Every difference that remains is listed in :data:`EXPECTED_DIFFERENCES` with its reason, and
the profile carries the same reason in the register's ``reference_note``; a register
corrected after the comparison carries a ``reference_note`` starting with ``fixed:``. A new
difference, or a listed one that went away, fails the test.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway_firmware.profiles import Profile, default_devices_dir, load_profiles

MAPS = Path(__file__).parent / "reference_maps"
CHECKED = ("huawei-sun2000", "sungrow-sg", "growatt")

#: Conversion from the reference's unit to the glossary's, where they differ [-].
_UNIT_FACTORS: dict[tuple[str, str], float] = {("kWh", "Wh"): 1000.0}

_TWO_REGISTER_SIGNEDNESS = (
    "the reference decodes every two-register value as signed 32-bit; unsigned here, "
    "identical below 2^31"
)

#: (profile, field, attribute) -> why the profile keeps its own value.
EXPECTED_DIFFERENCES: dict[tuple[str, str, str], str] = {
    ("sungrow-sg", "identify:serial", "size"): (
        "SunGather reads 5 registers; the manual's block 4990-4999 is 10 registers "
        "(mkaiser's Home Assistant map reads 10 too), so an 11-character serial fits"
    ),
    ("sungrow-sg", "cabinet_temp_c", "invalid"): (
        "SungrowClient also drops an S16 0xFFFF, which for a temperature is -0.1 °C"
    ),
    ("growatt", "dc1_power_w", "type"): _TWO_REGISTER_SIGNEDNESS,
    ("growatt", "dc2_power_w", "type"): _TWO_REGISTER_SIGNEDNESS,
    ("growatt", "ac_power_w", "type"): _TWO_REGISTER_SIGNEDNESS,
    ("growatt", "ac_energy_wh", "type"): _TWO_REGISTER_SIGNEDNESS,
    ("growatt", "cabinet_temp_c", "type"): (
        "the reference reads one-register values unsigned; a temperature below 0 °C is signed"
    ),
}

#: State codes the profile does not map although the reference lists them, with the reason.
EXPECTED_UNMAPPED_STATES: dict[str, tuple[frozenset[int], str]] = {
    "growatt": (
        frozenset({2, *range(5, 13)}),
        "battery states of Growatt's storage models (SPH), not MIC/MIN/MOD",
    ),
}

#: What the comparison finds today, per profile: (agreed, fixed, differ with a reason).
EXPECTED_COUNTS: dict[str, tuple[int, int, int]] = {
    "huawei-sun2000": (13, 0, 0),
    "sungrow-sg": (7, 2, 2),
    "growatt": (8, 0, 5),
}


@dataclass(frozen=True)
class Entry:
    """One register of a profile in the comparison's terms (strings from ``identify`` too)."""

    field: str
    address: int
    offset: int
    kind: str
    type: str
    size: int
    word_order: str
    scale: float
    unit: str
    invalid: frozenset[int] | None
    note: str


def _comment_free(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def reference_entries(name: str) -> dict[str, Entry]:
    """The independent map of profile ``name``, by glossary field."""
    entries = {}
    for row in _comment_free(MAPS / f"{name}_registers.csv"):
        string = row["type"] == "string"
        entries[row["field"]] = Entry(
            field=row["field"],
            address=int(row["address"]),
            offset=int(row["offset"]),
            kind=row["kind"],
            type=row["type"],
            size=int(row["size"]),
            word_order=row["word_order"],
            scale=0.0 if string else float(row["factor"]),
            unit=row["unit"],
            invalid=None
            if row["invalid"] == "-"
            else frozenset(int(v, 16) for v in row["invalid"].split()),
            note=row["meaning"],
        )
    return entries


def reference_states(name: str) -> dict[int, str]:
    return {int(r["code"], 0): r["text"] for r in _comment_free(MAPS / f"{name}_states.csv")}


def profile_entries(profile: Profile) -> dict[str, Entry]:
    """The profile's registers and identify strings, with the notes from its YAML file."""
    raw: dict[str, Any] = yaml.safe_load(
        (default_devices_dir() / f"{profile.name}.yaml").read_text()
    )
    notes = {r["field"]: r.get("reference_note", "") for r in raw["registers"]}
    raw_identify = raw.get("identify", {})
    entries = {}
    for spec in profile.registers:
        entries[spec.field] = Entry(
            field=spec.field,
            address=spec.documented_address,
            offset=spec.address - spec.documented_address,
            kind=spec.kind.value,
            type=spec.type,
            size=spec.count,
            word_order=spec.word_order if spec.count == 2 else "-",
            scale=spec.scale,
            unit=spec.unit,
            invalid=spec.invalid,
            note=notes[spec.field],
        )
    for key, string in profile.identify.items():
        documented = int(raw_identify[key]["address"])
        entries[f"identify:{key}"] = Entry(
            field=f"identify:{key}",
            address=documented,
            offset=string.address - documented,
            kind=string.kind.value,
            type="string",
            size=string.size,
            word_order="-",
            scale=0.0,
            unit="",
            invalid=None,
            note=str(raw_identify[key].get("reference_note", "")),
        )
    return entries


def differences(ours: Entry, theirs: Entry) -> dict[str, tuple[object, object]]:
    """Attribute -> (ours, theirs) for every attribute where the two maps disagree."""
    found: dict[str, tuple[object, object]] = {}
    for attribute in ("address", "offset", "kind", "type", "size", "word_order"):
        a, b = getattr(ours, attribute), getattr(theirs, attribute)
        if a != b:
            found[attribute] = (a, b)
    if theirs.type != "string":
        factor = _UNIT_FACTORS.get(
            (theirs.unit, ours.unit), 1.0 if theirs.unit == ours.unit else 0.0
        )
        if factor == 0.0:
            found["unit"] = (ours.unit, theirs.unit)
        elif not math.isclose(ours.scale, theirs.scale * factor, rel_tol=1e-12):
            found["scale"] = (ours.scale, theirs.scale * factor)
        if theirs.invalid is not None and ours.invalid != theirs.invalid:
            found["invalid"] = (sorted(ours.invalid or ()), sorted(theirs.invalid))
    return found


def compare(name: str) -> dict[tuple[str, str], tuple[object, object]]:
    profile = load_profiles()[name]
    reference = reference_entries(name)
    found = {}
    for field, ours in profile_entries(profile).items():
        assert field in reference, f"{name}: {field} has no register in the reference map"
        for attribute, pair in differences(ours, reference[field]).items():
            found[(field, attribute)] = pair
    return found


def counts(name: str) -> tuple[int, int, int]:
    """(agreed, fixed, differ with a reason) over the profile's registers and strings."""
    found = {field for field, _ in compare(name)}
    entries = profile_entries(load_profiles()[name])
    fixed = sum(1 for e in entries.values() if e.note.startswith("fixed:") and e.field not in found)
    differ = len(found)
    return len(entries) - fixed - differ, fixed, differ


@pytest.mark.parametrize("name", CHECKED)
def test_profile_agrees_with_its_reference_map_but_for_the_listed_differences(name: str) -> None:
    found = compare(name)
    expected = {(f, a) for (p, f, a) in EXPECTED_DIFFERENCES if p == name}
    assert set(found) == expected, {k: found.get(k, "agrees now") for k in set(found) ^ expected}


@pytest.mark.parametrize("name", CHECKED)
def test_every_difference_and_fix_is_explained_in_the_profile(name: str) -> None:
    entries = profile_entries(load_profiles()[name])
    for profile, field, _attribute in EXPECTED_DIFFERENCES:
        if profile == name:
            assert entries[field].note, f"{name}: {field} differs from the reference, no note"
    raw = yaml.safe_load((default_devices_dir() / f"{name}.yaml").read_text())
    assert "reference_maps" in raw["reference_check"]


@pytest.mark.parametrize("name", CHECKED)
def test_state_codes_agree_with_the_reference(name: str) -> None:
    profile = load_profiles()[name]
    ours = {code for s in profile.states for code in range(s.first, s.last + 1)}
    theirs = set(reference_states(name))
    unmapped, _reason = EXPECTED_UNMAPPED_STATES.get(name, (frozenset(), ""))
    assert ours - theirs == set(), f"{name}: codes the reference does not list"
    assert theirs - ours == unmapped


@pytest.mark.parametrize("name", CHECKED)
def test_counts_per_profile(name: str) -> None:
    assert counts(name) == EXPECTED_COUNTS[name]
