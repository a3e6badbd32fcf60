"""beta_l derived a second way, independently of theory.weights' table.

(a) From the NNGP covariance.  gamma_m = Var((C W^m F)_ai) * n_x is a product of
    one variance per factor of the chain C, W, ..., W, F (every index path has the
    same weight and the paths are independent).  The wide-limit NTK share of a group
    g is the sum over the occurrences of g in the chain of the product of the other
    factors' variances: d gamma / d v_g (v_g = variance of one entry).  Under the
    "ntk" metric each occurrence also carries v_g itself (d/dtheta~ = s_g d/dtheta),
    so share = v_g d gamma / d v_g (Euler: W occurs m times); under "variance" the
    share is d gamma / d v_g; under "standard" (NTK / n) only groups whose fan-in is
    the width n (C and W) survive.  The derivative is taken numerically (mpmath
    diff) of a function that multiplies the chain's factors one by one.

(b) Exact Gaussian moments at finite width.  For n_x = n_y = 1 and tiny m, the
    expected squared gradient norm E||dM_m/dtheta_g||^2 is computed exactly (rational
    arithmetic, Isserlis: E z^(2k) = (2k-1)!! v^k) for n = 1..5 by expanding the
    polynomials entry by entry.  It is a polynomial in 1/n; Lagrange interpolation in
    1/n gives its value at 1/n = 0, the wide limit.  A sixth width checks that the
    polynomial degree was high enough (exact equality).
"""
from __future__ import annotations

from collections import Counter
from fractions import Fraction
from functools import partial
from itertools import product

import pytest
from helpers import decimals, frac
from helpers import specs as shared_specs
from hypothesis import given
from hypothesis import strategies as st

from theory.precision import context
from theory.spec import CONVENTIONS, METRICS, RNNSpec
from theory.weights import lag_shares, lag_weights, nngp_lag_variances


def mpq(ctx, q) -> object:
    """A rational in ctx (numerator / denominator, one rounding)."""
    q = Fraction(q)
    return ctx.mpf(q.numerator) / q.denominator


#: Two-place scales (s_W in [0.1, 1.4], the others in [0.1, 2]) and a few learning rates per group.
specs = partial(shared_specs, sigma_w=decimals("0.1", "1.4", 2), sigma=decimals("0.1", "2", 2),
                lr={"w": st.sampled_from([0, Fraction(1, 2), 1, 2]), "f": st.sampled_from([0, 1, 3]),
                    "c": st.sampled_from([0, 1, Fraction(5, 4)]), "d": st.sampled_from([0, 1, 2])})


# ---------------------------------------------------------------- (a) NNGP route
def chain(lag: int, convention: str):
    """Factors of the Markov parameter feeding ``lag``: C W^m F, or None (conv2, lag 0)."""
    m = lag if convention == "conv1" else lag - 1
    return None if m < 0 else ["C"] + ["W"] * m + ["F"]


def gamma(ctx, variances: dict, lag: int, convention: str, has_d: bool):
    """Covariance of the lag-``lag`` impulse response (x n_x): product over the chain, + v_D at lag 0."""
    value = ctx.mpf(0)
    factors = chain(lag, convention)
    if factors is not None:
        value = ctx.mpf(1)
        for f in factors:
            value = value * variances[f]
    if has_d and lag == 0:
        value = value + variances["D"]
    return value


FAN_IN_IS_WIDTH = {"C": True, "W": True, "F": False, "D": False}


def share_from_gamma(ctx, spec: RNNSpec, g: str, lag: int):
    v = {h: mpq(ctx, spec.sigma(h) ** 2) if h != "D" or spec.has_d else ctx.mpf(0) for h in "CFWD"}

    def gam_of(x):
        return gamma(ctx, {**v, g: x}, lag, spec.convention, spec.has_d)

    dg = ctx.diff(gam_of, v[g])
    if spec.metric == "ntk":
        s = v[g] * dg
    elif spec.metric == "variance":
        s = dg
    else:
        s = dg if FAN_IN_IS_WIDTH[g] else ctx.mpf(0)
    return mpq(ctx, spec.lr(g)) * s


@given(specs(), st.integers(1, 12))
def test_shares_are_derivatives_of_the_nngp_covariance(spec, lags):
    """lag_shares (30 digits) against d gamma / d v_g by mpmath.diff at 50 digits.

    mpmath.diff of a polynomial at 50 digits (default step, extra working precision)
    is accurate to far better than 10^-35 relative; 10^-25 leaves margin on both.
    Absolute floor 10^-25 * (a share of the same lag's scale) covers exact zeros.
    """
    ctx = context(50)
    shares = lag_shares(spec, lags, dps=30)
    for g in spec.groups:
        for l in range(lags):
            ref = share_from_gamma(ctx, spec, g, l)
            scale = max(abs(ref), gamma(ctx, {h: mpq(ctx, spec.sigma(h) ** 2) for h in "CFWD"}, l,
                                         spec.convention, spec.has_d) * (l + 2))
            assert abs(ctx.mpf(shares[g][l]) - ref) <= ctx.mpf(10) ** -25 * scale, (g, l)


@given(specs(), st.integers(1, 12))
def test_nngp_variances_are_the_chain_product(spec, lags):
    """nngp_lag_variances equals gamma built factor by factor (both conventions), to 2 ulp at dps 30."""
    ctx = context(50)
    v = {h: mpq(ctx, spec.sigma(h) ** 2) for h in "CFWD"}
    got = nngp_lag_variances(spec, lags, dps=30)
    for l in range(lags):
        ref = gamma(ctx, v, l, spec.convention, spec.has_d)
        assert abs(ctx.mpf(got[l]) - ref) <= ctx.mpf(2) ** (2 - context(30).prec) * ref


@given(specs(), st.integers(1, 30))
def test_euler_relation_ntk_beta_is_chain_length_times_gamma(spec, lags):
    """ntk metric, all learning rates 1, no D: sum_g v_g d gamma/d v_g = (m + 2) gamma_m (degree of
    homogeneity = number of factors), i.e. beta_l = (number of factors of the chain) * gamma_l."""
    s = spec.replace(metric="ntk", lr_w=1, lr_f=1, lr_c=1, sigma_d=None)
    beta = lag_weights(s, lags, dps=30)
    gam = nngp_lag_variances(s, lags, dps=30)
    for l in range(lags):
        factors = chain(l, s.convention)
        k = 0 if factors is None else len(factors)
        assert abs(frac(beta[l]) - k * frac(gam[l])) <= Fraction(4, 2 ** context(30).prec) * frac(beta[l])


# ---------------------------------------------------------------- (b) exact moments
def _double_factorial_odd(k: int) -> int:
    out = 1
    for j in range(k - 1, 0, -2):
        out *= j
    return out


class Poly(dict):
    """Polynomial in Gaussian variables: {sorted tuple of variable ids: integer coefficient}."""

    def __add__(self, other):
        out = Poly(self)
        for k, v in other.items():
            out[k] = out.get(k, 0) + v
        return out

    def __mul__(self, other):
        out = Poly()
        for k1, v1 in self.items():
            for k2, v2 in other.items():
                k = tuple(sorted(k1 + k2))
                out[k] = out.get(k, 0) + v1 * v2
        return out


def var(name) -> Poly:
    return Poly({(name,): 1})


def expectation_of_square(p: Poly, variance) -> Fraction:
    """E[p^2] for independent centred Gaussians with the given variances (Isserlis)."""
    total = Fraction(0)
    items = list(p.items())
    for k1, v1 in items:
        for k2, v2 in items:
            cnt = Counter(k1 + k2)
            if any(c % 2 for c in cnt.values()):
                continue
            term = Fraction(v1 * v2)
            for name, c in cnt.items():
                term *= _double_factorial_odd(c) * variance(name) ** (c // 2)
            total += term
    return total


def finite_width_shares(spec: RNNSpec, m: int, n: int) -> dict:
    """Exact E||dM_m/dtheta~_g||^2 (times the metric's factor) at width n, n_x = n_y = 1."""
    vc, vw, vf = spec.sigma_c**2 / n, spec.sigma_w**2 / n, spec.sigma_f**2  # fan-ins n, n, n_x = 1
    variance = lambda name: {"c": vc, "W": vw, "f": vf}[name[0]]
    c = [var(("c", j)) for j in range(n)]
    f = [var(("f", k)) for k in range(n)]
    W = [[var(("W", j, k)) for k in range(n)] for j in range(n)]

    def mat_vec(vec):  # W vec
        return [sum((W[j][k] * vec[k] for k in range(n)), Poly()) for j in range(n)]

    def vec_mat(vec):  # vec^T W
        return [sum((vec[j] * W[j][k] for j in range(n)), Poly()) for k in range(n)]

    right = [f]  # W^i f
    left = [c]   # c^T W^i
    for _ in range(m):
        right.append(mat_vec(right[-1]))
        left.append(vec_mat(left[-1]))
    grad_sq = {
        "C": sum(expectation_of_square(right[m][j], variance) for j in range(n)),
        "F": sum(expectation_of_square(left[m][k], variance) for k in range(n)),
        "W": sum(
            expectation_of_square(sum((left[i][j] * right[m - 1 - i][k] for i in range(m)), Poly()), variance)
            for j, k in product(range(n), range(n))
        ) if m else Fraction(0),
    }
    v = {"C": vc, "W": vw, "F": vf}
    fan_in = {"C": n, "W": n, "F": 1}
    out = {}
    for g, e in grad_sq.items():
        if spec.metric == "ntk":  # theta = sqrt(v_g) theta~: d/dtheta~ = sqrt(v_g) d/dtheta
            out[g] = v[g] * e
        elif spec.metric == "variance":  # theta = theta~ / sqrt(fan_in)
            out[g] = e / fan_in[g]
        else:  # standard: NTK / n
            out[g] = e / n
        out[g] *= spec.lr(g)
    return out


def limit_in_inverse_width(values: dict) -> Fraction:
    """Lagrange interpolation of {n: value} as a polynomial in x = 1/n, evaluated at x = 0."""
    xs = {n: Fraction(1, n) for n in values}
    total = Fraction(0)
    for n, y in values.items():
        w = Fraction(1)
        for n2 in values:
            if n2 != n:
                w *= (0 - xs[n2]) / (xs[n] - xs[n2])
        total += w * y
    return total


def interpolate_at(values: dict, x: Fraction) -> Fraction:
    total = Fraction(0)
    for n, y in values.items():
        w = Fraction(1)
        for n2 in values:
            if n2 != n:
                w *= (x - Fraction(1, n2)) / (Fraction(1, n) - Fraction(1, n2))
        total += w * y
    return total


EXACT_CASES = [
    (RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c="0.7"), m) for m in (0, 1, 2)
] + [
    (RNNSpec(sigma_w="1.5", sigma_f="0.5", sigma_c="2", metric=metric, lr_w="1/2", lr_c=3), m)
    for metric in METRICS for m in (1, 2)
]


@pytest.mark.parametrize("spec, m", EXACT_CASES)
def test_wide_limit_of_exact_gaussian_moments(spec, m):
    widths = range(1, 6)
    per_n = {n: finite_width_shares(spec, m, n) for n in list(widths) + [6]}
    shares = {}
    for g in ("C", "F", "W"):
        fit = {n: per_n[n][g] for n in widths}
        # the degree in 1/n is at most 4: the 6th width is predicted exactly
        assert interpolate_at(fit, Fraction(1, 6)) == per_n[6][g], g
        shares[g] = limit_in_inverse_width(fit)
    for convention in CONVENTIONS:
        s = spec.replace(convention=convention)
        lag = m if convention == "conv1" else m + 1
        got = lag_shares(s, lag + 1, dps=40)
        for g, exact in shares.items():
            assert abs(frac(got[g][lag]) - exact) <= Fraction(1, 10**38) * max(exact, Fraction(1)), (g, convention)


@pytest.mark.slow
@pytest.mark.parametrize("metric", METRICS)
def test_wide_limit_of_exact_gaussian_moments_m3(metric):
    test_wide_limit_of_exact_gaussian_moments(
        RNNSpec(sigma_w="0.8", sigma_f="1.1", sigma_c="0.6", metric=metric), 3
    )
