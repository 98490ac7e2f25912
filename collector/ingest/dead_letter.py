"""Dead letters: what could not be stored is counted by reason, logged and published.

Each :class:`~collector.ingest.process.Rejection` goes to ``zonnewijk/v1/_deadletter`` (QoS 1)
as JSON with the reason, the detail, the topic, the reading's index and the original payload
or reading, so an operator can see what was refused and why, and replay it once fixed.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from collector.ingest.consent import CONSENT_REASONS
from collector.ingest.metrics import CollectorStats
from collector.ingest.process import Rejection
from zonnewijk_wire import DEADLETTER_TOPIC

__all__ = ["DeadLetters", "dead_letter_json"]

log = logging.getLogger(__name__)


def dead_letter_json(rejection: Rejection, *, received_at: datetime) -> str:
    """The dead-letter message of one rejection.

    A meter reading refused for want of consent is personal data that may not be kept, not
    even on the dead-letter topic: its ``original`` is left out (``original_withheld``).
    """
    withheld = rejection.reason in CONSENT_REASONS
    envelope = {
        "reason": rejection.reason,
        "detail": rejection.detail,
        "topic": rejection.topic,
        "reading_index": rejection.reading_index,
        "received_at": received_at.isoformat(),
        "original": None if withheld else _jsonable(rejection.original),
    }
    if withheld:
        envelope["original_withheld"] = "a meter reading without the member's consent"
    return json.dumps(envelope)


class DeadLetters:
    """Counts (into ``stats`` under ``lock``), logs and publishes rejections."""

    def __init__(
        self,
        publish: Callable[[str, str], None],
        *,
        stats: CollectorStats,
        lock: threading.Lock,
        on_rejection: Callable[[Rejection], None] | None = None,
    ) -> None:
        self._publish = publish
        self._stats = stats
        self._lock = lock
        self.on_rejection = on_rejection

    def reject(self, rejection: Rejection) -> None:
        kind = "message" if rejection.reading_index is None else "reading"
        with self._lock:
            if rejection.reading_index is None:
                self._stats.rejected_messages[rejection.reason] += 1
            else:
                self._stats.rejected_readings[rejection.reason] += 1
        log.warning(
            "rejected %s on %s%s: %s: %s",
            kind,
            rejection.topic,
            f" [reading {rejection.reading_index}]" if rejection.reading_index is not None else "",
            rejection.reason,
            rejection.detail,
            extra={
                "event": "rejected",
                "kind": kind,
                "reason": rejection.reason,
                "topic": rejection.topic,
                "reading_index": rejection.reading_index,
            },
        )
        self._publish(DEADLETTER_TOPIC, dead_letter_json(rejection, received_at=datetime.now(UTC)))
        if self.on_rejection is not None:
            self.on_rejection(rejection)


def _jsonable(value: object) -> object:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        if isinstance(value, bytes):
            return {"base64": base64.b64encode(value).decode()}
        return repr(value)
    return value
