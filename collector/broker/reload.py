"""Telling Mosquitto to re-read its password and ACL files (SIGHUP) after a change.

The command is configurable (``ZONNEWIJK_MQTT_RELOAD_COMMAND``): ``systemctl reload
mosquitto`` on a Debian server, ``docker kill -s HUP mosquitto`` next to a container, or
``kill -HUP <pid>`` for a private broker in tests. An empty command means the operator
reloads by hand.
"""

from __future__ import annotations

import shlex
import subprocess

from collector.broker.security import BrokerSecurityError

DEFAULT_RELOAD_COMMAND = "systemctl reload mosquitto"


def reload_broker(command: str, *, timeout_s: float = 20.0) -> bool:
    """Run the reload command; False when there is none, BrokerSecurityError if it fails."""
    argv = shlex.split(command)
    if not argv:
        return False
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerSecurityError(f"cannot reload the broker with {command!r}: {exc}") from None
    if result.returncode != 0:
        raise BrokerSecurityError(
            f"reloading the broker with {command!r} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[:300]}"
        )
    return True
