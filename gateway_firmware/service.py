"""The gateway service (``zonnewijk-gateway run``) and the spool inspector (``... spool``).

One main loop, one thread (plus paho's network thread):

1. poll each device when it is due (each at its own interval, on a fixed grid);
2. commit the reading to the spool, then hand it to the publisher's live lane;
3. let the publisher handle PUBACKs (deleting acknowledged readings), refresh the retained
   status and replay the backlog at its limited rate;
4. tell systemd we are alive (``WATCHDOG=1`` over ``$NOTIFY_SOCKET``), then sleep until the
   next poll, the next replay slot or the next broker event.

A poll that fails is logged (once per change of outcome, not every 10 s) and reported in the
status message's ``last_poll``; the loop goes on. SIGTERM/SIGINT stop the loop: the gateway
publishes a retained ``offline`` status and closes the spool. ``kill -9`` or a power cut lose
nothing that was committed: the next start replays the spool.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Protocol

from gateway_firmware import __version__
from gateway_firmware.clock import GatewayClock, SystemClock
from gateway_firmware.config import ConfigError, DeviceConfig, GatewayConfig, load_config
from gateway_firmware.health import HealthServer
from gateway_firmware.publisher import Publisher
from gateway_firmware.spool import Spool, SpoolError
from gateway_firmware.spool_guard import GuardedSpool
from gateway_firmware.timekeeping import Timekeeper
from zonnewijk_wire import DeviceInfo, MeterReading, Reading, format_ts

if TYPE_CHECKING:
    from gateway_firmware.p1.source import P1Source
    from gateway_firmware.remote import RemoteControl

log = logging.getLogger(__name__)


class PolledDevice(Protocol):
    """What the service needs from a device reader (``gateway_firmware.devices.reader``)."""

    device_id: str
    last_result: str

    def poll(self) -> Reading | MeterReading: ...

    def device_info(self) -> DeviceInfo: ...


# --- systemd --------------------------------------------------------------------------------


class SystemdNotifier:
    """sd_notify(3) without a dependency: datagrams to the socket in ``$NOTIFY_SOCKET``.

    Does nothing when the service was not started by systemd (no ``NOTIFY_SOCKET``).
    ``watchdog_interval_s`` is half of systemd's ``WatchdogSec`` (``$WATCHDOG_USEC``), the
    usual safety margin, or None when no watchdog is configured for this process.
    """

    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address: str | None = None
        if address.startswith("@"):  # abstract namespace
            self._address = "\0" + address[1:]
        elif address.startswith("/"):
            self._address = address
        self.watchdog_interval_s: float | None = None
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        if usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_interval_s = int(usec) / 1e6 / 2
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def notify(self, message: str) -> bool:
        """Send one state line (``READY=1``, ``WATCHDOG=1``, ``STATUS=...``); True if sent."""
        if self._address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode(), self._address)
            return True
        except OSError as exc:
            log.warning("sd_notify to %r failed: %s", self._address, exc)
            return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


# --- devices --------------------------------------------------------------------------------


def build_devices(config: GatewayConfig) -> tuple[list[PolledDevice], Callable[[], None]]:
    """Device readers for the configured devices, sharing one bus per host:port / serial port:
    an inverter reader, or a grid meter reader for a meter profile (``sunspec-meter``), whose
    readings go out on ``.../meter``.

    Returns the readers and a function that closes their buses.
    """
    from gateway_firmware.devices.factory import make_reader
    from gateway_firmware.modbus.transport import BusSettings, ModbusBus

    buses: dict[str, ModbusBus] = {}
    readers: list[PolledDevice] = []

    def bus_for(device: DeviceConfig) -> ModbusBus:
        bus = buses.get(device.bus_key)
        if bus is None:
            settings = BusSettings(timeout_s=device.timeout_s, gap_s=device.gap_s)
            if device.host is not None:
                bus = ModbusBus.tcp(device.host, device.port, settings=settings)
            else:
                assert device.serial_port is not None
                bus = ModbusBus.serial(
                    device.serial_port,
                    baudrate=device.baudrate,
                    parity=device.parity,
                    stopbits=device.stopbits,
                    settings=settings,
                )
            buses[device.bus_key] = bus
        return bus

    for device in config.devices:
        readers.append(
            make_reader(
                bus_for(device),
                unit=device.unit,
                device_id=device.device_id,
                gateway_id=config.gateway_id,
                profile=device.profile,
                rated_ac_power_w=device.rated_power_w,
            )
        )

    def close() -> None:
        for bus in buses.values():
            with contextlib.suppress(Exception):
                bus.close()

    return readers, close


def build_p1(config: GatewayConfig) -> P1Source:
    """The P1 meter reader of ``config.p1``; salt and meter state beside the spool."""
    from gateway_firmware.p1.port import P1Port
    from gateway_firmware.p1.source import P1Source

    p1 = config.p1
    assert p1 is not None
    port = P1Port(p1.serial_port, dsmr=p1.dsmr, baudrate=p1.baudrate)
    return P1Source(
        p1.device_id,
        port,
        state_dir=config.spool.path.parent,
        interval_s=p1.interval_s,
        gas=p1.gas,
    )


# --- the service ----------------------------------------------------------------------------

#: How often ``STATUS=`` (shown by ``systemctl status``) is refreshed [s].
STATUS_NOTIFY_EVERY_S = 10.0


@dataclass
class _Schedule:
    device: PolledDevice
    interval_s: float
    due: float
    info_published: bool = False
    last_outcome: str = ""
    polls: int = 0
    failures: int = 0


class GatewayService:
    """Polls, spools and publishes until :meth:`request_stop` (or SIGTERM).

    Parameters
    ----------
    config
        The validated configuration.
    devices
        One reader per entry of ``config.devices`` (same order); default: built from the
        configuration with :func:`build_devices`.
    notifier
        systemd notifier (default: from the environment).
    clock
        Monotonic clock [s].
    p1
        The P1 meter reader (default: built from ``config.p1`` when the section is there).
    gateway_clock
        Wall and monotonic time, boot id and whether the wall clock is synchronised (default:
        the machine's, sync status as ``ZONNEWIJK_GATEWAY_CLOCK_SYNC`` says; docs/clock.md).
    """

    def __init__(
        self,
        config: GatewayConfig,
        *,
        devices: Sequence[PolledDevice] | None = None,
        notifier: SystemdNotifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        p1: P1Source | None = None,
        gateway_clock: GatewayClock | None = None,
    ) -> None:
        local_config, remote_version = config, None
        if config.remote is not None:  # devices and intervals from the server (remote.py)
            from gateway_firmware.remote import startup_config

            config, remote_version = startup_config(config)
        self.config = config
        self._close_devices: Callable[[], None] = lambda: None
        if devices is None:
            built, self._close_devices = build_devices(config)
            devices = built
        if len(devices) != len(config.devices):
            raise ValueError("one device reader per configured device is needed")
        self.notifier = notifier or SystemdNotifier()
        # before the spool is opened: a wrong ZONNEWIJK_GATEWAY_CLOCK_SYNC raises ValueError
        clock_source = gateway_clock or SystemClock()
        self._clock = clock
        self._stop = threading.Event()
        now = clock()
        self._schedules = [
            # spread the first polls a little so devices on one bus do not all start at once
            _Schedule(dev, cfg.interval_s, now + 0.2 * i)
            for i, (dev, cfg) in enumerate(zip(devices, config.devices, strict=True))
        ]
        # storage faults (full, read-only, corrupt) are handled behind this guard (issue 18)
        self.spool = GuardedSpool(
            config.spool.path,
            max_readings=config.spool.max_readings,
            audit=config.spool.audit,
            memory_readings=config.spool.memory_readings,
            clock=clock,
        )
        # readings are stamped only with a synchronised clock (issue 18, timekeeping.py)
        self.timekeeper = Timekeeper(clock_source, self.spool)
        self.health: HealthServer | None = None
        if config.health_port is not None:
            self.health = HealthServer(config.health_port)
        self.publisher = Publisher(
            gateway_id=config.gateway_id,
            mqtt_config=config.mqtt,
            spool=self.spool,
            spool_config=config.spool,
            firmware_version=__version__,
            client_id=config.client_id,
            status_interval_s=config.status_interval_s,
            clock=clock,
        )
        self.readings_polled = 0
        self.meter_readings = 0
        self.p1: P1Source | None = p1
        if self.p1 is None and config.p1 is not None:
            self.p1 = build_p1(config)
        from gateway_firmware.package_info import installed

        self.publisher.status_extra.update(installed())  # Debian package and channel
        self.remote: RemoteControl | None = None
        if local_config.remote is not None:
            from gateway_firmware.remote import RemoteControl

            self.remote = RemoteControl(
                self, local_config=local_config, version=remote_version, build_devices=build_devices
            )

    def replace_devices(
        self, config: GatewayConfig, devices: Sequence[PolledDevice], close: Callable[[], None]
    ) -> None:
        """Poll ``devices`` (one per ``config.devices``) from now on; the old buses close."""
        old_close, now = self._close_devices, self._clock()
        self.config, self._close_devices = config, close
        self._schedules = [
            _Schedule(dev, cfg.interval_s, now + 0.2 * i)
            for i, (dev, cfg) in enumerate(zip(devices, config.devices, strict=True))
        ]
        self.publisher.status_interval_s = config.status_interval_s
        old_close()
        self._update_last_poll()

    def devices_answering(self) -> bool:
        """Whether any device answered its last poll."""
        return any(s.last_outcome == "ok" for s in self._schedules)

    def devices_with_config(self) -> list[tuple[PolledDevice, DeviceConfig]]:
        return [(s.device, c) for s, c in zip(self._schedules, self.config.devices, strict=True)]

    def poll_counts(self, device_id: str) -> tuple[int, int]:
        """Polls and failed polls of a device since it was configured."""
        for s in self._schedules:
            if s.device.device_id == device_id:
                return s.polls, s.failures
        return 0, 0

    def request_stop(self) -> None:
        self._stop.set()
        self.publisher._wake.set()

    def run(self, *, duration_s: float | None = None) -> int:
        """The main loop; returns the process exit code."""
        started = self._clock()
        log.info(
            "gateway %s %s: %d device(s), spool %s (%d readings waiting)",
            self.config.gateway_id,
            __version__,
            len(self._schedules),
            self.spool.path,
            self.spool.depth(),
        )
        self.publisher.start()
        if self.health is not None:
            self.health.start()
        if self.p1 is not None:
            self.p1.start()
        self._report_spool()
        self.notifier.notify("READY=1")
        last_watchdog = last_status = -1e18
        watchdog_every = self.notifier.watchdog_interval_s
        try:
            while not self._stop.is_set():
                now = self._clock()
                if duration_s is not None and now - started >= duration_s:
                    break
                self.timekeeper.check()  # at the clock's first sync: release held readings
                for sched in self._schedules:
                    if sched.due <= now and not self._stop.is_set():
                        self._poll(sched)
                if self.p1 is not None:
                    self._collect_meter(self.p1)
                if self.spool.maintain():  # writable again: replay what came back into it
                    self.publisher.rescan()
                self._report_spool()
                replay_wait = self.publisher.step()
                now = self._clock()
                if watchdog_every is not None and now - last_watchdog >= watchdog_every:
                    self.notifier.notify("WATCHDOG=1")
                    last_watchdog = now
                if self.notifier.enabled and now - last_status >= STATUS_NOTIFY_EVERY_S:
                    self.notifier.notify(f"STATUS={self._status_line()}")  # systemctl status
                    last_status = now
                next_due = min(s.due for s in self._schedules)
                timeout = min(next_due - now, replay_wait, 1.0)
                if watchdog_every is not None:
                    timeout = min(timeout, watchdog_every)
                self.publisher.wait(max(timeout, 0.0))
        finally:
            self.notifier.notify("STOPPING=1")
            self.publisher.stop()
            if self.health is not None:
                self.health.close()
            if self.p1 is not None:
                self.p1.close()
            self.spool.close()
            self._close_devices()
            if self.remote is not None:
                self.remote.close()
            self.notifier.close()
            log.info("gateway stopped; %d readings polled this run", self.readings_polled)
        return 0

    def _poll(self, sched: _Schedule) -> None:
        device = sched.device
        sched.polls += 1
        # next slot on a fixed grid; after a long stall start again from now
        sched.due += sched.interval_s
        if sched.due < self._clock():
            sched.due = self._clock() + sched.interval_s
        moment = self.timekeeper.moment()  # wall and monotonic time of the poll
        try:
            reading = device.poll()
        except Exception as exc:  # a device fault must never stop the other devices
            sched.failures += 1
            outcome = f"error: {getattr(exc, 'reason', type(exc).__name__)}"
            if outcome != sched.last_outcome:
                log.warning("%s: poll failed: %s", device.device_id, exc)
            sched.last_outcome = outcome
            self._update_last_poll()
            return
        if sched.last_outcome.startswith("error"):
            log.info("%s: polling again after %s", device.device_id, sched.last_outcome)
        sched.last_outcome = "ok"
        self.readings_polled += 1
        stamped = self.timekeeper.stamp(reading, moment)  # None: held for the clock
        if stamped is not None:
            # committed before it is published, with its message's sequence number when it
            # goes out at once (then fsynced only if its PUBACK is late: spool.py)
            live = self.publisher.can_send_live()
            [spool_id] = self.spool.append(
                [stamped], durable=self._durable_commit(live), messages=int(live)
            )
            self.publisher.send_live([(spool_id, stamped)])
        self._update_last_poll()
        if not sched.info_published:
            try:
                self.publisher.set_device_info(device.device_info())
                sched.info_published = True
            except Exception as exc:
                log.warning("%s: cannot read device info yet: %s", device.device_id, exc)

    def _collect_meter(self, p1: P1Source) -> None:
        """Spool and send the P1 meter's completed interval readings."""
        collected = p1.collect()
        moment = self.timekeeper.moment()
        # stamped (or held for the clock) at the end of their interval, where P1 put them
        readings = [
            stamped
            for r in collected
            if (stamped := self.timekeeper.stamp(r, self.timekeeper.moment_of(r.ts, moment)))
            is not None
        ]
        self.meter_readings += len(collected)
        if readings:
            live = self.publisher.can_send_live()
            ids = self.spool.append(
                readings,
                durable=self._durable_commit(live),
                messages=self.publisher.messages_for(readings) if live else 0,
            )
            self.publisher.send_live(list(zip(ids, readings, strict=True)))
        self._update_last_poll()

    def _durable_commit(self, live: bool) -> bool:
        """Whether a new reading's commit is fsynced: always with ``spool.fsync:
        every-reading``; otherwise only when it cannot be sent at once (not ``live``; the
        spool fsyncs a sent one whose PUBACK is late: gateway_firmware/spool.py)."""
        return self.config.spool.fsync == "every-reading" or not live

    def _report_spool(self) -> None:
        """Put the spool's state into the status message (at once when it changed) and the
        health endpoint's snapshot."""
        health = self.spool.health()
        extra = {
            "spool_state": health.state,
            "spool_problem": health.problem,
            "memory_readings": health.memory_readings,
            **self.timekeeper.status_fields(),
        }
        changed = any(
            self.publisher.status_extra.get(k) != v
            for k, v in extra.items()
            if k not in ("memory_readings", "clock_held")
        )
        self.publisher.status_extra.update(extra)
        if changed:
            self.publisher.publish_status()
        if self.health is None:
            return
        problems = []
        if health.state != "ok":
            problems.append(f"spool {health.state}: {health.problem}")
        elif health.problem:
            problems.append(health.problem)
        if not self.publisher.connected:
            problems.append("broker unreachable")
        clock = self.timekeeper.status_fields()
        if not clock["clock_synced"]:
            problems.append(f"clock not synchronised: {clock['clock_held']} readings held")
        if self._schedules and not self.devices_answering():
            problems.append("no device answered its last poll")
        self.health.update(
            {
                "healthy": health.state == "ok" and self.publisher.connected,
                "problems": problems,
                "ts": format_ts(datetime.now(UTC)),
                "gateway_id": self.config.gateway_id,
                "firmware_version": __version__,
                "spool": {**health.as_dict(), "dropped_total": self.spool.dropped_total()},
                "broker": {
                    "connected": self.publisher.connected,
                    "connects": self.publisher.stats.connects,
                    "disconnects": self.publisher.stats.disconnects,
                },
                "readings_polled": self.readings_polled,
                "meter_readings": self.meter_readings,
                "clock": clock,
                "last_poll": self.publisher.last_poll,
            }
        )

    def _status_line(self) -> str:
        broker = "connected" if self.publisher.connected else "broker unreachable"
        return (
            f"{broker}; {self.spool.depth()} readings waiting; "
            f"{self.publisher.last_poll or 'not polled yet'}"
        )[:200]

    def _update_last_poll(self) -> None:
        parts = []
        for sched in self._schedules:
            result = getattr(sched.device, "last_result", None) or sched.last_outcome
            parts.append(f"{sched.device.device_id}: {result}")
        if self.p1 is not None:
            parts.append(f"{self.p1.device_id}: {self.p1.status()}")
        self.publisher.last_poll = "; ".join(parts)[:500]


# --- commands -------------------------------------------------------------------------------


def _load(path: str) -> GatewayConfig | None:
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def run_command(args: argparse.Namespace) -> int:
    """``zonnewijk-gateway run --config FILE``."""
    config = _load(args.config)
    if config is None:
        return 2
    logging.getLogger().setLevel(config.log_level)
    try:
        service = GatewayService(config)
    except (SpoolError, ValueError) as exc:  # ValueError: ZONNEWIJK_GATEWAY_CLOCK_SYNC
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        service.request_stop()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    return service.run(duration_s=args.duration)


def spool_command(args: argparse.Namespace) -> int:
    """``zonnewijk-gateway spool --config FILE [--export FILE.jsonl]``."""
    config = _load(args.config)
    if config is None:
        return 2
    if not config.spool.path.exists():
        # a fresh install: the configuration is valid, the service has not run yet
        print(f"config {args.config} is valid; spool {config.spool.path} not created yet")
        return 0
    try:
        spool = Spool(config.spool.path, max_readings=config.spool.max_readings, read_only=True)
    except SpoolError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with spool:
        stats = spool.stats()
        summary = {
            "spool": str(config.spool.path),
            "depth": stats.depth,
            "max_readings": stats.max_readings,
            "oldest": format_ts(stats.oldest) if stats.oldest else None,
            "newest": format_ts(stats.newest) if stats.newest else None,
            "dropped_total": stats.dropped_total,
            "held_for_clock": spool.held_depth(),
            "last_seq": stats.seq,
            "size_bytes": stats.size_bytes,
        }
        if args.json:
            print(json.dumps(summary))
        else:
            for key, value in summary.items():
                print(f"{key:14} {value if value is not None else '-'}")
        if args.export:
            count = 0
            target = Path(args.export)
            with target.open("w") as out:
                for row in spool.iter_all():
                    out.write(row.payload + "\n")
                    count += 1
            print(f"exported {count} readings to {target}", file=sys.stderr)
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run`` and ``spool`` to the ``zonnewijk-gateway`` command."""
    run = sub.add_parser("run", help="the gateway service: poll, spool, publish")
    run.add_argument("--config", required=True, help="gateway configuration file (YAML)")
    run.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds [s] (tests)"
    )
    run.set_defaults(func=run_command)
    spool = sub.add_parser("spool", help="show the spool's backlog, optionally export it")
    spool.add_argument("--config", required=True, help="gateway configuration file (YAML)")
    spool.add_argument("--export", metavar="FILE.jsonl", help="write every waiting reading")
    spool.add_argument("--json", action="store_true", help="print the summary as JSON")
    spool.set_defaults(func=spool_command)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m gateway_firmware.service run|spool ...`` (same as ``zonnewijk-gateway``)."""
    parser = argparse.ArgumentParser(prog="zonnewijk-gateway")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_commands(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
