"""Grafana-managed alert rules, provisioned as a file (dashboards/provisioning/alerting/).

Three rules that watch the data path itself, next to the fault detector's per-inverter
alerts (collector/faults/):

- **collector silent**: no reading stored in the last 10 minutes (no data counts as silent);
- **InfluxDB write errors**: InfluxDB's own counters of refused points (``pointsWrittenDropped``:
  type conflicts and parse errors; ``pointsWrittenFail``) and server errors rose in the last
  15 minutes (``_internal`` database, InfluxDB's monitor);
- **fleet produces nothing in daylight**: the whole fleet's peak power over the last
  30 minutes is below 50 W while at the same time yesterday it was above 1 kW. Comparing with
  yesterday makes the rule fire at noon and stay quiet at night without a clock in the
  query; a heavily overcast noon still gives the fleet well over 50 W.

The file follows Grafana's alerting file-provisioning format (``apiVersion: 1``, ``groups``
with ``rules`` whose ``data`` are queries and server-side expressions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from collector.dashboards.targets import INFLUX_UID

FOLDER = "Zonnewijk"
GROUP = "zonnewijk-data-path"
EXPRESSION_UID = "__expr__"


@dataclass(frozen=True)
class RuleQuery:
    """An InfluxQL query of a rule and its relative time range (seconds before now)."""

    ref_id: str
    query: str
    from_s: int
    to_s: int = 0


@dataclass(frozen=True)
class Rule:
    uid: str
    title: str
    summary: str
    queries: tuple[RuleQuery, ...]
    expressions: tuple[dict[str, Any], ...]
    condition: str
    for_duration: str
    no_data_state: str
    severity: str


def _reduce(ref_id: str, source: str) -> dict[str, Any]:
    return {
        "refId": ref_id,
        "type": "reduce",
        "expression": source,
        "reducer": "last",
        "settings": {"mode": "replaceNN", "replaceWithValue": 0},
    }


def _threshold(ref_id: str, source: str, kind: str, value: float) -> dict[str, Any]:
    return {
        "refId": ref_id,
        "type": "threshold",
        "expression": source,
        "conditions": [{"evaluator": {"type": kind, "params": [value]}}],
    }


FLEET_PEAK = (
    'SELECT sum("p") FROM (SELECT max("ac_power_w") AS "p" FROM "inverter" '
    'WHERE $timeFilter GROUP BY "device")'
)

RULES: tuple[Rule, ...] = (
    Rule(
        uid="zw-collector-silent",
        title="Collector silent",
        summary="No reading was stored in the last 10 minutes: is the collector, the broker or InfluxDB down?",
        queries=(RuleQuery("A", 'SELECT count("state") FROM "inverter" WHERE $timeFilter', 600),),
        expressions=(_reduce("B", "A"), _threshold("C", "B", "lt", 1)),
        condition="C",
        for_duration="5m",
        no_data_state="Alerting",
        severity="critical",
    ),
    Rule(
        uid="zw-influxdb-write-errors",
        title="InfluxDB write errors",
        summary="InfluxDB refused points or answered with server errors in the last 15 minutes.",
        queries=(
            RuleQuery(
                "A",
                'SELECT spread("pointsWrittenDropped") + spread("pointsWrittenFail") '
                '+ spread("serverError") '
                'FROM "_internal"."monitor"."httpd" WHERE $timeFilter',
                900,
            ),
        ),
        expressions=(_reduce("B", "A"), _threshold("C", "B", "gt", 0)),
        condition="C",
        for_duration="0s",
        no_data_state="NoData",
        severity="critical",
    ),
    Rule(
        uid="zw-fleet-nothing-in-daylight",
        title="Fleet produces nothing in daylight",
        summary="The whole fleet produced under 50 W for 30 minutes while yesterday at this time it produced over 1 kW.",
        queries=(
            RuleQuery("A", FLEET_PEAK, 1800),
            RuleQuery("D", FLEET_PEAK, 86400 + 1800, 86400),
        ),
        expressions=(
            _reduce("B", "A"),
            _reduce("E", "D"),
            {"refId": "C", "type": "math", "expression": "$B < 50 && $E > 1000"},
        ),
        condition="C",
        for_duration="15m",
        no_data_state="OK",
        severity="critical",
    ),
)


def _rule_json(rule: Rule) -> dict[str, Any]:
    data: list[dict[str, Any]] = []
    for q in rule.queries:
        data.append(
            {
                "refId": q.ref_id,
                "relativeTimeRange": {"from": q.from_s, "to": q.to_s},
                "datasourceUid": INFLUX_UID,
                "model": {
                    "refId": q.ref_id,
                    "rawQuery": True,
                    "query": q.query,
                    "resultFormat": "time_series",
                    "intervalMs": 10000,
                    "maxDataPoints": 43200,
                },
            }
        )
    for expression in rule.expressions:
        data.append(
            {
                "refId": expression["refId"],
                "relativeTimeRange": {"from": 0, "to": 0},
                "datasourceUid": EXPRESSION_UID,
                "model": {**expression, "datasource": {"type": "__expr__", "uid": EXPRESSION_UID}},
            }
        )
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": rule.condition,
        "data": data,
        "noDataState": rule.no_data_state,
        "execErrState": "Error",
        "for": rule.for_duration,
        "annotations": {"summary": rule.summary},
        "labels": {"severity": rule.severity, "team": "operators", "source": "zonnewijk"},
        "isPaused": False,
    }


def provisioning() -> dict[str, Any]:
    """The provisioning document."""
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": GROUP,
                "folder": FOLDER,
                "interval": "1m",
                "rules": [_rule_json(rule) for rule in RULES],
            }
        ],
    }


def provisioning_yaml() -> str:
    header = (
        "# Generated by `zonnewijk dashboards build` (collector/dashboards/alert_rules.py).\n"
        "# Do not edit: a test fails when this file differs from what the code generates.\n"
    )
    return header + yaml.safe_dump(provisioning(), sort_keys=False, allow_unicode=True, width=100)
