"""Cost of each step of the collector's hot path per reading, with the reference beside it.

Run: ``.venv/bin/python bench/ingest_stages.py`` (no servers; CPU only, one thread).

The same messages as ``bench/ingest.py`` (500 readings each). For each step the best of five
rounds, in microseconds per reading:

- decode: :func:`collector.ingest.decode.decode_readings` against the wire model
  (:func:`zonnewijk_wire.decode_batch`, pydantic), the reference it must agree with;
- validate: :meth:`collector.ingest.validate.ReadingValidator.validate` (quick path) against
  :func:`collector.ingest.validate.check_reading` for every reading, the reference;
- line protocol: :func:`collector.ingest.lines.reading_lines` against
  ``Point.to_line`` of :func:`collector.timeseries.measurements.reading_points`, the reference;
- the whole :func:`collector.ingest.process.process_message`.

Garbage collection is left on, as in the collector.

Figures (``bench/_figures.py``): each step's time as a share of its reference's, measured in
the same run (goal: below 1, the fast path exists only to beat the reference it must agree
with); process_message in microseconds per reading (goal: at
most 10 us, which keeps the collector at or above half the raw InfluxDB rate of about
200,000 points/s on two cores, the ingest goal).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

from _figures import at_most, report
from ingest import make_batches

from collector.ingest.decode import decode_readings
from collector.ingest.lines import reading_lines
from collector.ingest.process import process_message
from collector.ingest.validate import ReadingValidator, check_reading
from collector.timeseries.measurements import reading_points
from zonnewijk_wire import decode_batch, encode_batch, readings_topic


def best_us_per_reading(run: Callable[[], object], readings: int, rounds: int = 5) -> float:
    """Fastest of ``rounds`` runs [us per reading]."""
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return best / readings * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=20_000)
    parser.add_argument("--mppt", type=int, default=0, help="dc points per reading")
    args = parser.parse_args()
    batches = make_batches(args.readings, 500, max(1, args.readings // 4000), args.mppt)
    messages = [(readings_topic(b.gateway_id), encode_batch(b)) for b in batches]
    n = sum(len(b.readings) for b in batches)
    fast = [decode_readings(p) for _, p in messages]
    decoded = [f for f in fast if f is not None]
    assert len(decoded) == len(messages), "every bench message takes the fast path"
    now = datetime.now(UTC)

    def validate() -> None:
        validator = ReadingValidator()
        for d in decoded:
            validator.validate(d.gateway_id, d.readings, now)

    def check_each() -> None:  # the reference: every reading through check_reading
        validator = ReadingValidator()
        for d in decoded:
            for r in d.readings:
                check_reading(
                    r,
                    now=now,
                    record=validator.directory.device(d.gateway_id, r.device_id),
                    previous_counter=validator.counters.get(d.gateway_id, r.device_id),
                    limits=validator.limits,
                )

    rows = [
        (
            "decode",
            best_us_per_reading(lambda: [decode_readings(p) for _, p in messages], n),
            best_us_per_reading(lambda: [decode_batch(p) for _, p in messages], n),
        ),
        ("validate", best_us_per_reading(validate, n), best_us_per_reading(check_each, n)),
        (
            "line protocol",
            best_us_per_reading(
                lambda: [reading_lines(d.gateway_id, r) for d in decoded for r in d.readings], n
            ),
            best_us_per_reading(
                lambda: [
                    p.to_line()
                    for d in decoded
                    for r in d.readings
                    for p in reading_points(d.gateway_id, r)
                ],
                n,
            ),
        ),
        (
            "process_message",
            best_us_per_reading(
                lambda: [process_message(t, p, ReadingValidator(), now=now) for t, p in messages],
                n,
            ),
            None,
        ),
    ]
    print(f"{n} readings in {len(messages)} messages, {1 + args.mppt} point(s) per reading")
    print(f"{'step':<16} {'us/reading':>11} {'reference':>10} {'speed-up':>9}")
    for name, ours, reference in rows:
        ref = "" if reference is None else f"{reference:10.2f} {reference / ours:8.1f}x"
        print(f"{name:<16} {ours:11.2f} {ref}")
    for name, ours, reference in rows:
        key = name.replace(" ", "_")
        if reference is None:
            report(f"{key}_us_per_reading", ours, "us", at_most(10.0, "ingest ratio >= 0.5"))
        else:
            report(
                f"{key}_time_vs_reference",
                ours / reference,
                "x",
                at_most(1.0, "the fast path must beat the reference it agrees with"),
                detail=f"{ours:.2f} us against {reference:.2f} us per reading",
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
