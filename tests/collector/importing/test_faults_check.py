"""``zonnewijk faults check`` on sample files: every injected fault found where it was put.

The files are written here from pvlib's clear sky over a south roof in Zwolle with a cloud
factor per day and a little noise (a live inverter never repeats its power to the watt), in
the generic CSV; the same faults are injected at 1-minute, 15-minute and 1-hour sampling.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from collector.cli import main
from collector.faults.solar import clear_sky_poa_w_m2

START = datetime(2026, 6, 1, tzinfo=UTC)
DAYS = 21
KWP = 4.5
RATING_W = 3600.0


def day_at(day: int, hour: float) -> datetime:
    return START + timedelta(days=day, hours=hour)


def clean_power(
    step_s: int, devices: int, seed: int = 3, half_from_day: dict[int, int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Step starts and AC power (devices, T) of healthy roofs [W]; the devices of
    ``half_from_day`` lose half their panels' output from that day on (before the inverter
    clips, as a lost string does)."""
    rng = np.random.default_rng(seed)
    n = DAYS * 86400 // step_s
    starts = np.datetime64(START.replace(tzinfo=None), "s") + np.arange(n) * np.timedelta64(
        step_s, "s"
    )
    poa = clear_sky_poa_w_m2(starts + np.timedelta64(step_s // 2, "s"), 35.0, 180.0)
    clouds = rng.uniform(0.45, 1.0, DAYS)
    clouds[::3] = 1.0  # a clear day every three days
    day = np.arange(n) * step_s // 86400
    power = np.empty((devices, n))
    for d in range(devices):
        noise = 1 + 0.02 * rng.standard_normal(n)
        loss = np.where(day >= (half_from_day or {}).get(d, DAYS), 0.5, 1.0)
        panels = poa / 1000 * KWP * 1000 * 0.85 * clouds[day] * noise * loss
        power[d] = np.minimum(panels, RATING_W)
    return starts, np.round(np.maximum(power, 0.0), 1)


def write_csv(path: Path, starts: np.ndarray, power: np.ndarray, step_s: int,
              keep: np.ndarray | None = None, counter_offset: np.ndarray | None = None) -> None:  # fmt: skip
    counter = 5_000_000 + np.cumsum(power, axis=1) * step_s / 3600.0
    if counter_offset is not None:
        counter = counter + counter_offset
    lines = ["ts,device_id,ac_power_w,ac_energy_wh"]
    for d in range(power.shape[0]):
        for j, ts in enumerate(starts):
            if keep is not None and not keep[d, j]:
                continue
            stamp = str(ts.astype("datetime64[s]")) + "Z"
            lines.append(f"{stamp},INV-{d},{power[d, j]:.1f},{counter[d, j]:.1f}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def check(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    assert main(["faults", "check", "--format", "json", *args]) == 0
    return json.loads(capsys.readouterr().out)  # type: ignore[no-any-return]


def index_at(starts: np.ndarray, when: datetime) -> int:
    return int(np.searchsorted(starts, np.datetime64(when.replace(tzinfo=None), "s")))


def inject(starts: np.ndarray, power: np.ndarray, step_s: int) -> tuple[np.ndarray, np.ndarray]:
    """The faults of :data:`EXPECTED` in device 0 (its loss of half from day 15 is made by
    :func:`clean_power`); returns (rows kept, counter offset)."""

    def at(day: int, hour: float) -> int:
        return index_at(starts, day_at(day, hour))

    # stale: the 07:00 value repeated until 09:30 (a morning below the clipping level)
    power[0, at(4, 7) : at(4, 9.5)] = power[0, at(4, 7)]
    # an outlier: one reading at a tenth of its neighbours (a scaling slip)
    power[0, at(5, 11)] = round(power[0, at(5, 11)] * 0.1, 1)
    # production at night (the sun about 13 degrees below the horizon at 23:00 UTC in June),
    # 23:00-00:00, moving as a clock error's daytime power would
    night = slice(at(7, 23), at(8, 0))
    power[0, night] = 800.0 + np.arange(night.stop - night.start) % 7
    keep = np.ones(power.shape, dtype=bool)
    keep[0, at(9, 10) : at(9, 11.5)] = False  # a gap
    offset = np.zeros(power.shape)
    offset[0, at(11, 12) :] = -50_000.0  # the counter steps back 50 kWh
    return keep, offset


#: kind -> the UTC span it was injected in (start, end) in device 0.
EXPECTED = {
    "frozen_value": (day_at(4, 7), day_at(4, 9.5)),
    "outlier": (day_at(5, 11), day_at(5, 11.02)),
    "night_production": (day_at(7, 23), day_at(8, 0)),
    "gap": (day_at(9, 10), day_at(9, 11.5)),
    "counter_anomaly": (day_at(11, 12), day_at(11, 12.02)),
    "underperformance": (day_at(15, 0), day_at(DAYS, 0)),
}


@pytest.mark.parametrize("step_s", [60, 900, 3600])
def test_one_device_alone_every_injected_fault_is_found_and_nothing_else(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], step_s: int
) -> None:
    starts, power = clean_power(step_s, 1, half_from_day={0: 15})
    keep, offset = inject(starts, power, step_s)
    path = tmp_path / "one.csv"
    write_csv(path, starts, power, step_s, keep, offset)
    result = check(
        capsys, str(path), "--ac-rating-w", str(RATING_W), "--site-kwp", str(KWP),
        "--lat", "52.52", "--lon", "6.10", "--tilt", "35", "--azimuth", "180",
    )  # fmt: skip
    assert result["step_s"] == step_s
    assert result["underperformance_by"] == "clear_sky"
    found: dict[str, list[tuple[datetime, datetime]]] = {}
    for f in result["findings"]:  # type: ignore[attr-defined]
        assert f["device"] == "INV-0"
        span = (datetime.fromisoformat(f["start"]), datetime.fromisoformat(f["end"]))
        found.setdefault(f["kind"], []).append(span)
        assert set(f) == {"kind", "device", "start", "end", "evidence"}
    for kind, (start, end) in EXPECTED.items():
        spans = found.get(kind, [])
        assert spans, f"{kind} not found at {step_s} s: {found}"
        slack = timedelta(seconds=max(step_s, 900))
        assert any(s <= end + slack and e >= start - slack for s, e in spans), (kind, spans)
    # nothing found where nothing was injected (clipping is information, not a fault)
    for kind, spans in found.items():
        if kind in ("clipping", "implausible_value"):
            continue
        start, end = EXPECTED[kind]
        slack = timedelta(days=1) if kind == "underperformance" else timedelta(hours=2)
        for s, e in spans:
            assert s >= start - slack and e <= end + slack, (kind, s, e)
    assert "clipping" in found  # clear days reach the 3.6 kW rating with 4.5 kWp


def test_several_devices_are_compared_with_their_peers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    starts, power = clean_power(900, 6, half_from_day={2: 15})  # one roof loses half
    path = tmp_path / "six.csv"
    write_csv(path, starts, np.round(power, 1), 900)
    result = check(capsys, str(path), "--ac-rating-w", str(RATING_W), "--site-kwp", str(KWP))
    assert result["underperformance_by"] == "peers"
    under = [f for f in result["findings"] if f["kind"] == "underperformance"]  # type: ignore[attr-defined]
    assert {f["device"] for f in under} == {"INV-2"}
    assert datetime.fromisoformat(under[0]["start"]) >= day_at(15, 0)


def test_a_table_names_each_finding_and_unreadable_rows_with_their_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    starts, power = clean_power(900, 1, half_from_day={0: 15})
    keep, offset = inject(starts, power, 900)
    path = tmp_path / "one.csv"
    write_csv(path, starts, power, 900, keep, offset)
    with path.open("a", encoding="utf-8") as out:
        out.write("2026-06-22T10:00:00Z,INV-0,lots,1\n")
    assert main(["faults", "check", str(path), "--ac-rating-w", "3600"]) == 0
    table = capsys.readouterr().out
    assert "invalid_ac_power_w 1" in table
    assert f"line {sum(1 for _ in path.open())}: invalid_ac_power_w" in table
    for kind in ("frozen_value", "outlier", "night_production", "gap", "counter_anomaly"):
        assert any(line.startswith(kind) for line in table.splitlines()), kind


def test_a_file_of_one_reading_is_refused_with_a_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tiny.csv"
    path.write_text("ts,device_id,ac_power_w\n2026-06-01T10:00:00Z,INV-0,100\n", encoding="utf-8")
    assert main(["faults", "check", str(path)]) == 2
    assert "sampling interval" in capsys.readouterr().err


VENDOR = Path(__file__).parent / "data"


def test_a_vendor_export_is_checked_with_the_fleets_ratings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the FusionSolar sample with INV-S2 stuck on its 11:35 reading until 12:40 (local time,
    # 09:35-10:40 UTC) and one reading at 3 kW above its neighbours at 13:00 local
    lines = (VENDOR / "fusionsolar_inverter_report.csv").read_text("utf-8").splitlines()
    stuck = next(i for i, x in enumerate(lines) if x.startswith("2026-06-10 11:35:00,Dongle-2"))
    for k in range(1, 14):
        time_cell = lines[stuck + k].split(",", 1)[0]
        lines[stuck + k] = time_cell + "," + lines[stuck].split(",", 1)[1]
    spike = next(i for i, x in enumerate(lines) if x.startswith("2026-06-10 13:00:00,Dongle-2"))
    cells = lines[spike].split(",")
    cells[3] = f"{float(cells[3]) + 3.0:.3f}"
    lines[spike] = ",".join(cells)
    path = tmp_path / "report.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = check(capsys, str(path), "--fleet", str(VENDOR / "fleet.yaml"))
    assert result["ac_rating_w"] == {"INV-S1": 3680.0, "INV-S2": 3680.0}
    assert result["step_s"] == 300
    kinds = {(f["kind"], f["device"], f["start"][:16]) for f in result["findings"]}  # type: ignore[attr-defined]
    assert ("frozen_value", "INV-S2", "2026-06-10T09:35") in kinds
    assert ("outlier", "INV-S2", "2026-06-10T11:00") in kinds
    assert all(device == "INV-S2" for _, device, _ in kinds)


def test_interval_energy_of_a_sunny_portal_download_is_checked_as_its_mean_power(
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = VENDOR / "sunny_portal_pv_generation.csv"
    result = check(capsys, str(path), "--device", "INV-S1", "--ac-rating-w", "3680")
    assert result["devices"] == ["INV-S1"] and result["step_s"] == 900
    assert result["rows"] > 100 and result["findings"] == []


def test_a_gateways_spool_is_checked_on_a_one_minute_grid(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway_firmware.spool import Spool
    from zonnewijk_wire import InverterState, Reading

    t0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    readings = [
        Reading(
            device_id="INV-S1",
            ts=t0 + timedelta(seconds=30 * k),
            # stuck on the 10:00 value from 10:00 to 11:00, moving otherwise
            ac_power_w=1500.0 + (120 if 120 <= k < 240 else k % 37),
            ac_energy_wh=2_000_000.0 + 12.5 * k,
            state=InverterState.PRODUCING,
        )
        for k in range(360)
    ]
    path = tmp_path / "spool.sqlite3"
    with Spool(path) as spool:
        spool.append(readings)
    result = check(capsys, str(path), "--gateway", "GW-S1", "--ac-rating-w", "3680")
    assert result["step_s"] == 60  # 30 s readings: the grid's finest step, the last one counts
    frozen = [f for f in result["findings"] if f["kind"] == "frozen_value"]  # type: ignore[attr-defined]
    assert len(frozen) == 1 and frozen[0]["start"][11:16] == "10:00"
    # the server's frozen check clears after two moving steps: the end is 11:00-11:02
    assert "11:00" <= frozen[0]["end"][11:16] <= "11:02"
