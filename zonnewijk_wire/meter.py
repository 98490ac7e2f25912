"""Readings of grid meters: what a home imports from and exports to the grid.

Two kinds of device publish them: the smart meter's P1 port (DSMR 2.2-5, Belgian eMUCS;
``source="p1"``) and SunSpec AC meters behind the grid connection (models 201-204 and 211-214;
``source="sunspec"``). Both give lifetime counters and power, so the server computes
self-consumption the same way whatever the meter (``docs/wire-format.md``).

Conventions, from the home's side of the connection:

- energy counters are lifetime totals in Wh that only grow (``import_energy_wh`` is the sum of
  the tariff registers T1 + T2 where the meter has tariffs); a meter swap or a reset is flagged
  (:attr:`MeterFlag.METER_CHANGED`), never hidden;
- ``import_power_w`` and ``export_power_w`` are each >= 0 (a meter reports one of them at a
  time); for an aggregated reading (``interval_s`` > 0) they are the means over the interval
  ending at ``ts``, and ``net_power_min_w`` / ``net_power_max_w`` the extremes of
  import - export (positive: importing);
- a P1 meter's equipment id is personal data: only a salted hash travels
  (``meter_id_hash``), so a meter swap is visible without the id.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from zonnewijk_wire.common import (
    MAX_READINGS_PER_BATCH,
    WIRE_VERSION,
    FiniteFloat,
    Identifier,
    Strict,
    UtcDatetime,
)

__all__ = [
    "GasReading",
    "MeterBatch",
    "MeterFlag",
    "MeterReading",
    "MeterSource",
    "PhaseValues",
]

EnergyWh = Annotated[float, Field(ge=0, allow_inf_nan=False)]
PowerW = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class MeterSource(StrEnum):
    """Which kind of meter a reading came from."""

    P1 = "p1"
    SUNSPEC = "sunspec"


class MeterFlag(StrEnum):
    """Quality flags on a meter reading."""

    #: The meter was exchanged or its counters restarted: the counters start a new series
    #: (the equipment id hash changed, or the counters dropped).
    METER_CHANGED = "meter_changed"
    #: The interval was not covered completely (telegrams missing); the means are of what came.
    PARTIAL_INTERVAL = "partial_interval"
    #: A value was the meter's "not implemented" sentinel and was left out.
    SENTINEL = "sentinel"
    #: Replayed from the gateway's spool after an outage.
    REPLAYED = "replayed"
    #: As :attr:`zonnewijk_wire.ReadingFlag.TIME_RESTAMPED` (wire revision 2).
    TIME_RESTAMPED = "time_restamped"
    #: As :attr:`zonnewijk_wire.ReadingFlag.TIME_GUARDED` (wire revision 2).
    TIME_GUARDED = "time_guarded"
    #: As :attr:`zonnewijk_wire.ReadingFlag.TIME_UNKNOWN` (wire revision 2).
    TIME_UNKNOWN = "time_unknown"


class PhaseValues(Strict):
    """One phase of the grid connection (P1: ``21.7.0``/``22.7.0``, ``32.7.0``, ``31.7.0``...)."""

    phase: Literal["L1", "L2", "L3"]
    import_power_w: PowerW | None = Field(default=None, description="import on this phase [W]")
    export_power_w: PowerW | None = Field(default=None, description="export on this phase [W]")
    voltage_v: FiniteFloat | None = Field(default=None, description="voltage [V]")
    current_a: FiniteFloat | None = Field(default=None, description="current [A]")


class GasReading(Strict):
    """The gas meter behind a P1 meter (M-Bus), with its own time of measurement."""

    ts: UtcDatetime = Field(description="when the gas meter measured, UTC")
    gas_m3: Annotated[float, Field(ge=0, allow_inf_nan=False)] = Field(
        description="lifetime gas counter [m³]"
    )


class MeterReading(Strict):
    """One reading of a grid meter: an instant, or an interval aggregated on the gateway."""

    device_id: Identifier
    ts: UtcDatetime = Field(description="time of the reading, or end of its interval, UTC")
    source: MeterSource
    interval_s: Annotated[int, Field(ge=0, le=86400)] = Field(
        default=0, description="length of the aggregated interval ending at ts [s]; 0: an instant"
    )
    samples: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="telegrams or polls the interval aggregates"
    )
    import_energy_wh: EnergyWh | None = Field(
        default=None, description="lifetime energy imported from the grid, all tariffs [Wh]"
    )
    export_energy_wh: EnergyWh | None = Field(
        default=None, description="lifetime energy exported to the grid, all tariffs [Wh]"
    )
    import_energy_t1_wh: EnergyWh | None = Field(default=None, description="import, tariff 1 [Wh]")
    import_energy_t2_wh: EnergyWh | None = Field(default=None, description="import, tariff 2 [Wh]")
    export_energy_t1_wh: EnergyWh | None = Field(default=None, description="export, tariff 1 [Wh]")
    export_energy_t2_wh: EnergyWh | None = Field(default=None, description="export, tariff 2 [Wh]")
    tariff: Literal[1, 2] | None = Field(default=None, description="tariff in force at ts")
    import_power_w: PowerW | None = Field(
        default=None, description="power imported at ts, or the interval's mean [W]"
    )
    export_power_w: PowerW | None = Field(
        default=None, description="power exported at ts, or the interval's mean [W]"
    )
    net_power_min_w: FiniteFloat | None = Field(
        default=None, description="lowest import - export in the interval [W]"
    )
    net_power_max_w: FiniteFloat | None = Field(
        default=None, description="highest import - export in the interval [W]"
    )
    phases: tuple[PhaseValues, ...] = Field(default=(), description="per-phase values")
    gas: GasReading | None = Field(default=None, description="gas meter, where opted in")
    meter_id_hash: Annotated[str, Field(pattern=r"^[0-9a-f]{16,64}$")] | None = Field(
        default=None, description="salted hash of the meter's equipment id (never the id)"
    )
    protocol: Annotated[str, Field(max_length=32)] | None = Field(
        default=None, description="e.g. 'DSMR 5.0', 'DSMR 4.2', 'eMUCS 1.4', 'SunSpec 203'"
    )
    flags: tuple[MeterFlag, ...] = Field(default=(), description="quality flags")


class MeterBatch(Strict):
    """A message on ``zonnewijk/v1/<gateway_id>/meter``: a batch of meter readings."""

    v: Literal[1] = WIRE_VERSION
    gateway_id: Identifier
    seq: Annotated[int, Field(ge=0, description="per-gateway sequence number")]
    sent_at: UtcDatetime
    readings: Annotated[
        tuple[MeterReading, ...], Field(min_length=1, max_length=MAX_READINGS_PER_BATCH)
    ]
