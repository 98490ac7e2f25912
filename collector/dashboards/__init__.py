"""Grafana dashboards as code for the cooperative's operators.

The dashboards are built with grafana-foundation-sdk (:mod:`collector.dashboards.boards`),
written as JSON to ``dashboards/generated/`` by ``zonnewijk dashboards build`` and loaded by
Grafana's file provisioning. Every panel query is InfluxQL against the schema of
:mod:`collector.timeseries.measurements`; :mod:`collector.dashboards.grafana_macros` substitutes Grafana's
macros and template variables the way Grafana does, so the tests and the screenshots run the
exact committed queries against a real InfluxDB. See ``docs/dashboards.md``.
"""
