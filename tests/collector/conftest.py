"""Collector tests share hypothesis strategies for wire readings (``wire_strategies.py``).

The suite runs with ``--import-mode=importlib``, which puts no test folder on ``sys.path``;
this folder is added so the tests can ``import wire_strategies``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
