"""Smart-meter readings beside sample or simulated inverter readings, for dashboard tests and
pictures.

Each gateway's home gets the simulator's household load
(:mod:`collector.simulator.household`) and a meter whose counters integrate the load less the
roof's power (:class:`collector.simulator.p1_meter.HomeMeter`, the same meter the demo's P1
emulator uses). A reading becomes points through the collector's own mapping
(:func:`collector.timeseries.measurements.meter_points`), so the points have the schema the
collector writes for a P1 meter under the member's consent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from collector.simulator.household import household_for
from collector.simulator.p1_meter import HomeMeter
from collector.timeseries.influx import Point
from collector.timeseries.measurements import meter_points
from zonnewijk_wire.meter import MeterReading, MeterSource

#: The meter's device id on the gateway, as the gateway names its P1 port.
METER_DEVICE_ID = "p1"


class MeterSampler:
    """One simulated P1 meter per gateway; :meth:`points` advances it to a moment."""

    def __init__(self, gateway_ids: Iterable[str], *, seed: int) -> None:
        self._pv_w: dict[str, float] = {}
        self._meters: dict[str, HomeMeter] = {}
        for k, gateway_id in enumerate(sorted(set(gateway_ids))):
            self._pv_w[gateway_id] = 0.0
            self._meters[gateway_id] = HomeMeter(
                household_for(seed * 1000 + k),
                lambda gw=gateway_id: self._pv_w[gw],  # type: ignore[misc]
                seed=seed * 1000 + k,
                gas=False,
            )

    def points(
        self, gateway_id: str, ts: datetime, production_w: float, interval_s: int
    ) -> list[Point]:
        """The meter's reading at ``ts`` with the home's solar production ``production_w`` [W]
        over the interval of ``interval_s`` [s] ending there, as points."""
        self._pv_w[gateway_id] = production_w
        v = self._meters[gateway_id](ts)
        id_hash = hashlib.blake2b(v.equipment_id.encode(), digest_size=16).hexdigest()
        reading = MeterReading(
            device_id=METER_DEVICE_ID,
            ts=ts,
            source=MeterSource.P1,
            interval_s=interval_s,
            import_energy_wh=v.import_t1_wh + v.import_t2_wh,
            export_energy_wh=v.export_t1_wh + v.export_t2_wh,
            import_energy_t1_wh=v.import_t1_wh,
            import_energy_t2_wh=v.import_t2_wh,
            export_energy_t1_wh=v.export_t1_wh,
            export_energy_t2_wh=v.export_t2_wh,
            tariff=v.tariff,
            import_power_w=v.import_power_w,
            export_power_w=v.export_power_w,
            meter_id_hash=id_hash,
            protocol="DSMR 5.0",
        )
        return list(meter_points(gateway_id, reading))
