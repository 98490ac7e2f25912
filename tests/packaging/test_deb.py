"""The gateway's Debian package in a throw-away Debian root (debootstrap + chroot).

From nothing to a running, enrolled gateway: ``apt install`` from the cooperative's signed
repository (reprepro, suite ``stable``) and one ``zonnewijk-gateway enrol`` against the real
HTTPS enrolment server; the gateway, run as its system user inside the chroot, publishes a
simulated inverter's readings to the real TLS broker. Then the broker goes away (readings
collect in the spool), the channel becomes ``canary`` and ``apt install`` upgrades: spool,
configuration and credentials survive, the maintainer scripts run again cleanly, and
remove keeps configuration and spool while purge removes them and the user. The package is
built twice from the same commit: the bytes are the same.

The repository is served over HTTP, as on a Pi, so apt keeps what it downloads and postinst
keeps each version's package: an upgrade that fails to start goes back to the version marked
good and refuses the bad one (packaging/debian/rollback).

Slow (about a minute and a half here: two package builds, a Debian base of ~300 MB); needs
root, debootstrap, reprepro, gpg and dpkg-deb, and Debian's mirror the first time (the base
is then kept as a tarball under /var/cache/zonnewijk-tests). Skipped, with the reason, when
any is missing.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fleet_fixtures import FleetServer, Subscriber

from collector.remote.draft import Transport
from collector.simulator.modbus_device import SimulatedInverters, layout_for
from zonnewijk_wire import decode_batch

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("ZONNEWIJK_TEST_CACHE", "/var/cache/zonnewijk-tests"))
BASE = CACHE / "bookworm-minbase.tar.gz"
MIRROR = os.environ.get("ZONNEWIJK_DEBIAN_MIRROR", "http://deb.debian.org/debian")
EPOCH = "1780000000"

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (chroot, mounting /proc, dpkg in the chroot)"
    for tool, package in (
        ("debootstrap", "debootstrap"), ("reprepro", "reprepro"), ("gpg", "gpg"),
        ("dpkg-deb", "dpkg"), ("chroot", "coreutils"),
    ):  # fmt: skip
        if shutil.which(tool) is None:
            return f"needs {tool} (Debian: apt-get install {package})"
    if not Path("/usr/bin/python3.11").exists():
        return "needs Debian's python3.11 to build the package's venv"
    return None


if (reason := _missing()) is not None:
    pytestmark.append(pytest.mark.skip(reason=reason))


def run(*argv: str | Path, env: dict[str, str] | None = None, check: bool = True) -> str:
    result = subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, argv))} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout


def build(out: Path, version: str) -> Path:
    env = {**os.environ, "VERSION": version, "SOURCE_DATE_EPOCH": EPOCH}
    return Path(run(ROOT / "packaging" / "build-deb.sh", out, env=env).strip().splitlines()[-1])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def base_tarball() -> Path:
    """A minimal Bookworm with python3.11, made once with debootstrap and kept."""
    if BASE.exists():
        return BASE
    CACHE.mkdir(parents=True, exist_ok=True)
    target = CACHE / "bookworm-minbase.tmp"
    shutil.rmtree(target, ignore_errors=True)
    result = subprocess.run(
        ["debootstrap", "--variant=minbase", "--include=python3.11,ca-certificates",
         "bookworm", str(target), MIRROR],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    if result.returncode != 0:
        shutil.rmtree(target, ignore_errors=True)
        pytest.skip(f"debootstrap could not make a Debian root from {MIRROR}: "
                    f"{result.stdout[-500:]}{result.stderr[-500:]}")  # fmt: skip
    partial = BASE.with_suffix(".partial")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(target, arcname=".")
    partial.replace(BASE)
    shutil.rmtree(target, ignore_errors=True)
    return BASE


class Chroot:
    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, *argv: str, check: bool = True) -> str:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "DEBIAN_FRONTEND": "noninteractive",
               "LANG": "C.UTF-8"}  # fmt: skip
        return run("chroot", self.root, *argv, env=env, check=check)

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    #: where apt finds the repository: over HTTP as on a Pi (so apt keeps what it downloads
    #: in its cache, which the rollback relies on), set by the test
    uri = "file:/srv/zonnewijk-apt"

    def apt_source(self, suite: str) -> None:
        self.path("/etc/apt/sources.list.d/zonnewijk.sources").write_text(
            f"Types: deb\nURIs: {self.uri}\n"
            f"Suites: {suite}\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/zonnewijk-archive-keyring.gpg\n"
        )


@pytest.fixture
def debian_root(tmp_path: Path) -> Iterator[Chroot]:
    root = tmp_path / "root"
    root.mkdir()
    with tarfile.open(base_tarball()) as tar:
        tar.extractall(root, filter="fully_trusted")
    for name in ("debian.sources", "sources.list"):  # only the cooperative's repository
        for place in (root / "etc/apt/sources.list.d" / name, root / "etc/apt" / name):
            place.unlink(missing_ok=True)
    shutil.copy2("/etc/resolv.conf", root / "etc/resolv.conf")
    run("mount", "-t", "proc", "proc", root / "proc")
    try:
        yield Chroot(root)
    finally:
        run("umount", "-l", root / "proc", check=False)


@pytest.fixture
def repo_over_http() -> Iterator[Callable[[Path], ThreadingHTTPServer]]:
    """Serves a directory over HTTP on a free port (in a thread) until the test ends."""
    servers: list[ThreadingHTTPServer] = []

    def serve(directory: Path) -> ThreadingHTTPServer:
        handler = functools.partial(QuietHandler, directory=str(directory))
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def spool_state(chroot: Chroot) -> str:
    return chroot("zonnewijk-gateway", "spool", "--config", "/etc/zonnewijk/gateway.yaml",
                  "--json")  # fmt: skip


def test_install_enrol_run_upgrade_remove_in_a_debian_root(
    tmp_path: Path,
    debian_root: Chroot,
    fleet_server: FleetServer,
    repo_over_http: Callable[[Path], ThreadingHTTPServer],
) -> None:
    chroot = debian_root
    # the package, twice from the same commit: the same bytes
    v1 = build(tmp_path / "dist-1", "0.1.0-1")
    again = build(tmp_path / "dist-again", "0.1.0-1")
    assert sha256(v1) == sha256(again), "two builds of one commit differ"
    v2 = build(tmp_path / "dist-2", "0.1.0-2")

    # the signed repository: 0.1.0-1 on stable, 0.1.0-2 on canary first
    gnupg, repo = tmp_path / "gnupg", tmp_path / "repo"
    script = ROOT / "packaging" / "apt-repo.sh"
    key = run(script, "newkey", gnupg).strip()
    env = {**os.environ, "GNUPGHOME": str(gnupg)}
    run(script, "init", repo, key, env=env)
    run(script, "publish", repo, "stable", v1, env=env)
    run(script, "publish", repo, "canary", v2, env=env)
    assert (repo / "dists/stable/InRelease").read_text().count("BEGIN PGP SIGNATURE") == 1
    shutil.copytree(repo, chroot.path("/srv/zonnewijk-apt"))
    http = repo_over_http(chroot.path("/srv/zonnewijk-apt"))
    chroot.uri = f"http://127.0.0.1:{http.server_address[1]}"
    shutil.copy2(
        repo / "zonnewijk-archive-keyring.gpg",
        chroot.path("/usr/share/keyrings/zonnewijk-archive-keyring.gpg"),
    )
    chroot.apt_source("stable")

    # one apt install ...
    chroot("apt-get", "update")
    chroot("apt-get", "install", "-y", "zonnewijk-gateway")
    assert chroot("dpkg-query", "-W", "-f", "${Version}", "zonnewijk-gateway") == "0.1.0-1"
    assert "zonnewijk" in chroot("id", "-nG", "zonnewijk")
    assert oct(chroot.path("/etc/zonnewijk").stat().st_mode & 0o777) == "0o750"

    with SimulatedInverters({1: layout_for("growatt")}) as inverter:
        inverter.set_values(1, ac_power_w=950.0, ac_energy_wh=7_777_000.0)
        created = fleet_server.service.create_code(
            "S002", created_by="test", transport=Transport(host="127.0.0.1", port=inverter.port)
        )
        shutil.copy2(fleet_server.pki.ca_cert, chroot.path("/tmp/coop-ca.crt"))
        # ... and one enrol command (no systemd in a chroot: it says so instead of restarting)
        out = chroot("zonnewijk-gateway", "enrol", fleet_server.url, created.display,
                     "--ca-file", "/tmp/coop-ca.crt")  # fmt: skip
        assert "enrolled as gw-s002" in out and "systemd is not running here" in out

        collector = Subscriber(
            fleet_server.broker.port, fleet_server.pki.ca_cert, "collector-1",
            fleet_server.collector_password, "zonnewijk/v1/+/readings",
        )  # fmt: skip
        assert collector.connected.wait(5) and collector.subscribed.wait(5)
        # a chroot has no NTP daemon and this kernel reports unsynchronised: trust the clock
        service = ["runuser", "-u", "zonnewijk", "--", "env", "ZONNEWIJK_GATEWAY_CLOCK_SYNC=trust",
                   "zonnewijk-gateway", "run", "--config", "/etc/zonnewijk/gateway.yaml"]  # fmt: skip
        chroot(*service, "--duration", "6")
        time.sleep(0.5)
        collector.close()
        assert collector.messages, "the installed gateway published nothing"
        batch = decode_batch(collector.messages[0][1], topic_gateway_id="gw-s002")
        assert batch.readings[0].ac_energy_wh == 7_777_000.0

        # the broker goes away: readings wait in the spool
        fleet_server.broker.terminate()
        chroot(*service, "--duration", "4")
    before = spool_state(chroot)
    assert '"depth": 0' not in before
    kept = {
        name: chroot.path(f"/etc/zonnewijk/{name}").read_bytes()
        for name in ("gateway.yaml", "mqtt-password", "command-key", "broker-ca.crt")
    }

    # the version that ran is good (on a Pi the timer marks it after 15 quiet minutes; no
    # systemd here, so by hand), and postinst kept its package for a rollback
    rollback = "/usr/lib/zonnewijk-gateway/rollback"
    assert "0.1.0-1 is good" in chroot(rollback, "mark-good", "--force")
    assert chroot.path(
        "/var/lib/zonnewijk-gateway-release/packages/zonnewijk-gateway_0.1.0-1_"
        + v1.name.rsplit("_", 1)[1]
    ).exists()

    # the canary channel upgrades; spool, configuration and credentials survive
    chroot.apt_source("canary")
    chroot("apt-get", "update")
    chroot("apt-get", "install", "-y", "zonnewijk-gateway")
    assert chroot("dpkg-query", "-W", "-f", "${Version}", "zonnewijk-gateway") == "0.1.0-2"
    assert spool_state(chroot) == before
    for name, content in kept.items():
        assert chroot.path(f"/etc/zonnewijk/{name}").read_bytes() == content, name
    reported = chroot(
        "/opt/zonnewijk-gateway/venv/bin/python", "-c",
        "from gateway_firmware.package_info import installed; print(installed())",
    )  # fmt: skip
    assert reported.strip() == "{'package_version': '0.1.0-2', 'channel': 'canary'}"

    # 0.1.0-2 fails to start on this gateway: its OnFailure= runs the rollback, which goes back
    # to the good version and refuses 0.1.0-2, so the next unattended upgrade does not retry it
    assert "went back from 0.1.0-2 to 0.1.0-1" in chroot(rollback, "run")
    assert chroot("dpkg-query", "-W", "-f", "${Version}", "zonnewijk-gateway") == "0.1.0-1"
    chroot("apt-get", "install", "-y", "zonnewijk-gateway")
    assert chroot("dpkg-query", "-W", "-f", "${Version}", "zonnewijk-gateway") == "0.1.0-1"
    assert "refused: /etc/apt/preferences.d/zonnewijk-gateway-refused-0.1.0_2.pref" in chroot(
        rollback, "status"
    )
    assert spool_state(chroot) == before
    assert "nothing to go back to" in chroot(rollback, "run", check=False)
    unit = (ROOT / "packaging/debian/zonnewijk-gateway.service").read_text()
    assert "OnFailure=zonnewijk-gateway-rollback.service" in unit and "StartLimitBurst=5" in unit

    # the maintainer scripts are safe to run again
    for _ in range(2):
        chroot("/var/lib/dpkg/info/zonnewijk-gateway.postinst", "configure")

    # remove keeps configuration and spool; purge removes them and the user
    chroot("apt-get", "remove", "-y", "zonnewijk-gateway")
    assert not chroot.path("/opt/zonnewijk-gateway/venv").exists()
    assert chroot.path("/etc/zonnewijk/gateway.yaml").exists()
    assert chroot.path("/var/lib/zonnewijk-gateway/spool.sqlite3").exists()
    chroot("apt-get", "purge", "-y", "zonnewijk-gateway")
    assert not chroot.path("/etc/zonnewijk").exists()
    assert not chroot.path("/var/lib/zonnewijk-gateway").exists()
    assert chroot("getent", "passwd", "zonnewijk", check=False) == ""
    assert not chroot.path("/var/lib/zonnewijk-gateway-release").exists()
