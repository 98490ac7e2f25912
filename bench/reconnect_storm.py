"""Reconnect storm (issue 18, item 4): the whole district reconnects at once and replays a day.

    .venv/bin/python bench/reconnect_storm.py [--gateways 2125] [--interval 60] [--down 5]
        [--collectors 1] [--max-queued-bytes 2000000000] [--max-queued-messages 6000000]
        [--timeout 200] [--stall 30]

Starts a private InfluxDB, a private Mosquitto with the storm's limits (``max_connections``,
``max_queued_messages``, ``max_inflight_messages``; RLIMIT_NOFILE raised for 2,125+ sockets)
and the real collector (``zonnewijk collect``, the server's code, one process, plain
subscription as in production; ``--collectors N`` runs N processes on one shared
subscription, ``$share/storm/...``). Then ``--gateways`` simulated gateways
(``bench/_storm.py``: one asyncio loop, a small MQTT v5 client each) connect with persistent
sessions; the broker is stopped (SIGTERM, sessions saved) and each gateway is given a day of
spool; after ``--down`` seconds the broker starts again, every gateway reconnects with the
gateway's own jittered capped exponential backoff (``gateway_firmware/backoff.py``, 1-120 s)
and replays its day as the gateway's publisher does (batches of 500 readings, 4 in flight,
2,000 readings/s). The day is one inverter's readings every ``--interval`` seconds: 60 s by
default (1,440 readings in 3 batch messages per gateway, 3.06 million readings for 2,125
gateways) so that the default run fits the suite's four minutes on two cores; the gateway
polls every 10 s in production (8,640 a day, 18 messages, 4.5 GB of payload for 2,125
gateways), ``--interval 10`` runs that (longer than four minutes here).

A run that cannot recover stops early: once every gateway has every PUBACK (nothing more
will be sent) and the collector stored nothing new for ``--stall`` seconds, what is missing
was dropped by the broker (its queue bound, ``--max-queued-bytes``) and never arrives; the
bench then reports what arrived and exits 1, as it does after ``--timeout``.

Recovery: from the broker's restart until every gateway has every PUBACK and the collector
reports every reading stored. Then InfluxDB is counted: lost = sent - distinct points stored;
doubled = readings the collector stored more than once (its own count minus the distinct
points: a message delivered twice is stored twice and overwrites itself).

Figures: lost (goal 0), doubled (goal 0), recovery (goal <= 150 s: the gateway's backoff cap
of 120 s plus the drain), peak RSS of broker and collector (goals 1 GB and 500 MB: they share
the server with InfluxDB), the rate (stored readings over the recovery) and the broker's CPU
share of its one thread. The last line is
``reconnect_storm: gateways <n> readings <sent> stored <stored> lost <l> doubled <d> recovery_s <s>``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from _figures import at_most, report
from _storm import MAX_QUEUED_BYTES, MAX_QUEUED_MESSAGES, RECONNECT_MAX_S, run_storm

GOAL_RECOVERY_S = RECONNECT_MAX_S + 30.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--gateways", type=int, default=2125, help="simulated gateways")
    parser.add_argument("--interval", type=int, default=60, help="readings' spacing in the day [s]")
    parser.add_argument("--down", type=float, default=5.0, help="broker down for [s]")
    parser.add_argument("--timeout", type=float, default=200.0, help="give up after [s]")
    parser.add_argument(
        "--max-queued-bytes",
        type=int,
        default=MAX_QUEUED_BYTES,
        help="the broker's bound of a client's queue (production: config/mosquitto) [B]",
    )
    parser.add_argument(
        "--max-queued-messages",
        type=int,
        default=MAX_QUEUED_MESSAGES,
        help="the broker's bound of a client's queue in messages (production: config/mosquitto)",
    )
    parser.add_argument(
        "--memory-limit", type=int, default=0, help="the broker's memory_limit, 0: none [B]"
    )
    parser.add_argument(
        "--collectors",
        type=int,
        default=1,
        help="collector processes; more than one share a subscription ($share/storm/...)",
    )
    parser.add_argument(
        "--stall",
        type=float,
        default=30.0,
        help="stop early when every gateway drained and nothing new was stored for [s]",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zw-bench-storm-") as tmp:
        r = run_storm(
            args.gateways,
            interval_s=args.interval,
            down_s=args.down,
            timeout_s=args.timeout,
            workdir=Path(tmp),
            max_queued_bytes=args.max_queued_bytes,
            memory_limit=args.memory_limit,
            collectors=args.collectors,
            stall_s=args.stall,
            max_queued_messages=args.max_queued_messages,
        )
    print(
        f"storm of {r.gateways} gateways, {r.readings_per_gateway} readings each "
        f"(every {r.interval_s} s), broker down {r.down_s:g} s, RLIMIT_NOFILE {r.fd_limit}:"
    )
    print(
        f"  first connect of all: {r.connect_s:.1f} s; after the restart: all reconnected at "
        f"{r.reconnected_s:.1f} s ({r.connect_failures} refused attempts, longest backoff "
        f"{r.max_backoff_s:.1f} s, {r.sessions_resumed} sessions resumed), all drained at "
        f"{r.drained_s:.1f} s, all stored at {r.recovery_s:.1f} s"
    )
    print(
        f"  {r.messages_sent} messages sent, {r.messages_resent} resent; collector: "
        f"{r.collector_messages} messages, {r.collector_readings_stored} readings stored; "
        f"InfluxDB: {r.stored} distinct points"
    )
    if r.collectors > 1:
        print(
            f"  {r.collectors} collectors on one shared subscription: readings stored each "
            f"{r.collector_stored_each}, CPU each {r.collector_cpu_each} (share of a core)"
        )
    if r.stalled:
        print(
            f"  STOPPED EARLY: every gateway had every PUBACK and nothing new was stored for "
            f"{args.stall:g} s: {r.lost} readings were acknowledged to gateways and never "
            "reached the collector"
        )
    elif not r.recovered:
        print(f"  NOT RECOVERED within {args.timeout:g} s: {r.stored} of {r.readings_sent} stored")
    print(
        f"  peak RSS: broker {r.broker_peak_rss_mb:.0f} MB, collector "
        f"{r.collector_peak_rss_mb:.0f} MB, InfluxDB {r.influx_peak_rss_mb:.0f} MB; peak fds: "
        f"broker {r.broker_fds_peak}, fleet {r.fleet_fds_peak}"
    )
    print(
        f"  CPU over the recovery (share of one core): broker {r.broker_cpu_share:.2f} "
        f"(one thread), collector {r.collector_cpu_share:.2f}, InfluxDB "
        f"{r.influx_cpu_share:.2f}, simulated fleet {r.fleet_cpu_share:.2f}"
    )
    print(
        f"  broker: max_queued_bytes {args.max_queued_bytes}, max_queued_messages "
        f"{args.max_queued_messages}, memory_limit {args.memory_limit}; "
        f"log lines on dropped messages {r.broker_drop_lines}, on memory "
        f"{r.broker_memory_lines}"
    )
    if r.broker_drop_lines or r.broker_memory_lines:
        print("  broker log (last lines):\n    " + r.broker_log_tail.replace("\n", "\n    "))
    busy = [t for t in r.timeline if t[2] > 0]
    if busy:
        print(f"  first reading stored at {busy[0][0]:.1f} s after the restart")
    report("lost", r.lost, "readings", at_most(0, "issue 18: nothing lost"),
           detail=f"{r.readings_sent} sent, {r.stored} stored")  # fmt: skip
    report("doubled", r.doubled, "readings", at_most(0, "issue 18: nothing counted twice"),
           detail=f"collector stored {r.collector_readings_stored}, "
           f"{r.messages_resent} messages resent by gateways")  # fmt: skip
    report(
        "recovery_s",
        r.recovery_s,
        "s",
        at_most(GOAL_RECOVERY_S, "the gateway's backoff cap (120 s) plus 30 s to drain"),
        detail=f"{r.gateways} gateways; all reconnected at {r.reconnected_s:.1f} s; "
        f"broker down {r.down_s:g} s",
    )
    report(
        "rate_readings_per_s",
        r.rate,
        "readings/s",
        detail=f"{r.readings_per_gateway} readings per gateway every {r.interval_s} s, "
        "over the whole recovery (backoff included)",
    )
    report("broker_peak_rss_mb", r.broker_peak_rss_mb, "MB",
           detail=f"peak fds {r.broker_fds_peak}; the backlog queued for the collector")  # fmt: skip
    report("collector_peak_rss_mb", r.collector_peak_rss_mb, "MB",
           detail=f"InfluxDB {r.influx_peak_rss_mb:.0f} MB")  # fmt: skip
    report("broker_cpu_share", r.broker_cpu_share, "core",
           detail="Mosquitto is single-threaded: 1.0 is its ceiling")  # fmt: skip
    print(r.line())
    ok = r.recovered and r.lost == 0 and r.doubled == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
