"""A local health endpoint: ``GET http://127.0.0.1:<health_port>/health`` answers JSON.

Off unless ``health_port`` is set in the configuration (the documented port is 8470). It
listens on the loopback interface only: it is for the installer's laptop on the Pi's console,
a local monitoring agent or ``curl``, not for the network. The body is the snapshot the
service's main loop last published (the server thread never touches the spool or the MQTT
client); the status code is 200 when the gateway is healthy and 503 when not (spool not
writable, broker unreachable, or no device answered its last poll).

Example::

    {"healthy": false, "problems": ["spool full: cannot commit readings: database or disk is
     full"], "spool": {"state": "full", "memory_readings": 12, ...},
     "broker": {"connected": true}, "last_poll": "inv-1: ok", "ts": "2026-12-07T21:40:00Z"}
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

#: The documented port of the health endpoint (when enabled).
DEFAULT_HEALTH_PORT = 8470


class HealthServer:
    """Serves the latest snapshot on ``127.0.0.1:<port>`` from a daemon thread.

    Parameters
    ----------
    port
        TCP port on the loopback interface; 0 picks a free one (see :attr:`port`).
    """

    def __init__(self, port: int, *, host: str = "127.0.0.1") -> None:
        self._lock = threading.Lock()
        self._snapshot: dict[str, Any] = {"healthy": False, "problems": ["starting"]}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] not in ("/health", "/"):
                    self.send_error(404, "try /health")
                    return
                snapshot = server.snapshot()
                body = json.dumps(snapshot).encode()
                self.send_response(200 if snapshot.get("healthy") else 503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("health: " + format, *args)

        self._httpd = ThreadingHTTPServer((host, port), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="health", daemon=True
        )

    def start(self) -> None:
        self._thread.start()
        log.info("health endpoint on http://127.0.0.1:%d/health", self.port)

    def update(self, snapshot: dict[str, Any]) -> None:
        """Replace the snapshot served (called by the main loop)."""
        with self._lock:
            self._snapshot = snapshot

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return self._snapshot

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def read_health(port: int, *, host: str = "127.0.0.1", timeout_s: float = 2.0) -> dict[str, Any]:
    """The snapshot a running gateway serves on ``port`` (also when it answers 503, unhealthy).

    Raises :class:`OSError` when nothing answers there (the gateway is not running, still
    starting, or has no ``health_port``).
    """
    import urllib.error
    import urllib.request

    url = f"http://{host}:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:  # 503: unhealthy, the body still says why
        body = exc.read()
    snapshot: dict[str, Any] = json.loads(body)
    return snapshot


def spool_depth(snapshot: dict[str, Any]) -> int | None:
    """Readings the gateway says still wait for a PUBACK, from a :func:`read_health` snapshot;
    None before its main loop published one. Acknowledged readings may stay in the spool file
    until the next commit deletes them, so only the gateway's own count says the spool is
    empty."""
    depth = snapshot.get("spool", {}).get("depth")
    return None if depth is None else int(depth)
