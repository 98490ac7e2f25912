"""The environment a bench starts ``zonnewijk-gateway run`` with.

The gateway holds every reading while its clock is not synchronised (docs/clock.md). This
machine's kernel reports an unsynchronised clock (adjtimex: STA_UNSYNC, and no timesyncd or
chrony), so a bench gateway would publish nothing. Benches measure the data path, not the
clock, so they tell the gateway to trust the clock, as tests/conftest.py and the demo do; an
explicit ``ZONNEWIJK_GATEWAY_CLOCK_SYNC`` in the environment still wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def gateway_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the repository on PYTHONPATH and
    the gateway's clock trusted unless the environment says otherwise."""
    env = dict(os.environ if base is None else base)
    env.setdefault("ZONNEWIJK_GATEWAY_CLOCK_SYNC", "trust")
    env["PYTHONPATH"] = str(REPO)
    return env
