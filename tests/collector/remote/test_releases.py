"""What the fleet runs and whether a canary release may go to stable (issue 21).

Statuses go through the collector's own processing into a real InfluxDB, as gateways' status
messages do; ``zonnewijk gateways versions`` and ``release-check`` read them back.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.cli import main
from collector.ingest.process import process_message
from collector.remote.releases import GatewayReport, canary_verdict, load_reports, version_counts
from collector.settings import get_settings
from collector.timeseries.influx import InfluxClient, Point
from collector.timeseries.measurements import GATEWAY_SEEN_MEASUREMENT
from zonnewijk_wire import status_topic

NOW = datetime.now(UTC).replace(microsecond=0)


def _status(influx: InfluxClient, gw: str, at: datetime, **fields: object) -> None:
    body = {"v": 1, "gateway_id": gw, "ts": at.isoformat(), "state": "online", **fields}
    processed = process_message(status_topic(gw), json.dumps(body).encode(), now=at)
    assert not processed.rejections
    influx.write_lines(processed.lines)


def _stored(influx: InfluxClient, gw: str, at: datetime) -> None:
    influx.write_points([Point(GATEWAY_SEEN_MEASUREMENT, {"gateway": gw}, {"readings": 5}, at)])


@pytest.fixture
def fleet(influx: InfluxClient) -> InfluxClient:
    """Three canaries on 1.1 for two days (one restarted last night), two stable on 1.0."""
    two_days = NOW - timedelta(days=2)
    for gw in ("gw-c1", "gw-c2", "gw-c3"):
        _status(influx, gw, two_days - timedelta(days=5), package_version="1.0-1", channel="canary")
        _status(influx, gw, two_days, package_version="1.1-1", channel="canary", config_version=3)
        _status(influx, gw, NOW - timedelta(minutes=5), package_version="1.1-1", channel="canary")
        _stored(influx, gw, NOW - timedelta(minutes=3))
    # gw-c3 died last night: the broker's will says offline (no version, no time of its own)
    _status(influx, "gw-c3", NOW - timedelta(hours=10), state="offline")
    for gw in ("gw-s1", "gw-s2"):
        _status(influx, gw, NOW - timedelta(minutes=4), package_version="1.0-1", channel="stable")
        _stored(influx, gw, NOW - timedelta(minutes=2))
    return influx


def test_reports_tell_version_channel_and_history(fleet: InfluxClient) -> None:
    reports = {r.gateway_id: r for r in load_reports(fleet, now=NOW)}
    assert set(reports) == {"gw-c1", "gw-c2", "gw-c3", "gw-s1", "gw-s2"}
    c1 = reports["gw-c1"]
    assert (c1.package_version, c1.channel, c1.config_version) == ("1.1-1", "canary", 3)
    assert c1.since == NOW - timedelta(days=2) and c1.offline_since == 0
    assert reports["gw-c3"].offline_since == 1
    assert version_counts(reports.values()) == {("canary", "1.1-1"): 3, ("stable", "1.0-1"): 2}


def test_a_canary_that_went_offline_holds_the_release_back(fleet: InfluxClient) -> None:
    verdict = canary_verdict(load_reports(fleet, now=NOW), "1.1-1", NOW)
    assert not verdict.promote and verdict.gateways == 3
    assert verdict.problems == {"gw-c3": "went offline 1 times since it started it"}


def _report(**changes: object) -> GatewayReport:
    base = {
        "gateway_id": "gw-1",
        "state": "online",
        "package_version": "2.0-1",
        "channel": "canary",
        "config_version": 1,
        "reported_at": NOW,
        "since": NOW - timedelta(days=2),
        "offline_since": 0,
        "last_stored": NOW - timedelta(minutes=1),
    }
    return GatewayReport(**{**base, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({}, None),
        ({"package_version": "1.9-1"}, "runs 1.9-1"),
        ({"since": NOW - timedelta(hours=3)}, "has run it for 3:00:00, needs 1 day, 0:00:00"),
        ({"state": "offline"}, "is offline"),
        ({"last_stored": NOW - timedelta(hours=2)}, "has no readings stored recently"),
    ],
)
def test_each_reason_a_canary_withholds_its_vote(
    changes: dict[str, object], problem: str | None
) -> None:
    stable = _report(gateway_id="gw-9", channel="stable", package_version="1.0-1")
    verdict = canary_verdict([_report(**changes), stable], "2.0-1", NOW)
    assert verdict.promote is (problem is None)
    assert verdict.problems == ({} if problem is None else {"gw-1": problem})


def test_no_canary_no_promotion() -> None:
    verdict = canary_verdict([_report(channel="stable")], "2.0-1", NOW)
    assert not verdict.promote and "no gateway is on the canary channel" in verdict.problems["-"]


@pytest.fixture
def env(fleet: InfluxClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("ZONNEWIJK_INFLUX_URL", fleet.url)
    monkeypatch.setenv("ZONNEWIJK_INFLUX_DB", fleet.database)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_the_commands(env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gateways", "versions"]) == 0
    out = capsys.readouterr().out
    assert "canary: 1.1-1 on 3 gateways" in out and "stable: 1.0-1 on 2 gateways" in out
    assert main(["gateways", "release-check", "1.1-1"]) == 1
    out = capsys.readouterr().out
    assert "gw-c3: went offline 1 times" in out and "must not be promoted yet" in out
    assert (
        main(["gateways", "release-check", "1.0-1", "--channel", "stable", "--hold-hours", "0"])
        == 0
    )
    assert "may be promoted (2 stable gateways)" in capsys.readouterr().out


def test_a_refused_config_shows_until_the_gateway_applies_a_newer_one(
    influx: InfluxClient,
) -> None:
    _status(influx, "gw-r", NOW - timedelta(hours=2), config_version=2)
    _status(influx, "gw-r", NOW - timedelta(hours=1), config_version=2,
            config_refused="3: none of its devices answered")  # fmt: skip
    _status(influx, "gw-r", NOW - timedelta(minutes=30), state="offline")  # the will
    [report] = load_reports(influx, now=NOW)
    assert report.config_version == 2
    assert report.config_refused == "3: none of its devices answered"
    _status(influx, "gw-r", NOW - timedelta(minutes=5), config_version=4)
    [report] = load_reports(influx, now=NOW)
    assert report.config_version == 4 and report.config_refused is None
