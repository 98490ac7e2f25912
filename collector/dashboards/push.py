"""Push the generated dashboards to an existing Grafana with grafana-client.

For a cooperative that already runs Grafana and cannot mount our provisioning files:
``zonnewijk dashboards push --url URL --token T``. It uses Grafana's documented HTTP API:

- ``GET /api/folders/:uid``, and ``POST /api/folders`` (``{"uid", "title"}``) when the folder
  is missing (404);
- ``GET /api/datasources/uid/:uid`` for every data source the dashboards use, to warn about
  missing ones (``zonnewijk-influxdb``; ``zonnewijk-store`` for the alerts-and-ledger board);
- ``POST /api/dashboards/db`` per dashboard with ``{"dashboard": {..., "id": null},
  "folderUid", "overwrite": true, "message"}``: creates the dashboard or replaces the one with
  the same ``uid``.

Authentication is a service-account token (``Authorization: Bearer``). The alert rules are
not pushed: provision them as files (dashboards/provisioning/alerting/).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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
    #: Data sources the dashboard needs that the Grafana lacks (its panels will show errors).
    missing_datasources: tuple[str, ...] = ()


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


def missing_datasources(api: Any, uids: Iterable[str]) -> list[str]:
    """The data source uids the dashboards use that this Grafana does not have
    (``GET /api/datasources/uid/:uid`` answers 404)."""
    missing: list[str] = []
    for uid in sorted(set(uids)):
        try:
            api.datasource.get_datasource_by_uid(uid)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise PushError(
                    f"GET /api/datasources/uid/{uid}: HTTP {exc.status_code} {exc.message}"
                ) from exc
            missing.append(uid)
        except GrafanaException as exc:
            raise PushError(f"GET /api/datasources/uid/{uid}: {exc.message}") from exc
    return missing


def datasource_uids(dashboard: Mapping[str, Any]) -> set[str]:
    """Every data source uid a dashboard's panels, targets and variables refer to."""
    found: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            source = node.get("datasource")
            if isinstance(source, dict) and isinstance(source.get("uid"), str):
                found.add(source["uid"])
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(dashboard)
    return found


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
    boards = dashboards or load_committed()
    folder = ensure_folder(api, folder_uid, folder_title)
    missing = set(
        missing_datasources(api, {u for d in boards.values() for u in datasource_uids(d)})
    )
    results: list[PushResult] = []
    for name, dashboard in boards.items():
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
                missing_datasources=tuple(sorted(datasource_uids(dashboard) & missing)),
            )
        )
    return results
