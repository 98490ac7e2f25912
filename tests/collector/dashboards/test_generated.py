"""The committed dashboards are what the code generates, and are well-formed for Grafana."""

from __future__ import annotations

import re

import pytest
import yaml

from collector.dashboards import generate
from collector.dashboards.alert_rules import provisioning
from collector.dashboards.panel_queries import influx_targets, panels, sql_targets
from collector.dashboards.targets import INFLUX_UID, STORE_UID

DASHBOARDS = generate.load_committed()


def test_committed_files_match_the_code() -> None:
    assert generate.differences() == []


def test_build_check_fails_after_a_hand_edit(tmp_path: pytest.TempPathFactory) -> None:
    files = generate.generated_files()
    path = next(iter(files))
    edited = dict(files)
    edited[path] = files[path].replace('"title"', '"Title"', 1)
    assert any("differs" in p for p in generate.differences(edited))


def test_six_dashboards_with_unique_uids_and_panel_ids() -> None:
    assert set(DASHBOARDS) == {
        "fleet-overview",
        "inverter-detail",
        "fleet-comparison",
        "settlement-overview",
        "data-quality",
        "service-health",
        "alerts-ledger",
        "self-consumption",
    }
    uids = [d["uid"] for d in DASHBOARDS.values()]
    assert len(set(uids)) == len(uids)
    for dashboard in DASHBOARDS.values():
        ids = [p["id"] for p in panels(dashboard)]
        assert len(set(ids)) == len(ids)
        assert dashboard["timezone"] == "Europe/Amsterdam"


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_panels_fit_the_grid_without_overlapping(name: str) -> None:
    taken: set[tuple[int, int]] = set()
    for panel in panels(DASHBOARDS[name]):
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_data_panel_queries_the_provisioned_influxdb_with_units(name: str) -> None:
    for panel in panels(DASHBOARDS[name]):
        if panel["type"] in ("text", "alertlist"):
            continue
        targets = list(influx_targets(panel))
        sql = list(sql_targets(panel))
        assert targets or sql, f"{panel['title']} has no query"
        for target in targets:
            assert target["datasource"]["uid"] == INFLUX_UID
            assert "$timeFilter" in target["query"], f"{panel['title']}: unbounded query"
        for target in sql:
            assert target["datasource"]["uid"] == STORE_UID
        if panel["type"] in ("stat", "timeseries", "bargauge"):
            assert panel["fieldConfig"]["defaults"].get("unit"), f"{panel['title']} has no unit"


def test_long_range_panels_read_rollups_not_raw_readings() -> None:
    """Daily and monthly views read daily_yield; ranges of 30 days and more read rollups."""
    rollup = re.compile(r'FROM "(daily_yield|fleet_self_consumption|rollup_5m|rollup_1d)"')
    checked = 0
    for name, dashboard in DASHBOARDS.items():
        long_default = dashboard["time"]["from"] in ("now-30d", "now/y")
        for panel in panels(dashboard):
            time_from = panel.get("timeFrom") or ""
            if not (long_default and not time_from) and time_from not in ("30d", "now/M", "now/y"):
                continue
            for target in influx_targets(panel):
                assert rollup.search(target["query"]), (name, panel["title"])
                checked += 1
    assert checked >= 10


def test_alert_rules_file_is_grafana_provisioning() -> None:
    doc = yaml.safe_load(generate.ALERTING_FILE.read_text())
    assert doc == provisioning()
    group = doc["groups"][0]
    assert group["folder"] == "Zonnewijk" and group["interval"] == "1m"
    titles = {r["title"] for r in group["rules"]}
    assert titles == {
        "Collector silent",
        "InfluxDB write errors",
        "Fleet produces nothing in daylight",
    }
    for rule in group["rules"]:
        refs = {d["refId"] for d in rule["data"]}
        assert rule["condition"] in refs
        for item in rule["data"]:
            model = item["model"]
            if item["datasourceUid"] == "__expr__":
                sources = re.findall(r"\$([A-Z])\b", model.get("expression", "")) or [
                    model["expression"]
                ]
                assert set(sources) <= refs, f"{rule['title']}: {model}"
            else:
                assert item["datasourceUid"] == INFLUX_UID
                assert "$timeFilter" in model["query"]
                assert item["relativeTimeRange"]["from"] > item["relativeTimeRange"]["to"]
