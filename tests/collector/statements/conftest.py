"""Statement tests use the settlement tests' hand-computable fleet and readings.

``statement_cases.py`` (next to this file) issues real runs with the settlement engine into a
temporary store; ``settle_cases.py`` from ``tests/collector/settlement`` provides the data.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
for folder in (_HERE, _HERE.parent / "settlement"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
