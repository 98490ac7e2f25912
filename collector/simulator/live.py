"""Live mode: every simulated inverter is a Modbus server whose registers follow the model.

Each site gets its own :class:`~collector.simulator.modbus_device.SimulatedInverters` (a real
pymodbus TCP server on its own port, register layout of the site's inverter family). The
fleet model runs in (accelerated) real time: simulated time advances ``time_scale`` seconds
per real second, and at every model step each server is updated in one atomic write, so a
gateway polling it sees the same curves, states, faults and glitches as the batch modes.

Each server presents its site's layout (:attr:`~collector.simulator.fleet.Site.device_layout`:
the DER models 701/702/714 for SunSpec inverters commissioned from 2024, the family's layout
otherwise). Sites given in ``grid_meters`` also serve a SunSpec grid meter (model 203) on unit
:data:`~collector.simulator.grid_meter.METER_UNIT`, updated at the same model steps from the
household model and the inverter's power.

What a device cannot show is mapped: an ``offline`` inverter answers every read with Modbus
exception 6 (busy) so the gateway gets no data; gateway outages are the gateway's business
and are not simulated here.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from collector.simulator.device_values import GridMeterValues
from collector.simulator.engine import Chunk, Simulation
from collector.simulator.faults import FaultSchedule
from collector.simulator.fleet import Fleet, Site
from collector.simulator.grid_meter import METER_UNIT
from collector.simulator.modbus_device import (
    Layout,
    SimulatedInverters,
    gateway_profile_for,
    layout_for,
)
from collector.simulator.readings import chunk_reading

log = logging.getLogger(__name__)

#: Simulated days the live model is prepared for (chunks are computed lazily).
_HORIZON_DAYS = 400
_BUSY_FOREVER = 1 << 40


@dataclass(frozen=True)
class LiveDevice:
    """Where a gateway finds one simulated inverter."""

    site_id: str
    gateway_id: str
    device_id: str
    host: str
    port: int
    unit_id: int
    family: str
    gateway_profile: str
    #: The register layout the server presents (``sunspec-der`` for a DER inverter) [-].
    layout: str = ""
    #: Unit id of the SunSpec grid meter on the same server, None without one [-].
    meter_unit: int | None = None

    @property
    def meter_device_id(self) -> str:
        """The grid meter's device id on the wire (``<site>-meter``)."""
        return f"{self.site_id}-meter"


def _grid_start(value: datetime, step_s: int) -> datetime:
    value = value.astimezone(UTC).replace(microsecond=0)
    epoch = int(value.timestamp())
    return datetime.fromtimestamp(epoch - epoch % step_s, tz=UTC)


class LiveFleet:
    """Simulated inverters of a fleet, served over Modbus TCP and driven by the model.

    Parameters
    ----------
    fleet : Fleet
        The simulated sites [-]
    start : datetime, optional
        Simulated time at the first step (default: now), UTC [-]
    time_scale : float
        Simulated seconds per real second [-]
    step_s : int
        Model step in simulated time; must divide a day [s]
    host : str
        Address the servers listen on [-]
    base_port : int
        First TCP port (site i gets base_port + i); 0 picks free ports [-]
    faults : FaultSchedule, optional
        Faults to play [-]
    grid_meters : Mapping[int, Callable[[datetime, float], GridMeterValues]], optional
        Site index -> the site's grid meter model, called at every step with the simulated
        time and the inverter's AC power [W]; such a site also serves a SunSpec meter [-]
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        start: datetime | None = None,
        time_scale: float = 1.0,
        step_s: int = 10,
        host: str = "127.0.0.1",
        base_port: int = 0,
        faults: FaultSchedule | None = None,
        grid_meters: Mapping[int, Callable[[datetime, float], GridMeterValues]] | None = None,
    ) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale must be positive, got {time_scale}")
        self.fleet = fleet
        self.time_scale = time_scale
        self.step_s = step_s
        self.start = _grid_start(start or datetime.now(UTC), step_s)
        self.sim = Simulation(
            fleet,
            self.start,
            self.start + timedelta(days=_HORIZON_DAYS),
            step_s,
            faults,
            chunk_steps=1,
        )
        self.host = host
        self.base_port = base_port
        self.grid_meters = dict(grid_meters or {})
        unknown = sorted(set(self.grid_meters) - {s.index for s in fleet.sites})
        if unknown:
            raise ValueError(f"grid meters for sites not in the fleet: {unknown}")
        self.servers: list[SimulatedInverters] = []
        self.devices: list[LiveDevice] = []
        self.steps = 0
        self.sim_time = self.start
        self._offline: set[int] = set()
        #: The model's chunks, begun by start_servers (a simulation is iterated once).
        self._chunks: Iterator[Chunk] | None = None

    def __enter__(self) -> LiveFleet:
        self.start_servers()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start_servers(self) -> list[LiveDevice]:
        """Start one Modbus server per site, serving the model's first step (never the
        servers' zero defaults: a gateway polling before :meth:`run` would read a lifetime
        counter of 0); returns where each one listens."""
        chunks = self.sim.chunks()
        first = next(chunks)
        self._chunks = itertools.chain([first], chunks)
        for site in self.fleet.sites:
            port = self.base_port + site.index if self.base_port else 0
            units: dict[int, Layout] = {1: layout_for(site.device_layout)}
            if site.index in self.grid_meters:
                units[METER_UNIT] = layout_for("sunspec-meter", serial=f"MTR{site.index + 1:05d}")
            server = SimulatedInverters(units, host=self.host, port=port)
            self.servers.append(server)
        self.apply(first, 0)
        for site, server in zip(self.fleet.sites, self.servers, strict=True):
            server.start()
            meter_unit = METER_UNIT if site.index in self.grid_meters else None
            self.devices.append(_device(site, self.host, server.port, meter_unit))
        return self.devices

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.servers.clear()

    def apply(self, chunk: Chunk, t: int) -> None:
        """Serve the model's values at time index ``t`` of ``chunk`` on every server."""
        for site, server in zip(self.fleet.sites, self.servers, strict=True):
            s = site.index
            if not chunk.present[t, s]:
                if s not in self._offline:
                    server.reply_busy(_BUSY_FOREVER)
                    self._offline.add(s)
                continue
            if s in self._offline:
                server.reply_busy(0)
                self._offline.discard(s)
            reading = chunk_reading(chunk, t, s, site.device_id)
            server.set_reading(reading, unit=1)
            meter = self.grid_meters.get(s)
            if meter is not None:
                now = datetime.fromtimestamp(int(chunk.epoch_s[t]), tz=UTC)
                values = meter(now, max(reading.ac_power_w or 0.0, 0.0))
                server.set_values(METER_UNIT, **asdict(values))

    def run(
        self,
        duration_s: float | None = None,
        stop: threading.Event | None = None,
        on_step: Callable[[datetime], None] | None = None,
    ) -> None:
        """Advance the model in real time until ``duration_s`` real seconds or ``stop``."""
        stop = stop or threading.Event()
        began = time.monotonic()
        real_per_step = self.step_s / self.time_scale
        if self._chunks is None:
            raise RuntimeError("start_servers() first (or use the fleet as a context manager)")
        chunks, self._chunks = self._chunks, None
        for chunk in chunks:
            for t in range(len(chunk.epoch_s)):
                self.apply(chunk, t)
                self.steps += 1
                self.sim_time = datetime.fromtimestamp(int(chunk.epoch_s[t]), tz=UTC)
                if on_step is not None:
                    on_step(self.sim_time)
                wake = began + self.steps * real_per_step
                if duration_s is not None and wake - began > duration_s:
                    return
                if stop.wait(max(0.0, wake - time.monotonic())):
                    return


def _device(site: Site, host: str, port: int, meter_unit: int | None) -> LiveDevice:
    return LiveDevice(
        site_id=site.site_id,
        gateway_id=site.gateway_id,
        device_id=site.device_id,
        host=host,
        port=port,
        unit_id=1,
        family=site.family,
        gateway_profile=gateway_profile_for(site.device_layout),
        layout=site.device_layout,
        meter_unit=meter_unit,
    )
