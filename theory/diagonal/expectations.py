"""Expectations over the LRU eigenvalue law: the closed forms the wide-limit lag kernels are made of.

``lambda = r e^(i phi)`` with ``s = r^2 ~ U[s0, s1]`` (``s0 = r_min^2``,
``s1 = r_max^2``) and ``phi ~ U[0, Phi]`` independent (``Phi = max_phase``,
:class:`~theory.diagonal.spec.DiagonalSpec`); ``a = -ln r = -ln(s)/2``.  For
lags ``l, l'`` write ``k = l + l'``, ``p = k/2`` and ``m = l - l'``.  The
expectation of a share factorizes into a radial and an angular part:

    P0(k) = E[(1 - s) s^p]                 c0(m) = E[cos(m phi)]
    P2(k) = E[a^2 (1 - s) s^p]             c2(m) = E[phi^2 cos(m phi)]
    P2_shifted(k) = E[a^2 s^(p+1)]         tied_nu_integral(k) = E[a^2 s^(p+2)/(1 - s)]

(the last two only for a tied gamma, :mod:`theory.diagonal.lru`).  Each has a
closed form in its docstring except :func:`tied_nu_integral` (quadrature).

Precision: each function takes a local mpmath context ``ctx`` and returns a
number accurate to its precision.  Closed forms that cancel (differences of
antiderivatives at ``s1`` and ``s0``, the oscillating terms of ``c2``) are
evaluated with guard bits adapted to the measured cancellation; the quadrature
runs at guarded precision with its error estimate checked.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Tuple

from theory.diagonal.spec import DiagonalSpec
from theory.precision import Context, exact, guarded
from theory.spec import SpecError

__all__ = ["P0", "P2", "P2_shifted", "c0", "c2", "tied_nu_integral"]


# --------------------------------------------------------------------------- cancellation control
_MAX_EXTRA = 4  # at most this many times the working precision in guard bits


def _stable(ctx: Context, terms: Callable[[], Tuple[Any, Any]]):
    """Evaluate ``terms() -> (value, scale)`` with guard bits covering the cancellation.

    ``scale`` bounds the magnitude of the terms that were added; the bits lost
    are ``log2(scale/|value|)``.  The guard grows until it exceeds the loss by
    20 bits, or reaches ``_MAX_EXTRA`` times the precision (then ``value`` is
    still accurate to ``2^-prec`` relative to ``scale``: an exact zero such as
    ``sin(pi)`` is returned as a tiny number).
    """
    prec = ctx.prec
    guard = 24
    while True:
        with guarded(ctx, guard):
            value, scale = terms()
        if value == 0 or scale == 0:
            lost = 0 if scale == 0 else math.inf
        else:
            lost = max(0.0, float(ctx.log(abs(scale) / abs(value), 2)))
        if lost + 20 <= guard or guard >= _MAX_EXTRA * prec:
            return +value
        guard = min(int(lost) + 40, _MAX_EXTRA * prec) if lost != math.inf else _MAX_EXTRA * prec


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise SpecError(f"k = l + l' must be a non-negative integer, got {k!r}")
    return k


def _check_m(m) -> int:
    if isinstance(m, bool) or not isinstance(m, int):
        raise SpecError(f"m = l - l' must be an integer, got {m!r}")
    return abs(m)


# --------------------------------------------------------------------------- closed forms
def P0(spec: DiagonalSpec, k: int, ctx: Context):
    """``P0(k) = E[(1 - s) s^p]``, ``p = k/2``, ``s = r^2 ~ U[s0, s1]``:

        P0(k) = [F(s1) - F(s0)] / (s1 - s0),  F(s) = s^(p+1)/(p+1) - s^(p+2)/(p+2).
    """
    k = _check_k(k)

    def terms():
        p = ctx.mpf(k) / 2
        s0, s1 = exact(ctx, spec.s0), exact(ctx, spec.s1)

        def F(s):
            a, b = s ** (p + 1) / (p + 1), s ** (p + 2) / (p + 2)
            return a - b, max(abs(a), abs(b))

        f1, m1 = F(s1)
        f0, m0 = F(s0)
        d = s1 - s0
        return (f1 - f0) / d, max(m1, m0) / d

    return _stable(ctx, terms)


def _J(ctx: Context, q, s):
    """``J_q(s) = s^(q+1) [ln^2 s/(q+1) - 2 ln s/(q+1)^2 + 2/(q+1)^3]`` (an antiderivative
    of ``s^q ln^2 s``), ``J_q(0) = 0``; returns (value, magnitude of its terms)."""
    if s == 0:
        return ctx.mpf(0), ctx.mpf(0)
    L = ctx.log(s)
    q1 = q + 1
    t = [L * L / q1, -2 * L / q1**2, 2 / q1**3]
    sq = s**q1
    return sq * (t[0] + t[1] + t[2]), sq * max(abs(x) for x in t)


def P2(spec: DiagonalSpec, k: int, ctx: Context):
    """``P2(k) = E[a^2 (1 - s) s^p]``, ``a = -ln r = -ln(s)/2``, ``p = k/2``:

        P2(k) = [G(s1) - G(s0)] / (4 (s1 - s0)),  G = J_p - J_(p+1),
        J_q(s) = s^(q+1) [ln^2 s/(q+1) - 2 ln s/(q+1)^2 + 2/(q+1)^3],  J_q(0) = 0.
    """
    k = _check_k(k)

    def terms():
        p = ctx.mpf(k) / 2
        s0, s1 = exact(ctx, spec.s0), exact(ctx, spec.s1)
        vals, mags = [], []
        for s in (s1, s0):
            a, ma = _J(ctx, p, s)
            b, mb = _J(ctx, p + 1, s)
            vals.append(a - b)
            mags.append(max(ma, mb))
        d = 4 * (s1 - s0)
        return (vals[0] - vals[1]) / d, max(mags) / d

    return _stable(ctx, terms)


def P2_shifted(spec: DiagonalSpec, k: int, ctx: Context):
    """``E[a^2 s^(p+1)] = [J_(p+1)(s1) - J_(p+1)(s0)] / (4 (s1 - s0))`` (tied-gamma helper)."""
    k = _check_k(k)

    def terms():
        p = ctx.mpf(k) / 2
        s0, s1 = exact(ctx, spec.s0), exact(ctx, spec.s1)
        a, ma = _J(ctx, p + 1, s1)
        b, mb = _J(ctx, p + 1, s0)
        d = 4 * (s1 - s0)
        return (a - b) / d, max(ma, mb) / d

    return _stable(ctx, terms)


def _sin_cos(spec: DiagonalSpec, m: int, ctx: Context):
    """``sin(m Phi), cos(m Phi)``; exact zeros/ones when ``m Phi`` is a multiple of pi/2."""
    if spec.phase_in_pi:
        x = m * spec.max_phase  # exact rational multiple of pi
        if (2 * x).denominator == 1:
            return ctx.sinpi(int(2 * x) * ctx.mpf(0.5)), ctx.cospi(int(2 * x) * ctx.mpf(0.5))
        xm = exact(ctx, x)
        return ctx.sinpi(xm), ctx.cospi(xm)
    xm = m * exact(ctx, spec.max_phase)
    return ctx.sin(xm), ctx.cos(xm)


def c0(spec: DiagonalSpec, m: int, ctx: Context):
    """``c0(m) = E[cos(m phi)] = sin(m Phi)/(m Phi)``, ``c0(0) = 1``, ``phi ~ U[0, Phi]``."""
    m = _check_m(m)
    if m == 0:
        return ctx.mpf(1)
    with guarded(ctx, 10):
        s, _ = _sin_cos(spec, m, ctx)
        v = s / (m * spec.max_phase_value(ctx))
    return +v


def c2(spec: DiagonalSpec, m: int, ctx: Context):
    """``c2(m) = E[phi^2 cos(m phi)]``, ``phi ~ U[0, Phi]``:

        c2(m) = Phi sin(m Phi)/m + 2 cos(m Phi)/m^2 - 2 sin(m Phi)/(Phi m^3),  c2(0) = Phi^2/3.
    """
    m = _check_m(m)
    if m == 0:
        with guarded(ctx, 10):
            P = spec.max_phase_value(ctx)
            v = P * P / 3
        return +v

    def terms():
        P = spec.max_phase_value(ctx)
        s, c = _sin_cos(spec, m, ctx)
        t = [P * s / m, 2 * c / m**2, -2 * s / (P * m**3)]
        # magnitudes of the terms without the oscillating factors bound the loss
        scale = max(P / m, ctx.mpf(2) / m**2, 2 / (P * m**3))
        return t[0] + t[1] + t[2], scale

    return _stable(ctx, terms)


def _quad_checked(ctx: Context, f, points, what: str):
    """``ctx.quad`` to relative accuracy: mpmath's tanh-sinh stops on an *absolute* error
    estimate, so the integrand is first rescaled by a rough value of the integral; the
    final error estimate must be below ``2^-(prec-8)`` relative (else ArithmeticError)."""
    rough = ctx.quad(f, points)
    scale = abs(rough) if rough != 0 else ctx.mpf(1)
    g = lambda s: f(s) / scale
    tol = ctx.ldexp(1, -ctx.prec + 8)
    for degree in (10, 14):
        value, err = ctx.quad(g, points, error=True, maxdegree=degree)
        if err <= abs(value) * tol + ctx.ldexp(1, -2 * ctx.prec):
            return value * scale
    raise ArithmeticError(f"quadrature of {what} did not converge (relative error estimate {ctx.nstr(err, 3)})")


def tied_nu_integral(spec: DiagonalSpec, k: int, ctx: Context):
    """``I1(k) = E[a^2 s^(p+2)/(1 - s)] = (1/(s1 - s0)) int_s0^s1 (ln^2 s / 4) s^(p+2)/(1 - s) ds``

    by mpmath quadrature (tanh-sinh, error estimate checked; the integrand is
    bounded: ``ln^2 s/(1 - s) -> 0`` at ``s = 1``).  With it the tied-gamma nu
    share is ``kappa c0(m) [I1(k) - k E[a^2 s^(p+1)] + l l' P2(k)]``, which is
    ``E[a^2 (1 - s) s^p (rho - l)(rho - l')]``, ``rho = s/(1 - s)``, expanded.
    """
    k = _check_k(k)
    with guarded(ctx, 20):
        p = ctx.mpf(k) / 2
        s0, s1 = exact(ctx, spec.s0), exact(ctx, spec.s1)

        def f(s):
            if s == 1:
                return ctx.mpf(0)
            L = ctx.log(s)
            return L * L / 4 * s ** (p + 2) / (1 - s)

        mid = (s0 + s1) / 2
        v = _quad_checked(ctx, f, [s0, mid, s1], "the tied-gamma nu integral") / (s1 - s0)
    return +v
