"""The InfluxDB adapter: line protocol by hand-checked examples, and a real server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collector.devtools.services import free_port
from collector.timeseries.influx import (
    InfluxClient,
    InfluxQueryError,
    InfluxUnavailable,
    InfluxWriteError,
    Point,
    escape_key,
    escape_measurement,
    format_field_value,
)

T = datetime(2026, 1, 1, tzinfo=UTC)


def test_escaping_follows_line_protocol() -> None:
    assert escape_measurement("in verter,x") == "in\\ verter\\,x"
    assert escape_key("a=b c,d") == "a\\=b\\ c\\,d"
    assert format_field_value('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    assert format_field_value(3) == "3i"
    assert format_field_value(2.5) == "2.5"
    assert format_field_value(True) == "true"
    with pytest.raises(ValueError, match="newline"):
        escape_key("a\nb")
    with pytest.raises(ValueError):
        format_field_value(float("nan"))


def test_point_line_sorted_tags_and_precision() -> None:
    p = Point("inverter", {"gateway": "g 1", "device": "d"}, {"w": 1.5, "n": 2}, T)
    assert p.to_line("s") == f"inverter,device=d,gateway=g\\ 1 n=2i,w=1.5 {int(T.timestamp())}"
    assert p.to_line("ms").endswith(str(int(T.timestamp()) * 1000))


def test_awkward_names_round_trip_through_a_real_server(influx: InfluxClient) -> None:
    p = Point("odd name,x", {"tag key": "v=a,l ue"}, {"fie ld": 'str"ing', "n": 7}, T)
    influx.write_points([p])
    rows = influx.query_records('SELECT * FROM "odd name,x"')
    assert rows == [
        {"time": int(T.timestamp() * 1000), "fie ld": 'str"ing', "n": 7, "tag key": "v=a,l ue"}
    ]


def test_field_type_conflict_raises_with_server_message(influx: InfluxClient) -> None:
    influx.write_lines(["m v=1.5 1"])
    with pytest.raises(InfluxWriteError) as info:
        influx.write_lines(['m v="text" 2'])
    assert info.value.status == 400
    assert "conflict" in info.value.message


def test_statement_error_inside_http_200_raises(influx: InfluxClient) -> None:
    with pytest.raises(InfluxQueryError, match="not_a_function"):
        influx.query("SELECT not_a_function(v) FROM m")


def test_unreachable_server_raises_after_retries() -> None:
    client = InfluxClient(f"http://127.0.0.1:{free_port()}", "x", retries=1, backoff_s=0.01)
    with pytest.raises(InfluxUnavailable, match="unavailable"):
        client.write_lines(["m v=1 1"])
    assert client.ping() is False


def test_large_write_is_gzipped_and_stored(influx: InfluxClient) -> None:
    lines = [f"big,device=d{i % 10} v={i}.0 {i}" for i in range(20000)]
    influx.write_lines(lines, precision="s")
    assert influx.query_records("SELECT count(v) FROM big")[0]["count"] == 20000
