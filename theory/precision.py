"""Local arbitrary-precision contexts and exact conversions.

Every computation of the exact side runs in a *local* ``mpmath`` context made
here: the global ``mpmath.mp`` is never touched.  ``interval=True`` gives an
interval context (mpmath's ``iv`` arithmetic) whose results are rigorous
enclosures.
"""
from __future__ import annotations

from contextlib import contextmanager
from fractions import Fraction
from typing import Iterator, Union

import mpmath
from mpmath import libmp
from mpmath.ctx_iv import MPIntervalContext

__all__ = ["context", "exact", "guarded", "MIN_DPS", "MAX_DPS", "check_dps"]

MIN_DPS = 5
MAX_DPS = 100_000

Context = Union[mpmath.MPContext, MPIntervalContext]


def check_dps(dps: int) -> int:
    """Validate a number of decimal digits."""
    if isinstance(dps, bool) or not isinstance(dps, int):
        raise ValueError(f"dps must be an integer, got {dps!r}")
    if not MIN_DPS <= dps <= MAX_DPS:
        raise ValueError(f"dps must be between {MIN_DPS} and {MAX_DPS}, got {dps}")
    return dps


def context(dps: int, interval: bool = False) -> Context:
    """A fresh local context working with ``dps`` decimal digits."""
    ctx = MPIntervalContext() if interval else mpmath.MPContext()
    ctx.dps = check_dps(dps)
    return ctx


def exact(ctx: Context, value: Union[Fraction, int]):
    """``value`` in ``ctx``: correctly rounded (mp) or an enclosing interval (iv)."""
    value = Fraction(value)
    if isinstance(ctx, MPIntervalContext):
        return ctx.mpf(value.numerator) / ctx.mpf(value.denominator)
    return ctx.make_mpf(
        libmp.from_rational(value.numerator, value.denominator, ctx.prec, libmp.round_nearest)
    )


@contextmanager
def guarded(ctx: Context, bits: int) -> Iterator[None]:
    """Temporarily raise the working precision of the local ``ctx`` by ``bits``."""
    old = ctx.prec
    ctx.prec = old + bits
    try:
        yield
    finally:
        ctx.prec = old
