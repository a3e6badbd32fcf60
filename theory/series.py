"""Series of the lag weights in closed form (requires ``s_W < 1``).

With ``g_m = A r^m + B m r^(m-1)`` per Markov parameter (``A = sum_g a_g``,
``B = sum_g b_g``, see :func:`theory.weights.markov_coefficients`) and the D
share ``d`` at lag 0, the sums are geometric-series identities, for ``r < 1``:

* ``sum_(m>=M) r^m           = r^M / (1-r)``
* ``sum_(m>=M) m r^(m-1)     = (M r^(M-1) (1-r) + r^M) / (1-r)^2``
* ``sum_(m>=0) m r^m         = r / (1-r)^2``
* ``sum_(m>=0) m^2 r^(m-1)   = (1+r) / (1-r)^3``

Conventions: ``tail(L) = sum_(l>=L) beta_l`` is the weight *not* covered by the
first ``L`` lags (``tail(0)`` is the total); the memory horizon for a fraction
``eps`` is the smallest ``L`` with ``tail(L) <= eps * total``; the peak lag is
the smallest lag attaining ``max_l beta_l``.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator

from theory.precision import Context, context, exact, guarded
from theory.spec import RNNSpec, SpecError, as_fraction
from theory.weights import check_guard_digits, markov_coefficients

__all__ = ["Series", "series", "total_weight", "tail_weight", "mean_lag", "peak_lag", "memory_horizon", "horizon_bits"]


def _require_stable(spec: RNNSpec) -> None:
    if spec.sigma_w >= 1:
        raise SpecError(
            f"closed-form series need sigma_w < 1 (got sigma_w = {spec.to_dict()['sigma_w']}): "
            "the lag weights do not decay"
        )


class _Parts:
    """Exact coefficients of one spec in a context: A, B, d, r, and the shift of the convention.

    Every constant is rounded once from its exact rational value at the precision
    the context has when the object is built (callers add guard bits first); in
    particular ``q = 1 - r`` is rounded from the exact rational, never computed as
    ``1 - round(r)``, which would lose ``log2(1/(1-r))`` bits for ``s_W`` near 1.
    """

    def __init__(self, spec: RNNSpec, ctx: Context):
        _require_stable(spec)
        coef = markov_coefficients(spec)
        self.ctx = ctx
        self.r = exact(ctx, coef.r)
        self.q = exact(ctx, 1 - coef.r)
        self.Aq = sum(coef.a.values(), Fraction(0))
        self.Bq = sum(coef.b.values(), Fraction(0))
        self.A = exact(ctx, self.Aq)
        self.B = exact(ctx, self.Bq)
        self.dq = coef.d if coef.d is not None else Fraction(0)
        self.d = exact(ctx, self.dq)
        self.rq = coef.r
        self.shift = 0 if spec.convention == "conv1" else 1  # lag l <-> Markov m = l - shift

    def markov_tail(self, M: int):
        """sum_(m>=M) g_m for M >= 0."""
        ctx, r, q, one = self.ctx, self.r, self.q, self.ctx.mpf(1)
        rM = ctx.power(r, M) if M else one
        s0 = rM / q
        if M == 0:
            s1 = one / q**2
        else:
            rM1 = ctx.power(r, M - 1) if M > 1 else one
            s1 = (M * rM1 * q + rM) / q**2
        return self.A * s0 + self.B * s1

    def markov_tail_pow(self, M: int, rM):
        """:meth:`markov_tail` with ``rM = r^M`` given (``M >= 1``, ``r > 0``): no power is taken."""
        q = self.q
        s0 = rM / q
        s1 = (M * (rM / self.r) * q + rM) / q**2
        return self.A * s0 + self.B * s1

    def g(self, m: int):
        """Markov weight g_m."""
        ctx = self.ctx
        v = self.A * (ctx.power(self.r, m) if m else ctx.mpf(1))
        if m:
            v = v + self.B * m * (ctx.power(self.r, m - 1) if m > 1 else ctx.mpf(1))
        return v

    def beta(self, lag: int):
        m = lag - self.shift
        v = self.g(m) if m >= 0 else self.ctx.mpf(0)
        return v + self.d if lag == 0 else v

    def total(self):
        return self.markov_tail(0) + self.d

    def tail(self, L: int):
        """sum_(l>=L) beta_l."""
        if L == 0:
            return self.total()
        return self.markov_tail(max(L - self.shift, 0))

    def first_moment(self):
        """sum_l l beta_l."""
        one, r, q = self.ctx.mpf(1), self.r, self.q
        m1 = self.A * r / q**2 + self.B * (one + r) / q**3  # sum m g_m
        if self.shift:
            m1 = m1 + self.markov_tail(0)  # sum (m+1) g_m
        return m1

    def peak(self) -> int:
        """Smallest lag of the maximum.

        ``g_(m+1) - g_m = r^(m-1) [A r (r-1) + B r - B m (1-r)]``, so for ``r > 0``
        the Markov weights rise exactly while ``m < m0 = r/(1-r) - A r / B`` and the
        first maximum sits at ``m* = max(0, ceil(m0))``; for ``B = 0`` or ``r = 0``
        only ``m = 0, 1`` can win.  The lag-0 candidate (with D) is compared too.
        """
        cands = {0, 1}
        if self.Bq > 0 and self.rq > 0:
            m0 = self.rq / (1 - self.rq) - self.Aq * self.rq / self.Bq
            cands.add(max(0, math.ceil(m0)))
        lags = sorted({m + self.shift for m in cands} | {0})
        size = self.rq.numerator.bit_length() + self.rq.denominator.bit_length()
        if max(lags) * size <= 200_000:  # exact rational comparison (ties resolved exactly)
            vals = [(self.beta_exact(l), l) for l in lags]
        else:  # r^m loses about log2(m) bits: guard them
            with guarded(self.ctx, 32 + max(lags).bit_length()):
                vals = [(self.beta(l), l) for l in lags]
        best = max(v for v, _ in vals)
        return min(l for v, l in vals if v == best)

    def beta_exact(self, lag: int) -> Fraction:
        """beta_lag as an exact rational."""
        m = lag - self.shift
        v = Fraction(0)
        if m >= 0:
            v = self.Aq * self.rq**m + (self.Bq * m * self.rq ** (m - 1) if m else 0)
        return v + self.dq if lag == 0 else v


@dataclass(frozen=True)
class Series:
    """Closed-form series of the lag weights of one specification (mpmath numbers)."""

    total: object
    mean_lag: object
    peak_lag: int
    horizon: int
    horizon_fraction: Fraction

    def to_dict(self, digits: int) -> dict:
        from mpmath import nstr

        return {
            "total": nstr(self.total, digits, strip_zeros=False),
            "mean_lag": nstr(self.mean_lag, digits, strip_zeros=False),
            "peak_lag": self.peak_lag,
            "horizon": self.horizon,
            "horizon_fraction": str(float(self.horizon_fraction)),
        }


@contextmanager
def _parts(spec: RNNSpec, dps: int, guard: int, guard_digits: int = 0) -> Iterator[_Parts]:
    """Parts built ``guard`` bits above ``dps + guard_digits`` digits; results are rounded back
    (to ``dps + guard_digits`` digits) on exit by the caller."""
    ctx = context(dps)
    ctx.dps = dps + check_guard_digits(guard_digits)
    with guarded(ctx, guard):
        yield _Parts(spec, ctx)


def total_weight(spec: RNNSpec, *, dps: int = 50, guard_digits: int = 0):
    """``sum_(l>=0) beta_l = A/(1-r) + B/(1-r)^2 + d`` (at ``dps + guard_digits`` digits, see
    :func:`theory.weights.lag_weights` for why a caller adds guard digits)."""
    with _parts(spec, dps, 16, guard_digits) as p:
        v = p.total()
    return +v


def tail_weight(spec: RNNSpec, lags: int, *, dps: int = 50):
    """``sum_(l>=lags) beta_l``: the weight beyond the first ``lags`` lags."""
    if isinstance(lags, bool) or not isinstance(lags, int) or lags < 0:
        raise SpecError(f"lags must be a non-negative integer, got {lags!r}")
    # r^lags amplifies the rounding of r by a factor lags: guard log2(lags) bits
    with _parts(spec, dps, 16 + lags.bit_length()) as p:
        v = p.tail(lags)
    return +v


def mean_lag(spec: RNNSpec, *, dps: int = 50, guard_digits: int = 0):
    """``sum_l l beta_l / sum_l beta_l`` (at ``dps + guard_digits`` digits)."""
    with _parts(spec, dps, 16, guard_digits) as p:
        total = p.total()
        if total == 0:
            raise SpecError("all lag weights are zero (every trained group is frozen or has zero scale)")
        v = p.first_moment() / total
    return +v


def peak_lag(spec: RNNSpec, *, dps: int = 50) -> int:
    """Smallest lag at which ``beta_l`` is largest."""
    with _parts(spec, dps, 32) as p:
        return p.peak()


def horizon_bits(spec: RNNSpec, fraction) -> int:
    """An upper bound ``b`` with ``memory_horizon(spec, fraction) < 2^b``, from exact rationals.

    With ``q = 1 - r`` the tail decays like ``L r^L`` and ``r^L <= exp(-q L)``, so the horizon is
    below ``(ln(1/eps) + ln(B/A + 1) + 2 ln(1/q) + 64) / q``; each logarithm is bounded by the
    bit length of the rationals involved (``ln x <= bits``), with 16 bits to spare.
    """
    _require_stable(spec)
    eps = as_fraction(fraction, "fraction")
    q = 1 - spec.sigma_w**2
    bits = lambda x: max(x.numerator.bit_length(), x.denominator.bit_length(), 1)
    inv_q = q.denominator.bit_length() - q.numerator.bit_length() + 1  # log2(1/q) < this
    coef = markov_coefficients(spec)
    logs = bits(eps) + 2 * max(inv_q, 1) + 64 + sum(bits(v) for v in list(coef.a.values()) + list(coef.b.values()))
    return max(inv_q, 0) + logs.bit_length() + 16


def memory_horizon(spec: RNNSpec, fraction="0.01", *, dps: int = 50) -> int:
    """Smallest ``L`` with ``tail(L) <= fraction * total`` (exponential search, then bisection).

    Any horizon of a valid specification is found exactly: ``r^L`` amplifies the rounding of
    ``r`` by ``L``, so the search works ``32 + log2(L_max)`` bits above ``dps`` digits, with
    ``L_max = 2^horizon_bits(spec, fraction)`` (about 3,400 bits for ``s_W = 1 - 10^-1000``).
    """
    eps = as_fraction(fraction, "fraction")
    if not 0 < eps < 1:
        raise SpecError(f"fraction must be in (0, 1), got {fraction}")
    cap = max(64, horizon_bits(spec, eps))
    with _parts(spec, dps, 32 + cap) as p:
        ctx = p.ctx
        total = p.total()
        if total == 0:
            raise SpecError("all lag weights are zero (every trained group is frozen or has zero scale)")
        target = exact(ctx, eps) * total
        # lag L >= 1 has tail(L) = markov_tail(M) with M = L - shift: search the smallest M >= 1 - shift
        M0 = 1 - p.shift
        if p.markov_tail(M0) <= target:
            return M0 + p.shift
        if p.rq == 0:  # r = 0: g_0 = A, g_1 = B, and every later Markov weight vanishes
            return next(M for M in range(M0 + 1, 3) if p.markov_tail(M) <= target) + p.shift
        # exponential search keeping pw[k] = r^(2^k): tail(2^k) from one squaring per step
        pw = [p.r]
        while p.markov_tail_pow(2 ** (len(pw) - 1), pw[-1]) > target:
            if len(pw) > cap:  # cannot happen for the bound of horizon_bits; a clear error if it did
                raise SpecError(f"memory horizon beyond 2^{cap} lags (s_W = {spec.to_dict()['sigma_w']})")
            pw.append(pw[-1] * pw[-1])
        k = len(pw) - 1  # tail(2^k) <= target; tail(2^(k-1)) > target when k >= 1 (or M0 failed)
        if k == 0:
            return 1 + p.shift
        lo, r_lo = 2 ** (k - 1), pw[k - 1]
        for j in range(k - 2, -1, -1):  # invariant: tail(lo) > target >= tail(lo + 2^(j+1))
            mid, r_mid = lo + 2**j, r_lo * pw[j]
            if p.markov_tail_pow(mid, r_mid) > target:
                lo, r_lo = mid, r_mid
    return lo + 1 + p.shift


def series(spec: RNNSpec, *, fraction="0.01", dps: int = 50, guard_digits: int = 0) -> Series:
    """All closed-form series of ``spec`` at ``dps`` digits (``+ guard_digits``, see :func:`total_weight`)."""
    return Series(
        total=total_weight(spec, dps=dps, guard_digits=guard_digits),
        mean_lag=mean_lag(spec, dps=dps, guard_digits=guard_digits),
        peak_lag=peak_lag(spec, dps=dps),
        horizon=memory_horizon(spec, fraction, dps=dps),
        horizon_fraction=as_fraction(fraction, "fraction"),
    )
