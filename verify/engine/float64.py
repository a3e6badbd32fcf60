"""Where float64 ends: checks that a specification, and a computed lag Gram, fit in float64.

The exact side (:mod:`theory`) works with exact rationals of any size; the finite-width side
computes in float64 (largest finite value about 1.8e308).  :func:`float64_spec` decides from the
exact specification alone, before any work, whether a float64 computation would overflow (its
scales, the NTK factor of each group, the closed-form lag weights ``beta_l`` and, for the
comparisons, their squares); :func:`finite_lag_gram` checks a computed lag Gram.  Both raise
:class:`verify.internal.errors.OutOfRange` with one line naming the field or the lag.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Dict, Optional, Tuple

import numpy as np

from theory.spec import RNNSpec, SpecError, short_text
from theory.weights import markov_coefficients
from verify.internal.errors import OutOfRange

__all__ = ["LOG10_MAX", "float64_spec", "finite_lag_gram"]

#: float64 range: log10 of the largest finite double.
LOG10_MAX = math.log10(np.finfo(np.float64).max)


def _log10(q: Fraction) -> float:
    """log10 of a positive rational (any size)."""
    return math.log10(q.numerator) - math.log10(q.denominator)


def _scale_text(spec: RNNSpec, name: str) -> str:
    v = getattr(spec, name)
    return "none" if v is None else short_text(v)


def float64_spec(spec: RNNSpec, lags: Optional[int] = None, *, width: Optional[int] = None,
                 squares: bool = True) -> None:
    """Raise :class:`OutOfRange` naming the field when a float64 computation of ``spec`` would overflow.

    Checked: every scale and learning rate as a float64; the NTK factor of each group
    (:func:`verify.engine.ntk.group_scales`: ``s_g^2 lr_g / fan-in`` for the ntk metric) at
    ``width``; the closed-form weights ``beta_l`` (``l < lags``), bounded by their two parts
    ``a r^m`` and ``b m r^(m-1)`` (:func:`theory.weights.markov_coefficients`).  With
    ``squares`` (the comparisons of the finite-width side take Frobenius norms, sums of
    ``(L n_x n_y)^2`` squared entries of size ``beta``), ``beta_l^2 (L n_x n_y)^2`` must fit too.
    """
    names = ["sigma_w", "sigma_f", "sigma_c", "lr_w", "lr_f", "lr_c"] + (["sigma_d", "lr_d"] if spec.has_d else [])
    for name in names:
        try:
            spec.float64(name)
        except SpecError as exc:
            raise OutOfRange(f"--{name.replace('_', '-')}: {exc}") from None
    fan = {"W": width or 1, "C": width or 1, "F": spec.n_x, "D": spec.n_x}
    for g in spec.groups:
        lr = spec.lr(g)
        if not lr:
            continue
        sig = spec.sigma(g)
        factor = (sig**2 if spec.metric == "ntk" else Fraction(1)) * lr / fan[g]
        if factor and _log10(factor) > LOG10_MAX:
            raise OutOfRange(
                f"--sigma-{g.lower()} {_scale_text(spec, 'sigma_' + g.lower())}: the NTK factor of group {g}, "
                f"s_{g}^2 lr_{g.lower()} / fan-in = 10^{_log10(factor):.1f}, overflows float64 (max 1.8e308)")
    if lags is None:
        return
    coef = markov_coefficients(spec)
    M = lags if spec.convention == "conv1" else max(lags - 1, 0)
    r = coef.r
    A = Fraction(sum(coef.a.values()))
    B = Fraction(sum(coef.b.values()))
    worst = (-math.inf, 0, "")
    if M >= 1 and r > 0:
        lr_ = _log10(r)
        if A > 0:
            m = 0 if lr_ <= 0 else M - 1
            worst = max(worst, (_log10(A) + m * lr_, m, "A"))
        if B > 0 and M >= 2:
            cands = {1, M - 1}
            if lr_ < 0:
                cands.add(min(max(1, round(-1 / (lr_ * math.log(10)))), M - 1))
            for m in cands:
                worst = max(worst, (_log10(B) + math.log10(m) + (m - 1) * lr_, m, "B"))
    elif M >= 1 and A > 0:
        worst = (_log10(A), 0, "A")
    if coef.d:
        worst = max(worst, (_log10(coef.d), 0, "D"))
    level, m, part = worst
    top = LOG10_MAX - math.log10(2)
    if squares:
        top = (LOG10_MAX - 2 * math.log10(lags * spec.n_x * spec.n_y)) / 2 - 1
    if level <= top:
        return
    why = ("overflows float64 (max 1.8e308)" if level + math.log10(2) > LOG10_MAX else
           f"is too large for the float64 comparison: the Frobenius norms square it (beta_l must stay below "
           f"about 10^{top:.0f} here)")
    lag = m + (0 if spec.convention == "conv1" else 1)
    if part == "D":
        raise OutOfRange(f"--sigma-d {_scale_text(spec, 'sigma_d')}: the lag-0 weight beta_0 = 10^{level:.1f} {why}")
    # which factor drives it: the power of r = s_W^2, or the coefficient (s_C, s_F, learning rates)
    coef_log = _log10(A if part == "A" else B)
    if coef_log > top - 1 or m == 0:
        big = [n for n in ("sigma_c", "sigma_f", "sigma_w", "lr_c", "lr_f", "lr_w")
               if getattr(spec, n) and _log10(getattr(spec, n)) > 0]
        big.sort(key=lambda n: -_log10(getattr(spec, n)))
        who = ", ".join(f"--{n.replace('_', '-')} {_scale_text(spec, n)}" for n in big[:2]) or "the scales"
        raise OutOfRange(f"{who}: the closed-form lag weight beta_{lag} = 10^{level:.1f} {why}; use smaller scales "
                         "or the exact side (python -m verify weights)")
    raise OutOfRange(f"--sigma-w {_scale_text(spec, 'sigma_w')} with --lags {lags}: the closed-form lag weight "
                     f"beta_{lag} = 10^{level:.1f} {why} (the factor s_W^(2l) grows with the lag); use fewer lags or "
                     "the exact side (python -m verify weights)")


def finite_lag_gram(shares: Dict[str, np.ndarray], where: str) -> None:
    """Raise :class:`OutOfRange` naming the share and the first lag when a lag Gram is not finite.

    ``shares``: group -> array ``(L, n_y, n_x, L, n_y, n_x)`` (:attr:`verify.engine.ntk.LagGram.shares`).
    Weights near the float64 limit make ``C W^l F`` (and the Gram of the Krylov vectors
    ``W^l f_i``, ``(W^T)^l c_a``) overflow: the lag Gram is then NaN or infinite, never a result.
    """
    first: Optional[Tuple[int, str]] = None
    for g, arr in shares.items():
        a = np.asarray(arr, dtype=np.float64)
        bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
        if bad.any():
            lag = int(np.argmax(bad))
            first = min(first, (lag, g)) if first else (lag, g)
    if first is None:
        total = np.sum([np.asarray(v, dtype=np.float64) for v in shares.values()], axis=0)
        if np.all(np.isfinite(total)):
            return
        first = (int(np.argmax(~np.isfinite(total.reshape(total.shape[0], -1)).all(axis=1))), "total")
    lag, g = first
    what = "the total" if g == "total" else f"the {g} share"
    raise OutOfRange(f"{where}: the lag Gram overflows float64 ({what} is not finite from lag {lag} on: the products "
                     "C W^l F of these weights exceed 1.8e308); use fewer --lags or rescale the weights")
