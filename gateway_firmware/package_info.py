"""Which Debian package and release channel this gateway runs (reported in its status).

The package (``packaging/build-deb.sh``) writes its version to
``/opt/zonnewijk-gateway/PACKAGE_VERSION``, beside the venv this code runs from; the channel
is the suite of the cooperative's apt source (``Suites: canary`` or ``stable`` in
``/etc/apt/sources.list.d/zonnewijk.sources``). Both are None on a gateway installed by hand.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

APT_SOURCE = Path("/etc/apt/sources.list.d/zonnewijk.sources")


def package_version(prefix: Path | None = None) -> str | None:
    path = (prefix or Path(sys.prefix)).parent / "PACKAGE_VERSION"
    try:
        return path.read_text().strip()[:64] or None
    except OSError:
        return None


def release_channel(source: Path = APT_SOURCE) -> str | None:
    try:
        text = source.read_text()
    except OSError:
        return None
    match = re.search(r"^Suites:\s*(\S+)", text, re.MULTILINE)
    return match.group(1)[:32] if match else None


def installed() -> dict[str, str | None]:
    """The status fields ``package_version`` and ``channel``."""
    return {"package_version": package_version(), "channel": release_channel()}
