"""A private InfluxDB with its ``_internal`` monitor on, as production runs it.

:class:`collector.devtools.services.Influxd` turns InfluxDB's monitor off (tests do not need it);
the service-health dashboard and the "InfluxDB write errors" alert read it, so their tests
and pictures start this variant, which stores the statistics every second.
"""

from __future__ import annotations

import time

from collector.devtools import services as devservices
from collector.devtools.services import Influxd, ServiceError
from collector.timeseries.influx import InfluxClient


class MonitoredInfluxd(Influxd):
    """:class:`~collector.devtools.services.Influxd` with ``[monitor] store-enabled = true`` (1 s)."""

    def start(self) -> None:
        original = devservices._INFLUXD_CONFIG
        devservices._INFLUXD_CONFIG = original.replace(
            "store-enabled = false", 'store-enabled = true\n  store-interval = "1s"'
        )
        try:
            super().start()
        finally:
            devservices._INFLUXD_CONFIG = original

    def wait_for_statistics(self, buckets: int = 3, timeout_s: float = 60.0) -> None:
        """Wait until the monitor wrote HTTP statistics into ``buckets`` 10-second buckets
        (rates need at least two)."""
        client = InfluxClient(self.url, "_internal")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            names = {r["name"] for r in client.query_records("SHOW DATABASES", database="")}
            if (
                "_internal" in names
                and len(
                    client.query_records(
                        'SELECT count("writeReq") FROM "_internal"."monitor"."httpd" '
                        "WHERE time > now() - 5m GROUP BY time(10s) fill(none)"
                    )
                )
                >= buckets
            ):
                return
            time.sleep(0.3)
        raise ServiceError("InfluxDB's monitor did not write its statistics in time")
