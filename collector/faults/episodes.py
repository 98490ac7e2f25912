"""From a detection's (device, time) mask to findings: one per uninterrupted episode."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import numpy.typing as npt

from collector.faults.model import DEFAULT_SEVERITY, Detection, FaultKind, Finding, Severity

_MESSAGES: dict[FaultKind, str] = {
    FaultKind.GATEWAY_OFFLINE: "gateway {gateway} has sent nothing since {start}",
    FaultKind.DEVICE_OFFLINE: "inverter {device} has not answered since {start} (its gateway is up)",
    FaultKind.NO_PRODUCTION: "inverter {device} produces nothing in daylight while its neighbours do",
    FaultKind.FAULT_STATE: "inverter {device} reports a fault",
    FaultKind.UNDERPERFORMANCE: "inverter {device} yields well below its usual share of the fleet",
    FaultKind.STRING_IMBALANCE: "one string of inverter {device} delivers far less than its siblings",
    FaultKind.FROZEN_VALUE: "inverter {device} keeps reporting the same value",
    FaultKind.COUNTER_ANOMALY: "the energy counter of inverter {device} jumped or went backwards",
    FaultKind.IMPLAUSIBLE_VALUE: "inverter {device} reported a power its rating cannot give",
    FaultKind.GAP: "no readings of inverter {device} from {start}",
    FaultKind.OUTLIER: "inverter {device} reported a value far from its neighbours",
    FaultKind.CLIPPING: "inverter {device} is held at its AC rating (clipping)",
    FaultKind.NIGHT_PRODUCTION: "inverter {device} reports production at night (check the clock)",
}


def _to_datetime(value: np.datetime64) -> datetime:
    seconds = int(np.asarray(value).astype("datetime64[s]").astype(np.int64))
    return datetime.fromtimestamp(seconds, UTC)


def _scalar(value: float) -> float | int | str:
    if not np.isfinite(value):
        return "nan"
    return round(float(value), 4)


def findings(
    detection: Detection,
    times: npt.NDArray[np.datetime64],
    device_ids: Sequence[str],
    gateway_ids: Sequence[str],
    *,
    severity: Severity | None = None,
) -> list[Finding]:
    """One finding per run of ``detection.active`` per device.

    Parameters
    ----------
    detection
        The detector's output; ``active`` has shape (D, T).
    times
        Time of each step (or day), shape (T,), UTC ``datetime64``.
    device_ids, gateway_ids
        Per device (D).
    severity
        Overrides the kind's default severity.

    Returns
    -------
    list of Finding
        Ordered by device, then start. Evidence holds each evidence array's value at the
        first step (``<name>_at_start``) and the last step (``<name>``) of the run.
    """
    active = detection.active
    if active.shape != (len(device_ids), len(times)):
        raise ValueError(
            f"active has shape {active.shape}, expected ({len(device_ids)}, {len(times)})"
        )
    out: list[Finding] = []
    sev = severity if severity is not None else DEFAULT_SEVERITY[detection.kind]
    t = active.shape[1]
    padded = np.zeros((active.shape[0], t + 2), dtype=np.int8)
    padded[:, 1:-1] = active
    diff = np.diff(padded, axis=1)
    for d_index, row in enumerate(diff):
        starts = np.flatnonzero(row == 1)
        ends = np.flatnonzero(row == -1) - 1
        for s, e in zip(starts, ends, strict=True):
            evidence: dict[str, float | int | str] = {"steps": int(e - s + 1)}
            for name, arr in detection.evidence.items():
                evidence[f"{name}_at_start"] = _scalar(arr[d_index, s])
                evidence[name] = _scalar(arr[d_index, e])
            start = _to_datetime(times[s])
            message = _MESSAGES[detection.kind].format(
                device=device_ids[d_index],
                gateway=gateway_ids[d_index],
                start=start.strftime("%Y-%m-%d %H:%M UTC"),
            )
            out.append(
                Finding(
                    kind=detection.kind,
                    device_id=device_ids[d_index],
                    gateway_id=gateway_ids[d_index],
                    start=start,
                    last=_to_datetime(times[e]),
                    ongoing=bool(e == t - 1),
                    severity=sev,
                    evidence=evidence,
                    message=message,
                )
            )
    return out
