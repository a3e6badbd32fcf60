"""Exact wide-limit NTK and NNGP of Elman RNNs with linear, ReLU and erf activations.

Model (``conv1``; ``docs/theory.md``, section "Nonlinear RNNs")::

    z_t = W h_(t-1) + F x_t,   h_t = phi(z_t),   y_t = C h_t + D x_t,   h_(-1) = 0

(``conv2``: ``h_(t+1) = phi(W h_t + F x_t)``, ``h_0 = 0``, so ``y_0 = D x_0`` and
``y_t`` is the conv1 readout of ``h_(t-1)``.)  Metric "ntk": ``W = s_W/sqrt(n) W~``,
``F = s_F/sqrt(n_x) F~``, ``C = s_C/sqrt(n) C~``, ``D = s_D/sqrt(n_x) D~``, tildes
N(0, 1), NTK with respect to the tildes.  With ``P_(t,t') = <x_t, x'_(t')>/n_x``,
``E_(t,t') = E[phi(u) phi(v)]`` and ``Ed_(t,t') = E[phi'(u) phi'(v)]`` for the
centred Gaussian pair ``(u, v)`` with covariance
``[[Sigma_(t,t)(x,x), Sigma_(t,t')], [Sigma_(t,t'), Sigma_(t',t')(x',x')]]``::

    Sigma_(t,t') = s_F^2 P_(t,t') + s_W^2 E_(t-1,t'-1)                      (pre-activations)
    Theta_(t,t') = k_F P_(t,t') + k_W E_(t-1,t'-1) + s_W^2 Ed_(t-1,t'-1) Theta_(t-1,t'-1)
    NTK_(t,t')   = k_C E_(t,t') + s_C^2 Ed_(t,t') Theta_(t,t') + k_D P_(t,t')
    NNGP_(t,t')  = s_C^2 E_(t,t') + s_D^2 P_(t,t')

where every ``(t-1, t'-1)`` term is 0 when ``t = 0`` or ``t' = 0`` (``h_(-1) = 0``).
The metric enters only through the direct-gradient coefficients
``k_G`` (:func:`group_coefficients`): metric "ntk": ``k_G = lr_G s_G^2``;
"variance": ``k_G = lr_G``; "standard" (NTK/n): ``k_C = lr_C``, ``k_W = lr_W``,
``k_F = k_D = 0``.  Both kernels carry ``delta_ab`` over the output coordinates.

Gaussian moments (``a = Var u``, ``b = Var v``, ``c = Cov(u, v)``):

* linear: ``E = c``, ``Ed = 1``;
* ReLU (arc-cosine kernels, ``cos th = c/sqrt(ab)``):
  ``E = (sqrt(ab - c^2) + (pi - th) c)/(2 pi)``, ``Ed = (pi - th)/(2 pi)``; with
  ``a = 0`` or ``b = 0`` (a zero input at ``t = 0``) both are 0 (``relu'(0) = 0``,
  as torch differentiates it);
* erf (arcsine kernels): ``E = (2/pi) asin(2c/sqrt((1+2a)(1+2b)))``,
  ``Ed = (4/pi)/sqrt((1+2a)(1+2b) - 4c^2)``.

Precision.  Inputs are converted exactly (a float is its binary value) and their
Gram ``P`` is formed in integer arithmetic; the recursion runs in a local mpmath
context at ``2 prec + 64`` bits and each result is rounded once to ``dps`` digits.
The doubled precision covers the one ill-conditioned step: ``th = acos(rho)``
near ``rho = 1`` turns an error ``e`` of ``rho`` into ``sqrt(2 e)``.  Not an
interval enclosure; the agreement with :func:`theory.kernel.ntk` (linear case) and
between precisions is tested.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import lcm
from typing import Callable, Dict, List, Tuple

import numpy as np

from theory.precision import Context, check_dps, context, exact, guarded
from theory.spec import RNNSpec, SpecError

__all__ = [
    "ACTIVATIONS",
    "RNNKernels",
    "group_coefficients",
    "gaussian_moments",
    "rnn_kernels",
    "rnn_ntk",
    "rnn_nngp",
]

ACTIVATIONS = ("linear", "relu", "erf")


@dataclass(frozen=True)
class RNNKernels:
    """Wide-limit kernels between two batches as object arrays of mpmath numbers.

    ``full=True``: shape ``(B, T, n_y, B', T', n_y)`` (zero unless the two output
    coordinates agree); ``full=False``: the scalar kernels ``(B, T, B', T')``.
    """

    ntk: np.ndarray
    nngp: np.ndarray
    activation: str
    spec: RNNSpec
    dps: int


# --------------------------------------------------------------------------- coefficients
def group_coefficients(spec: RNNSpec) -> Dict[str, Fraction]:
    """Direct-gradient coefficients ``k_G`` of the metric, learning rates included.

    ``k_G`` multiplies the normalized inner product (``<h, h'>/n`` or
    ``<x, x'>/n_x``) of group G's direct gradient; the backward factors
    ``s_W^2``, ``s_C^2`` belong to the forward weights and stay as they are.

    >>> group_coefficients(RNNSpec(sigma_w="0.5", sigma_c=2, lr_f=3))["F"]
    Fraction(3, 1)
    """
    if spec.metric == "ntk":
        raw = {g: spec.sigma(g) ** 2 for g in ("C", "F", "W", "D")}
    elif spec.metric == "variance":
        raw = {g: Fraction(1) for g in ("C", "F", "W", "D")}
    else:  # standard: NTK / n; the F and D shares vanish like n_x / n
        raw = {"C": Fraction(1), "W": Fraction(1), "F": Fraction(0), "D": Fraction(0)}
    out = {g: spec.lr(g) * raw[g] for g in ("C", "F", "W")}
    out["D"] = spec.lr("D") * raw["D"] if spec.has_d else Fraction(0)
    return out


# --------------------------------------------------------------------------- Gaussian moments
def _moments_linear(ctx: Context, a, b, c):
    return c, ctx.mpf(1)


def _moments_relu(ctx: Context, a, b, c):
    if a <= 0 or b <= 0:
        zero = ctx.mpf(0)
        return zero, zero
    root = ctx.sqrt(a * b)
    rho = c / root
    if rho > 1:
        rho = ctx.mpf(1)
    elif rho < -1:
        rho = ctx.mpf(-1)
    th = ctx.acos(rho)
    gap = a * b - c * c
    sin_part = ctx.sqrt(gap) if gap > 0 else ctx.mpf(0)
    two_pi = 2 * ctx.pi
    rest = ctx.pi - th
    return (sin_part + rest * c) / two_pi, rest / two_pi


def _moments_erf(ctx: Context, a, b, c):
    prod = (1 + 2 * a) * (1 + 2 * b)
    e = 2 / ctx.pi * ctx.asin(2 * c / ctx.sqrt(prod))
    ed = 4 / ctx.pi / ctx.sqrt(prod - 4 * c * c)
    return e, ed


_MOMENTS: Dict[str, Callable] = {"linear": _moments_linear, "relu": _moments_relu, "erf": _moments_erf}


def _check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise SpecError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
    return activation


def gaussian_moments(activation: str, a, b, c, *, dps: int = 30) -> Tuple[object, object]:
    """``(E[phi(u) phi(v)], E[phi'(u) phi'(v)])`` for centred Gaussians with
    ``Var u = a``, ``Var v = b``, ``Cov(u, v) = c`` (exact rationals or floats).

    >>> e, ed = gaussian_moments("relu", 1, 1, 1, dps=15)
    >>> str(e), str(ed)
    ('0.5', '0.5')
    """
    _check_activation(activation)
    ctx = context(check_dps(dps))
    with guarded(ctx, ctx.prec + 64):
        vals = [exact(ctx, Fraction(v)) for v in (a, b, c)]
        if vals[0] < 0 or vals[1] < 0 or vals[2] ** 2 > vals[0] * vals[1]:
            raise SpecError(f"not a covariance: a = {a}, b = {b}, c = {c}")
        e, ed = _MOMENTS[activation](ctx, *vals)
    return +e, +ed


# --------------------------------------------------------------------------- exact inputs
def _rational_batch(X, name: str, n_x: int) -> np.ndarray:
    """Object array (B, T, n_x) of exact Fractions (floats by their binary value)."""
    arr = X if isinstance(X, np.ndarray) else np.asarray(X, dtype=object)
    if arr.ndim != 3:
        raise SpecError(f"{name} must have shape (B, T, n_x), got an array with {arr.ndim} dimension(s)")
    if 0 in arr.shape:
        raise SpecError(f"{name} must be non-empty, got shape {arr.shape}")
    if arr.shape[2] != n_x:
        raise SpecError(f"{name} has n_x = {arr.shape[2]}, the specification says n_x = {n_x}")
    if arr.dtype.kind == "c" or arr.dtype.kind in "SUV":
        raise SpecError(f"{name} must be real-valued, got dtype {arr.dtype}")
    out = np.empty(arr.shape, dtype=object)
    flat_in, flat_out = arr.reshape(-1), out.reshape(-1)
    for k, v in enumerate(flat_in):
        flat_out[k] = _fraction(v, name)
    return out


def _fraction(v, name: str) -> Fraction:
    if hasattr(v, "_mpf_"):
        sign, man, exp, _ = v._mpf_
        if not man:
            if exp:
                raise SpecError(f"{name} contains a non-finite value ({v})")
            return Fraction(0)
        frac = Fraction(man) * Fraction(2) ** exp
        return -frac if sign else frac
    if isinstance(v, (bool, np.bool_, str, bytes)) or v is None:
        raise SpecError(f"{name} contains a value that is not a number ({v!r})")
    if isinstance(v, (float, np.floating)) and not np.isfinite(v):
        raise SpecError(f"{name} contains a non-finite value ({float(v)!r})")
    try:
        if isinstance(v, (float, np.floating)):
            return Fraction(float(v))
        if isinstance(v, (int, np.integer)):
            return Fraction(int(v))
        return Fraction(v)
    except (TypeError, ValueError, OverflowError):
        raise SpecError(f"{name} contains a value that is not a finite real number ({v!r})") from None


def _integers(frac: np.ndarray) -> Tuple[np.ndarray, int]:
    """(integer object array, common denominator) with ``frac = ints / den`` exactly."""
    den = 1
    for v in frac.reshape(-1):
        den = lcm(den, v.denominator)
    ints = np.empty(frac.shape, dtype=object)
    for k, v in enumerate(frac.reshape(-1)):
        ints.reshape(-1)[k] = v.numerator * (den // v.denominator)
    return ints, den


def _gram(ctx: Context, Xi, Xpi, den: int) -> List[List[object]]:
    """``P[(b,t), (b',t')] = <x_(b,t), x'_(b',t')> / den`` (one rounding per entry)."""
    B, T, n_x = Xi.shape
    Bp, Tp, _ = Xpi.shape
    prod = Xi.reshape(B * T, n_x).dot(Xpi.reshape(Bp * Tp, n_x).T)  # exact Python integers
    dd = ctx.mpf(den)  # exact: den fits (see caller's guard bits) or is rounded once
    return [[ctx.mpf(int(v)) / dd for v in row] for row in prod]


# --------------------------------------------------------------------------- recursion
def _self_variances(moments, ctx, sw2, sf2, pdiag: List) -> List:
    """``q_t = Sigma_(t,t)(x, x)`` along one sequence (``pdiag[t] = |x_t|^2/n_x``)."""
    q: List = []
    for t, p in enumerate(pdiag):
        v = sf2 * p
        if t:
            v = v + sw2 * moments(ctx, q[t - 1], q[t - 1], q[t - 1])[0]
        q.append(v)
    return q


def _pair(moments, ctx, co, P, q, qp):
    """Scalar NTK and NNGP tables ``(T x T')`` of one pair of sequences, conv1, no D."""
    sw2, sf2, sc2, kC, kF, kW = co["sw2"], co["sf2"], co["sc2"], co["kC"], co["kF"], co["kW"]
    T, Tp = len(q), len(qp)
    E = [[None] * Tp for _ in range(T)]
    Ed = [[None] * Tp for _ in range(T)]
    Th = [[None] * Tp for _ in range(T)]
    ntk = [[None] * Tp for _ in range(T)]
    nngp = [[None] * Tp for _ in range(T)]
    for t in range(T):
        for tp in range(Tp):
            p = P[t][tp]
            sig = sf2 * p
            th = kF * p
            if t and tp:
                e_prev = E[t - 1][tp - 1]
                sig = sig + sw2 * e_prev
                th = th + kW * e_prev + sw2 * Ed[t - 1][tp - 1] * Th[t - 1][tp - 1]
            e, ed = moments(ctx, q[t], qp[tp], sig)
            E[t][tp], Ed[t][tp], Th[t][tp] = e, ed, th
            ntk[t][tp] = kC * e + sc2 * ed * th
            nngp[t][tp] = sc2 * e
    return ntk, nngp


def rnn_kernels(spec: RNNSpec, activation: str, X, Xp=None, *, dps: int = 30, full: bool = True) -> RNNKernels:
    """Exact wide-limit NTK and NNGP of the Elman RNN ``phi = activation`` (module docstring).

    ``X`` ``(B, T, n_x)``, ``Xp`` ``(B', T', n_x)`` (``None``: ``Xp = X``), entries
    ints, floats, Fractions or mpmath numbers, taken exactly.  Every entry is
    accurate to about ``dps`` significant digits relative to ``sqrt(K_ii K_jj)``.
    """
    _check_activation(activation)
    check_dps(dps)
    same = Xp is None or Xp is X
    Xf = _rational_batch(X, "X", spec.n_x)
    Xpf = Xf if same else _rational_batch(Xp, "X'", spec.n_x)
    B, T, _ = Xf.shape
    Bp, Tp, _ = Xpf.shape
    moments = _MOMENTS[activation]
    coef = group_coefficients(spec)
    ctx = context(dps)
    with guarded(ctx, ctx.prec + 64):
        xi, xden = _integers(Xf)
        xpi, xpden = (xi, xden) if same else _integers(Xpf)
        den = xden * xpden * spec.n_x
        with guarded(ctx, den.bit_length()):  # the denominator itself exactly
            P = _gram(ctx, xi, xpi, den)
            Px = P if same else _gram(ctx, xi, xi, xden * xden * spec.n_x)
            Pxp = P if same else _gram(ctx, xpi, xpi, xpden * xpden * spec.n_x)
        co = {
            "sw2": exact(ctx, spec.sigma_w**2), "sf2": exact(ctx, spec.sigma_f**2),
            "sc2": exact(ctx, spec.sigma_c**2), "kC": exact(ctx, coef["C"]),
            "kF": exact(ctx, coef["F"]), "kW": exact(ctx, coef["W"]),
        }
        kD = exact(ctx, coef["D"])
        sd2 = exact(ctx, spec.sigma("D") ** 2)
        q = [_self_variances(moments, ctx, co["sw2"], co["sf2"], [Px[b * T + t][b * T + t] for t in range(T)])
             for b in range(B)]
        qp = q if same else [
            _self_variances(moments, ctx, co["sw2"], co["sf2"], [Pxp[b * Tp + t][b * Tp + t] for t in range(Tp)])
            for b in range(Bp)]
        zero = ctx.mpf(0)
        K = np.empty((B, T, Bp, Tp), dtype=object)
        G = np.empty((B, T, Bp, Tp), dtype=object)
        K[...] = zero
        G[...] = zero
        shift = 1 if spec.convention == "conv2" else 0
        for b in range(B):
            for bp in range(b if same else 0, Bp):
                Pbb = [[P[b * T + t][bp * Tp + tp] for tp in range(Tp)] for t in range(T)]
                # conv2: y_t reads h_(t-1) of conv1; the recursion sees the inputs up to t-1
                Tn, Tpn = T - shift, Tp - shift
                if Tn > 0 and Tpn > 0:
                    nt, ng = _pair(moments, ctx, co, [row[:Tpn] for row in Pbb[:Tn]], q[b][:Tn], qp[bp][:Tpn])
                    for t in range(Tn):
                        for tp in range(Tpn):
                            K[b, t + shift, bp, tp + shift] = nt[t][tp]
                            G[b, t + shift, bp, tp + shift] = ng[t][tp]
                if kD or sd2:
                    for t in range(T):
                        for tp in range(Tp):
                            K[b, t, bp, tp] = K[b, t, bp, tp] + kD * Pbb[t][tp]
                            G[b, t, bp, tp] = G[b, t, bp, tp] + sd2 * Pbb[t][tp]
                if same and bp != b:
                    K[bp, :, b, :] = K[b, :, bp, :].T
                    G[bp, :, b, :] = G[b, :, bp, :].T
    rnd = np.frompyfunc(lambda v: +v, 1, 1)  # one rounding to dps digits, outside the guard
    K, G = rnd(K).astype(object), rnd(G).astype(object)
    if full:
        K, G = _expand(K, spec.n_y, ctx), _expand(G, spec.n_y, ctx)
    return RNNKernels(K, G, activation, spec, dps)


def _expand(k: np.ndarray, n_y: int, ctx: Context) -> np.ndarray:
    """``K[b, t, a, b', t', c] = delta_ac k[b, t, b', t']``."""
    B, T, Bp, Tp = k.shape
    out = np.empty((B, T, n_y, Bp, Tp, n_y), dtype=object)
    out[...] = ctx.mpf(0)
    for a in range(n_y):
        out[:, :, a, :, :, a] = k
    return out


def rnn_ntk(spec: RNNSpec, activation: str, X, Xp=None, *, dps: int = 30, full: bool = True) -> np.ndarray:
    """Wide-limit NTK (see :func:`rnn_kernels`)."""
    return rnn_kernels(spec, activation, X, Xp, dps=dps, full=full).ntk


def rnn_nngp(spec: RNNSpec, activation: str, X, Xp=None, *, dps: int = 30, full: bool = True) -> np.ndarray:
    """Wide-limit covariance of the initial outputs (see :func:`rnn_kernels`)."""
    return rnn_kernels(spec, activation, X, Xp, dps=dps, full=full).nngp
