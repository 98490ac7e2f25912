"""The gateway's copy of the SunSpec model definitions: unchanged from the SunSpec Alliance's
pysunspec2, and placed as the specification's published offsets say."""

from __future__ import annotations

import importlib.resources
import json
from typing import Any

import pytest
import sunspec2.device as sunspec2_device

from gateway_firmware.modbus.codec import NUMERIC_TYPES
from gateway_firmware.sunspec.definitions import (
    TYPE_SIZES,
    GroupDef,
    catalogue_ids,
    model_definition,
    model_name,
    require_definition,
)
from gateway_firmware.sunspec.layout import place_model

PYSUNSPEC2_MODELS = importlib.resources.files("sunspec2").joinpath("models", "json")


def test_every_file_is_pysunspec2s_own() -> None:
    theirs = sorted(
        int(p.name[6:-5]) for p in PYSUNSPEC2_MODELS.iterdir() if p.name.startswith("model_")
    )
    assert list(catalogue_ids()) == theirs
    ours = importlib.resources.files("gateway_firmware.sunspec").joinpath("json")
    for model_id in theirs:
        name = f"model_{model_id}.json"
        assert ours.joinpath(name).read_bytes() == PYSUNSPEC2_MODELS.joinpath(name).read_bytes()


@pytest.mark.parametrize("model_id", catalogue_ids())
def test_every_definition_parses_with_known_types(model_id: int) -> None:
    definition = require_definition(model_id)
    assert definition.model_id == model_id and definition.name

    def types(group: object) -> set[str]:
        found = {p.type for p in group.points}  # type: ignore[attr-defined]
        for sub in group.groups:  # type: ignore[attr-defined]
            found |= types(sub)
        return found

    for type_name in types(definition.group):
        assert type_name in TYPE_SIZES or type_name == "string"
        assert type_name in NUMERIC_TYPES or type_name in ("string", "eui48", "ipv6addr")
    declared_l = definition.group.points[1].value
    if declared_l is not None and not definition.repeats:
        assert definition.fixed_length == declared_l


def test_offsets_match_the_published_specification() -> None:
    # offsets from the SunSpec Information Model Specification's tables (register 40000 base:
    # 40072 W, 40094 WH of model 103 after a 66-long model 1), counted from the model's ID
    inverter = place_model(require_definition(103), 0, 50)
    published = {"A": 2, "A_SF": 6, "PhVphA": 10, "V_SF": 13, "W": 14, "W_SF": 15, "Hz": 16,
                 "WH": 24, "WH_SF": 26, "DCV": 29, "DCW": 31, "TmpCab": 33, "Tmp_SF": 37,
                 "St": 38, "StVnd": 39, "Evt1": 40, "EvtVnd4": 50}  # fmt: skip
    assert {name: inverter.points[name].address for name in published} == published
    assert inverter.points["WH"].sf_path == "WH_SF"
    float_inverter = place_model(require_definition(113), 0, 60)
    assert (float_inverter.points["W"].address, float_inverter.points["St"].address) == (22, 48)
    common = place_model(require_definition(1), 0, 66)
    assert [common.points[n].address for n in ("Mn", "Md", "Opt", "Vr", "SN", "DA")] == [
        2, 18, 34, 42, 50, 66
    ]  # fmt: skip


def _pysunspec2_offsets(group: Any, prefix: str = "") -> dict[str, int]:
    """Every point's offset from the model's ID register, as pysunspec2 places it."""
    found = {prefix + name: point.offset for name, point in group.points.items()}
    for name, sub in group.groups.items():
        if isinstance(sub, list):
            for index, instance in enumerate(sub, start=1):
                found |= _pysunspec2_offsets(instance, f"{prefix}{name}[{index}].")
        else:
            found |= _pysunspec2_offsets(sub, f"{prefix}{name}.")
    return found


def _two_of_each(group: GroupDef) -> dict[str, Any]:
    """pysunspec2 data giving every point-counted group two instances."""
    data: dict[str, Any] = {}
    for sub in group.groups:
        if isinstance(sub.count, str):
            data[sub.count] = 2
            data[sub.name] = [_two_of_each(sub), _two_of_each(sub)]
        elif sub.count is None:
            data[sub.name] = _two_of_each(sub)
    for sub in group.groups:  # counts may live in the parent: keep them at this level too
        data |= {k: v for k, v in _two_of_each(sub).items() if isinstance(v, int)}
    return data


@pytest.mark.parametrize("model_id", catalogue_ids())
def test_every_point_where_pysunspec2_places_it(model_id: int) -> None:
    definition = require_definition(model_id)
    by_length = [g for g in definition.group.groups if g.count == 0]
    length = definition.fixed_length + sum(2 * g.points_length for g in by_length)
    theirs = sunspec2_device.Model(
        model_id=model_id, model_len=length if by_length else 0, data=_two_of_each(definition.group)
    )
    assert not theirs.error_info
    expected = _pysunspec2_offsets(theirs)
    length = max(length, max(expected.values()) + 8)
    registers: dict[int, int] = {}
    placed = place_model(definition, 0, length, registers)
    for _ in range(4):
        for point in placed.unresolved:
            registers[point.address] = 2
        placed = place_model(definition, 0, length, registers)
    ours = {path: p.address for path, p in placed.points.items() if path in expected}
    assert ours == expected


def test_repeating_groups_counted_by_length_and_by_point() -> None:
    mppt = place_model(require_definition(160), 1000, 8 + 2 * 20)
    assert mppt.counts == {"module": 2}
    assert mppt.points["module[2].DCV"].address == 1000 + 10 + 20 + 10
    assert mppt.points["module[1].DCV"].sf_path == "DCV_SF"  # the model's top-level one
    dc = require_definition(714)
    unresolved = place_model(dc, 0, 200)
    assert [p.path for p in unresolved.unresolved] == ["NPrt"]
    ports = place_model(dc, 0, 200, {unresolved.points["NPrt"].address: 3})
    assert ports.counts == {"Prt": 3}
    assert ports.instances("Prt") == ["Prt[1].", "Prt[2].", "Prt[3]."]
    short = place_model(dc, 0, dc.fixed_length + 30, {unresolved.points["NPrt"].address: 3})
    assert short.counts == {"Prt": 1}  # L holds one port: a count past L is not believed
    not_implemented = place_model(dc, 0, 200, {unresolved.points["NPrt"].address: 0xFFFF})
    assert not_implemented.counts["Prt"] == (200 - dc.fixed_length) // 25


def test_names_for_scan() -> None:
    assert model_name(701) == "DER AC Measurement"
    assert model_name(64999) == "vendor model (not in the SunSpec catalogue)"
    assert model_name(4242) == "unknown model (not in the SunSpec catalogue)"
    assert model_definition(4242) is None
    assert (
        json.loads(PYSUNSPEC2_MODELS.joinpath("model_203.json").read_text())["group"]["name"]
        == require_definition(203).name
    )
