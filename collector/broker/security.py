"""Per-gateway broker credentials and the Mosquitto ACL that confines each gateway to its id.

Mosquitto reads two files (``config/mosquitto/zonnewijk.conf`` points at them):

- the password file (``password_file``), hashed with ``mosquitto_passwd`` (PBKDF2-SHA512);
  passwords never appear on a command line: they go through a private temporary file and
  ``mosquitto_passwd -U``;
- the ACL file (``acl_file``) with one block per user. A gateway's block lets it write only
  ``zonnewijk/v1/<its id>/...`` and read only its own ``commands`` and ``config`` topics; a
  collector's block (the server's processes) lets it read every gateway's readings, status and
  diagnostics, write the gateways' configs and commands, and the dead-letter topic.

Explicit per-user blocks rather than one ``pattern ... %u`` line: a ``pattern`` applies to
every authenticated user, collectors included, while an explicit block gives gateway rights only
to users registered as gateways. The production listener also sets
``use_username_as_clientid true`` so no client can take over another's session by reusing its
client id (the job ``%c`` patterns do elsewhere).

After changing the files, Mosquitto must reload them: ``systemctl reload mosquitto`` (SIGHUP).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from collector.devtools.services import require_binary
from zonnewijk_wire import ID_PATTERN, TOPIC_ROOT

ACL_HEADER = (
    "# Zonnewijk broker ACL, managed by `zonnewijk gateways add` and `zonnewijk broker\n"
    "# add-collector`: the BEGIN/END blocks are rewritten, other lines are kept."
)
#: User names reserved for collectors; a gateway cannot be registered under them.
COLLECTOR_PREFIX = "collector"


class BrokerSecurityError(ValueError):
    """A credential or ACL change was refused; the message says why."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def gateway_acl_block(gateway_id: str) -> str:
    """The ACL lines for one gateway: its own topics only."""
    _check_id(gateway_id)
    root = f"{TOPIC_ROOT}/{gateway_id}"
    return "\n".join(
        [
            f"# BEGIN gateway {gateway_id}",
            f"user {gateway_id}",
            f"topic write {root}/readings",
            f"topic write {root}/meter",
            f"topic write {root}/status",
            f"topic write {root}/devices/+/info",
            f"topic write {root}/diagnostics",
            f"topic read {root}/commands/#",
            f"topic read {root}/config",
            f"# END gateway {gateway_id}",
        ]
    )


def collector_acl_block(username: str) -> str:
    """The ACL lines for one collector: read every gateway, write dead letters."""
    _check_id(username)
    return "\n".join(
        [
            f"# BEGIN collector {username}",
            f"user {username}",
            f"topic read {TOPIC_ROOT}/+/readings",
            f"topic read {TOPIC_ROOT}/+/meter",
            f"topic read {TOPIC_ROOT}/+/status",
            f"topic read {TOPIC_ROOT}/+/devices/+/info",
            f"topic read {TOPIC_ROOT}/+/diagnostics",
            f"topic readwrite {TOPIC_ROOT}/+/config",
            f"topic write {TOPIC_ROOT}/+/commands/#",
            f"topic readwrite {TOPIC_ROOT}/_deadletter",
            f"# END collector {username}",
        ]
    )


def _check_id(name: str) -> None:
    if not re.fullmatch(ID_PATTERN, name):
        raise BrokerSecurityError(
            f"{name!r} is not a valid id: letters, digits, '_', '.', '-' (max 64, "
            "starting with a letter or digit)"
        )


_BLOCK = re.compile(r"# BEGIN (gateway|collector) (\S+)\n.*?# END \1 \2\n?", re.DOTALL)


def acl_entries(acl_text: str) -> dict[str, str]:
    """User name → kind (``gateway`` or ``collector``) of the managed blocks in an ACL file."""
    return {m.group(2): m.group(1) for m in _BLOCK.finditer(acl_text)}


def with_acl_block(acl_text: str, kind: str, name: str, block: str) -> str:
    """The ACL text with the block of ``name`` added or replaced; other lines are kept."""
    kept = _BLOCK.sub(lambda m: "" if m.group(2) == name else m.group(0), acl_text)
    kept = kept.rstrip("\n") or ACL_HEADER
    return f"{kept}\n\n{block}\n"


def without_acl_block(acl_text: str, name: str) -> str:
    return _BLOCK.sub(lambda m: "" if m.group(2) == name else m.group(0), acl_text)


def _atomic_write(path: Path, text: str, mode: int = 0o640) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def hash_password_line(username: str, password: str) -> str:
    """A password-file line for ``username``, hashed by ``mosquitto_passwd -U``."""
    if ":" in username or "\n" in password or not password:
        raise BrokerSecurityError("user names cannot hold ':' and passwords must be one line")
    binary = require_binary("mosquitto_passwd", "mosquitto")
    fd, tmp = tempfile.mkstemp(prefix="zw-passwd-")
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp makes it 0600: only we read the plain text
            f.write(f"{username}:{password}\n")
        result = subprocess.run([binary, "-U", tmp], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerSecurityError(f"mosquitto_passwd failed: {result.stderr.strip()}")
        line = Path(tmp).read_text().strip()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    if not line.startswith(f"{username}:$"):
        raise BrokerSecurityError("mosquitto_passwd did not hash the password")
    return line


def set_password(password_file: Path, username: str, password: str) -> None:
    """Add or replace ``username`` in a Mosquitto password file."""
    line = hash_password_line(username, password)
    existing = password_file.read_text().splitlines() if password_file.exists() else []
    kept = [entry for entry in existing if entry and not entry.startswith(f"{username}:")]
    _atomic_write(password_file, "\n".join([*kept, line]) + "\n", mode=0o640)


def remove_password(password_file: Path, username: str) -> bool:
    if not password_file.exists():
        return False
    existing = password_file.read_text().splitlines()
    kept = [entry for entry in existing if entry and not entry.startswith(f"{username}:")]
    if len(kept) == len(existing):
        return False
    _atomic_write(password_file, "\n".join(kept) + ("\n" if kept else ""))
    return True


def password_users(password_file: Path) -> list[str]:
    if not password_file.exists():
        return []
    return [line.split(":", 1)[0] for line in password_file.read_text().splitlines() if line]


def add_gateway(
    gateway_id: str, *, password_file: Path, acl_file: Path, password: str | None = None
) -> Credentials:
    """Create (or rotate) a gateway's credentials and its ACL entry.

    Returns the credentials; the password is shown once and stored only hashed.
    """
    _check_id(gateway_id)
    if gateway_id.startswith(COLLECTOR_PREFIX):
        raise BrokerSecurityError(
            f"{gateway_id!r}: ids starting with {COLLECTOR_PREFIX!r} are reserved for collectors"
        )
    acl_text = acl_file.read_text() if acl_file.exists() else ""
    if acl_entries(acl_text).get(gateway_id) == "collector":
        raise BrokerSecurityError(f"{gateway_id!r} is a collector user")
    password = password or secrets.token_urlsafe(24)
    set_password(password_file, gateway_id, password)
    _atomic_write(
        acl_file, with_acl_block(acl_text, "gateway", gateway_id, gateway_acl_block(gateway_id))
    )
    return Credentials(gateway_id, password)


def add_collector(
    username: str, *, password_file: Path, acl_file: Path, password: str | None = None
) -> Credentials:
    """Create (or rotate) a collector's credentials and its ACL entry."""
    _check_id(username)
    if not username.startswith(COLLECTOR_PREFIX):
        raise BrokerSecurityError(f"collector user names start with {COLLECTOR_PREFIX!r}")
    password = password or secrets.token_urlsafe(24)
    set_password(password_file, username, password)
    acl_text = acl_file.read_text() if acl_file.exists() else ""
    _atomic_write(
        acl_file, with_acl_block(acl_text, "collector", username, collector_acl_block(username))
    )
    return Credentials(username, password)


def remove_user(username: str, *, password_file: Path, acl_file: Path) -> bool:
    """Revoke a gateway's or collector's access; True when something was removed."""
    removed = remove_password(password_file, username)
    if acl_file.exists():
        text = acl_file.read_text()
        new = without_acl_block(text, username)
        if new != text:
            _atomic_write(acl_file, new)
            removed = True
    return removed


def broker_auth_config(password_file: Path, acl_file: Path) -> str:
    """Mosquitto configuration lines that switch on this authentication (tests, demo)."""
    return "\n".join(
        [
            f"password_file {password_file}",
            f"acl_file {acl_file}",
        ]
    )


def gateways_in(acl_file: Path) -> Iterable[str]:
    text = acl_file.read_text() if acl_file.exists() else ""
    return [name for name, kind in acl_entries(text).items() if kind == "gateway"]
