"""A throw-away certificate authority made with ``openssl`` (tests, benches, demos).

:func:`make_pki` writes a CA and a server certificate for ``127.0.0.1`` and ``localhost``
signed by it (EC P-256, valid two days), which both the HTTPS enrolment server and Mosquitto's
TLS listener use in tests, plus an unrelated CA to prove that a wrong CA is refused.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from collector.devtools.services import require_binary


@dataclass(frozen=True)
class Pki:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    other_ca_cert: Path


def _openssl(*args: str, cwd: Path) -> None:
    binary = require_binary("openssl", "openssl")
    result = subprocess.run([binary, *args], cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr.strip()}")


def make_pki(directory: Path, *, days: int = 2) -> Pki:
    """A CA and a server certificate for 127.0.0.1/localhost in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for name in ("ca", "other-ca"):
        _openssl(
            "req", "-x509", *ec, "-days", str(days), "-keyout", f"{name}.key",
            "-out", f"{name}.crt", "-subj", f"/CN=zonnewijk test {name}", cwd=directory,
        )  # fmt: skip
    _openssl(
        "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1",
        cwd=directory,
    )  # fmt: skip
    (directory / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", str(days), "-out", "server.crt", "-extfile", "server.ext",
        cwd=directory,
    )  # fmt: skip
    for key in ("ca.key", "other-ca.key", "server.key"):
        (directory / key).chmod(0o600)
    return Pki(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        server_cert=directory / "server.crt",
        server_key=directory / "server.key",
        other_ca_cert=directory / "other-ca.crt",
    )
