"""Serving an app with uvicorn in a background thread (tests, bench, demos)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

from collector.devtools.services import free_port


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # a thread cannot install signal handlers
        pass


@contextmanager
def serve_in_thread(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    tls_cert: Path | None = None,
    tls_key: Path | None = None,
) -> Iterator[str]:
    """Serve ``app`` on a free port until the block ends; yields its base URL (``https://``
    with ``tls_cert`` and ``tls_key``)."""
    port = port or free_port()
    tls = {"ssl_certfile": str(tls_cert), "ssl_keyfile": str(tls_key)} if tls_cert else {}
    server = _ThreadServer(
        uvicorn.Config(app, host=host, port=port, log_level="warning", **tls)  # type: ignore[arg-type]
    )
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.05)
    try:
        yield f"{'https' if tls_cert else 'http'}://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
