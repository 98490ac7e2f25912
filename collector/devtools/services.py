"""Start a private Mosquitto or InfluxDB on a free port, for tests, benchmarks and the demo.

Each service gets a temporary directory with its own configuration and data, binds to
127.0.0.1 on a free port, and is stopped (and its directory removed) by :meth:`stop` or on
leaving the ``with`` block. Production runs the real services (see docker-compose.yml).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import requests


class ServiceError(RuntimeError):
    """A service could not be started."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return True
        time.sleep(0.05)
    return False


def require_binary(name: str, debian_package: str) -> str:
    path = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if path is None:
        raise ServiceError(
            f"{name} not found: install Debian's {debian_package} (apt-get install {debian_package})"
        )
    return path


@dataclass
class _Service:
    directory: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    keep_directory: bool = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        return self.directory / "service.log"

    def _spawn(self, argv: list[str]) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """Stop the process hard (SIGKILL), keeping its data directory: a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def terminate(self) -> None:
        """Stop the process gracefully, keeping its data directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def stop(self) -> None:
        """Stop the process and remove its directory (unless ``keep_directory``)."""
        self.terminate()
        if not self.keep_directory:
            shutil.rmtree(self.directory, ignore_errors=True)

    def tail_log(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Mosquitto(_Service):
    """A private Mosquitto broker.

    ``extra_config`` lines are appended to the generated configuration (ACLs, password file).
    Anonymous clients are allowed unless ``extra_config`` sets up authentication.
    """

    extra_config: str = ""
    allow_anonymous: bool = True

    @classmethod
    def create(cls, *, extra_config: str = "", allow_anonymous: bool = True) -> Mosquitto:
        return cls(
            directory=Path(tempfile.mkdtemp(prefix="zw-mosquitto-")),
            port=free_port(),
            extra_config=extra_config,
            allow_anonymous=allow_anonymous,
        )

    @property
    def config_path(self) -> Path:
        return self.directory / "mosquitto.conf"

    def write_config(self) -> None:
        (self.directory / "data").mkdir(exist_ok=True)
        self.config_path.write_text(
            "\n".join(
                [
                    f"listener {self.port} 127.0.0.1",
                    # As root, Mosquitto drops to the "mosquitto" user, which cannot write the
                    # persistence file into this private 0700 directory: stay root instead.
                    "user root" if os.geteuid() == 0 else "",
                    f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
                    "persistence true",
                    f"persistence_location {self.directory / 'data'}/",
                    "autosave_interval 30",
                    "max_queued_messages 1000000",
                    "max_queued_bytes 0",
                    "max_inflight_messages 1000",
                    "log_dest stdout",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    self.extra_config,
                    "",
                ]
            )
        )

    def start(self) -> None:
        binary = require_binary("mosquitto", "mosquitto")
        self.write_config()
        self._spawn([binary, "-c", str(self.config_path)])
        if not wait_for_port("127.0.0.1", self.port, 10):
            self.terminate()
            raise ServiceError(f"mosquitto did not start on port {self.port}:\n{self.tail_log()}")


_INFLUXD_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"

[meta]
  dir = "{dir}/meta"
  logging-enabled = false

[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  query-log-enabled = false
  cache-snapshot-write-cold-duration = "10s"
  index-version = "inmem"

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = true

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false
  max-body-size = 0
  max-concurrent-write-limit = 0

[continuous_queries]
  enabled = true
  log-enabled = false
  run-interval = "{cq_interval}"

[logging]
  level = "warn"
"""


@dataclass
class Influxd(_Service):
    """A private InfluxDB 1.x server (``influxd``)."""

    rpc_port: int = 0
    cq_run_interval: str = "1s"

    @classmethod
    def create(cls, *, cq_run_interval: str = "1s") -> Influxd:
        return cls(
            directory=Path(tempfile.mkdtemp(prefix="zw-influxd-")),
            port=free_port(),
            rpc_port=free_port(),
            cq_run_interval=cq_run_interval,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "influxdb.conf"

    def start(self) -> None:
        binary = require_binary("influxd", "influxdb")
        self.config_path.write_text(
            _INFLUXD_CONFIG.format(
                dir=self.directory,
                rpc_port=self.rpc_port,
                http_port=self.port,
                cq_interval=self.cq_run_interval,
            )
        )
        self._spawn([binary, "run", "-config", str(self.config_path)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not self.running():
                break
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + "/ping", timeout=0.5).status_code == 204:
                    return
            time.sleep(0.1)
        self.terminate()
        raise ServiceError(f"influxd did not start on port {self.port}:\n{self.tail_log()}")
