"""The P1 meter as the gateway service sees it: port, decoder, aggregator and a status line.

The service calls :meth:`P1Source.collect` from its main loop (at least once a second); it
returns the interval readings that are complete, which the service spools and publishes like
inverter readings. :meth:`P1Source.status` is the meter's part of the gateway's status
(``last_poll``): ``ok`` with the protocol, or what is wrong - no data (cable unplugged, P1 port
off), garbage on the line, CRC errors, an unknown version, a meter swap, a version change.
"""

from __future__ import annotations

import json
import logging
from collections import Counter, deque
from datetime import UTC, datetime
from pathlib import Path

from gateway_firmware.p1.aggregate import IntervalAggregator, telegram_period_s
from gateway_firmware.p1.identity import load_salt
from gateway_firmware.p1.port import P1Port
from gateway_firmware.p1.telegram import P1_REASONS, P1Error, decode_telegram
from zonnewijk_wire import MeterReading, Strict

__all__ = ["P1Source", "P1State"]

log = logging.getLogger(__name__)

#: Telegrams over which the share of bad ones is reported [telegrams].
RECENT = 60
#: How long after an interval's end its last telegram may still arrive [s].
GRACE_S = 3.0


class P1State(Strict):
    """What the gateway remembers of its meter across restarts (beside the spool)."""

    meter_id_hash: str | None = None


class P1Source:
    """One P1 meter on one serial device.

    Parameters
    ----------
    device_id
        The meter's device id on the wire.
    port
        The serial port reader (started by :meth:`start`).
    state_dir
        Where the salt and the last meter hash are kept (the spool's directory).
    interval_s
        Aggregation interval [s].
    gas
        Include the gas meter (the member opted in to gas).
    """

    def __init__(
        self,
        device_id: str,
        port: P1Port,
        *,
        state_dir: Path,
        interval_s: int = 300,
        gas: bool = False,
    ) -> None:
        self.device_id = device_id
        self.port = port
        self._state_path = state_dir / "p1-state.json"
        previous = self._load_state()
        self.aggregator = IntervalAggregator(
            device_id,
            interval_s=interval_s,
            salt=load_salt(state_dir / "p1-id-salt"),
            gas=gas,
            previous_hash=previous.meter_id_hash,
        )
        self._saved_hash = previous.meter_id_hash
        self.errors: Counter[str] = Counter()
        self._recent: deque[str] = deque(maxlen=RECENT)
        self.last_error: P1Error | None = None

    def _load_state(self) -> P1State:
        try:
            return P1State.model_validate_json(self._state_path.read_text())
        except FileNotFoundError:
            return P1State()
        except ValueError as exc:
            log.warning("ignoring %s: %s", self._state_path, exc)
            return P1State()

    def _save_state(self) -> None:
        state = P1State(meter_id_hash=self.aggregator.meter_hash)
        tmp = self._state_path.with_name(f".{self._state_path.name}.tmp")
        tmp.write_text(json.dumps(state.model_dump()))
        tmp.replace(self._state_path)
        self._saved_hash = state.meter_id_hash

    def start(self) -> None:
        self.port.start()

    def close(self) -> None:
        self.port.stop()

    def collect(self, now: datetime | None = None) -> list[MeterReading]:
        """Decode what arrived and return the readings of the intervals that are complete."""
        now = now or datetime.now(UTC)
        out: list[MeterReading] = []
        for received_at, text in self.port.drain():
            try:
                telegram = decode_telegram(text)
            except P1Error as exc:
                self.errors[exc.reason] += 1
                self._recent.append(exc.reason)
                if self.last_error is None or self.last_error.reason != exc.reason:
                    log.warning("P1 %s: %s", self.device_id, exc)
                self.last_error = exc
                continue
            self._recent.append("ok")
            out.extend(self.aggregator.add(received_at, telegram))
        period = telegram_period_s(self.aggregator.protocol or "DSMR 4")
        out.extend(self.aggregator.close_due(now, grace_s=period + GRACE_S))
        if self.aggregator.meter_hash != self._saved_hash:
            self._save_state()
        return out

    def status(self) -> str:
        """One line for the gateway's status: ``ok`` and the protocol, or what is wrong."""
        port = self.port.state
        if port.reason != "ok":
            return f"{port.reason}: {port.detail}"
        bad = [r for r in self._recent if r != "ok"]
        if self._recent and len(bad) == len(self._recent):
            assert self.last_error is not None
            return f"{self.last_error.reason}: {self.last_error.detail}"[:200]
        text = f"ok, {self.aggregator.protocol or 'waiting for a telegram'}"
        if bad:
            worst, count = Counter(bad).most_common(1)[0]
            text += f"; {worst} in {count} of the last {len(self._recent)} telegrams"
        event = self.aggregator.stats.last_event
        if event:
            text += f"; {event}"
        return text[:200]

    @staticmethod
    def reasons() -> dict[str, str]:
        """Every reason a telegram or the line gives no reading, explained."""
        return dict(P1_REASONS)
