"""The settlement data set as a JSON Lines file: what a run used, to settle it again offline.

``zonnewijk export readings`` writes it; ``zonnewijk settle --readings FILE --fleet FILE``
settles from it with no server at all and gets the same result to the cent. The format is
documented in ``docs/settlement.md``; in short, one JSON object per line:

1. ``{"type": "header", "format": "zonnewijk-readings-1", "period": "2026-03", ...}``
2. ``{"type": "device", "device_id": ..., "ts_ms": [...], "wh": [...]}`` per device, with
   ``"imported_ms": [[first, last], ...]`` for spans of an imported counter
3. ``{"type": "billed", ...}`` per part of earlier issued runs (for corrections, guarantees)
4. ``{"type": "end", "devices": N, "readings": M, "billed": K}`` (a missing end = truncated)

A name ending in ``.gz`` is gzip-compressed.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np

from collector.registry.fleet_file import Fleet
from collector.settlement.counter_segments import CounterReadings
from collector.settlement.engine import code_version
from collector.settlement.inputs import BilledPart, EngineSettings, SettlementInputs, fleet_sha256
from collector.settlement.periods import PeriodError, parse_month

FORMAT = "zonnewijk-readings-1"


class ReadingsFileError(ValueError):
    """The readings file cannot be used; the message names the line and the problem."""


def _open(path: Path, mode: str, *, gz: bool | None = None) -> IO[str]:
    if path.suffix == ".gz" if gz is None else gz:
        return gzip.open(path, mode + "t", encoding="utf-8", compresslevel=6)  # type: ignore[return-value]
    return path.open(mode, encoding="utf-8")


def write_dataset(
    path: Path, inputs: SettlementInputs, *, source: str, created_at: datetime | None = None
) -> dict[str, int]:
    """Write a settlement's inputs (without the fleet, which has its own file).

    Returns counts of devices, readings and billed parts written.
    """
    created = (created_at or datetime.now(UTC)).astimezone(UTC)
    header = {
        "type": "header",
        "format": FORMAT,
        "period": inputs.period.label,
        "correct_periods": sorted(inputs.correct_periods),
        "settings": inputs.settings.to_json(),
        "source": source,
        "created_at": created.isoformat(),
        "fleet_sha256": fleet_sha256(inputs.fleet),
        "code_version": code_version(),
    }
    counts = {"devices": 0, "readings": 0, "billed": 0}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    with _open(tmp, "w", gz=path.suffix == ".gz") as out:
        out.write(json.dumps(header, sort_keys=True) + "\n")
        for device_id in sorted(inputs.readings):
            r = inputs.readings[device_id]
            ts_ms = np.rint(r.ts_s * 1000.0).astype(np.int64).tolist()
            line: dict[str, Any] = {
                "type": "device",
                "device_id": device_id,
                "ts_ms": ts_ms,
                "wh": r.wh.tolist(),
            }
            if r.imported:
                line["imported_ms"] = [[round(a * 1000), round(b * 1000)] for a, b in r.imported]
            out.write(json.dumps(line) + "\n")
            counts["devices"] += 1
            counts["readings"] += len(ts_ms)
        for billed in inputs.billed:
            out.write(json.dumps({"type": "billed", **billed.to_json()}, sort_keys=True) + "\n")
            counts["billed"] += 1
        out.write(json.dumps({"type": "end", **counts}, sort_keys=True) + "\n")
    tmp.replace(path)
    return counts


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        with _open(path, "r") as f:
            for number, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ReadingsFileError(f"{path}:{number}: not JSON ({exc.msg})") from None
                if not isinstance(obj, dict) or "type" not in obj:
                    raise ReadingsFileError(f"{path}:{number}: expected an object with a 'type'")
                yield number, obj
    except OSError as exc:
        raise ReadingsFileError(f"{path}: cannot read: {exc}") from exc


def read_dataset(path: Path, fleet: Fleet, *, check_fleet: bool = True) -> SettlementInputs:
    """Read a data set written by :func:`write_dataset` into settlement inputs.

    Raises :class:`ReadingsFileError` naming the line of any problem, when the file is
    truncated, or when ``fleet`` is not the fleet the data set was exported with.
    """
    header: dict[str, Any] | None = None
    readings: dict[str, CounterReadings] = {}
    billed: list[BilledPart] = []
    end: dict[str, Any] | None = None
    for number, obj in _lines(path):
        where = f"{path}:{number}"
        kind = obj["type"]
        if header is None:
            if kind != "header" or obj.get("format") != FORMAT:
                raise ReadingsFileError(f"{where}: the first line must be a {FORMAT} header")
            header = obj
            continue
        if end is not None:
            raise ReadingsFileError(f"{where}: data after the end line")
        try:
            if kind == "device":
                device_id = str(obj["device_id"])
                ts_ms, wh = obj["ts_ms"], obj["wh"]
                if not isinstance(ts_ms, list) or not isinstance(wh, list):
                    raise ValueError("ts_ms and wh must be lists")
                if len(ts_ms) != len(wh):
                    raise ValueError(f"{len(ts_ms)} times but {len(wh)} values")
                if device_id in readings:
                    raise ValueError(f"device {device_id!r} appears twice")
                ts = np.asarray(ts_ms, dtype=np.int64).astype(np.float64) / 1000.0
                imported = [(a / 1000.0, b / 1000.0) for a, b in obj.get("imported_ms", [])]
                readings[device_id] = CounterReadings.from_arrays(
                    device_id, ts, np.asarray(wh, dtype=np.float64), imported=imported
                )
            elif kind == "billed":
                billed.append(BilledPart.from_json(obj))
            elif kind == "end":
                end = obj
            else:
                raise ValueError(f"unknown line type {kind!r}")
        except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
            raise ReadingsFileError(f"{where}: {kind} line: {exc}") from None
    if header is None:
        raise ReadingsFileError(f"{path}: empty file")
    if end is None:
        raise ReadingsFileError(f"{path}: no end line: the file is truncated")
    counted = {"devices": len(readings), "billed": len(billed)}
    for key, value in counted.items():
        if end.get(key) != value:
            raise ReadingsFileError(
                f"{path}: the end line announces {end.get(key)} {key}, the file holds {value}"
            )
    if check_fleet and header.get("fleet_sha256") != fleet_sha256(fleet):
        raise ReadingsFileError(
            f"{path}: the data set was exported with another fleet (sha256 "
            f"{header.get('fleet_sha256')}, this one {fleet_sha256(fleet)}); settle with the "
            "fleet file of the export (`zonnewijk registry export`)"
        )
    try:
        period = parse_month(str(header["period"]))
        settings = EngineSettings(**header["settings"])
    except (KeyError, TypeError, PeriodError) as exc:
        raise ReadingsFileError(f"{path}:1: header: {exc}") from None
    return SettlementInputs(
        period=period,
        fleet=fleet,
        readings=readings,
        billed=tuple(billed),
        correct_periods=tuple(header.get("correct_periods", [])),
        settings=settings,
    )
