"""What a settlement run produces: parts, contract settlements and the run's result.

Every amount is a :class:`~decimal.Decimal`; ``to_json`` gives the canonical JSON that the
ledger stores and that a rerun must reproduce byte for byte. Pure, no I/O.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from collector.settlement.counter_segments import (
    Anomaly,
)
from collector.settlement.inputs import EngineSettings
from collector.settlement.tariffs import (
    GuaranteeOutcome,
    StatementLine,
    line_totals,
)
from collector.settlement.yields import CounterUse, Estimate, wh_to_kwh

# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PartResult:
    """The yield of one contract's days ``[start_day, end_day)``.

    Parameters
    ----------
    measured_wh, estimated_wh : float
        Energy from counters and estimated [Wh].
    kwh : Decimal
        Total rounded to 1 Wh: the quantity billed [kWh].
    delta_kwh : Decimal, optional
        For a correction: new yield minus the yield billed so far [kWh].
    """

    contract_id: str
    start_day: date
    end_day: date
    measured_wh: float
    estimated_wh: float
    completeness: float
    kwh: Decimal
    tariff: str
    unit_price_eur: Decimal
    vat_rate: Decimal
    estimates: tuple[Estimate, ...] = ()
    counters: tuple[CounterUse, ...] = ()
    corrects: str | None = None
    delta_kwh: Decimal | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "start_day": self.start_day.isoformat(),
            "end_day": self.end_day.isoformat(),
            "measured_kwh": str(wh_to_kwh(self.measured_wh)),
            "estimated_kwh": str(wh_to_kwh(self.estimated_wh)),
            "completeness": round(self.completeness, 4),
            "kwh": str(self.kwh),
            "tariff": self.tariff,
            "unit_price_eur": str(self.unit_price_eur),
            "estimates": [e.to_json() for e in self.estimates],
        }
        if self.corrects is not None:
            out["corrects"] = self.corrects
            out["delta_kwh"] = str(self.delta_kwh)
        return out


@dataclass(frozen=True)
class ContractSettlement:
    """One contract's settlement for the month."""

    contract_id: str
    member_id: str
    site_id: str
    period: str
    start_day: date | None
    end_day: date | None
    parts: tuple[PartResult, ...]
    corrections: tuple[PartResult, ...]
    lines: tuple[StatementLine, ...]
    guarantees: tuple[GuaranteeOutcome, ...]
    anomalies: tuple[Anomaly, ...]

    @property
    def measured_wh(self) -> float:
        return sum(p.measured_wh for p in self.parts)

    @property
    def estimated_wh(self) -> float:
        return sum(p.estimated_wh for p in self.parts)

    @property
    def completeness(self) -> float:
        total = self.measured_wh + self.estimated_wh
        if total > 0:
            return max(0.0, min(1.0, self.measured_wh / total))
        return min((p.completeness for p in self.parts), default=1.0)

    @property
    def totals(self) -> tuple[Decimal, Decimal]:
        return line_totals(self.lines)

    def to_json(self) -> dict[str, Any]:
        excl, vat = self.totals
        return {
            "contract_id": self.contract_id,
            "site_id": self.site_id,
            "start_day": None if self.start_day is None else self.start_day.isoformat(),
            "end_day": None if self.end_day is None else self.end_day.isoformat(),
            "measured_kwh": str(wh_to_kwh(self.measured_wh)),
            "estimated_kwh": str(wh_to_kwh(self.estimated_wh)),
            "completeness": round(self.completeness, 4),
            "parts": [p.to_json() for p in self.parts],
            "corrections": [p.to_json() for p in self.corrections],
            "guarantees": [g.to_json() for g in self.guarantees],
            "anomalies": [a.to_json() for a in self.anomalies],
            "lines": [line.to_json() for line in self.lines],
            "total_excl_vat_eur": str(excl),
            "vat_eur": str(vat),
            "total_incl_vat_eur": str(excl + vat),
        }


@dataclass(frozen=True)
class SettlementResult:
    """A month's settlement of the whole fleet."""

    period: str
    code_version: str
    inputs_digest: str
    settings: EngineSettings
    contracts: tuple[ContractSettlement, ...]

    def members(self) -> list[dict[str, Any]]:
        """The result per member (sorted by member id), as documented in docs/settlement.md."""
        by_member: dict[str, list[ContractSettlement]] = defaultdict(list)
        for c in self.contracts:
            by_member[c.member_id].append(c)
        out = []
        for member_id in sorted(by_member):
            contracts = by_member[member_id]
            measured = sum(c.measured_wh for c in contracts)
            estimated = sum(c.estimated_wh for c in contracts)
            lines = [line for c in contracts for line in c.lines]
            excl, vat = line_totals(lines)
            total = measured + estimated
            completeness = measured / total if total > 0 else min(c.completeness for c in contracts)
            out.append(
                {
                    "member_id": member_id,
                    "period": self.period,
                    "measured_kwh": str(wh_to_kwh(measured)),
                    "estimated_kwh": str(wh_to_kwh(estimated)),
                    "completeness": round(max(0.0, min(1.0, completeness)), 4),
                    "lines": [line.to_json() for line in lines],
                    "total_excl_vat_eur": str(excl),
                    "vat_eur": str(vat),
                    "total_incl_vat_eur": str(excl + vat),
                    "contracts": [c.to_json() for c in contracts],
                }
            )
        return out

    def to_json(self) -> dict[str, Any]:
        excl, vat = line_totals([line for c in self.contracts for line in c.lines])
        return {
            "format": "zonnewijk-settlement-1",
            "period": self.period,
            "code_version": self.code_version,
            "inputs_sha256": self.inputs_digest,
            "settings": self.settings.to_json(),
            "total_excl_vat_eur": str(excl),
            "vat_eur": str(vat),
            "total_incl_vat_eur": str(excl + vat),
            "members": self.members(),
        }

    def dumps(self) -> str:
        """Canonical JSON text of the result (sorted keys, two-space indent)."""
        return json.dumps(self.to_json(), sort_keys=True, indent=2, ensure_ascii=False)
