"""Plot simulated days for a few sites (``docs/simulator-days.png``).

python -m collector.simulator.plot [--out docs/simulator-days.png] [--seed 1]
    [--summer 2026-06-21] [--winter 2026-12-21]
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from collector.simulator.engine import Simulation, utc_midnight
from collector.simulator.fleet import Fleet, Site, generate_fleet


def pick_sites(fleet: Fleet) -> list[Site]:
    """A south, an east, a west, a shaded and a clipping roof, where the fleet has them."""
    picks: list[Site] = []

    def first(predicate: object) -> None:
        for site in fleet.sites:
            if site not in picks and predicate(site):  # type: ignore[operator]
                picks.append(site)
                return

    first(lambda s: s.orientation == "south" and not s.shaded and s.dc_ac_ratio < 1.1)
    first(lambda s: s.orientation == "east" and not s.shaded)
    first(lambda s: s.orientation == "west" and not s.shaded)
    first(lambda s: s.shaded)
    first(lambda s: s.orientation == "south" and s.dc_ac_ratio > 1.3)
    return picks


def plot_days(fleet: Fleet, days: list[date], path: Path, interval_s: int = 300) -> None:
    """Plot AC power of a few sites on each of ``days`` (local time) and save a PNG."""
    sites = pick_sites(fleet)
    fig, axes = plt.subplots(len(days), 1, figsize=(10, 3.6 * len(days)), constrained_layout=True)
    for ax, day in zip(np.atleast_1d(axes), days, strict=True):
        start = utc_midnight(day) - timedelta(hours=2)
        sim = Simulation(fleet, start, start + timedelta(days=1), interval_s)
        chunks = list(sim.chunks())
        power = np.concatenate([c.ac_power_w for c in chunks])
        epoch = np.concatenate([c.epoch_s for c in chunks])
        local = pd.to_datetime(epoch, unit="s", utc=True).tz_convert("Europe/Amsterdam")
        hours = local.hour + local.minute / 60.0
        for site in sites:
            label = (
                f"{site.site_id} {site.orientation}{' shaded' if site.shaded else ''}, "
                f"{site.kwp:.1f} kWp / {site.ac_rating_w / 1000:.1f} kW AC"
            )
            daily_kwh = float(np.nansum(power[:, site.index]) * interval_s / 3.6e6)
            ax.plot(hours, power[:, site.index], lw=1.1, label=f"{label}: {daily_kwh:.1f} kWh")
        ax.set_title(f"{day:%d %B %Y} (seed {fleet.seed})")
        ax.set_xlim(0, 24)
        ax.set_xticks(range(0, 25, 2))
        ax.set_xlabel("local time (Europe/Amsterdam) [h]")
        ax.set_ylabel("AC power [W]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Simulated Dieze-Oost rooftops, 5-minute readings")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description="plot simulated summer and winter days")
    parser.add_argument("--out", type=Path, default=Path("docs/simulator-days.png"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sites", type=int, default=122)
    parser.add_argument("--summer", type=date.fromisoformat, default=date(2026, 6, 21))
    parser.add_argument("--winter", type=date.fromisoformat, default=date(2026, 12, 21))
    args = parser.parse_args()
    plot_days(generate_fleet(args.sites, args.seed), [args.summer, args.winter], args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
