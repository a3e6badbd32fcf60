"""Local arbitrary-precision contexts and exact conversions.

Every computation of the exact side runs in a *local* ``mpmath`` context made
here: the global ``mpmath.mp`` is never touched.  ``interval=True`` gives an
interval context (mpmath's ``iv`` arithmetic) whose results are rigorous
enclosures.
"""
from __future__ import annotations

from contextlib import contextmanager
from fractions import Fraction
from typing import Any, Callable, Iterable, Iterator, Optional, Tuple, TypeVar, Union

import mpmath
from mpmath import libmp
from mpmath.ctx_iv import MPIntervalContext

__all__ = ["context", "exact", "guarded", "until_stable", "UnstableSolve", "MIN_DPS", "MAX_DPS", "check_dps"]

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


R = TypeVar("R")


class UnstableSolve(ValueError):
    """Two consecutive solves of :func:`until_stable` never agreed; ``dps`` is the last working precision."""

    def __init__(self, dps: int):
        super().__init__(f"the solve did not stabilize up to {dps} digits")
        self.dps = dps


def until_stable(solve: Callable[[int], R], dps: int, *, agree_digits: int, max_dps: int, step: int = 30,
                 floor_digits: Optional[int] = None, values: Optional[Callable[[R], Iterable]] = None
                 ) -> Tuple[R, int]:
    """Solve at rising working precision until two consecutive solves agree; return the last and its precision.

    ``solve(w)`` computes at ``w`` decimal digits; ``values(result)`` lists the
    numbers compared (mpmath numbers, in the same order each time; default: the
    result itself).  Working
    precisions: ``w_0 = dps`` and ``w_(k+1) = w_k + step 2^k`` (``step``, ``3 step``,
    ``7 step``, ... above ``w_0``), none above ``max_dps``.

    Stopping rule: stop at the first ``k >= 1`` at which every pair ``a`` (of
    ``solve(w_(k-1))``) and ``b`` (of ``solve(w_k)``) satisfies

        |a - b| <= 10^-agree_digits |b| + 10^-f max|b|,    f = floor_digits (default w_(k-1)),

    evaluated at ``w_(k-1)`` digits: the two solves agree to ``agree_digits``
    significant digits entry by entry, and entries below ``10^-f`` times the
    largest are held to that absolute level (by default the lower solve's own
    resolution; a caller whose exact answer can have zeros that rounding makes
    tiny passes a fixed ``f``).  Returns ``(solve(w_k), w_k)``.  Raises :class:`UnstableSolve`
    when the next precision would exceed ``max_dps`` (or :data:`MAX_DPS`).

    >>> def third(w):
    ...     return [context(w).mpf(1) / 3]
    >>> result, w = until_stable(third, 20, agree_digits=15, max_dps=200)
    >>> w, mpmath.nstr(result[0], 15)
    (50, '0.333333333333333')
    """
    pick: Callable[[Any], Iterable] = _itself if values is None else values
    wp = check_dps(dps)
    cap = min(int(max_dps), MAX_DPS)
    lo = solve(wp)
    while wp + step <= cap:
        hi = solve(wp + step)
        if _agree(list(pick(lo)), list(pick(hi)), agree_digits, wp if floor_digits is None else floor_digits, wp):
            return hi, wp + step
        lo, wp, step = hi, wp + step, 2 * step
    raise UnstableSolve(wp)


def _itself(result: Any) -> Iterable:
    return result


def _agree(lo: list, hi: list, agree_digits: int, floor_digits: int, wp: int) -> bool:
    """The stopping rule of :func:`until_stable` for one pair of solves, at ``wp`` digits."""
    ctx = context(wp)
    floor = ctx.mpf(10) ** (-floor_digits) * max((abs(v) for v in hi), default=ctx.mpf(0))
    tol = ctx.mpf(10) ** (-agree_digits)
    return all(abs(a - b) <= tol * abs(b) + floor for a, b in zip(lo, hi))
