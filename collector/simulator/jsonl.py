"""Fast JSON-lines writer for wire-format reading batches.

A year of 5-minute readings of 122 inverters is 12.8 million readings; ``json.dumps`` on
pydantic models would take about an hour, and numpy byte-matrix tricks still several
minutes on two cores. The text is therefore written by one small loop compiled with numba:
literal pieces and strings come from byte tables built once in Python, numbers are written
digit by digit (no leading zeros, trailing decimal zeros dropped), optional fields are left
out when their value is absent. One line is one :class:`zonnewijk_wire.ReadingsBatch`;
tests decode every kind of reading the simulator makes with
:func:`zonnewijk_wire.decode_batch`, and compare with pydantic's own encoding.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

from collector.simulator.engine import (
    FLAG_COUNTER_BACKWARDS,
    FLAG_COUNTER_JUMP,
    FLAG_REPLAYED,
    FLAG_SENTINEL,
    RAW_VALUES,
    STATES,
    Chunk,
    IntArray,
)
from collector.simulator.faults import FAULT_EVENTS
from collector.simulator.solar import FloatArray
from zonnewijk_wire import ReadingFlag, format_ts

Bytes2D = npt.NDArray[np.uint8]
_F = TypeVar("_F", bound=Callable[..., Any])


def _jit(func: _F) -> _F:
    return cast(_F, numba.njit(cache=True, nogil=True)(func))


def _table(strings: Sequence[str]) -> tuple[Bytes2D, IntArray]:
    """Strings as a padded byte matrix and their lengths."""
    encoded = [s.encode() for s in strings]
    width = max((len(e) for e in encoded), default=0) or 1
    table = np.zeros((len(encoded), width), dtype=np.uint8)
    for i, e in enumerate(encoded):
        table[i, : len(e)] = np.frombuffer(e, dtype=np.uint8)
    return table, np.array([len(e) for e in encoded], dtype=np.int64)


def _flag_table() -> list[str]:
    bit_of = {
        ReadingFlag.SENTINEL: FLAG_SENTINEL,
        ReadingFlag.COUNTER_BACKWARDS: FLAG_COUNTER_BACKWARDS,
        ReadingFlag.COUNTER_JUMP: FLAG_COUNTER_JUMP,
        ReadingFlag.REPLAYED: FLAG_REPLAYED,
    }
    out = []
    for bits in range(32):
        names = [f.value for f in ReadingFlag if f in bit_of and bits & bit_of[f]]
        out.append(json.dumps(names, separators=(",", ":")))
    return out


#: Literal pieces, by the index the kernel uses.
_LITERALS = (
    '{"v":1,"gateway_id":"',  # 0
    '","seq":',  # 1
    ',"sent_at":"',  # 2
    '","readings":[',  # 3
    ',{"device_id":"',  # 4
    '","ts":"',  # 5
    '"',  # 6
    ',"ac_power_w":',  # 7
    ',"ac_energy_wh":',  # 8
    ',"ac_voltage_v":',  # 9
    ',"grid_frequency_hz":',  # 10
    ',"cabinet_temp_c":',  # 11
    ',"dc":[',  # 12
    '{"mppt":',  # 13
    ',"dc_voltage_v":',  # 14
    ',"dc_current_a":',  # 15
    ',"dc_power_w":',  # 16
    "}",  # 17
    "]",  # 18
    ',"state":"',  # 19
    '","vendor_state":',  # 20
    ',"events":',  # 21
    ',"vendor_events":',  # 22
    ',"flags":',  # 23
    ',"raw":',  # 24
    "]}\n",  # 25
    ",",  # 26
)
_LIT = _table(_LITERALS)
_FLAGS = _table(_flag_table())
_EVENTS = _table(["[]", *[json.dumps([name]) for _, name in FAULT_EVENTS]])
_RAWS = _table([json.dumps(r, separators=(",", ":")) for r in RAW_VALUES])
_STATES = _table([s.value for s in STATES])
#: Upper bound of one reading's text (header included) [bytes].
_MAX_READING_BYTES = 640
_MAX_MPPT_BYTES = 110


@_jit
def _put(buf: Bytes2D, pos: int, table: Bytes2D, lengths: IntArray, index: int) -> int:
    for k in range(lengths[index]):
        buf[pos + k] = table[index, k]
    return int(pos + lengths[index])


@_jit
def _put_int(buf: Bytes2D, pos: int, value: int) -> int:
    if value < 0:
        buf[pos] = 45
        pos += 1
        value = -value
    digits = 1
    probe = value
    while probe >= 10:
        probe //= 10
        digits += 1
    for k in range(digits - 1, -1, -1):
        buf[pos + k] = 48 + value % 10
        value //= 10
    return pos + digits


@_jit
def _put_float(buf: Bytes2D, pos: int, value: float, decimals: int) -> int:
    """``value`` rounded to ``decimals``, without trailing fraction zeros."""
    scale = 10**decimals
    negative = value < 0
    scaled = int(abs(value) * scale + 0.5)
    if negative and scaled > 0:
        buf[pos] = 45
        pos += 1
    pos = _put_int(buf, pos, scaled // scale)
    fraction = scaled % scale
    if fraction:
        buf[pos] = 46
        pos += 1
        width = decimals
        while fraction % 10 == 0:
            fraction //= 10
            width -= 1
        for k in range(width - 1, -1, -1):
            buf[pos + k] = 48 + fraction % 10
            fraction //= 10
        pos += width
    return pos


@_jit
def _kernel(
    buf: Bytes2D,
    rows_t: IntArray,
    rows_s: IntArray,
    first: npt.NDArray[np.bool_],
    last: npt.NDArray[np.bool_],
    seq: IntArray,
    sent_index: IntArray,
    lit: Bytes2D,
    lit_len: IntArray,
    gw: Bytes2D,
    gw_len: IntArray,
    dev: Bytes2D,
    dev_len: IntArray,
    ts: Bytes2D,
    ts_len: IntArray,
    sent: Bytes2D,
    sent_len: IntArray,
    states: Bytes2D,
    states_len: IntArray,
    events: Bytes2D,
    events_len: IntArray,
    flags_t: Bytes2D,
    flags_len: IntArray,
    raws: Bytes2D,
    raws_len: IntArray,
    ac: FloatArray,
    dc_v: FloatArray,
    dc_a: FloatArray,
    dc_w: FloatArray,
    dc_present: npt.NDArray[np.bool_],
    state: npt.NDArray[np.int8],
    vendor_state: IntArray,
    event: npt.NDArray[np.int8],
    vendor_events: IntArray,
    flags: npt.NDArray[np.uint8],
    raw: npt.NDArray[np.int8],
) -> int:
    pos = 0
    decimals = (1, 0, 1, 2, 1)
    for r in range(len(rows_t)):
        t = rows_t[r]
        s = rows_s[r]
        if first[r]:
            pos = _put(buf, pos, lit, lit_len, 0)
            pos = _put(buf, pos, gw, gw_len, s)
            pos = _put(buf, pos, lit, lit_len, 1)
            pos = _put_int(buf, pos, seq[r])
            pos = _put(buf, pos, lit, lit_len, 2)
            pos = _put(buf, pos, sent, sent_len, sent_index[r])
            pos = _put(buf, pos, lit, lit_len, 3)
            # Literal 4 starts with the comma that separates readings: skip it here.
            for k in range(1, lit_len[4]):
                buf[pos] = lit[4, k]
                pos += 1
        else:
            pos = _put(buf, pos, lit, lit_len, 4)
        pos = _put(buf, pos, dev, dev_len, s)
        pos = _put(buf, pos, lit, lit_len, 5)
        pos = _put(buf, pos, ts, ts_len, t)
        pos = _put(buf, pos, lit, lit_len, 6)
        for f in range(5):
            value = ac[f, t, s]
            if not np.isnan(value):
                pos = _put(buf, pos, lit, lit_len, 7 + f)
                pos = _put_float(buf, pos, value, decimals[f])
        if dc_present[t, s]:
            pos = _put(buf, pos, lit, lit_len, 12)
            written = 0
            for m in range(dc_v.shape[2]):
                volts = dc_v[t, s, m]
                if np.isnan(volts):
                    continue
                if written:
                    pos = _put(buf, pos, lit, lit_len, 26)
                pos = _put(buf, pos, lit, lit_len, 13)
                pos = _put_int(buf, pos, m + 1)
                pos = _put(buf, pos, lit, lit_len, 14)
                pos = _put_float(buf, pos, volts, 1)
                pos = _put(buf, pos, lit, lit_len, 15)
                pos = _put_float(buf, pos, dc_a[t, s, m], 2)
                pos = _put(buf, pos, lit, lit_len, 16)
                pos = _put_float(buf, pos, dc_w[t, s, m], 1)
                pos = _put(buf, pos, lit, lit_len, 17)
                written += 1
            pos = _put(buf, pos, lit, lit_len, 18)
        pos = _put(buf, pos, lit, lit_len, 19)
        pos = _put(buf, pos, states, states_len, state[t, s])
        pos = _put(buf, pos, lit, lit_len, 20)
        pos = _put_int(buf, pos, vendor_state[t, s])
        if event[t, s] > 0:
            pos = _put(buf, pos, lit, lit_len, 21)
            pos = _put(buf, pos, events, events_len, event[t, s])
        if vendor_events[t, s] >= 0:
            pos = _put(buf, pos, lit, lit_len, 22)
            pos = _put_int(buf, pos, vendor_events[t, s])
        if flags[t, s] > 0:
            pos = _put(buf, pos, lit, lit_len, 23)
            pos = _put(buf, pos, flags_t, flags_len, flags[t, s])
        if raw[t, s] > 0:
            pos = _put(buf, pos, lit, lit_len, 24)
            pos = _put(buf, pos, raws, raws_len, raw[t, s])
        pos = _put(buf, pos, lit, lit_len, 17)
        if last[r]:
            pos = _put(buf, pos, lit, lit_len, 25)
    return pos


@dataclass
class Lines:
    """Formatted batches: ``data`` holds one JSON line per batch."""

    data: bytes
    #: Site index, send time and number of readings of each line, in order.
    line_site: IntArray
    line_sent_at_s: IntArray
    line_readings: IntArray
    #: True for lines a gateway's spool replays after an outage (released late).
    replayed: bool = False

    @property
    def readings(self) -> int:
        return int(self.line_readings.sum())

    def split(self) -> list[bytes]:
        """The lines without their newline."""
        return self.data.split(b"\n")[:-1] if self.data else []


def format_rows(
    chunk: Chunk,
    rows_t: IntArray,
    rows_s: IntArray,
    gateway_ids: Sequence[str],
    device_ids: Sequence[str],
) -> Lines:
    """Format selected readings of a chunk as batch lines.

    Rows must be ordered so that the readings of each batch are consecutive; a batch is the
    run of rows with the same (site, seq).

    Parameters
    ----------
    chunk : Chunk
        Simulated values [-]
    rows_t, rows_s : arrays
        Time and site index of each reading, in output order [-]
    gateway_ids, device_ids : sequences of str
        Identifiers by site index [-]
    """
    n = len(rows_t)
    if n == 0:
        empty = np.zeros(0, np.int64)
        return Lines(b"", empty, empty, empty)
    t = np.ascontiguousarray(rows_t, dtype=np.int64)
    s = np.ascontiguousarray(rows_s, dtype=np.int64)
    seq = chunk.seq[t, s]
    sent = chunk.sent_at_s[t, s]
    line_key = s * (1 << 40) + seq
    first = np.ones(n, dtype=bool)
    first[1:] = line_key[1:] != line_key[:-1]
    last = np.ones(n, dtype=bool)
    last[:-1] = first[1:]
    sent_unique, sent_index = np.unique(sent, return_inverse=True)
    gw_table = _table(gateway_ids)
    dev_table = _table(device_ids)
    ts_table = _table([format_ts_epoch(int(e)) for e in chunk.epoch_s])
    sent_table = _table([format_ts_epoch(int(e)) for e in sent_unique])
    ac = np.stack(
        [
            chunk.ac_power_w,
            chunk.ac_energy_wh,
            chunk.ac_voltage_v,
            chunk.grid_frequency_hz,
            chunk.cabinet_temp_c,
        ]
    )
    if np.any(np.abs(ac[np.isfinite(ac)]) >= 1e15):
        raise ValueError("a value of 1e15 or more cannot be formatted")
    max_mppt = chunk.dc_voltage_v.shape[2]
    buf = _buffer(n * (_MAX_READING_BYTES + _MAX_MPPT_BYTES * max_mppt))
    used = _kernel(
        buf,
        t,
        s,
        first,
        last,
        seq,
        sent_index.reshape(-1).astype(np.int64),
        *_LIT,
        *gw_table,
        *dev_table,
        *ts_table,
        *sent_table,
        *_STATES,
        *_EVENTS,
        *_FLAGS,
        *_RAWS,
        ac,
        chunk.dc_voltage_v,
        chunk.dc_current_a,
        chunk.dc_power_w,
        chunk.dc_present,
        chunk.state,
        chunk.vendor_state,
        chunk.event,
        chunk.vendor_events,
        chunk.flags,
        chunk.raw,
    )
    starts = np.flatnonzero(first)
    counts = np.diff(np.append(starts, n))
    return Lines(buf[:used].tobytes(), s[first], sent[first], counts)


_BUFFERS: list[Bytes2D] = []


def _buffer(size: int) -> Bytes2D:
    """A reused output buffer: fresh large allocations cost a page fault per 4 KiB."""
    if not _BUFFERS or len(_BUFFERS[0]) < size:
        _BUFFERS[:] = [np.empty(size, dtype=np.uint8)]
    return _BUFFERS[0]


_EPOCH_TS_CACHE: dict[int, str] = {}


def format_ts_epoch(epoch_s: int) -> str:
    """:func:`zonnewijk_wire.format_ts` of a time in seconds since 1970."""
    text = _EPOCH_TS_CACHE.get(epoch_s)
    if text is None:
        text = format_ts(datetime.fromtimestamp(epoch_s, tz=UTC))
        if len(_EPOCH_TS_CACHE) < 1_000_000:
            _EPOCH_TS_CACHE[epoch_s] = text
    return text
