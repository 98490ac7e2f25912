"""Grouping register reads into as few requests as a device allows.

A *group* is a range of registers that must come back in one request (a value together with its
scale factor, or a 32-bit value's two words). Groups close to each other are merged into one
request; when a device answers "illegal address" (exception 2) to a merged request, the request
is split at group boundaries until every piece is accepted. The plan that worked is remembered,
so a device is not asked the failing request again on every poll.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway_firmware.modbus.errors import IllegalAddress
from gateway_firmware.modbus.transport import MAX_REGISTERS_PER_READ, ModbusBus, RegisterKind


@dataclass(frozen=True, order=True)
class Group:
    """Registers that must be read in one request [register addresses, 0-based]."""

    start: int
    count: int

    @property
    def end(self) -> int:
        """One past the last register."""
        return self.start + self.count

    def __post_init__(self) -> None:
        if self.count < 1 or self.count > MAX_REGISTERS_PER_READ:
            raise ValueError(f"group at {self.start} has count {self.count}, must be 1..125")
        if self.start < 0 or self.end > 0x10000:
            raise ValueError(f"group {self.start}+{self.count} is outside 0..65535")


@dataclass(frozen=True)
class Request:
    """One read request covering one or more groups."""

    groups: tuple[Group, ...]

    @property
    def start(self) -> int:
        return self.groups[0].start

    @property
    def count(self) -> int:
        return self.groups[-1].end - self.groups[0].start


def merge_groups(
    groups: Sequence[Group], *, max_count: int = MAX_REGISTERS_PER_READ, max_gap: int = 0
) -> list[Request]:
    """Merge groups into requests of at most ``max_count`` registers.

    Parameters
    ----------
    groups
        Ranges that must each be read whole; overlapping ranges are allowed.
    max_count
        Largest request [registers].
    max_gap
        Largest run of unneeded registers a request may span between two groups [registers];
        0 reads only adjacent groups together.
    """
    if not 1 <= max_count <= MAX_REGISTERS_PER_READ:
        raise ValueError(f"max_count must be 1..125, got {max_count}")
    requests: list[Request] = []
    current: list[Group] = []
    for group in sorted(set(groups)):
        if current:
            start = current[0].start
            end = max(g.end for g in current)
            if group.start - end <= max_gap and max(end, group.end) - start <= max_count:
                current.append(group)
                continue
            requests.append(Request(tuple(current)))
        current = [group]
    if current:
        requests.append(Request(tuple(current)))
    return requests


def _count(groups: Sequence[Group]) -> int:
    return max(g.end for g in groups) - groups[0].start


class ReadPlan:
    """Reads a fixed set of groups from one device, learning which request sizes it accepts."""

    def __init__(
        self,
        kind: RegisterKind,
        groups: Sequence[Group],
        *,
        max_count: int = MAX_REGISTERS_PER_READ,
        max_gap: int = 0,
    ) -> None:
        if not groups:
            raise ValueError("a read plan needs at least one group")
        self.kind = kind
        self.groups = tuple(sorted(set(groups)))
        self._requests = merge_groups(self.groups, max_count=max_count, max_gap=max_gap)
        #: How many times a request had to be split after an "illegal address" answer.
        self.splits = 0

    @property
    def requests(self) -> tuple[Request, ...]:
        """The requests the next :meth:`read` will send (after learning, the ones that worked)."""
        return tuple(self._requests)

    def read(self, bus: ModbusBus, unit: int) -> dict[int, int]:
        """Read every group; returns register values by address.

        Raises :class:`IllegalAddress` when a single group is refused, and whatever the bus
        raises otherwise.
        """
        values: dict[int, int] = {}
        learned: list[Request] = []
        for request in self._requests:
            learned.extend(self._read_request(bus, unit, list(request.groups), values))
        self._requests = learned
        return values

    def _read_request(
        self, bus: ModbusBus, unit: int, groups: list[Group], values: dict[int, int]
    ) -> list[Request]:
        start = groups[0].start
        count = _count(groups)
        try:
            registers = bus.read_registers(self.kind, start, count, unit=unit)
        except IllegalAddress:
            if len(groups) == 1:
                raise
            self.splits += 1
            half = len(groups) // 2
            return self._read_request(bus, unit, groups[:half], values) + self._read_request(
                bus, unit, groups[half:], values
            )
        for offset, register in enumerate(registers):
            values[start + offset] = register
        return [Request(tuple(groups))]
