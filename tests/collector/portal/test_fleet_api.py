"""``GET /api/v1/gateways``: the fleet's software versions for operators (issue 21)."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx

from collector.ingest.process import process_message
from zonnewijk_wire import status_topic

from .conftest import PortalEnv


def test_operators_see_which_version_each_gateway_runs(portal_env: PortalEnv) -> None:
    at = portal_env.now - timedelta(minutes=10)
    for gw, version, channel in (
        ("zw001-gw", "1.1-1", "canary"),
        ("zw002-gw", "1.0-1", "stable"),
        ("zw003-gw", "1.0-1", "stable"),
    ):
        body = {
            "v": 1,
            "gateway_id": gw,
            "ts": at.isoformat(),
            "state": "online",
            "package_version": version,
            "channel": channel,
            "config_version": 2,
        }
        processed = process_message(status_topic(gw), json.dumps(body).encode(), now=at)
        portal_env.influx.write_lines(processed.lines)
    client = httpx.Client(base_url=portal_env.url)
    r = client.get("/api/v1/gateways", headers={"Authorization": f"Bearer {portal_env.api_token}"})
    assert r.status_code == 200
    body = r.json()
    by_gateway = {g["gateway_id"]: g for g in body["gateways"]}
    assert by_gateway["zw001-gw"]["package_version"] == "1.1-1"
    assert by_gateway["zw001-gw"]["channel"] == "canary"
    assert by_gateway["zw002-gw"]["config_version"] == 2
    counts = {(v["channel"], v["package_version"]): v["gateways"] for v in body["versions"]}
    assert counts[("canary", "1.1-1")] == 1 and counts[("stable", "1.0-1")] == 2
    assert client.get("/api/v1/gateways").status_code == 401
