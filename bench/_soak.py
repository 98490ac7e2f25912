"""The soak's machinery (issue 18, item 5) and its maths.

Used by ``bench/soak.py`` and, at a tiny size, by ``tests/bench/test_soak.py``.

What runs, all real: a private InfluxDB, a private Mosquitto, the collector as its own
process (``zonnewijk collect``, the server's code) and the gateway as its own process
(``zonnewijk-gateway run``) polling simulated SunSpec inverters (a pymodbus server in this
process, as ``bench/gateway.py`` does). Every ``sample_every_s`` the resident memory
(``VmRSS``), the open file descriptors (``/proc/<pid>/fd``) of the gateway, the collector and
the broker are read, with the gateway's spool (its SQLite file plus WAL in bytes, and its
rows from the gateway's health endpoint) and the collector's queue (messages received and not
yet acknowledged, from its ``/health``).

**What is compressed, and what is not.** A *simulated day* is what one inverter polled every
10 s (production) makes in a day: 8,640 polls, each one reading spooled, published as its own
QoS 1 message, acknowledged, deleted from the spool and written to InfluxDB by the collector.
The soak compresses the *count* of those operations, not the clock: the gateway polls
``inverters`` simulated inverters each every 1 s (the configuration's minimum), so it does
``inverters`` × 10 inverter-seconds of production work per second, and a simulated day passes
every 8,640 / ``inverters`` seconds. Per-reading leaks (memory held per poll, per message,
per InfluxDB write; rows or pages the spool never frees) show at the compressed rate.
What runs at the real clock and is *not* compressed: the MQTT keepalive (60 s), the gateway's
retained status (60 s), the collector's heartbeat and batching timers, SQLite's WAL
checkpoints by size (they follow the writes, so they are compressed), and anything daily
(date rollover, DST): a leak per keepalive or per hour is not seen at its 30-day size.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from _gateway_env import gateway_env

from collector.devtools.services import Influxd, Mosquitto, free_port
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from collector.timeseries.influx import InfluxClient
from gateway_firmware.spool import Spool

REPO = Path(__file__).resolve().parents[1]
PRODUCTION_INTERVAL_S = 10.0
#: polls of one inverter in a day at the production interval
READINGS_PER_SIMULATED_DAY = int(24 * 3600 / PRODUCTION_INTERVAL_S)
#: the gateway's fastest poll interval (DeviceConfig.interval_s >= 1)
SOAK_INTERVAL_S = 1.0

# --- the maths: pure, on plain series -----------------------------------------------------------


def least_squares_slope(xs: Sequence[float], ys: Sequence[float]) -> float:
    """The slope of the least-squares line through (xs, ys) [unit of y per unit of x].

    Needs at least two points with different x; raises ValueError otherwise.
    """
    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} x values but {len(ys)} y values")
    if len(xs) < 2:
        raise ValueError("a slope needs at least two samples")
    n = len(xs)
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("all samples at the same x: no slope")
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return sxy / sxx


def after_warmup(
    days: Sequence[float], values: Sequence[float], warmup_fraction: float
) -> tuple[list[float], list[float]]:
    """The samples after the first ``warmup_fraction`` of the run's simulated days (caches,
    the spool's first pages, InfluxDB's first shard fill then; a leak keeps growing)."""
    if not 0 <= warmup_fraction < 1:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
    if not days:
        return [], []
    start = days[0] + warmup_fraction * (days[-1] - days[0])
    kept = [(d, v) for d, v in zip(days, values, strict=True) if d >= start]
    return [d for d, _ in kept], [v for _, v in kept]


def slope_per_simulated_day(
    days: Sequence[float], values: Sequence[float], warmup_fraction: float = 0.25
) -> float:
    """Least-squares slope of ``values`` against simulated days, after the warm-up
    [unit of the values per simulated day]."""
    xs, ys = after_warmup(days, values, warmup_fraction)
    return least_squares_slope(xs, ys)


@dataclass(frozen=True)
class SlopeGoal:
    """A series must not grow faster than ``max_per_day`` once warmed up."""

    series: str
    unit: str
    max_per_day: float
    why: str


#: The soak's goals: flat, with the noise this machine shows stated in docs/soak.md.
GOALS: tuple[SlopeGoal, ...] = (
    SlopeGoal("gateway_rss_mb", "MB", 1.0, "a Pi 3 has 1 GB; 1 MB a day is 30 MB a month"),
    SlopeGoal("collector_rss_mb", "MB", 1.0, "the collector runs for months"),
    SlopeGoal("broker_rss_mb", "MB", 1.0, "the broker runs for months"),
    SlopeGoal("gateway_fds", "fds", 0.5, "an fd a day is a leak"),
    SlopeGoal("collector_fds", "fds", 0.5, "an fd a day is a leak"),
    SlopeGoal("broker_fds", "fds", 0.5, "an fd a day is a leak"),
    SlopeGoal("spool_bytes_mb", "MB", 0.1, "the spool is emptied on PUBACK: no growth"),
    # rows and the queue are instants of a live flow (0 to ~50 at 200 readings/s): a leak of
    # 1 % of a day's 8,640 deletes or acks would be 86 a day
    SlopeGoal("spool_rows", "rows", 50.0, "the broker is up: nothing piles up in the spool"),
    SlopeGoal("collector_queue", "messages", 50.0, "the collector keeps up: no backlog grows"),
)


def verdicts(
    days: Sequence[float],
    series: dict[str, Sequence[float]],
    goals: Sequence[SlopeGoal] = GOALS,
    warmup_fraction: float = 0.25,
) -> list[tuple[SlopeGoal, float, bool]]:
    """(goal, slope per simulated day, met) for each goal whose series was sampled."""
    out = []
    for goal in goals:
        if goal.series not in series:
            continue
        slope = slope_per_simulated_day(days, series[goal.series], warmup_fraction)
        out.append((goal, slope, slope < goal.max_per_day))
    return out


# --- sampling real processes --------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    """Resident memory of a process [MB]; NaN when it is gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def fd_count(pid: int) -> int:
    """Open file descriptors of a process; -1 when it is gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def file_bytes(path: Path) -> int:
    """A SQLite database's size on disk: the file plus its WAL [B]."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


def get_json(url: str) -> dict[str, object]:
    """A health endpoint's JSON (also on 503: degraded is an answer); {} when none."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            data: dict[str, object] = json.load(r)
            return data
    except urllib.error.HTTPError as e:
        with contextlib.suppress(ValueError):
            body: dict[str, object] = json.loads(e.read())
            return body
        return {}
    except (OSError, ValueError):
        return {}


@dataclass
class Sample:
    t_s: float
    readings_polled: int
    readings_stored: int
    values: dict[str, float]


@dataclass
class SoakResult:
    inverters: int
    days_goal: float
    seconds: float
    readings_polled: int
    readings_stored: int
    distinct_stored: int
    samples: list[Sample] = field(default_factory=list)
    gateway_exit: int | None = None
    collector_exit: int | None = None
    #: readings still in the spool after the gateway stopped
    spool_left: int = 0

    @property
    def days(self) -> list[float]:
        return [s.readings_polled / READINGS_PER_SIMULATED_DAY for s in self.samples]

    def series(self) -> dict[str, list[float]]:
        names = self.samples[0].values.keys() if self.samples else []
        return {n: [s.values[n] for s in self.samples] for n in names}

    @property
    def simulated_days(self) -> float:
        return self.readings_polled / READINGS_PER_SIMULATED_DAY


def _gateway_config(
    path: Path, *, broker_port: int, sim_port: int, inverters: int, spool: Path, health_port: int
) -> None:
    lines = [
        "gateway_id: gw-soak",
        f"mqtt: {{host: 127.0.0.1, port: {broker_port}}}",
        f"spool: {{path: {spool}}}",
        f"health_port: {health_port}",
        "log_level: WARNING",
        "devices:",
    ]
    for unit in range(1, inverters + 1):
        lines.append(
            f"  - {{device_id: inv-{unit:03d}, host: 127.0.0.1, port: {sim_port}, unit: {unit},"
            f" interval_s: {SOAK_INTERVAL_S:g}, gap_s: 0}}"
        )
    path.write_text("\n".join(lines) + "\n")


def _spawn(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=env)


def _stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _count_distinct(url: str, db: str) -> int:
    rows = InfluxClient(url, db).query_records(
        'SELECT count("ac_power_w") FROM "inverter" GROUP BY "device"'
    )
    return sum(int(r["count"]) for r in rows)


def run_soak(
    *,
    days: float,
    inverters: int,
    workdir: Path,
    sample_every_s: float = 2.0,
    say: Callable[[str], None] = print,
    leak_mb_per_day: float = 0.0,
) -> SoakResult:
    """Run the gateway and collector until ``days`` simulated days of readings were polled.

    ``leak_mb_per_day`` adds an injected leak to the gateway's sampled RSS (the test's proof
    that a growing series fails its goal; 0 for a real run) [MB per simulated day].
    """
    target = int(days * READINGS_PER_SIMULATED_DAY)
    units = {u: layout_for("sunspec-int") for u in range(1, inverters + 1)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZONNEWIJK_")}
    env = gateway_env(env) | {"ZONNEWIJK_INFLUX_GZIP": "false"}
    spool = workdir / "spool.sqlite3"
    with (
        Influxd.create() as influxd,
        Mosquitto.create() as broker,
        SimulatedInverters(units) as sim,
    ):
        for u in units:
            sim.set_values(u, ac_power_w=1500.0 + u, ac_energy_wh=1_000_000.0 * u)
        metrics_port, health_port = free_port(), free_port()
        argv = [
            sys.executable, "-m", "collector.cli", "collect",
            "--mqtt-port", str(broker.port), "--influx-url", influxd.url,
            "--influx-db", "soak", "--client-id", "soak-collector", "--no-backfill",
            "--metrics-port", str(metrics_port),
        ]  # fmt: skip
        collector = _spawn(argv, workdir / "collector.log", env)
        config = workdir / "gateway.yaml"
        _gateway_config(
            config,
            broker_port=broker.port,
            sim_port=sim.port,
            inverters=inverters,
            spool=spool,
            health_port=health_port,
        )
        gateway: subprocess.Popen[bytes] | None = None
        result = SoakResult(inverters, days, 0.0, 0, 0, 0)
        try:
            deadline = time.monotonic() + 30
            collector_health = f"http://127.0.0.1:{metrics_port}/health"
            while not get_json(collector_health).get("mqtt_connected"):
                if time.monotonic() > deadline or collector.poll() is not None:
                    log = (workdir / "collector.log").read_text(errors="replace")
                    raise RuntimeError(f"collector did not connect:\n{log[-2000:]}")
                time.sleep(0.2)
            gateway = _spawn(
                [sys.executable, "-m", "gateway_firmware.cli", "run", "--config", str(config)],
                workdir / "gateway.log",
                env,
            )
            gateway_health = f"http://127.0.0.1:{health_port}/health"
            started = time.monotonic()
            broker_pid = broker.process.pid if broker.process else 0
            next_say = 0.0
            polled = 0
            while polled < target:
                time.sleep(sample_every_s)
                if gateway.poll() is not None or collector.poll() is not None:
                    say("a process ended during the soak: stopping")
                    break
                g = get_json(gateway_health)
                c = get_json(collector_health)
                polled = int(str(g.get("readings_polled", polled)))
                spool_state = g.get("spool")
                rows = spool_state.get("depth", 0) if isinstance(spool_state, dict) else 0
                t = time.monotonic() - started
                day = polled / READINGS_PER_SIMULATED_DAY
                values = {
                    "gateway_rss_mb": rss_mb(gateway.pid) + leak_mb_per_day * day,
                    "collector_rss_mb": rss_mb(collector.pid),
                    "broker_rss_mb": rss_mb(broker_pid),
                    "gateway_fds": float(fd_count(gateway.pid)),
                    "collector_fds": float(fd_count(collector.pid)),
                    "broker_fds": float(fd_count(broker_pid)),
                    "spool_bytes_mb": file_bytes(spool) / 1e6,
                    "spool_rows": float(rows),
                    "collector_queue": float(str(c.get("queue_depth", 0))),
                }
                stored = int(str(c.get("readings_stored", 0)))
                result.samples.append(Sample(round(t, 2), polled, stored, values))
                if t >= next_say:
                    say(
                        f"  t={t:6.1f} s, day {day:5.2f}: polled {polled}, stored {stored}; "
                        f"RSS gateway {values['gateway_rss_mb']:.1f} MB, collector "
                        f"{values['collector_rss_mb']:.1f} MB; spool {int(rows)} rows "
                        f"{values['spool_bytes_mb']:.2f} MB"
                    )
                    next_say += 30
            result.seconds = time.monotonic() - started
            last = get_json(gateway_health)
            result.readings_polled = int(str(last.get("readings_polled", polled)))
            result.gateway_exit = _stop(gateway)
            # what the gateway published is acknowledged: wait until the collector stored it
            settle = time.monotonic() + 30
            while time.monotonic() < settle:
                c = get_json(collector_health)
                if int(str(c.get("readings_stored", 0))) >= result.readings_polled:
                    break
                time.sleep(0.5)
            result.readings_stored = int(str(get_json(collector_health).get("readings_stored", 0)))
            result.distinct_stored = _count_distinct(influxd.url, "soak")
            with Spool(spool, read_only=True) as s:
                result.spool_left = s.stats().depth
        finally:
            if gateway is not None:
                _stop(gateway)
            result.collector_exit = _stop(collector)
    return result
