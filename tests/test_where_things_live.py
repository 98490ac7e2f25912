"""docs/where-things-live.md tells the truth about the tree and the layer contracts."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "where-things-live.md").read_text(encoding="utf-8")


def _section(name: str) -> str:
    match = re.search(rf"<!-- {name} -->\n(.*?)<!-- /{name} -->", DOC, re.S)
    assert match, f"docs/where-things-live.md has no <!-- {name} --> section"
    return match.group(1)


def _listed_paths(name: str) -> set[str]:
    return set(re.findall(r"^\| `([^`]+)` \|", _section(name), re.M))


def _packages_and_modules(package: str) -> set[str]:
    """Subpackages (``pkg/sub/``) and top-level modules (``pkg/mod.py``) of a package."""
    base = ROOT / package
    found = {
        f"{package}/{p.name}/"
        for p in base.iterdir()
        if p.is_dir() and (p / "__init__.py").exists()
    }
    found |= {f"{package}/{p.name}" for p in base.glob("*.py") if p.name != "__init__.py"}
    return found


def test_every_server_package_and_module_is_on_the_map() -> None:
    assert _listed_paths("server") == _packages_and_modules("collector")


def test_every_gateway_package_and_module_is_on_the_map() -> None:
    assert _listed_paths("gateway") == _packages_and_modules("gateway_firmware")


def test_every_other_listed_folder_exists() -> None:
    for path in _listed_paths("top"):
        assert (ROOT / path).is_dir(), path


def test_the_layers_on_the_map_are_the_enforced_contract() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c for c in contracts if c["type"] == "layers" and c["containers"] == ["collector"]]
    enforced = [sorted(part.strip() for part in layer.split("|")) for layer in layers["layers"]]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", _section("layers"), re.M)
    documented = [sorted(re.findall(r"`([^`]+)`", packages)) for _, packages in rows]
    assert documented == enforced
    assert [int(n) for n, _ in rows] == list(range(1, len(rows) + 1))
