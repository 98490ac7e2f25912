"""The packaging test reuses the fleet server fixture (``tests/collector/fleet_fixtures.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

_COLLECTOR_TESTS = str(Path(__file__).resolve().parents[1] / "collector")
if _COLLECTOR_TESTS not in sys.path:
    sys.path.insert(0, _COLLECTOR_TESTS)

from fleet_fixtures import fleet_server  # noqa: E402

__all__ = ["fleet_server"]
