"""Checks that make readings safe for billing: flag, never "fix".

Pure functions; :class:`CounterCheck` keeps the little state needed between polls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from zonnewijk_wire import ReadingFlag

#: Rating assumed when a device's AC rating is not configured: a large home inverter [W].
DEFAULT_RATED_AC_POWER_W = 15_000.0
#: Headroom over the rating before an energy step counts as a jump [-].
JUMP_MARGIN = 1.2
#: Power above rating x this is not a measurement (e.g. 65535 W from a glitched read) [-].
POWER_MARGIN = 1.5
#: Counter resolution allowance, covering coarse counters (whole kWh, e.g. Sungrow 5004) [Wh].
JUMP_TOLERANCE_WH = 1_000.0


def max_energy_step_wh(rated_ac_power_w: float, elapsed_s: float) -> float:
    """Largest plausible rise of the lifetime counter between two polls.

    Parameters
    ----------
    rated_ac_power_w
        The inverter's AC rating [W].
    elapsed_s
        Time between the two polls [s].

    Returns
    -------
    float
        Energy the inverter can at most have produced, with margin and tolerance [Wh].
    """
    return rated_ac_power_w * JUMP_MARGIN * max(elapsed_s, 0.0) / 3600.0 + JUMP_TOLERANCE_WH


def counter_flags(
    previous_wh: float, current_wh: float, elapsed_s: float, rated_ac_power_w: float
) -> set[ReadingFlag]:
    """Flags for a counter step from ``previous_wh`` to ``current_wh``.

    Parameters
    ----------
    previous_wh
        Counter at the previous trusted poll [Wh].
    current_wh
        Counter now [Wh].
    elapsed_s
        Time between the polls [s].
    rated_ac_power_w
        The inverter's AC rating [W].
    """
    if current_wh < previous_wh:
        return {ReadingFlag.COUNTER_BACKWARDS}
    if current_wh - previous_wh > max_energy_step_wh(rated_ac_power_w, elapsed_s):
        return {ReadingFlag.COUNTER_JUMP}
    return set()


def power_is_plausible(ac_power_w: float, rated_ac_power_w: float) -> bool:
    """Whether an AC power reading can be real.

    Parameters
    ----------
    ac_power_w
        Power as read [W].
    rated_ac_power_w
        The inverter's AC rating [W].
    """
    return abs(ac_power_w) <= rated_ac_power_w * POWER_MARGIN


@dataclass
class CounterCheck:
    """Remembers the baseline counter of one device between polls.

    After a flagged jump (a spike) the baseline stays at the last trusted value, so the reading
    after a spike is not flagged as going backwards. After a backwards step the new, lower value
    becomes the baseline (a reset or a replaced inverter is flagged once, not forever).
    """

    rated_ac_power_w: float = DEFAULT_RATED_AC_POWER_W
    baseline_wh: float | None = None
    baseline_ts: datetime | None = None

    def check(self, current_wh: float | None, ts: datetime) -> set[ReadingFlag]:
        """Flags for a counter value read at ``ts``; updates the baseline [Wh]."""
        if current_wh is None:
            return set()
        if self.baseline_wh is None or self.baseline_ts is None:
            self.baseline_wh, self.baseline_ts = current_wh, ts
            return set()
        elapsed_s = (ts - self.baseline_ts).total_seconds()
        flags = counter_flags(self.baseline_wh, current_wh, elapsed_s, self.rated_ac_power_w)
        if ReadingFlag.COUNTER_JUMP not in flags:
            self.baseline_wh, self.baseline_ts = current_wh, ts
        return flags
