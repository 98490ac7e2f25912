"""Push the generated dashboards to an existing Grafana with grafana-client.

For a cooperative that already runs Grafana and cannot mount our provisioning files:
``zonnewijk dashboards push --url URL --token T``. It uses Grafana's documented HTTP API:

- ``GET /api/folders/:uid``, and ``POST /api/folders`` (``{"uid", "title"}``) when the folder
  is missing (404);
- ``POST /api/dashboards/db`` per dashboard with ``{"dashboard": {..., "id": null},
  "folderUid", "overwrite": true, "message"}``: creates the dashboard or replaces the one with
  the same ``uid``.

Authentication is a service-account token (``Authorization: Bearer``). The alert rules are
not pushed: provision them as files (dashboards/provisioning/alerting/).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from collector import __version__
from collector.dashboards.generate import load_committed


class PushError(RuntimeError):
    """Grafana refused or could not be reached; the message says which request and why."""


@dataclass(frozen=True)
class PushResult:
    uid: str
    status: str
    version: int
    url: str


def _api(url: str, token: str, timeout_s: float) -> Any:
    """grafana-client's API object (untyped)."""
    api: Any = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    return api


def ensure_folder(api: Any, uid: str, title: str) -> str:
    """The folder's uid, creating the folder when Grafana does not have it."""
    try:
        folder = api.folder.get_folder(uid)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise PushError(
                f"GET /api/folders/{uid}: HTTP {exc.status_code} {exc.message}"
            ) from exc
        try:
            folder = api.folder.create_folder(title, uid=uid)
        except GrafanaException as create_exc:
            raise PushError(f"POST /api/folders ({title!r}): {create_exc.message}") from create_exc
    except GrafanaException as exc:
        raise PushError(f"GET /api/folders/{uid}: {exc.message}") from exc
    return str(folder["uid"])


def push_dashboards(
    url: str,
    token: str,
    *,
    folder_title: str = "Zonnewijk",
    folder_uid: str = "zonnewijk",
    dashboards: Mapping[str, Mapping[str, Any]] | None = None,
    timeout_s: float = 10.0,
) -> list[PushResult]:
    """Create or update every dashboard in Grafana's folder; returns Grafana's answers."""
    api = _api(url, token, timeout_s)
    folder = ensure_folder(api, folder_uid, folder_title)
    results: list[PushResult] = []
    for name, dashboard in (dashboards or load_committed()).items():
        payload = {
            "dashboard": {**dashboard, "id": None},
            "folderUid": folder,
            "overwrite": True,
            "message": f"zonnewijk {__version__}: {name}",
        }
        try:
            answer = api.dashboard.update_dashboard(payload)
        except GrafanaException as exc:
            raise PushError(
                f"POST /api/dashboards/db ({dashboard.get('uid')}): "
                f"HTTP {exc.status_code} {exc.message}"
            ) from exc
        results.append(
            PushResult(
                uid=str(answer.get("uid", dashboard.get("uid"))),
                status=str(answer.get("status", "")),
                version=int(answer.get("version", 0)),
                url=str(answer.get("url", "")),
            )
        )
    return results
