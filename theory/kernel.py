"""The weighted-convolution kernels between batches of sequences, exactly.

For inputs ``X`` of shape ``(B, T, n_x)`` and ``X'`` of shape ``(B', T', n_x)``
the wide-limit NTK between output ``(b, t, a)`` and ``(b', t', c)`` is

    K = delta_ac * sum_(l=0)^(min(t, t')) beta_l <x_(b, t-l), x'_(b', t'-l)> / n_x

(docs/theory.md, section "The kernel") and the NNGP covariance of the initial
network is the same with ``gamma_l`` (:func:`theory.weights.nngp_lag_variances`)
in place of ``beta_l``.

Exactness: inputs are converted to exact rationals (a float is its binary
value), the weights are mpmath numbers at ``dps + 10`` digits (exact dyadic
rationals), the contraction is done in exact integer arithmetic, and each
entry is rounded once to ``dps`` digits.  The only error beyond that final
rounding comes from the weights' own rounding: at most
``2^-(prec+33) * sum_l beta_l |<x_(t-l), x'_(t'-l)>| / n_x`` per entry.
"""
from __future__ import annotations

from fractions import Fraction
from math import lcm
from typing import Sequence, Tuple

import numpy as np
from mpmath import libmp

from theory.precision import context
from theory.spec import RNNSpec, SpecError
from theory.weights import lag_weights, nngp_lag_variances

__all__ = ["conv_kernel", "conv_ntk", "nngp", "expand_outputs", "to_fraction", "integerize"]


def to_fraction(v) -> Fraction:
    """Exact rational value of an int, Fraction, float or (real) mpmath number."""
    if hasattr(v, "_mpf_"):
        sign, man, exp, _ = v._mpf_
        if not man:
            if exp:  # mpmath encodes inf and nan with a zero mantissa and a nonzero exponent
                raise SpecError(f"not a finite number: {v}")
            return Fraction(0)
        value = Fraction(man) * Fraction(2) ** exp
        return -value if sign else value
    if isinstance(v, str):
        raise TypeError("strings are not accepted as input values")
    return Fraction(v)


def _round_rational(num: int, den: int, prec: int):
    """``num/den`` correctly rounded to ``prec`` bits (nearest), as an mpf tuple.

    Integer division to ``prec + 3`` bits plus a sticky bit for the remainder,
    then one rounding: equivalent to ``libmp.from_rational`` and much faster for
    the large integers that exact contractions produce.
    """
    if num == 0:
        return libmp.fzero
    sign = num < 0
    num = -num if sign else num
    shift = num.bit_length() - den.bit_length() - (prec + 3)
    if shift >= 0:
        q, rem = divmod(num, den << shift)
    else:
        q, rem = divmod(num << -shift, den)
    q = (q << 1) | (rem != 0)
    return libmp.from_man_exp(-q if sign else q, shift - 1, prec, libmp.round_nearest)


def _as_rational_batch(X, name: str, n_x: "int | None") -> np.ndarray:
    """Object array (B, T, n_x) of exact Fractions; validates shape and finiteness."""
    arr = np.asarray(X, dtype=object) if not isinstance(X, np.ndarray) else X
    if arr.ndim != 3:
        raise SpecError(f"{name} must have shape (B, T, n_x), got an array with {arr.ndim} dimension(s)")
    if 0 in arr.shape:
        raise SpecError(f"{name} must be non-empty, got shape {arr.shape}")
    if n_x is not None and arr.shape[2] != n_x:
        raise SpecError(f"{name} has n_x = {arr.shape[2]}, the specification says n_x = {n_x}")
    out = np.empty(arr.shape, dtype=object)
    flat_in, flat_out = arr.reshape(-1), out.reshape(-1)
    for k, v in enumerate(flat_in):
        try:
            if isinstance(v, (float, np.floating)):
                if not np.isfinite(v):
                    raise SpecError(f"{name} contains a non-finite value ({float(v)!r})")
                flat_out[k] = Fraction(float(v))
            else:
                flat_out[k] = to_fraction(v)
        except (TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, SpecError):
                raise
            raise SpecError(f"{name} contains a value that is not a finite number ({v!r})") from None
    return out


def integerize(frac: np.ndarray) -> Tuple[np.ndarray, int]:
    """(integer object array, common denominator) with ``frac = ints / den`` exactly (``frac``: Fractions)."""
    den = 1
    for v in frac.reshape(-1):
        den = lcm(den, v.denominator)
    ints = np.empty(frac.shape, dtype=object)
    fi, ff = ints.reshape(-1), frac.reshape(-1)
    for k, v in enumerate(ff):
        fi[k] = v.numerator * (den // v.denominator)
    return ints, den


def _lagged(ints: np.ndarray, lags: int) -> np.ndarray:
    """Phi[b, t, l, i] = x[b, t-l, i] (0 when t < l): shape (B, T, lags, n_x)."""
    B, T, n_x = ints.shape
    out = np.zeros((B, T, lags, n_x), dtype=object)
    out[...] = 0
    for l in range(min(lags, T)):
        out[:, l:, l, :] = ints[:, : T - l, :]
    return out


def conv_kernel(weights: Sequence, X, Xp, *, dps: int = 30) -> np.ndarray:
    """``k[b, t, b', t'] = sum_l w_l <x_(b,t-l), x'_(b',t'-l)> / n_x`` as mpf objects.

    ``weights`` are mpmath numbers (or exact rationals); at least ``min(T, T')``
    of them are needed.  Returns an object array of shape ``(B, T, B', T')``.
    """
    Xf = _as_rational_batch(X, "X", None)
    Xpf = _as_rational_batch(Xp, "X'", Xf.shape[2])
    B, T, n_x = Xf.shape
    Bp, Tp, _ = Xpf.shape
    lags = min(T, Tp)
    if len(weights) < lags:
        raise SpecError(f"need {lags} lag weights, got {len(weights)}")
    # weights -> integers over a common power-of-two (or rational) denominator
    wf = np.empty(lags, dtype=object)
    for l in range(lags):
        wf[l] = to_fraction(weights[l])
    wi, wden = integerize(wf.reshape(1, 1, -1))
    xi, xden = integerize(Xf)
    xpi, xpden = integerize(Xpf)
    phi = _lagged(xi, lags) * wi.reshape(1, 1, lags, 1)
    phip = _lagged(xpi, lags)
    left = phi.reshape(B * T, lags * n_x)
    right = phip.reshape(Bp * Tp, lags * n_x).T
    prod = left.dot(right)  # exact Python-int matrix product
    den = wden * xden * xpden * n_x
    ctx = context(dps)
    prec = ctx.prec
    out = np.empty(prod.shape, dtype=object)
    if den & (den - 1) == 0:  # a power of two (dyadic inputs, n_x a power of two): one rounding, no division
        shift = -(den.bit_length() - 1)
        to_mpf = lambda num: ctx.make_mpf(libmp.from_man_exp(num, shift, prec, libmp.round_nearest))
    else:
        to_mpf = lambda num: ctx.make_mpf(_round_rational(num, den, prec))
    rows, cols = prod.shape
    symmetric = Xp is X or (Xf.shape == Xpf.shape and (Xf == Xpf).all())
    for i in range(rows):
        pi, oi = prod[i], out[i]
        for j in range(i if symmetric else 0, cols):
            oi[j] = to_mpf(int(pi[j]))
    if symmetric:  # K(X, X) is symmetric: mirror the upper triangle (same exact value, same rounding)
        for i in range(rows):
            out[i, :i] = out[:i, i]
    return out.reshape(B, T, Bp, Tp)


def expand_outputs(k: np.ndarray, n_y: int) -> np.ndarray:
    """``K[b, t, a, b', t', c] = delta_ac k[b, t, b', t']``: shape (B, T, n_y, B', T', n_y)."""
    B, T, Bp, Tp = k.shape
    out = np.empty((B, T, n_y, Bp, Tp, n_y), dtype=object)
    zero = k.reshape(-1)[0] * 0
    out[...] = zero
    for a in range(n_y):
        out[:, :, a, :, :, a] = k
    return out


def _kernel(weight_fn, spec: RNNSpec, X, Xp, dps: int, full: bool) -> np.ndarray:
    _check_nx(spec, X, Xp)
    lags = min(np.shape(X)[1], np.shape(Xp)[1])
    w = weight_fn(spec, max(lags, 1), dps=dps + 10)
    k = conv_kernel(w, X, Xp, dps=dps)
    return expand_outputs(k, spec.n_y) if full else k


def _check_nx(spec: RNNSpec, X, Xp) -> None:
    for name, arr in (("X", X), ("X'", Xp)):
        if np.ndim(arr) != 3:
            raise SpecError(f"{name} must have shape (B, T, n_x), got {np.ndim(arr)} dimension(s)")
        if np.shape(arr)[2] != spec.n_x:
            raise SpecError(f"{name} has n_x = {np.shape(arr)[2]}, the specification says n_x = {spec.n_x}")


def conv_ntk(spec: RNNSpec, X, Xp=None, *, dps: int = 30, full: bool = True) -> np.ndarray:
    """Wide-limit NTK between two batches, exact to ``dps`` digits: the NTK of the
    convolution with per-lag learning rates ``beta_l``.

    ``full=True``: shape ``(B, T, n_y, B', T', n_y)`` over all output times and
    coordinates; ``full=False``: the scalar kernel ``(B, T, B', T')`` that
    multiplies ``delta_ac``.  ``Xp=None`` means ``Xp = X``.
    """
    return _kernel(lag_weights, spec, X, X if Xp is None else Xp, dps, full)


def nngp(spec: RNNSpec, X, Xp=None, *, dps: int = 30, full: bool = True) -> np.ndarray:
    """Limit covariance of the initial network's outputs (same layout as :func:`conv_ntk`)."""
    return _kernel(nngp_lag_variances, spec, X, X if Xp is None else Xp, dps, full)


#: Deprecated name of :func:`conv_ntk` (it read like the module :mod:`verify.engine.ntk`).
ntk = conv_ntk
