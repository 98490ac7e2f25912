"""Remote configuration and diagnostics on the gateway: what the server sends, checked and applied.

The gateway subscribes (on its one broker connection) to its retained ``config`` topic and its
``commands/diagnostics`` topic. On the main thread:

- a :class:`~zonnewijk_wire.control.ConfigDelivery` is applied only when its signature is
  valid for this gateway's key (``remote.command_key_file``, issued at enrolment), it is for
  this gateway and newer than the version running. The new devices are built and each polled
  once; if none answers while the running configuration's devices did, the new configuration
  is refused and the running one stays (a wrong address cannot take a gateway off the air).
  Otherwise the devices are swapped between two polls and the version is saved
  (``<state_dir>/remote-config.json``, the previous one as ``remote-config.previous.json``,
  each written atomically) so a restart runs it too;
- the status then says ``config_version`` (applied) or ``config_refused`` (version: reason);
- a signed ``diagnostics`` command (not older than ten minutes, each id once) is answered with
  a :class:`~zonnewijk_wire.control.DiagnosticsBundle` on the retained ``diagnostics`` topic:
  each device's last poll and identity, spool, broker, clock synchronisation, disk, memory,
  load and the newest log lines.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from gateway_firmware import __version__
from gateway_firmware.config import ConfigError, DeviceConfig, GatewayConfig, parse_config
from zonnewijk_wire.control import (
    COMMAND_LIFETIME_S,
    ConfigDelivery,
    DeviceDiagnostics,
    DiagnosticsBundle,
    GatewayCommand,
    command_topic,
    config_topic,
    diagnostics_topic,
)
from zonnewijk_wire.remote_config import RemoteConfig

if TYPE_CHECKING:
    from gateway_firmware.publisher import Publisher
    from gateway_firmware.spool_guard import GuardedSpool

log = logging.getLogger(__name__)

STATE_FILE = "remote-config.json"
PREVIOUS_FILE = "remote-config.previous.json"
#: Log lines kept for diagnostics bundles.
LOG_LINES = 200


class PolledDevice(Protocol):
    device_id: str

    def poll(self) -> object: ...


class Service(Protocol):
    """What remote control needs of the gateway service (``gateway_firmware.service``, which
    imports this module, not the other way round)."""

    publisher: Publisher
    spool: GuardedSpool

    def devices_answering(self) -> bool: ...

    def devices_with_config(self) -> Sequence[tuple[Any, DeviceConfig]]: ...

    def poll_counts(self, device_id: str) -> tuple[int, int]: ...

    def replace_devices(
        self, config: GatewayConfig, devices: Sequence[Any], close: Callable[[], None]
    ) -> None: ...


#: Builds the readers of a configuration and a function closing their buses.
DeviceBuilder = Callable[[GatewayConfig], tuple[Sequence[Any], Callable[[], None]]]


class LogRing(logging.Handler):
    """The newest log lines, for diagnostics bundles (installed on the root logger)."""

    def __init__(self, size: int = LOG_LINES) -> None:
        super().__init__(level=logging.INFO)
        self.lines: collections.deque[str] = collections.deque(maxlen=size)
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(self.format(record)[:500])


def merged_config(local: GatewayConfig, remote: RemoteConfig) -> GatewayConfig:
    """The local file's connection and spool with the server's devices, intervals, logging."""
    data = local.model_dump(mode="json", exclude_none=True)
    data |= {
        "devices": [d.model_dump(mode="json", exclude_none=True) for d in remote.devices],
        "status_interval_s": remote.status_interval_s,
        "log_level": remote.log_level,
    }
    if local.mqtt.password is not None:  # model_dump masks secrets
        data["mqtt"]["password"] = local.mqtt.password.get_secret_value()
    return parse_config(data, source=f"configuration version {remote.version}")


def saved_remote(config: GatewayConfig) -> RemoteConfig | None:
    """The server configuration this gateway applied last, if any (and if it is its own)."""
    if config.remote is None:
        return None
    path = config.remote.state_dir / STATE_FILE
    try:
        saved = RemoteConfig.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        log.error("ignoring %s: %s", path, exc)
        return None
    if saved.gateway_id != config.gateway_id:
        log.error("ignoring %s: it is for gateway %s", path, saved.gateway_id)
        return None
    return saved


def startup_config(config: GatewayConfig) -> tuple[GatewayConfig, int | None]:
    """The configuration to start with: the file's, with the last applied server version."""
    saved = saved_remote(config)
    if saved is None:
        return config, None
    try:
        return merged_config(config, saved), saved.version
    except ConfigError as exc:
        log.error("cannot use the saved configuration version %d: %s", saved.version, exc)
        return config, None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _answered(device: PolledDevice) -> bool:
    try:
        device.poll()
    except Exception as exc:
        log.info("%s: no answer with the new configuration: %s", device.device_id, exc)
        return False
    return True


class RemoteControl:
    """Receives configs and commands for one gateway service and acts on them."""

    def __init__(
        self,
        service: Service,
        *,
        local_config: GatewayConfig,
        version: int | None,
        build_devices: DeviceBuilder,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        assert local_config.remote is not None
        self.service = service
        self.build_devices = build_devices
        self.local_config = local_config
        self.settings = local_config.remote
        self.version = version
        self.refused: str | None = None
        self.key = self.settings.command_key_file.read_text().strip()
        self._clock = clock
        self._seen_commands: collections.deque[str] = collections.deque(maxlen=100)
        self._started = time.monotonic()
        self.log_ring = LogRing()
        logging.getLogger().addHandler(self.log_ring)
        gateway_id = local_config.gateway_id
        service.publisher.subscribe(config_topic(gateway_id), self.on_config)
        service.publisher.subscribe(command_topic(gateway_id, "diagnostics"), self.on_command)
        self._report()

    def close(self) -> None:
        logging.getLogger().removeHandler(self.log_ring)

    def _report(self) -> None:
        self.service.publisher.status_extra.update(
            config_version=self.version, config_refused=self.refused
        )

    def _refuse(self, version: int | None, reason: str) -> None:
        log.error("configuration version %s refused: %s", version, reason)
        self.refused = f"{version}: {reason}"[:300]
        self._report()
        self.service.publisher.publish_status()

    # --- configs ----------------------------------------------------------------------------

    def on_config(self, topic: str, payload: bytes) -> None:
        if not payload:
            return  # the retained config was cleared
        try:
            delivery = ConfigDelivery.model_validate_json(payload)
        except ValidationError as exc:
            self._refuse(None, f"not a configuration: {exc.errors()[0]['msg']}")
            return
        config = delivery.config
        if not delivery.verify(self.key):
            self._refuse(config.version, "bad signature (not made by the server for this gateway)")
            return
        if config.gateway_id != self.local_config.gateway_id:
            self._refuse(config.version, f"it is for gateway {config.gateway_id}")
            return
        if self.version is not None and config.version <= self.version:
            if config.version < self.version:
                log.warning(
                    "ignoring configuration version %d: running %d", config.version, self.version
                )
            return
        self.apply(config)

    def apply(self, remote: RemoteConfig) -> bool:
        """Switch to ``remote`` unless its devices cannot be read; True when applied."""
        try:
            candidate = merged_config(self.local_config, remote)
        except ConfigError as exc:
            self._refuse(remote.version, str(exc).replace("\n", " "))
            return False
        try:
            devices, close = self.build_devices(candidate)
        except Exception as exc:
            self._refuse(remote.version, f"cannot build its devices: {exc}")
            return False
        answered = [d.device_id for d in devices if _answered(d)]
        if not answered and self.service.devices_answering():
            close()
            self._refuse(
                remote.version,
                "none of its devices answered while the running configuration's do; "
                "kept the running configuration",
            )
            return False
        state = self.settings.state_dir
        current = state / STATE_FILE
        if current.exists():
            shutil.copy2(current, state / PREVIOUS_FILE)
        _write_atomic(current, remote.model_dump_json(indent=2))
        self.service.replace_devices(candidate, devices, close)
        self.version, self.refused = remote.version, None
        self._report()
        self.service.publisher.publish_status()
        log.info(
            "configuration version %d applied: %d device(s), %d answered",
            remote.version,
            len(devices),
            len(answered),
        )
        return True

    # --- commands ---------------------------------------------------------------------------

    def on_command(self, topic: str, payload: bytes) -> None:
        try:
            command = GatewayCommand.model_validate_json(payload)
        except ValidationError as exc:
            log.warning("ignoring a malformed command: %s", exc.errors()[0]["msg"])
            return
        if not command.verify(self.key) or command.gateway_id != self.local_config.gateway_id:
            log.error("ignoring a command with a bad signature (%s)", command.command_id)
            return
        age_s = (self._clock() - command.issued_at).total_seconds()
        if not -COMMAND_LIFETIME_S <= age_s <= COMMAND_LIFETIME_S:
            log.warning("ignoring command %s: issued %.0f s ago", command.command_id, age_s)
            return
        if command.command_id in self._seen_commands:
            return
        self._seen_commands.append(command.command_id)
        if command.command == "diagnostics":
            bundle = self.diagnostics(command.command_id)
            self.service.publisher.publish_retained(
                diagnostics_topic(self.local_config.gateway_id),
                bundle.model_dump_json().encode(),
            )
            log.info("diagnostics sent (command %s)", command.command_id)

    def diagnostics(self, command_id: str | None = None) -> DiagnosticsBundle:
        service = self.service
        devices = []
        for device, cfg in service.devices_with_config():
            info = service.publisher.device_info(device.device_id)
            devices.append(
                DeviceDiagnostics(
                    device_id=device.device_id,
                    profile=cfg.profile,
                    address=(
                        f"{cfg.host}:{cfg.port} unit {cfg.unit}"
                        if cfg.host
                        else f"{cfg.serial_port} unit {cfg.unit}"
                    ),
                    last_result=getattr(device, "last_result", None),
                    polls=service.poll_counts(device.device_id)[0],
                    failures=service.poll_counts(device.device_id)[1],
                    manufacturer=info.manufacturer if info else None,
                    model=info.model if info else None,
                    serial=info.serial if info else None,
                    firmware=info.firmware if info else None,
                )
            )
        stats = service.spool.stats()
        spool_dir = service.spool.path.parent
        disk = shutil.disk_usage(spool_dir)
        extra = service.publisher.status_extra
        return DiagnosticsBundle(
            gateway_id=self.local_config.gateway_id,
            command_id=command_id,
            ts=self._clock(),
            firmware_version=__version__,
            package_version=extra.get("package_version"),
            channel=extra.get("channel"),
            config_version=self.version,
            uptime_s=round(time.monotonic() - self._started, 1),
            devices=tuple(devices),
            spool={
                "depth": stats.depth,
                "max_readings": stats.max_readings,
                "dropped_total": stats.dropped_total,
                "size_bytes": stats.size_bytes,
                "oldest": stats.oldest.isoformat() if stats.oldest else None,
            },
            broker={
                "connects": service.publisher.stats.connects,
                "disconnects": service.publisher.stats.disconnects,
                "readings_acked": service.publisher.stats.readings_acked,
                "in_flight": service.publisher.in_flight_readings,
            },
            clock=clock_state(),
            disk={"total_bytes": disk.total, "free_bytes": disk.free},
            memory=memory_state(),
            load=tuple(round(x, 2) for x in os.getloadavg()),
            log=tuple(self.log_ring.lines),
        )


def clock_state() -> dict[str, bool | str | None]:
    """Whether the clock is NTP-synchronised (systemd-timesyncd / timedatectl)."""
    state: dict[str, bool | str | None] = {"utc_now": datetime.now(UTC).isoformat()}
    state["timesyncd_synchronized"] = Path("/run/systemd/timesync/synchronized").exists()
    timedatectl = shutil.which("timedatectl")
    if timedatectl is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [timedatectl, "show", "-p", "NTPSynchronized", "--value"],
                capture_output=True, text=True, timeout=5, check=False,
            )  # fmt: skip
            if out.returncode == 0 and out.stdout.strip() in ("yes", "no"):
                state["ntp_synchronized"] = out.stdout.strip() == "yes"
    return state


def memory_state() -> dict[str, int]:
    """Total and available memory from ``/proc/meminfo`` [bytes]."""
    wanted = {"MemTotal": "total_bytes", "MemAvailable": "available_bytes"}
    result: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in wanted:
                result[wanted[name]] = int(rest.split()[0]) * 1024
    return result
