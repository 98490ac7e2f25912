"""``zonnewijk-gateway enrol URL CODE``: a new Pi fetches its identity, credentials and config.

The Pi sends the one-time code over HTTPS (the server's certificate is checked against the
system's CAs, or ``--ca-file`` for a private CA) and receives an
:class:`~zonnewijk_wire.enrolment.EnrolmentGrant`. It then writes, each file atomically:

- ``<config-dir>/mqtt-password`` and ``<config-dir>/command-key`` (0640, group ``zonnewijk``
  when that group exists, so only root and the service read them);
- ``<config-dir>/broker-ca.crt``, the CA of the broker's TLS certificate;
- ``<config-dir>/gateway.yaml``, validated like every configuration before it is written (an
  earlier file is kept as ``gateway.yaml.bak``, and its ``spool`` section is kept);
- ``<state-dir>/remote-config.json``, the server's configuration version it now runs.

and restarts the service (``systemctl enable`` + ``restart``) when systemd runs the machine,
unless ``--no-restart``. Nothing secret is ever typed or copied by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import grp
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway_firmware import __version__
from gateway_firmware.config import ConfigError, GatewayConfig, load_config, parse_config
from zonnewijk_wire.enrolment import (
    ENROL_PATH,
    EnrolmentGrant,
    EnrolmentRequest,
    normalise_code,
)

DEFAULT_CONFIG_DIR = Path("/etc/zonnewijk")
DEFAULT_STATE_DIR = Path("/var/lib/zonnewijk-gateway")
SERVICE_GROUP = "zonnewijk"
SERVICE_UNIT = "zonnewijk-gateway.service"
REMOTE_CONFIG_FILE = "remote-config.json"


class EnrolmentFailedError(RuntimeError):
    """Enrolment did not happen; the message says why and what to do."""


def request_grant(
    url: str, code: str, *, ca_file: Path | None = None, timeout_s: float = 30.0
) -> EnrolmentGrant:
    """Redeem ``code`` at the server ``url`` (``https://...``)."""
    if not url.startswith("https://"):
        raise EnrolmentFailedError(f"{url}: enrolment is over HTTPS only (https://...)")
    canonical = normalise_code(code)
    if canonical is None:
        raise EnrolmentFailedError(
            f"{code!r} is not an enrolment code: 16 letters and digits, e.g. 7KQ4-M2XD-9V0C-HT3R"
        )
    body = EnrolmentRequest(
        code=canonical, hostname=socket.gethostname()[:200], firmware_version=__version__
    ).model_dump_json()
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    request = urllib.request.Request(
        url.rstrip("/") + ENROL_PATH,
        data=body.encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
            payload = response.read(1_000_000)
    except urllib.error.HTTPError as exc:
        raise EnrolmentFailedError(f"the server refused: {_detail(exc)}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLCertVerificationError):
            raise EnrolmentFailedError(
                f"the server's certificate is not trusted ({reason.verify_message}); check "
                "the address, the Pi's clock (timedatectl), or give the cooperative's CA "
                "with --ca-file"
            ) from None
        raise EnrolmentFailedError(f"cannot reach {url}: {reason}") from None
    except (TimeoutError, OSError) as exc:
        raise EnrolmentFailedError(f"cannot reach {url}: {exc}") from None
    try:
        return EnrolmentGrant.model_validate_json(payload)
    except ValidationError as exc:
        raise EnrolmentFailedError(
            f"the server's answer is not an enrolment grant: {exc}"
        ) from None


def _detail(exc: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(exc.read(10_000))
        return f"{data['detail']} (HTTP {exc.code}, {data.get('reason', '')})"
    except (ValueError, KeyError, TypeError, OSError):
        return f"HTTP {exc.code} {exc.reason}"


# --- writing the files --------------------------------------------------------------------


def _service_gid() -> int | None:
    try:
        return grp.getgrnam(SERVICE_GROUP).gr_gid
    except KeyError:
        return None


def write_file(path: Path, text: str, *, secret: bool) -> None:
    """Write ``path`` atomically; secrets 0640 root:zonnewijk (0600 without that group)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        gid = _service_gid()
        private = 0o640 if gid is not None else 0o600
        mode = private if secret else 0o644
        if gid is not None and os.geteuid() == 0:
            os.chown(tmp, 0, gid)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class Enrolled:
    config: GatewayConfig
    config_path: Path
    config_version: int


def install_grant(
    grant: EnrolmentGrant, *, config_dir: Path, state_dir: Path, now: datetime | None = None
) -> Enrolled:
    """Write the grant's files; returns the validated configuration now in place."""
    now = now or datetime.now(UTC)
    config_path = config_dir / "gateway.yaml"
    spool: dict[str, Any] = {"path": str(state_dir / "spool.sqlite3")}
    previous: GatewayConfig | None = None
    if config_path.exists():
        with contextlib.suppress(ConfigError):
            previous = load_config(config_path)
        if previous is not None:
            spool = previous.spool.model_dump(mode="json")
    password_file = config_dir / "mqtt-password"
    write_file(password_file, grant.broker.password + "\n", secret=True)
    write_file(config_dir / "command-key", grant.command_key + "\n", secret=True)
    mqtt: dict[str, Any] = {
        "host": grant.broker.host,
        "port": grant.broker.port,
        "username": grant.broker.username,
        "password_file": str(password_file),
        "protocol": grant.broker.protocol,
    }
    if grant.broker.ca_pem is not None:
        ca_file = config_dir / "broker-ca.crt"
        write_file(ca_file, grant.broker.ca_pem, secret=False)
        mqtt["tls"] = {"ca_file": str(ca_file)}
    remote = grant.config
    data: dict[str, Any] = {
        "gateway_id": grant.gateway_id,
        "mqtt": mqtt,
        "spool": spool,
        "status_interval_s": remote.status_interval_s,
        "log_level": remote.log_level,
        "devices": [d.model_dump(mode="json", exclude_none=True) for d in remote.devices],
        "remote": {
            "command_key_file": str(config_dir / "command-key"),
            "state_dir": str(state_dir),
        },
    }
    try:
        config = parse_config(data, source="the enrolment grant")
    except ConfigError as exc:
        raise EnrolmentFailedError(str(exc)) from None
    header = (
        f"# Written by `zonnewijk-gateway enrol` on {now:%Y-%m-%d %H:%M} UTC for site "
        f"{grant.site_id}.\n# Devices, intervals and logging come from the server "
        f"(configuration version {remote.version}); change them there, not here.\n"
    )
    if config_path.exists():
        shutil.copy2(config_path, config_path.with_name("gateway.yaml.bak"))
    write_file(
        config_path, header + yaml.safe_dump(data, sort_keys=False), secret=True
    )  # secret: names the password file and the broker
    state_dir.mkdir(parents=True, exist_ok=True)
    write_file(state_dir / REMOTE_CONFIG_FILE, remote.model_dump_json(indent=2), secret=False)
    return Enrolled(config, config_path, remote.version)


def restart_service() -> str:
    """Enable and restart the service when systemd runs this machine; what happened."""
    systemctl = shutil.which("systemctl")
    if systemctl is None or not Path("/run/systemd/system").is_dir():
        return "systemd is not running here: start the service yourself"
    for action in (["enable", SERVICE_UNIT], ["restart", SERVICE_UNIT]):
        result = subprocess.run(
            [systemctl, *action], capture_output=True, text=True, check=False, timeout=60
        )
        if result.returncode != 0:
            return f"systemctl {' '.join(action)} failed: {result.stderr.strip()}"
    return f"{SERVICE_UNIT} restarted"


# --- the command --------------------------------------------------------------------------


def enrol_command(args: argparse.Namespace) -> int:
    """``zonnewijk-gateway enrol URL CODE``."""
    try:
        grant = request_grant(args.url, args.code, ca_file=args.ca_file, timeout_s=args.timeout)
        enrolled = install_grant(grant, config_dir=args.config_dir, state_dir=args.state_dir)
    except (EnrolmentFailedError, OSError) as exc:
        print(f"enrolment failed: {exc}", file=sys.stderr)
        return 1
    devices = ", ".join(d.device_id for d in enrolled.config.devices)
    print(f"enrolled as {grant.gateway_id} (site {grant.site_id}); devices: {devices}")
    print(f"configuration version {enrolled.config_version} written to {enrolled.config_path}")
    if args.no_restart:
        print(f"start the service: systemctl enable --now {SERVICE_UNIT}")
    else:
        print(restart_service())
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("enrol", help="enrol this Pi with a one-time code from the operators")
    p.add_argument("url", help="the cooperative's enrolment address, https://...")
    p.add_argument("code", help="the one-time code, e.g. 7KQ4-M2XD-9V0C-HT3R")
    p.add_argument("--ca-file", type=Path, help="CA of the server's certificate (private CA)")
    p.add_argument("--config-dir", type=Path, default=DEFAULT_CONFIG_DIR)
    p.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    p.add_argument("--timeout", type=float, default=30.0, help="HTTPS timeout [s]")
    p.add_argument("--no-restart", action="store_true", help="do not (re)start the service")
    p.set_defaults(func=enrol_command)
