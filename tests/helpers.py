"""Helpers shared by the tests: exact values of mpmath numbers, and hypothesis strategies of
exact decimals and of specifications.

Imported as ``from helpers import ...`` (pytest puts ``tests/`` on the path).
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Dict, Optional, Union

from hypothesis import strategies as st
from mpmath.libmp import to_rational

from theory.precision import context
from theory.spec import CONVENTIONS, METRICS, RNNSpec

__all__ = ["frac", "ulp", "decimals", "SIGMA_W", "SIGMA", "LRS", "specs"]


def frac(v) -> Fraction:
    """The exact rational value of an mpmath number (or of a raw ``_mpf_`` tuple, e.g. an interval endpoint).

    >>> from mpmath import mpf
    >>> frac(mpf("0.75")), frac(mpf(1) / 3) == Fraction(1, 3)
    (Fraction(3, 4), False)
    """
    raw = v if isinstance(v, tuple) else v._mpf_
    p, q = to_rational(raw)
    return Fraction(p, q)


@lru_cache(maxsize=None)
def ulp(dps: int) -> Fraction:
    """Relative rounding bound ``2^(1-prec)`` of a ``dps``-digit mpmath number."""
    return Fraction(2, 2 ** context(dps).prec)


def decimals(lo: str, hi: str, places: int = 3) -> st.SearchStrategy:
    """Exact decimal rationals in ``[lo, hi]`` with ``places`` decimals (the command line's input form)."""
    scale = 10**places
    return st.integers(int(Fraction(lo) * scale), int(Fraction(hi) * scale)).map(lambda k: Fraction(k, scale))


SIGMA_W = decimals("0.05", "1.5")
SIGMA = decimals("0.05", "2")
#: Learning-rate multipliers: the special values 0 (frozen), 1/2, 1, 3 and two-place decimals up to 4.
LRS = st.sampled_from([Fraction(0), Fraction(1, 2), Fraction(1), Fraction(3)]) | decimals("0", "4", 2)
ONE = st.just(1)


@st.composite
def specs(
    draw,
    *,
    sigma_w: st.SearchStrategy = SIGMA_W,
    sigma: st.SearchStrategy = SIGMA,
    d: Optional[bool] = None,
    metric: Optional[str] = None,
    convention: Optional[str] = None,
    lr: Union[None, st.SearchStrategy, Dict[str, st.SearchStrategy]] = LRS,
    n_x: st.SearchStrategy = ONE,
    n_y: st.SearchStrategy = ONE,
) -> RNNSpec:
    """Specifications: ``sigma_w`` for s_W, ``sigma`` for s_F, s_C and s_D; ``d`` True/False
    forces a D term in or out (None: drawn); ``metric``/``convention`` fixed or drawn; ``lr``: one
    strategy for all four multipliers, a dict ``{"w": ..., "f": ...}`` for some (the others 1), or
    None (all 1); ``n_x``, ``n_y`` strategies (default 1)."""
    has_d = draw(st.booleans()) if d is None else d
    fields = dict(
        sigma_w=draw(sigma_w), sigma_f=draw(sigma), sigma_c=draw(sigma), sigma_d=draw(sigma) if has_d else None,
        n_x=draw(n_x), n_y=draw(n_y),
        metric=draw(st.sampled_from(METRICS)) if metric is None else metric,
        convention=draw(st.sampled_from(CONVENTIONS)) if convention is None else convention,
    )
    per_group = {} if lr is None else lr if isinstance(lr, dict) else dict.fromkeys("wfcd", lr)
    for g in "wfcd":
        fields["lr_" + g] = draw(per_group[g]) if g in per_group else 1
    return RNNSpec(**fields)
