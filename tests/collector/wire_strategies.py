"""Hypothesis strategies for wire v1 readings, shared by the decoder and line-protocol tests."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import strategies as st

from zonnewijk_wire import DcInput, InverterState, Reading, ReadingFlag

floats = st.none() | st.floats(-1e6, 1e9, allow_nan=False)
ids = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,10}", fullmatch=True)


def _line_safe(text: str) -> bool:
    """Text line protocol can carry (the collector rejects the rest as unstorable)."""
    return "\n" not in text and "\r" not in text


def wire_readings(*, line_safe: bool = False) -> st.SearchStrategy[Reading]:
    """Valid readings with every field exercised; ``line_safe`` keeps event names and raw keys
    writable as line protocol."""
    text = st.text(max_size=8)
    key = st.text(min_size=1, max_size=6)
    if line_safe:
        text = text.filter(_line_safe)
        key = key.filter(lambda s: _line_safe(s) and not s.endswith("\\"))
    return st.builds(
        Reading,
        device_id=ids,
        ts=st.datetimes(min_value=datetime(2000, 1, 1), timezones=st.just(UTC)),
        ac_power_w=floats,
        ac_energy_wh=st.none() | st.floats(0, 1e12, allow_nan=False),
        ac_voltage_v=floats,
        grid_frequency_hz=floats,
        cabinet_temp_c=floats,
        dc=st.lists(
            st.builds(
                DcInput,
                mppt=st.integers(1, 32),
                dc_voltage_v=floats,
                dc_current_a=floats,
                dc_power_w=floats,
            ),
            max_size=3,
        ).map(tuple),
        state=st.sampled_from(InverterState),
        vendor_state=st.none() | st.integers(-(2**40), 2**40),
        events=st.lists(text, max_size=3).map(tuple),
        vendor_events=st.none() | st.integers(0, 2**40),
        flags=st.lists(st.sampled_from(ReadingFlag), max_size=2, unique=True).map(tuple),
        raw=st.dictionaries(key, st.floats(-1e6, 1e6, allow_nan=False), max_size=3),
    )
