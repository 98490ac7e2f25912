"""A small local HTTP server that answers like Grafana's documented HTTP API, and checks requests.

Endpoints (Grafana docs, "Folder API" and "Dashboard API"):
- ``GET /api/folders/:uid``: 200 folder JSON, or 404 ``{"message": "folder not found"}``;
- ``GET /api/datasources/uid/:uid``: 200 data source JSON, or 404;
- ``POST /api/folders`` ``{"title", "uid"?}``: 200 folder JSON; 409 when the uid exists;
- ``POST /api/dashboards/db`` ``{"dashboard", "folderUid", "overwrite", "message"}``: 200
  ``{"id", "uid", "url", "status": "success", "version", "slug"}``; 412 when a dashboard with
  the uid exists and ``overwrite`` is false; 400 when the body is not a dashboard.
Every request needs ``Authorization: Bearer <token>`` (401 otherwise) and JSON bodies need
``Content-Type: application/json``. Anything else answers 404. Requests are recorded.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class GrafanaState:
    token: str
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        state = self.server.state
        state.requests.append((self.command, self.path))
        if self.headers.get("Authorization") != f"Bearer {state.token}":
            self._send(401, {"message": "Unauthorized"})
            return False
        return True

    def _json(self) -> Any:
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            self.server.state.problems.append(f"{self.path}: not JSON")
            return None
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null")

    def do_GET(self) -> None:
        if not self._authorised():
            return
        source = re.fullmatch(r"/api/datasources/uid/([^/]+)", self.path)
        if source:
            found = self.server.state.datasources.get(source[1])
            if found is None:
                self._send(404, {"message": "Data source not found"})
            else:
                self._send(200, found)
            return
        match = re.fullmatch(r"/api/folders/([^/]+)", self.path)
        if not match:
            self._send(404, {"message": "Not found"})
            return
        folder = self.server.state.folders.get(match[1])
        if folder is None:
            self._send(404, {"message": "folder not found", "status": "not-found"})
        else:
            self._send(200, folder)

    def do_POST(self) -> None:
        if not self._authorised():
            return
        state = self.server.state
        body = self._json()
        if body is None:
            self._send(400, {"message": "bad request data"})
            return
        if self.path == "/api/folders":
            self._create_folder(state, body)
        elif self.path == "/api/dashboards/db":
            self._save_dashboard(state, body)
        else:
            self._send(404, {"message": "Not found"})

    def _create_folder(self, state: GrafanaState, body: dict[str, Any]) -> None:
        if not isinstance(body.get("title"), str) or not body["title"]:
            self._send(400, {"message": "folder title cannot be empty"})
            return
        uid = body.get("uid") or f"f{len(state.folders) + 1}"
        if uid in state.folders:
            self._send(409, {"message": "a folder with the same uid already exists"})
            return
        folder = {"id": len(state.folders) + 1, "uid": uid, "title": body["title"], "version": 1}
        state.folders[uid] = folder
        self._send(200, folder)

    def _save_dashboard(self, state: GrafanaState, body: dict[str, Any]) -> None:
        dashboard = body.get("dashboard")
        if not isinstance(dashboard, dict) or not dashboard.get("title"):
            self._send(400, {"message": "Dashboard title cannot be empty"})
            return
        uid = dashboard.get("uid")
        if not isinstance(uid, str) or not 0 < len(uid) <= 40:
            self._send(400, {"message": "uid must be 1-40 characters"})
            return
        if set(body) - {"dashboard", "folderUid", "folderId", "overwrite", "message"}:
            state.problems.append(f"unknown keys {set(body)}")
        folder_uid = body.get("folderUid")
        if folder_uid is not None and folder_uid not in state.folders:
            self._send(400, {"message": "folder not found"})
            return
        existing = state.dashboards.get(uid)
        if existing is not None and not body.get("overwrite"):
            self._send(
                412,
                {
                    "message": "a dashboard with the same uid already exists",
                    "status": "name-exists",
                },
            )
            return
        if dashboard.get("id") not in (None, existing and existing["id"]):
            self._send(404, {"message": "Dashboard not found", "status": "not-found"})
            return
        version = (existing["version"] + 1) if existing else 1
        number = existing["id"] if existing else len(state.dashboards) + 1
        state.dashboards[uid] = {
            "id": number,
            "version": version,
            "folderUid": folder_uid,
            "dashboard": dashboard,
            "message": body.get("message"),
        }
        slug = _slug(dashboard["title"])
        self._send(
            200,
            {
                "id": number,
                "uid": uid,
                "url": f"/d/{uid}/{slug}",
                "status": "success",
                "version": version,
                "slug": slug,
            },
        )


class _Server(ThreadingHTTPServer):
    state: GrafanaState


class FakeGrafana:
    """Start with ``with FakeGrafana(token) as grafana:``; ``grafana.url``, ``grafana.state``."""

    def __init__(self, token: str) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = GrafanaState(token)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def state(self) -> GrafanaState:
        return self._server.state

    def __enter__(self) -> FakeGrafana:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
