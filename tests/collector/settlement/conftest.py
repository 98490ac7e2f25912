"""Settlement tests share hand-computable cases (``settle_cases.py`` next to this file).

The test suite runs with ``--import-mode=importlib``, which puts no test folder on
``sys.path``; this folder is added so the tests can ``import settle_cases``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
