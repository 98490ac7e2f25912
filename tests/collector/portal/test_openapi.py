"""schemathesis against the served OpenAPI document: no server errors, bounded examples."""

from __future__ import annotations

import httpx
import schemathesis
from hypothesis import HealthCheck, given, settings

from .conftest import PASSWORD_A, PortalEnv, login

EXAMPLES_PER_OPERATION = 15


def _run(env: PortalEnv, headers: dict[str, str], cookies: dict[str, str] | None = None) -> int:
    schema = schemathesis.openapi.from_url(f"{env.url}/api/v1/openapi.json")
    calls = 0
    http = httpx.Client(timeout=30, cookies=cookies)
    statuses: dict[int, int] = {}
    for result in schema.get_all_operations():
        strategy = result.ok().as_strategy()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def check(case: schemathesis.Case) -> None:
            nonlocal calls
            # Sent with httpx: schemathesis' own requests transport trips over this
            # environment's urllib3 (TrafficPolice pools have no keys()).
            kwargs = case.as_transport_kwargs(base_url=env.url, headers=headers)
            response = http.request(
                kwargs["method"],
                kwargs["url"],
                params=kwargs.get("params"),
                headers=kwargs.get("headers"),
                json=kwargs.get("json"),
                content=kwargs.get("data") if isinstance(kwargs.get("data"), bytes | str) else None,
            )
            calls += 1
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text}"
            )

        check()
    # Authenticated calls got through to the handlers (not all refused at the door).
    assert statuses.get(200, 0) >= 5, statuses
    return calls


def test_no_server_errors_as_operator(portal_env: PortalEnv) -> None:
    calls = _run(portal_env, {"Authorization": f"Bearer {portal_env.api_token}"})
    assert calls >= 10


def test_no_server_errors_as_member(portal_env: PortalEnv) -> None:
    client = login(portal_env, portal_env.email_a, PASSWORD_A)
    calls = _run(portal_env, {}, cookies={"zw_session": client.cookies["zw_session"]})
    assert calls >= 10


def test_document_lists_the_api(portal_env: PortalEnv) -> None:
    client = login(portal_env, portal_env.email_a, PASSWORD_A)
    paths = set(client.get("/api/v1/openapi.json").json()["paths"])
    assert {
        "/api/v1/fleet",
        "/api/v1/devices",
        "/api/v1/devices/{device_id}/readings",
        "/api/v1/alerts",
        "/api/v1/alerts/{alert_id}/acknowledge",
        "/api/v1/settlement/runs",
    } <= paths
    assert not any(p.startswith("/operator") or p == "/login" for p in paths)
