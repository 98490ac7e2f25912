"""Per-gateway message sequence numbers: a message that never arrives is counted, not silent.

Every readings and meter message carries its gateway's ``seq`` (``zonnewijk_wire``), handed
out by the gateway's spool, persisted, one per message and increasing, kept across restarts
and spool repairs. The broker acknowledges a gateway's message (the gateway then deletes its
readings) and may still drop it for the collector: Mosquitto does so beyond
``max_queued_messages`` / ``max_queued_bytes`` for a collector that is away or slow
(docs/field-faults.md, "Known loss"). Such a message leaves a hole in the gateway's
sequence here.

A hole is not lost at once: replayed and live messages interleave, a redelivery comes late.
A number missing for ``grace_s`` is *confirmed*: counted, and returned by :meth:`confirm`
for the log. A confirmed hole means a message the collector never stored; usually its
readings are lost, except when the gateway restarted with messages in flight that never
reached the broker (it sends those readings again under new numbers).

Numbers at or below the highest seen that are not holes are redeliveries and ignored; so is
a gateway whose numbers start again lower (a gateway rebuilt from scratch): no false alarm,
but its holes are only seen again above its old highest number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: holes remembered per gateway; a wider jump is counted at once as confirmed [messages]
MAX_OPEN_HOLES = 100_000


@dataclass
class _Gateway:
    highest: int
    #: seq -> when it was first known missing [s, the caller's clock]
    holes: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfirmedGap:
    """Messages ``first``..``last`` (inclusive) of a gateway never arrived."""

    gateway_id: str
    first: int
    last: int

    @property
    def messages(self) -> int:
        return self.last - self.first + 1


class SequenceGaps:
    """The sequence numbers seen per gateway, and the holes in them.

    Parameters
    ----------
    grace_s
        How long a number may be missing before it counts as never arriving [s].
    """

    def __init__(self, *, grace_s: float = 3600.0, max_open_holes: int = MAX_OPEN_HOLES) -> None:
        if grace_s < 0:
            raise ValueError(f"grace_s must be >= 0, got {grace_s}")
        self.grace_s = grace_s
        self.max_open_holes = max_open_holes
        self._gateways: dict[str, _Gateway] = {}
        #: messages confirmed missing since the start [messages]
        self.confirmed_total = 0
        self._overflow: list[ConfirmedGap] = []

    def observe(self, gateway_id: str, seq: int, now_s: float) -> None:
        """A message of ``gateway_id`` with ``seq`` was stored at ``now_s`` [s]."""
        if seq < 0:
            raise ValueError(f"a sequence number is >= 0, got {seq}")
        gw = self._gateways.get(gateway_id)
        if gw is None:  # the first message seen: the baseline, nothing before it is known
            self._gateways[gateway_id] = _Gateway(seq)
            return
        if seq <= gw.highest:
            gw.holes.pop(seq, None)  # a late arrival fills its hole; otherwise a redelivery
            return
        first, last = gw.highest + 1, seq - 1
        gw.highest = seq
        if last < first:
            return
        if last - first + 1 + len(gw.holes) > self.max_open_holes:
            # too wide to remember one by one: counted now
            self._overflow.append(ConfirmedGap(gateway_id, first, last))
            self.confirmed_total += last - first + 1
            return
        for missing in range(first, last + 1):
            gw.holes[missing] = now_s

    def open_holes(self) -> int:
        """Numbers missing and still within their grace [messages]."""
        return sum(len(gw.holes) for gw in self._gateways.values())

    def confirm(self, now_s: float) -> list[ConfirmedGap]:
        """The holes older than the grace, as ranges per gateway; they are counted and
        forgotten (a message arriving after this is a late redelivery)."""
        found = self._overflow
        self._overflow = []
        for gateway_id, gw in self._gateways.items():
            old = sorted(s for s, since in gw.holes.items() if now_s - since >= self.grace_s)
            for s in old:
                del gw.holes[s]
            found.extend(_ranges(gateway_id, old))
            self.confirmed_total += len(old)
        return found

    def highest(self) -> dict[str, int]:
        """The highest number seen per gateway (to keep across a collector restart)."""
        return {gid: gw.highest for gid, gw in self._gateways.items()}

    def restore(self, highest: dict[str, int]) -> None:
        """Start from the highest numbers a previous run saw: what came after them and is
        missing is a hole even though this run never saw the gateway before."""
        for gateway_id, seq in highest.items():
            if gateway_id not in self._gateways:
                self._gateways[gateway_id] = _Gateway(int(seq))


def _ranges(gateway_id: str, numbers: list[int]) -> list[ConfirmedGap]:
    """Sorted numbers as consecutive ranges."""
    out: list[ConfirmedGap] = []
    for n in numbers:
        if out and out[-1].last == n - 1:
            out[-1] = ConfirmedGap(gateway_id, out[-1].first, n)
        else:
            out.append(ConfirmedGap(gateway_id, n, n))
    return out
