"""A SunSpec grid meter at a home's connection, driven by the same household model as the
simulated P1 meter (:class:`~collector.simulator.p1_meter.HomeMeter`): the household's load
less the roof's live power, integrated into import and export counters.

SMA, SolarEdge and Fronius installations carry such a meter (SunSpec model 203) beside the
inverter; the gateway reads it with the ``sunspec-meter`` profile and publishes its readings
on ``.../meter``. The simulator serves it as a second unit of the inverter's Modbus server
(:class:`~collector.simulator.live.LiveFleet`'s ``grid_meters``).
"""

from __future__ import annotations

from datetime import datetime

from collector.simulator.device_values import GridMeterValues
from collector.simulator.household import Household
from collector.simulator.p1_meter import HomeMeter

__all__ = ["METER_UNIT", "HomeGridMeter"]

#: Unit id of the grid meter on its inverter's Modbus server [-].
METER_UNIT = 2


class HomeGridMeter:
    """The grid meter of one home: ``meter(now, pv_power_w)`` gives its values at ``now``.

    Import and export are the sums of the P1 model's two tariff registers [Wh]; the net power
    is positive while importing [W].
    """

    def __init__(self, household: Household, *, seed: int) -> None:
        self._pv_power_w = 0.0
        self._home = HomeMeter(household, lambda: self._pv_power_w, seed=seed, gas=False)

    def __call__(self, now: datetime, pv_power_w: float) -> GridMeterValues:
        self._pv_power_w = pv_power_w
        v = self._home(now)
        return GridMeterValues(
            import_energy_wh=v.import_t1_wh + v.import_t2_wh,
            export_energy_wh=v.export_t1_wh + v.export_t2_wh,
            net_power_w=v.import_power_w - v.export_power_w,
            voltage_v=v.voltage_v,
            frequency_hz=50.0,
        )
