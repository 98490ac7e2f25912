"""The reconnect backoff: exponential, capped and spread out."""

from __future__ import annotations

import random

import pytest

from gateway_firmware.backoff import backoff_ceiling_s, backoff_delay_s


def test_the_ceiling_doubles_per_attempt_up_to_the_cap() -> None:
    assert [backoff_ceiling_s(n, 1.0, 120.0) for n in range(8)] == [
        2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 120.0, 120.0,
    ]  # fmt: skip
    assert backoff_ceiling_s(10_000, 1.0, 120.0) == 120.0


def test_every_delay_lies_between_the_minimum_and_the_ceiling() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        for _ in range(200):
            delay = backoff_delay_s(attempt, 1.0, 120.0, rng)
            assert 1.0 <= delay <= backoff_ceiling_s(attempt, 1.0, 120.0)


def test_gateways_spread_out_instead_of_knocking_at_the_same_second() -> None:
    # 2,125 gateways lose the broker at once; their first and fifth retries:
    rng = random.Random(2125)
    first = [backoff_delay_s(0, 1.0, 120.0, rng) for _ in range(2125)]
    fifth = [backoff_delay_s(4, 1.0, 120.0, rng) for _ in range(2125)]
    # at most a tenth of them in any tenth of the window (uniform: about 212 each)
    for delays, ceiling in ((first, 2.0), (fifth, 32.0)):
        width = (ceiling - 1.0) / 10
        counts = [sum(1 + k * width <= d < 1 + (k + 1) * width for d in delays) for k in range(10)]
        assert max(counts) < 300, counts


@pytest.mark.parametrize(("attempt", "low", "high"), [(-1, 1, 2), (0, 0, 2), (0, 3, 2)])
def test_bad_arguments_are_refused_with_a_reason(attempt: int, low: float, high: float) -> None:
    with pytest.raises(ValueError, match=r"must be|need"):
        backoff_ceiling_s(attempt, low, high)
