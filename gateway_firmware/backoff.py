"""The wait before a gateway's next connection attempt: exponential, capped and randomised.

paho's own backoff doubles from ``min`` to ``max`` but is the same for every client: after a
broker restart or a district power cut every gateway would knock at the same second, again
and again (a thundering herd). Each wait here is drawn uniformly between ``min_s`` and the
attempt's ceiling ``min(max_s, min_s * 2**(attempt + 1))``, so the ceiling doubles per failed
attempt up to ``max_s`` and the gateways spread out over the whole window.
"""

from __future__ import annotations

import random


def backoff_ceiling_s(attempt: int, min_s: float, max_s: float) -> float:
    """The longest wait after ``attempt`` failed attempts in a row (0: the first retry) [s]."""
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, not {attempt}")
    if not 0 < min_s <= max_s:
        raise ValueError(f"need 0 < min_s <= max_s, not {min_s}, {max_s}")
    # 2**attempt overflows float for huge attempts: the cap is reached long before
    return min(max_s, min_s * 2.0 ** min(attempt + 1, 64))


def backoff_delay_s(attempt: int, min_s: float, max_s: float, rng: random.Random) -> float:
    """A randomised wait before the next attempt, between ``min_s`` and the ceiling [s]."""
    return rng.uniform(min_s, backoff_ceiling_s(attempt, min_s, max_s))
