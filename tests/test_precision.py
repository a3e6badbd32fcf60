"""theory.precision.until_stable: the "solve at rising precision until two solves agree" loop.

Each test builds a ``solve`` whose error at ``w`` digits is known in closed form,
so where the loop must stop follows from the stopping rule by hand.
"""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory.precision import UnstableSolve, context, until_stable


def converging(rate: int, calls: list, c: int = 1):
    """``solve(w) = [1 + e, e]`` with ``e = c 10^-(w // rate)``: error ``e`` at ``w`` digits; calls recorded."""

    def solve(w):
        calls.append(w)
        ctx = context(w)
        e = c * ctx.mpf(10) ** (-(w // rate))
        return [1 + e, e]

    return solve


def test_schedule_and_first_agreeing_pair():
    # precisions 20, 50, 110, 230, 470 (steps 30, 60, 120, 240): entry 1 is the error itself, so
    # it never agrees relatively, and the default floor (10^-w_lo times the largest entry, ~1) is
    # far below it: the loop runs the whole schedule up to max_dps = 500 and gives up.
    calls: list = []
    with pytest.raises(UnstableSolve):
        until_stable(converging(2, calls), 20, agree_digits=30, max_dps=500)
    assert calls == [20, 50, 110, 230, 470]


def test_floor_holds_tiny_entries_to_an_absolute_level():
    # entry 1 (the error itself, ~10^-(w // 2)) never agrees relatively; with the floor at
    # 10^-30 times the largest entry (~1), the pair (110, 230) agrees: 10^-55 <= 10^-30.
    calls: list = []
    result, w = until_stable(converging(2, calls), 20, agree_digits=30, floor_digits=30, max_dps=500)
    assert w == 230 and calls == [20, 50, 110, 230]
    ctx = context(230)
    assert abs((result[0] - 1) / ctx.mpf(10) ** -115 - 1) < ctx.mpf(10) ** -100  # 1 + 10^-115 at 230 digits
    # entry 0 alone: the same stop, by the relative test
    calls.clear()
    _, w = until_stable(converging(2, calls), 20, agree_digits=30, max_dps=500, values=lambda r: r[:1])
    assert w == 230


def test_default_floor_is_the_lower_solves_precision():
    # solve(w) = [1, 10^-(w + 3)]: entry 1 is below 10^-w_lo of the largest at every pair, so the
    # first pair agrees; with a fixed floor of 10^-(w_lo + 10) it never does.
    def solve(w):
        ctx = context(w)
        return [ctx.mpf(1), ctx.mpf(10) ** (-(w + 3))]

    assert until_stable(solve, 15, agree_digits=10, max_dps=100)[1] == 45
    with pytest.raises(UnstableSolve) as info:
        until_stable(solve, 15, agree_digits=10, floor_digits=60, max_dps=100)
    assert info.value.dps == 45  # 15, 45; the next (105) is over max_dps


def test_gives_up_and_says_where():
    def drifting(w):  # a different answer at every precision
        return [context(w).mpf(w)]

    with pytest.raises(UnstableSolve, match="did not stabilize up to 230 digits") as info:
        until_stable(drifting, 20, agree_digits=5, max_dps=300)  # 20, 50, 110, 230; then 470 > 300
    assert isinstance(info.value, ValueError) and info.value.dps == 230


@given(start=st.integers(5, 60), agree=st.integers(1, 40), rate=st.integers(2, 4))
def test_stops_at_the_first_pair_that_meets_the_rule(start, agree, rate):
    """Against the rule evaluated in exact rationals on entry 0, ``1 + 2 10^-(w // rate)``: the loop
    stops at the first schedule pair (w0, w1) that meets it.  ``rate >= 2`` keeps the value exact
    to far more than the margins (it has w // rate + 1 <= w digits); the factor 2 keeps every
    comparison away from a tie (2 10^-k is never within 10^-k1 relative of 10^-agree)."""
    calls: list = []
    _, w = until_stable(converging(rate, calls, 2), start, agree_digits=agree, max_dps=100_000,
                        values=lambda r: r[:1])

    def meets(w0, w1):
        a, b = 1 + Fraction(2, 10 ** (w0 // rate)), 1 + Fraction(2, 10 ** (w1 // rate))
        return abs(a - b) <= Fraction(1, 10**agree) * b + Fraction(1, 10**w0) * b

    schedule, step = [start], 30
    while not meets(schedule[-2], schedule[-1]) if len(schedule) > 1 else True:
        schedule.append(schedule[-1] + step)
        step *= 2
    assert calls == schedule and w == schedule[-1]
