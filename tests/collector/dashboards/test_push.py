"""`zonnewijk dashboards push` against a local server that checks Grafana's documented API."""

from __future__ import annotations

import pytest

from collector.cli import main
from collector.dashboards.generate import load_committed
from collector.dashboards.push import PushError, push_dashboards

from .fake_grafana import FakeGrafana

TOKEN = "glsa_test_token"


def test_push_creates_the_folder_then_every_dashboard() -> None:
    committed = load_committed()
    with FakeGrafana(TOKEN) as grafana:
        results = push_dashboards(grafana.url, TOKEN)
        state = grafana.state
    assert state.problems == []
    assert state.requests[0] == ("GET", "/api/folders/zonnewijk")
    assert state.requests[1] == ("POST", "/api/folders")
    assert ("GET", "/api/datasources/uid/zonnewijk-influxdb") in state.requests
    assert state.folders["zonnewijk"]["title"] == "Zonnewijk"
    assert {r.uid for r in results} == {d["uid"] for d in committed.values()}
    assert all(r.status == "success" and r.version == 1 for r in results)
    needs = {r.uid: r.missing_datasources for r in results}
    assert needs["zw-fleet-overview"] == ("zonnewijk-influxdb",)
    assert needs["zw-alerts-ledger"] == ("zonnewijk-store",)
    for stored in state.dashboards.values():
        assert stored["folderUid"] == "zonnewijk"
        assert stored["dashboard"]["id"] is None
        assert stored["dashboard"]["panels"], "a dashboard arrived without panels"
    # What arrived is the committed JSON, unchanged apart from the id.
    sent = state.dashboards["zw-fleet-overview"]["dashboard"]
    assert {k: v for k, v in sent.items() if k != "id"} == {
        k: v for k, v in committed["fleet-overview"].items() if k != "id"
    }


def test_a_second_push_updates_in_place_without_a_second_folder() -> None:
    with FakeGrafana(TOKEN) as grafana:
        push_dashboards(grafana.url, TOKEN)
        results = push_dashboards(grafana.url, TOKEN)
        state = grafana.state
    assert all(r.version == 2 for r in results)
    assert [r for r in state.requests if r == ("POST", "/api/folders")] == [
        ("POST", "/api/folders")
    ]
    assert len(state.dashboards) == len(results)


def test_a_wrong_token_is_reported_with_the_request() -> None:
    with FakeGrafana(TOKEN) as grafana, pytest.raises(PushError, match="401"):
        push_dashboards(grafana.url, "wrong")


def test_cli_push_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeGrafana(TOKEN) as grafana:
        grafana.state.datasources["zonnewijk-influxdb"] = {"uid": "zonnewijk-influxdb"}
        assert main(["dashboards", "push", "--url", grafana.url, "--token", TOKEN]) == 0
        captured = capsys.readouterr()
        assert "zw-inverter-detail: success (version 1)" in captured.out
        # The store data source is missing: only the dashboard that needs it is named.
        assert "'zonnewijk-store'; zw-alerts-ledger will show errors" in captured.err
        assert "zonnewijk-influxdb" not in captured.err
        assert main(["dashboards", "push", "--url", grafana.url, "--token", "nope"]) == 1
        assert "401" in capsys.readouterr().err
