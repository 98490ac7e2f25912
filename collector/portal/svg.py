"""Charts as inline SVG drawn on the server: no JavaScript, no CDN, readable on a phone.

Pure functions from numbers to SVG markup; every text is escaped. The charts scale with the
page (``viewBox`` plus ``width: 100%`` in the stylesheet).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from collector.portal.production import PeriodBar

AMSTERDAM = ZoneInfo("Europe/Amsterdam")
WIDTH = 640
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 24, 28


def nice_ceiling(value: float) -> float:
    """A round axis maximum at or above ``value`` (1, 2, 2.5, 5 × 10^n)."""
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exponent = math.floor(math.log10(value))
    for step in (1.0, 2.0, 2.5, 5.0, 10.0):
        candidate = step * 10.0**exponent
        if candidate >= value:
            return candidate
    return float(10.0 ** (exponent + 1))


def _fmt(value: float) -> str:
    """Tick labels without needless decimals: 0, 0.25, 2.5, 750."""
    if value >= 100 or value == int(value):
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _axis(ymax: float, unit: str) -> list[str]:
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        v = ymax * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" class="tick">'
            f"{escape(_fmt(v))}</text>"
        )
    parts.append(f'<text x="4" y="{TOP - 10}" class="unit">{escape(unit)}</text>')
    return parts


def _open(title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'class="chart" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
    )


def power_curve_svg(
    points: Sequence[tuple[datetime, float]],
    day_start: datetime,
    day_end: datetime,
    *,
    title: str,
    unit: str = "kW",
    empty_text: str = "",
) -> str:
    """An area chart of power over one day.

    Parameters
    ----------
    points
        (time, power) pairs [UTC, W]
    day_start, day_end
        The x axis [UTC]
    """
    span = (day_end - day_start).total_seconds()
    kw = [(t, p / 1000.0) for t, p in points if day_start <= t < day_end]
    ymax = nice_ceiling(max((p for _, p in kw), default=0.0))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [_open(title), *_axis(ymax, unit)]
    for hour in range(0, 25, 3):
        x = LEFT + plot_w * min(hour * 3600 / span, 1.0)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle" class="tick">{hour:02d}</text>'
        )
    if not kw:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="empty">'
            f"{escape(empty_text)}</text>"
        )
    else:
        coords = []
        for t, p in kw:
            x = LEFT + plot_w * (t - day_start).total_seconds() / span
            y = TOP + plot_h - plot_h * max(p, 0.0) / ymax
            coords.append(f"{x:.1f},{y:.1f}")
        base = TOP + plot_h
        first_x = coords[0].split(",")[0]
        last_x = coords[-1].split(",")[0]
        parts.append(
            f'<polygon class="area" points="{first_x},{base} {" ".join(coords)} {last_x},{base}"/>'
            f'<polyline class="line" points="{" ".join(coords)}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bars_svg(
    bars: Sequence[PeriodBar],
    *,
    title: str,
    unit: str = "kWh",
    legend: tuple[str, str] | None = None,
    label_every: int = 1,
) -> str:
    """Bars per period, each with a thinner bar for the same period a year before [kWh]."""
    values = [v for b in bars for v in (b.kwh, b.kwh_last_year) if v is not None]
    ymax = nice_ceiling(max(values, default=0.0))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(bars), 1)
    parts = [_open(title), *_axis(ymax, unit)]
    for i, bar in enumerate(bars):
        x0 = LEFT + i * slot
        if bar.kwh_last_year is not None:
            h = plot_h * bar.kwh_last_year / ymax
            parts.append(
                f'<rect class="bar-prev" x="{x0 + slot * 0.1:.1f}" y="{TOP + plot_h - h:.1f}" '
                f'width="{slot * 0.35:.1f}" height="{h:.1f}"><title>{escape(bar.label)}: '
                f"{bar.kwh_last_year:.1f} {escape(unit)}</title></rect>"
            )
        if bar.kwh is not None:
            h = plot_h * bar.kwh / ymax
            left = x0 + slot * (0.45 if bar.kwh_last_year is not None or legend else 0.15)
            width = slot * (0.45 if bar.kwh_last_year is not None or legend else 0.7)
            parts.append(
                f'<rect class="bar" x="{left:.1f}" y="{TOP + plot_h - h:.1f}" '
                f'width="{width:.1f}" height="{h:.1f}"><title>{escape(bar.label)}: '
                f"{bar.kwh:.1f} {escape(unit)}</title></rect>"
            )
        if i % label_every == 0:
            parts.append(
                f'<text x="{x0 + slot / 2:.1f}" y="{HEIGHT - 8}" text-anchor="middle" '
                f'class="tick">{escape(bar.label)}</text>'
            )
    if legend:
        parts.append(
            f'<rect class="bar" x="{WIDTH - 250}" y="4" width="10" height="10"/>'
            f'<text x="{WIDTH - 236}" y="13" class="tick">{escape(legend[0])}</text>'
            f'<rect class="bar-prev" x="{WIDTH - 140}" y="4" width="10" height="10"/>'
            f'<text x="{WIDTH - 126}" y="13" class="tick">{escape(legend[1])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def progress_svg(value: float, target: float, *, title: str, labels: tuple[str, str]) -> str:
    """A horizontal bar: the year so far against its (prorated) guarantee [kWh]."""
    width, height = WIDTH, 56
    top = max(value, target, 1e-9) * 1.1
    vw = (width - 20) * value / top
    tx = 10 + (width - 20) * target / top
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" class="chart" '
        f'role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
        f'<rect class="track" x="10" y="8" width="{width - 20}" height="20" rx="4"/>'
        f'<rect class="bar" x="10" y="8" width="{vw:.1f}" height="20" rx="4"/>'
        f'<line class="target" x1="{tx:.1f}" x2="{tx:.1f}" y1="2" y2="34"/>'
        f'<text x="10" y="50" class="tick">{escape(labels[0])}</text>'
        f'<text x="{width - 10}" y="50" text-anchor="end" class="tick">{escape(labels[1])}</text>'
        "</svg>"
    )


def production_use_svg(
    points: Sequence[tuple[datetime, float, float]],
    day_start: datetime,
    day_end: datetime,
    *,
    title: str,
    legend: tuple[str, str],
    empty_text: str = "",
) -> str:
    """Production (area) against the home's consumption (line) over one day.

    Parameters
    ----------
    points
        (quarter-hour start, mean production, mean consumption) [UTC, W, W]
    day_start, day_end
        The x axis [UTC]
    """
    span = (day_end - day_start).total_seconds()
    inside = [(t, p / 1000.0, c / 1000.0) for t, p, c in points if day_start <= t < day_end]
    ymax = nice_ceiling(max((max(p, c) for _, p, c in inside), default=0.0))
    plot_w = WIDTH - LEFT - RIGHT
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [_open(title), *_axis(ymax, "kW")]
    for hour in range(0, 25, 3):
        x = LEFT + plot_w * min(hour * 3600 / span, 1.0)
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="middle" class="tick">{hour:02d}</text>'
        )
    if not inside:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" class="empty">'
            f"{escape(empty_text)}</text>"
        )
    else:
        base = TOP + plot_h

        def xy(t: datetime, kw: float) -> str:
            x = LEFT + plot_w * (t - day_start).total_seconds() / span
            return f"{x:.1f},{TOP + plot_h - plot_h * max(kw, 0.0) / ymax:.1f}"

        made = [xy(t, p) for t, p, _ in inside]
        used = [xy(t, c) for t, _, c in inside]
        first_x, last_x = made[0].split(",")[0], made[-1].split(",")[0]
        parts.append(
            f'<polygon class="area" points="{first_x},{base} {" ".join(made)} {last_x},{base}">'
            f"<title>{escape(legend[0])}</title></polygon>"
            f'<polyline class="line" points="{" ".join(made)}"/>'
            f'<polyline class="use" points="{" ".join(used)}"><title>{escape(legend[1])}</title>'
            "</polyline>"
        )
    parts.append(
        f'<rect x="{WIDTH - 220}" y="6" width="10" height="10" class="area"/>'
        f'<text x="{WIDTH - 205}" y="15" class="tick">{escape(legend[0])}</text>'
        f'<line x1="{WIDTH - 110}" x2="{WIDTH - 98}" y1="11" y2="11" class="use"/>'
        f'<text x="{WIDTH - 94}" y="15" class="tick">{escape(legend[1])}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
