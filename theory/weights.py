"""Lag weights beta_l of the weighted-convolution limit, exactly.

Per Markov parameter ``M_m = C W^m F`` the wide-limit NTK weight of each trained
group has the form ``a_g r^m + b_g m r^(m-1)`` with ``r = s_W^2``
(docs/theory.md, section "Lag weights and group shares"):

=====  ======================  ======================  ==========================
group  metric "variance"       metric "ntk"            metric "standard" (NTK/n)
=====  ======================  ======================  ==========================
C      s_F^2 r^m               s_C^2 s_F^2 r^m         s_F^2 r^m
F      s_C^2 r^m               s_C^2 s_F^2 r^m         0
W      m s_C^2 s_F^2 r^(m-1)   m s_C^2 s_F^2 r^m       m s_C^2 s_F^2 r^(m-1)
D      1 (lag 0 only)          s_D^2 (lag 0 only)      0
=====  ======================  ======================  ==========================

each multiplied by the group's learning-rate multiplier.  Lags map to Markov
indices by the convention: ``conv1``: ``beta_l = g_l`` plus the D share at
``l = 0``; ``conv2``: ``beta_0`` = D share, ``beta_l = g_(l-1)``.
The NTK between outputs is ``delta_ab sum_l beta_l <x_(t-l), x'_(t'-l)> / n_x``.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Dict, List, NamedTuple

from theory.precision import Context, context, exact, guarded
from theory.spec import RNNSpec, SpecError

__all__ = [
    "MarkovCoefficients",
    "markov_coefficients",
    "lag_shares",
    "lag_weights",
    "nngp_lag_variances",
    "check_lags",
    "check_guard_digits",
    "MAX_GUARD_DIGITS",
]


class MarkovCoefficients(NamedTuple):
    """Exact rationals with ``share_g(m) = a[g] r^m + b[g] m r^(m-1)``, ``r = s_W^2``.

    ``d`` is the D share (lag 0 in conv1, lag 0 in conv2 as well) or ``None``
    when the model has no D.
    """

    r: Fraction
    a: Dict[str, Fraction]
    b: Dict[str, Fraction]
    d: "Fraction | None"


#: Most guard digits a caller may add above a requested ``dps`` (see :func:`lag_weights`).
MAX_GUARD_DIGITS = 100


def check_guard_digits(guard_digits: int) -> int:
    """Validate a number of guard digits (an integer in ``0..MAX_GUARD_DIGITS``)."""
    if isinstance(guard_digits, bool) or not isinstance(guard_digits, int):
        raise SpecError(f"guard_digits must be an integer, got {guard_digits!r}")
    if not 0 <= guard_digits <= MAX_GUARD_DIGITS:
        raise SpecError(f"guard_digits must be between 0 and {MAX_GUARD_DIGITS}, got {guard_digits}")
    return guard_digits


def _context(dps: int, interval: bool, guard_digits: int) -> Context:
    """A context at ``dps + guard_digits`` digits: ``dps`` is checked against the documented
    range (:func:`theory.precision.check_dps`), the guard digits separately."""
    ctx = context(dps, interval)
    extra = check_guard_digits(guard_digits)
    if extra:
        ctx.dps = dps + extra
    return ctx


def check_lags(lags: int) -> int:
    """Validate a number of lags (a positive integer)."""
    if isinstance(lags, bool) or not isinstance(lags, int):
        raise SpecError(f"lags must be a positive integer, got {lags!r}")
    if lags < 1:
        raise SpecError(f"lags must be a positive integer, got {lags}")
    return lags


def markov_coefficients(spec: RNNSpec) -> MarkovCoefficients:
    """The table above, as exact rationals, learning-rate multipliers included."""
    r = spec.sigma_w**2
    f2, c2 = spec.sigma_f**2, spec.sigma_c**2
    zero = Fraction(0)
    if spec.metric == "ntk":
        a = {"C": c2 * f2, "F": c2 * f2, "W": zero}
        b = {"C": zero, "F": zero, "W": c2 * f2 * r}
        d = spec.sigma("D") ** 2 if spec.has_d else None
    elif spec.metric == "variance":
        a = {"C": f2, "F": c2, "W": zero}
        b = {"C": zero, "F": zero, "W": c2 * f2}
        d = Fraction(1) if spec.has_d else None
    else:  # standard, NTK divided by n
        a = {"C": f2, "F": zero, "W": zero}
        b = {"C": zero, "F": zero, "W": c2 * f2}
        d = Fraction(0) if spec.has_d else None
    a = {g: spec.lr(g) * v for g, v in a.items()}
    b = {g: spec.lr(g) * v for g, v in b.items()}
    if d is not None:
        d = spec.lr("D") * d
    return MarkovCoefficients(r, a, b, d)


def _powers(ctx: Context, r, count: int) -> List:
    """``[r^0, ..., r^(count-1)]`` by repeated multiplication (caller adds guard bits)."""
    out = [ctx.mpf(1)]
    for _ in range(count - 1):
        out.append(out[-1] * r)
    return out


def _markov_shares_ctx(spec: RNNSpec, count: int, ctx: Context) -> Dict[str, List]:
    """Per-group shares of Markov parameters m = 0..count-1 in ``ctx`` (no D)."""
    coef = markov_coefficients(spec)
    r = exact(ctx, coef.r)
    pw = _powers(ctx, r, count)
    shares = {}
    for g in ("C", "F", "W"):
        a, b = exact(ctx, coef.a[g]), exact(ctx, coef.b[g])
        vals = []
        for m in range(count):
            v = a * pw[m]
            if coef.b[g] and m:
                v = v + b * m * pw[m - 1]
            vals.append(v)
        shares[g] = vals
    return shares


def _lag_shares_ctx(spec: RNNSpec, lags: int, ctx: Context) -> Dict[str, List]:
    """Per-group lag shares beta_l^g, l = 0..lags-1, in ``ctx`` at its precision."""
    check_lags(lags)
    coef = markov_coefficients(spec)
    # Guard bits cover the lags-1 roundings of the repeated multiplication.
    with guarded(ctx, 16 + lags.bit_length()):
        markov = _markov_shares_ctx(spec, lags, ctx)
        zero = ctx.mpf(0)
        shares: Dict[str, List] = {}
        for g in ("C", "F", "W"):
            m = markov[g]
            shares[g] = m[:lags] if spec.convention == "conv1" else [zero] + m[: lags - 1]
        if coef.d is not None:
            shares["D"] = [exact(ctx, coef.d)] + [zero] * (lags - 1)
    # round back to the requested precision (outward for intervals)
    return {g: [+v for v in vals] for g, vals in shares.items()}


def lag_shares(spec: RNNSpec, lags: int, *, dps: int = 50, interval: bool = False,
               guard_digits: int = 0) -> Dict[str, List]:
    """Per-group lag weights ``{"C": [...], "F": [...], "W": [...], "D": [...]}``.

    Values are mpmath numbers with ``dps`` digits (``interval=True``: rigorous
    enclosures), or ``dps + guard_digits`` (see :func:`lag_weights`).  ``D`` is present
    only when the model has a D.

    >>> s = lag_shares(RNNSpec(sigma_w="0.5"), 3, dps=15)
    >>> [str(v) for v in s["W"]]
    ['0.0', '0.25', '0.125']
    """
    return _lag_shares_ctx(spec, lags, _context(dps, interval, guard_digits))


def _total(shares: Dict[str, List]) -> List:
    groups = list(shares)
    return [sum((shares[g][l] for g in groups[1:]), shares[groups[0]][l]) for l in range(len(shares[groups[0]]))]


def lag_weights(spec: RNNSpec, lags: int, *, dps: int = 50, interval: bool = False,
                guard_digits: int = 0) -> List:
    """Lag weights ``beta_0 .. beta_(lags-1)`` (sum of the group shares).

    Example, metric "ntk", conv1, no D: ``beta_l = (l + 2) s_C^2 s_F^2 s_W^(2l)``.

    ``guard_digits``: the values carry ``dps + guard_digits`` digits.  A caller that prints
    them to ``dps`` decimals needs that margin to round once, correctly (rounding a
    ``dps``-digit binary number to ``dps`` decimals double-rounds).  ``dps`` itself is
    checked against ``theory.precision.MAX_DPS``, the guard digits are not.

    >>> [str(b) for b in lag_weights(RNNSpec(sigma_w="0.5"), 4, dps=15)]
    ['2.0', '0.75', '0.25', '0.078125']
    """
    ctx = _context(dps, interval, guard_digits)
    with guarded(ctx, 8):
        shares = _lag_shares_ctx(spec, lags, ctx)
        total = _total(shares)
    return [+v for v in total]


def nngp_lag_variances(spec: RNNSpec, lags: int, *, dps: int = 50, interval: bool = False) -> List:
    """Limit covariance of the initial impulse response, per lag: ``gamma_l``.

    ``Cov(L_l[a, i], L_l'[b, j]) -> delta_ab delta_ij delta_ll' gamma_l / n_x`` with
    ``gamma_m = s_C^2 s_F^2 s_W^(2m)`` per Markov parameter, mapped by the convention,
    plus ``s_D^2`` at lag 0.  Independent of the metric and learning rates.
    """
    check_lags(lags)
    ctx = context(dps, interval)
    with guarded(ctx, 16 + lags.bit_length()):
        base = exact(ctx, spec.sigma_c**2 * spec.sigma_f**2)
        pw = _powers(ctx, exact(ctx, spec.sigma_w**2), lags)
        markov = [base * p for p in pw]
        out = markov if spec.convention == "conv1" else [ctx.mpf(0)] + markov[: lags - 1]
        if spec.has_d:
            out[0] = out[0] + exact(ctx, spec.sigma("D") ** 2)
    return [+v for v in out]
