"""InfluxQL panel targets for grafana-foundation-sdk.

The SDK has no InfluxDB query builder, but a panel target may be any ``Dataquery``; the SDK's
own :class:`~grafana_foundation_sdk.cog.runtime.UnknownDataquery` carries arbitrary target
JSON. :class:`InfluxQL` is a builder for such a target in the shape Grafana's InfluxDB data
source stores a raw InfluxQL query (``rawQuery: true``, ``query``, ``resultFormat``).
"""

from __future__ import annotations

from typing import Any, Literal

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog.runtime import UnknownDataquery
from grafana_foundation_sdk.models import dashboard as dm

#: The provisioned data source (dashboards/provisioning/datasources/influxdb.yaml).
INFLUX_UID = "zonnewijk-influxdb"
INFLUX = dm.DataSourceRef(type_val="influxdb", uid=INFLUX_UID)

#: The relational store (registry, ledger, fault alerts) when it runs on PostgreSQL
#: (dashboards/provisioning/datasources/store.yaml).
STORE_UID = "zonnewijk-store"
STORE_TYPE = "grafana-postgresql-datasource"
STORE = dm.DataSourceRef(type_val=STORE_TYPE, uid=STORE_UID)

ResultFormat = Literal["time_series", "table"]


class InfluxQL(cogbuilder.Builder[UnknownDataquery]):
    """One raw InfluxQL target of a panel.

    Parameters
    ----------
    ref_id : str
        Grafana's query letter, unique within the panel [-]
    query : str
        InfluxQL with Grafana macros (``$timeFilter``, ``$__interval``) and variables [-]
    result_format : str
        ``time_series`` (one frame per series) or ``table`` (tags become columns) [-]
    alias : str, optional
        Series name pattern, e.g. ``MPPT $tag_mppt`` [-]
    """

    def __init__(
        self,
        ref_id: str,
        query: str,
        *,
        result_format: ResultFormat = "time_series",
        alias: str | None = None,
    ) -> None:
        self.ref_id = ref_id
        self.query = " ".join(query.split())
        self.result_format = result_format
        self.alias = alias

    def build(self) -> UnknownDataquery:
        data: dict[str, Any] = {
            "refId": self.ref_id,
            "datasource": {"type": INFLUX.type_val, "uid": INFLUX.uid},
            "rawQuery": True,
            "query": self.query,
            "resultFormat": self.result_format,
        }
        if self.alias:
            data["alias"] = self.alias
        return UnknownDataquery(data)


class SQL(cogbuilder.Builder[UnknownDataquery]):
    """One raw SQL target on the PostgreSQL store, in the shape Grafana's SQL data sources store
    it (``rawSql``, ``format``, ``editorMode: code``).

    Parameters
    ----------
    ref_id : str
        Grafana's query letter [-]
    sql : str
        SQL with Grafana's SQL macros (``$__timeFilter(col)``, ``$__timeGroupAlias(col, 1d)``) [-]
    result_format : str
        ``table`` or ``time_series`` (columns ``time``, ``metric``, values) [-]
    """

    def __init__(self, ref_id: str, sql: str, *, result_format: ResultFormat = "table") -> None:
        self.ref_id = ref_id
        self.sql = " ".join(sql.split())
        self.result_format = result_format

    def build(self) -> UnknownDataquery:
        return UnknownDataquery(
            {
                "refId": self.ref_id,
                "datasource": {"type": STORE_TYPE, "uid": STORE_UID},
                "editorMode": "code",
                "rawQuery": True,
                "rawSql": self.sql,
                "format": self.result_format,
            }
        )
