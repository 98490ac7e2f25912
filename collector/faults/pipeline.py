"""All detectors with their parameters, run together: the one place that says what runs."""

from __future__ import annotations

from dataclasses import dataclass, field

from collector.faults.episodes import findings
from collector.faults.fault_state import FaultStateParams, detect_fault_state
from collector.faults.integrity import (
    CounterParams,
    FrozenParams,
    ImplausibleParams,
    detect_counter_anomalies,
    detect_frozen,
    detect_implausible_power,
)
from collector.faults.model import BoolArray, Detection, FaultKind, Finding, FleetDaily, FleetSeries
from collector.faults.offline import OfflineParams, detect_offline
from collector.faults.peers import PeerParams, detect_underperformance
from collector.faults.production import NoProductionParams, detect_no_production
from collector.faults.strings import ImbalanceParams, detect_string_imbalance

#: Kinds judged on recent readings (every few minutes).
RECENT_KINDS: frozenset[FaultKind] = frozenset(
    {
        FaultKind.GATEWAY_OFFLINE,
        FaultKind.DEVICE_OFFLINE,
        FaultKind.NO_PRODUCTION,
        FaultKind.FAULT_STATE,
        FaultKind.STRING_IMBALANCE,
        FaultKind.FROZEN_VALUE,
        FaultKind.COUNTER_ANOMALY,
        FaultKind.IMPLAUSIBLE_VALUE,
    }
)
#: Kinds judged once a day, after sunset.
DAILY_KINDS: frozenset[FaultKind] = frozenset({FaultKind.UNDERPERFORMANCE})


@dataclass(frozen=True, kw_only=True)
class DetectorConfig:
    """Parameters of every detector (defaults are the evaluated ones, see docs/faults.md)."""

    offline: OfflineParams = field(default_factory=OfflineParams)
    no_production: NoProductionParams = field(default_factory=NoProductionParams)
    fault_state: FaultStateParams = field(default_factory=FaultStateParams)
    imbalance: ImbalanceParams = field(default_factory=ImbalanceParams)
    frozen: FrozenParams = field(default_factory=FrozenParams)
    counter: CounterParams = field(default_factory=CounterParams)
    implausible: ImplausibleParams = field(default_factory=ImplausibleParams)
    peers: PeerParams = field(default_factory=PeerParams)


def detect_recent(
    series: FleetSeries,
    config: DetectorConfig | None = None,
    known_resets: BoolArray | None = None,
) -> list[Detection]:
    """Run every detector that works on readings.

    Parameters
    ----------
    series
        The fleet's recent readings (a few hours for the live check, months in the bench).
    config
        Detector parameters.
    known_resets
        Shape (D, T): counter resets the registry knows about.
    """
    c = config or DetectorConfig()
    gateway, device = detect_offline(series, c.offline)
    return [
        gateway,
        device,
        detect_no_production(series, c.no_production),
        detect_fault_state(series, c.fault_state),
        detect_string_imbalance(series, c.imbalance),
        detect_frozen(series, c.frozen),
        detect_counter_anomalies(series, c.counter, known_resets),
        detect_implausible_power(series, c.implausible),
    ]


def recent_findings(
    series: FleetSeries,
    config: DetectorConfig | None = None,
    known_resets: BoolArray | None = None,
) -> list[Finding]:
    """Findings of :func:`detect_recent` (one per episode per device and kind)."""
    out: list[Finding] = []
    for detection in detect_recent(series, config, known_resets):
        out.extend(findings(detection, series.times, series.device_ids, series.gateway_ids))
    return out


def daily_findings(
    daily: FleetDaily, gateway_ids: tuple[str, ...], config: DetectorConfig | None = None
) -> list[Finding]:
    """Findings of the daily peer comparison; a day's finding is dated at its start (00:00)."""
    c = config or DetectorConfig()
    detection = detect_underperformance(daily, c.peers)
    return findings(detection, daily.days, daily.device_ids, gateway_ids)
