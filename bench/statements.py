"""Rendering time of a month's statements for the example fleet (122 members).

Usage: ``.venv/bin/python bench/statements.py [--fleet config/fleet.example.yaml]
[--keep DIR] [--example docs/statement-example.png]``

Not timed: loading the fleet file into a temporary SQLite store, synthetic counter readings
(a daylight sine scaled by each site's kWp, every 15 minutes, with one device silent for the
last four days of March so one statement shows an estimate), settling March 2026 with the
settlement engine and recording the issued run. Timed: rendering every member's statement to
HTML and PDF (``zonnewijk statements render``), the bookkeeping CSV and the SEPA files. Prints
each stage and per-statement figures. ``--example`` also writes the first page of the first
member's statement as PNG (pdftoppm, 80 dpi).

Figures (``bench/_figures.py``): rendering time per statement (goal: at most 0.5 s, so the
monthly job renders 10,000 members' statements in under an hour and a half in one process, within
a night) and the SEPA files' time for the fleet (goal: under 10 s).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from _figures import at_most, report
from schwifty import IBAN
from sqlalchemy.orm import Session

from collector.registry.fleet_file import Fleet, load_fleet_file
from collector.registry.store_sync import sync_fleet
from collector.settlement.counter_segments import CounterReadings
from collector.settlement.engine import settle
from collector.settlement.inputs import SettlementInputs
from collector.settlement.ledger import record_run
from collector.settlement.periods import parse_month
from collector.statements.bookkeeping import export_run
from collector.statements.config import load_config
from collector.statements.render import render_run
from collector.statements.sepa import build_sepa
from collector.store.testing import temporary_database

START = datetime(2026, 2, 26, tzinfo=UTC)
END = datetime(2026, 4, 3, tzinfo=UTC)
SILENT_FROM = datetime(2026, 3, 28, tzinfo=UTC)


def synthetic_readings(fleet: Fleet) -> dict[str, CounterReadings]:
    """A counter per device: daylight sine (peak 0.6 kW per kWp, 06-18 UTC), every 15 min."""
    out = {}
    for n, device in enumerate(fleet.devices):
        peak_w = 600.0 * float(device.kwp) * (0.9 + 0.2 * ((n * 37) % 11) / 10)
        value, t, pairs = 1_000_000.0 + 1000.0 * n, START, []
        while t <= END:
            if not (n == 0 and t >= SILENT_FROM):
                pairs.append((t, round(value, 3)))
            hour = t.hour + t.minute / 60
            if 6 <= hour < 18:
                value += peak_w * math.sin(math.pi * (hour - 6) / 12) * 0.25
            t += timedelta(minutes=15)
        out[device.device_id] = CounterReadings.from_pairs(device.device_id, pairs)
    return out


def with_bank_details(fleet: Fleet) -> Fleet:
    """The example fleet has no bank details: give the cooperative an IBAN and creditor id and
    every member but each tenth an IBAN and a mandate (synthetic, valid check digits)."""
    coop = fleet.cooperative.model_copy(
        update={"iban": "NL22RABO0444444444", "creditor_id": "NL08ZZZ123456780000"}
    )
    members = []
    for n, member in enumerate(fleet.members):
        if n % 10 == 9:
            members.append(member)
            continue
        iban = IBAN.generate("NL", bank_code="ABNA", account_code=f"{4_000_000 + n:010d}")
        members.append(
            member.model_copy(
                update={
                    "iban": str(iban.compact),
                    "mandate_id": f"ZW-{member.member_id}",
                    "mandate_date": date(2025, 1, 1),
                }
            )
        )
    return fleet.model_copy(update={"cooperative": coop, "members": members})


def stage(name: str, start: float, detail: str = "") -> float:
    now = time.perf_counter()
    print(f"{name:<34} {now - start:8.2f} s  {detail}", flush=True)
    return now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fleet", type=Path, default=Path("config/fleet.example.yaml"))
    parser.add_argument("--keep", type=Path, help="write the files here (default: a temp dir)")
    parser.add_argument("--example", type=Path, help="PNG of the first statement's first page")
    args = parser.parse_args(argv)
    fleet = with_bank_details(load_fleet_file(args.fleet))
    config = load_config()
    with temporary_database("sqlite") as engine, tempfile.TemporaryDirectory() as tmp:
        out = args.keep or Path(tmp)
        with Session(engine) as session:
            t = time.perf_counter()
            sync_fleet(session, fleet, source=str(args.fleet))
            session.commit()
            period = parse_month("2026-03")
            inputs = SettlementInputs(
                period=period, fleet=fleet, readings=synthetic_readings(fleet)
            )
            result = settle(inputs)
            run_id = record_run(
                session,
                result,
                fleet=fleet,
                correct_periods=(),
                readings_source="synthetic",
                issued_at=datetime(2026, 4, 5, 4, tzinfo=UTC),
            )
            session.commit()
            t = stage("setup (not timed): settle + record", t, f"run {run_id}")
            t0 = t
            rendered = render_run(session, run_id, out / "statements")
            t = stage("render HTML + PDF", t, f"{len(rendered)} statements")
            total_render = t - t0
            csv = export_run(session, run_id, out, config.ledger_accounts)
            t = stage("bookkeeping CSV + summary", t, f"{csv.lines} lines")
            sepa = build_sepa(session, run_id, out, config.sepa, today=date(2026, 4, 5))
            t_sepa = t
            t = stage(
                "SEPA pain.008 + pain.001 (+ XSD)", t,
                f"{sepa.debits} debits, {sepa.transfers} transfers, "
                f"{len(sepa.problems)} members without mandate/IBAN",
            )  # fmt: skip
        sizes = [r.pdf_path.stat().st_size for r in rendered]
        print(
            f"{len(rendered)} statements in {total_render:.1f} s: "
            f"{1000 * total_render / max(1, len(rendered)):.0f} ms each (HTML + PDF, one process), "
            f"PDF {min(sizes) / 1024:.0f}-{max(sizes) / 1024:.0f} KiB"
        )
        report(
            "render_s_per_statement",
            total_render / max(1, len(rendered)),
            "s",
            at_most(0.5, "10,000 statements within a night in one process"),
            detail=f"{len(rendered)} statements in {total_render:.1f} s, "
            f"PDF {min(sizes) / 1024:.0f}-{max(sizes) / 1024:.0f} KiB",
        )
        report("sepa_files_s", t - t_sepa, "s", at_most(10.0, "a month's SEPA files at once"))
        if args.example is not None and rendered:
            args.example.parent.mkdir(parents=True, exist_ok=True)
            prefix = Path(tmp) / "example"
            subprocess.run(
                ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", "-singlefile",
                 str(rendered[0].pdf_path), str(prefix)],
                check=True,
            )  # fmt: skip
            args.example.write_bytes(prefix.with_suffix(".png").read_bytes())
            print(f"example: {args.example} (from {rendered[0].pdf_path.name})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
