"""Which inverter profiles a gateway has, and which one reads a registry device family."""

from __future__ import annotations

import os
import sys
from pathlib import Path

#: Registry device family → the gateway profile that reads it (``sunspec`` is discovered).
PROFILE_OF_FAMILY = {
    "sunspec-int": "sunspec",
    "sunspec-float": "sunspec",
    "huawei": "huawei-sun2000",
    "sungrow": "sungrow-sg",
    "growatt": "growatt",
}


def devices_dir() -> Path:
    """The profile files: ``$ZONNEWIJK_DEVICES_DIR``, the source tree's ``config/devices``, or
    the copy installed with the package (``<prefix>/share/zonnewijk/devices``)."""
    if env := os.environ.get("ZONNEWIJK_DEVICES_DIR"):
        return Path(env)
    in_tree = Path(__file__).resolve().parents[2] / "config" / "devices"
    if in_tree.is_dir():
        return in_tree
    return Path(sys.prefix) / "share" / "zonnewijk" / "devices"


def profile_names(directory: Path | None = None) -> frozenset[str]:
    """Profile names a gateway accepts: the profile files' names (``sunspec`` among them)."""
    folder = directory or devices_dir()
    return frozenset({"sunspec", *(p.stem for p in folder.glob("*.yaml"))})
