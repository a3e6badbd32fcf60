"""Lag weights and their group shares (theory.weights): relations between metrics,
conventions, learning rates and precisions, checked as properties.

The tests compare *relations* (variance share x s_g^2 = ntk share, conv2 = conv1
shifted, ratio of consecutive weights, ...) rather than re-typing the table.
Tolerances: each mpmath value carries ``dps`` digits, i.e. a relative rounding
error <= 2^(1-prec) with prec = ctx.prec (about 3.32 (dps + 1) bits); the
relations below combine at most a handful of such values, so ``REL = 2^(5-prec)``
(16 roundings) is a rigorous bound and cannot fail by chance.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import pytest
from helpers import decimals, frac, specs
from hypothesis import assume, example, given
from hypothesis import strategies as st

from theory.precision import context
from theory.spec import METRICS, RNNSpec, SpecError
from theory.weights import lag_shares, lag_weights, markov_coefficients, nngp_lag_variances

# ---------------------------------------------------------------- strategies
# specs(): s_W in [0.05, 1.5], s_F, s_C, s_D in [0.05, 2], learning rates from helpers.LRS (lr=None: all 1)
dpss = st.integers(10, 40)
lagss = st.integers(1, 40)


@lru_cache(maxsize=None)
def rel_bound(dps: int, roundings: int = 16) -> Fraction:
    """``roundings`` relative roundings of 2^-prec each at ``dps`` digits."""
    return Fraction(roundings, 2 ** context(dps).prec)


def close(a, b, dps: int, roundings: int = 16) -> bool:
    a, b = frac(a), frac(b)
    return abs(a - b) <= rel_bound(dps, roundings) * max(abs(a), abs(b))


# ---------------------------------------------------------------- basic shape
@given(specs(), lagss, dpss)
def test_shapes_and_nonnegativity(spec, lags, dps):
    shares = lag_shares(spec, lags, dps=dps)
    beta = lag_weights(spec, lags, dps=dps)
    assert set(shares) == set(spec.groups)
    assert all(len(v) == lags for v in shares.values()) and len(beta) == lags
    assert all(v >= 0 for vals in shares.values() for v in vals)
    # beta_l is the sum of the shares
    for l in range(lags):
        total = sum(frac(shares[g][l]) for g in shares)
        assert abs(frac(beta[l]) - total) <= rel_bound(dps) * total


# ---------------------------------------------------------------- metrics
@given(specs(metric="ntk"), lagss, dpss)
def test_variance_share_is_ntk_share_over_sigma_squared(spec, lags, dps):
    """ntk parametrization: theta = s_g theta~, so d/dtheta~ = s_g d/dtheta: share_ntk = s_g^2 share_var."""
    ntk = lag_shares(spec, lags, dps=dps)
    var = lag_shares(spec.replace(metric="variance"), lags, dps=dps)
    for g in spec.groups:
        s2 = spec.sigma(g) ** 2
        for l in range(lags):
            assert abs(frac(ntk[g][l]) - s2 * frac(var[g][l])) <= rel_bound(dps) * frac(ntk[g][l]) + 0


@given(specs(metric="standard"), lagss, dpss)
def test_standard_metric(spec, lags, dps):
    """Standard: F (fan-in n_x) and D have O(1) gradients, negligible in NTK/n; C and W equal the variance metric."""
    std = lag_shares(spec, lags, dps=dps)
    var = lag_shares(spec.replace(metric="variance"), lags, dps=dps)
    assert all(v == 0 for v in std["F"])
    if spec.has_d:
        assert all(v == 0 for v in std["D"])
    for g in ("C", "W"):
        assert all(close(a, b, dps) for a, b in zip(std[g], var[g]))


@given(specs(metric="ntk", lr=None), st.integers(2, 40), dpss)
def test_ntk_w_share_over_c_share_is_m(spec, lags, dps):
    """ntk: W appears m times in C W^m F, each occurrence carrying the same product of variances.

    The strategies draw every scale from [0.05, 2] (``sig_w``, ``sig``), so the C share is never
    zero and the relation is tested with a nonzero right-hand side at every lag.
    """
    sh = lag_shares(spec, lags, dps=dps)
    assert all(v > 0 for v in sh["C"][0 if spec.convention == "conv1" else 1:])
    shift = 0 if spec.convention == "conv1" else 1
    for l in range(shift, lags):
        m = l - shift
        assert abs(frac(sh["W"][l]) - m * frac(sh["C"][l])) <= rel_bound(dps) * frac(sh["W"][l])
        assert sh["C"][l] == sh["F"][l]  # same exact rational, same rounding


@given(specs(metric="variance", lr=None), lagss, dpss)
def test_variance_c_and_f_shares_swap_sigmas(spec, lags, dps):
    """variance: the C share is s_F^2 r^m, the F share s_C^2 r^m: swapping s_C and s_F swaps them."""
    a = lag_shares(spec, lags, dps=dps)
    b = lag_shares(spec.replace(sigma_c=spec.sigma_f, sigma_f=spec.sigma_c), lags, dps=dps)
    assert a["C"] == b["F"] and a["F"] == b["C"] and a["W"] == b["W"]


# ---------------------------------------------------------------- learning rates
@given(specs(), lagss, dpss, st.sampled_from("CFWD"), decimals("0", "5", 3))
def test_learning_rate_scales_its_group_linearly(spec, lags, dps, group, k):
    assume(group in spec.groups)
    one = spec.replace(**{"lr_" + group.lower(): 1})
    scaled = spec.replace(**{"lr_" + group.lower(): k})
    a, b = lag_shares(one, lags, dps=dps), lag_shares(scaled, lags, dps=dps)
    for g in spec.groups:
        for l in range(lags):
            if g == group:
                assert abs(frac(b[g][l]) - k * frac(a[g][l])) <= rel_bound(dps) * frac(b[g][l])
                if k == 0:
                    assert b[g][l] == 0
            else:
                assert a[g][l] == b[g][l]


@given(specs(), st.integers(1, 20))
def test_all_frozen_gives_zero_weights(spec, lags):
    frozen = spec.replace(lr_w=0, lr_f=0, lr_c=0, lr_d=0)
    assert all(b == 0 for b in lag_weights(frozen, lags, dps=15))


# ---------------------------------------------------------------- D present / absent
@given(specs(d=True), lagss, dpss)
def test_d_share_only_at_lag_zero(spec, lags, dps):
    with_d = lag_shares(spec, lags, dps=dps)
    without = lag_shares(spec.replace(sigma_d=None), lags, dps=dps)
    assert "D" in with_d and "D" not in without
    assert all(v == 0 for v in with_d["D"][1:])
    for g in ("C", "F", "W"):
        assert with_d[g] == without[g]
    expected_d0 = {"ntk": spec.sigma_d**2, "variance": Fraction(1), "standard": Fraction(0)}[spec.metric]
    assert abs(frac(with_d["D"][0]) - spec.lr_d * expected_d0) <= rel_bound(dps) * spec.lr_d * expected_d0
    bw, bo = lag_weights(spec, lags, dps=dps), lag_weights(spec.replace(sigma_d=None), lags, dps=dps)
    assert bw[1:] == bo[1:]
    assert abs(frac(bw[0]) - frac(bo[0]) - frac(with_d["D"][0])) <= rel_bound(dps) * frac(bw[0])


# ---------------------------------------------------------------- conventions
@given(specs(convention="conv1"), lagss, dpss)
def test_conv2_is_conv1_shifted_by_one_lag(spec, lags, dps):
    c1 = lag_shares(spec, lags, dps=dps)
    c2 = lag_shares(spec.replace(convention="conv2"), lags + 1, dps=dps)
    for g in ("C", "F", "W"):
        assert c2[g][0] == 0
        assert all(close(a, b, dps, 4) for a, b in zip(c2[g][1:], c1[g]))
    if spec.has_d:
        assert c2["D"][0] == c1["D"][0] and all(v == 0 for v in c2["D"][1:])
    g1 = nngp_lag_variances(spec, lags, dps=dps)
    g2 = nngp_lag_variances(spec.replace(convention="conv2"), lags + 1, dps=dps)
    d2 = spec.sigma_d**2 if spec.has_d else 0
    assert abs(frac(g2[0]) - d2) <= rel_bound(dps) * d2
    if spec.has_d:  # conv1 lag 0 = gamma_0 + s_D^2
        assert abs(frac(g1[0]) - d2 - frac(g2[1])) <= rel_bound(dps) * frac(g1[0])
    assert all(close(a, b, dps) for a, b in zip(g2[2:], g1[1:]))


@given(specs(), lagss, st.sampled_from(METRICS))
def test_nngp_does_not_depend_on_metric_or_learning_rates(spec, lags, metric):
    a = nngp_lag_variances(spec, lags, dps=20)
    b = nngp_lag_variances(spec.replace(metric=metric, lr_w=0, lr_c=5), lags, dps=20)
    assert a == b


# ---------------------------------------------------------------- ratio -> s_W^2
@given(specs(sigma_w=decimals("0.05", "3")), st.integers(3, 200), dpss)
@example(RNNSpec(sigma_w=1), 50, 20)
@example(RNNSpec(sigma_w="1.5", metric="variance", convention="conv2", sigma_d=1), 100, 30)
def test_ratio_of_consecutive_weights_tends_to_r(spec, lags, dps):
    """beta_(l+1)/beta_l -> r = s_W^2 from above, with 0 <= ratio/r - 1 <= 1/m (m = Markov index of lag l).

    Why: each share is a r^m + b m r^(m-1) with a, b >= 0, so
    g_(m+1)/g_m = r (1 + b/(a r + b m)) in [r, r (1 + 1/m)].
    """
    beta = lag_weights(spec, lags, dps=dps)
    r = spec.sigma_w**2
    shift = 0 if spec.convention == "conv1" else 1
    slack = rel_bound(dps, 4)  # two values, each within 2^(1-prec)
    for l in range(shift + 1, lags - 1):  # lag 0 may carry D
        m = l - shift
        if beta[l] == 0:
            assert beta[l + 1] == 0
            continue
        q = frac(beta[l + 1]) / frac(beta[l]) / r
        assert 1 - slack <= q <= (1 + Fraction(1, m)) * (1 + slack), (l, q)


@given(specs(metric="ntk", lr=None, d=False, sigma_w=decimals("0.05", "3")), st.integers(3, 200), dpss)
def test_ntk_ratio_rate(spec, lags, dps):
    """ntk, all groups trained, conv1: beta_(l+1)/beta_l = r (l+3)/(l+2)."""
    beta = lag_weights(spec.replace(convention="conv1"), lags, dps=dps)
    r = spec.sigma_w**2
    for l in range(lags - 1):
        q = frac(beta[l + 1]) / frac(beta[l])
        assert abs(q - r * Fraction(l + 3, l + 2)) <= rel_bound(dps, 4) * q


# ---------------------------------------------------------------- precision
@given(specs(sigma_w=decimals("0.05", "1.2", 9)), lagss, st.integers(8, 40))
@example(RNNSpec(sigma_w="0.999999999", sigma_f="1.3"), 40, 15)
def test_interval_enclosures_contain_the_value_at_twice_the_digits(spec, lags, dps):
    """The iv result encloses the true value; the 2*dps value is within 2^(1-2 prec) of it.

    A (non-rigorous) failure would need the true value within 10^-(2 dps) relative of an
    outward-rounded endpoint: probability about 10^-dps per value.  The width check
    makes sure the enclosure is not vacuous: at most 64 roundings of 2^-prec each.
    """
    enc = lag_weights(spec, lags, dps=dps, interval=True)
    ref = lag_weights(spec, lags, dps=2 * dps)
    shares_enc = lag_shares(spec, lags, dps=dps, interval=True)
    shares_ref = lag_shares(spec, lags, dps=2 * dps)
    pairs = list(zip(enc, ref)) + [(e, r) for g in shares_ref for e, r in zip(shares_enc[g], shares_ref[g])]
    for e, r in pairs:
        lo, hi = frac(e._mpi_[0]), frac(e._mpi_[1])
        x = frac(r)
        assert lo <= x <= hi
        assert hi - lo <= rel_bound(dps, 64) * x


@given(specs(sigma_w=decimals("0.05", "1.2", 9)), lagss, st.integers(8, 40))
@example(RNNSpec(sigma_w="0.999999999", sigma_f="1.3"), 40, 15)
def test_raising_the_digits_changes_nothing_below_the_old_precision(spec, lags, dps):
    """At dps digits the relative error is <= 2^(1-prec) < 10^-dps; so the dps and 2*dps
    values agree to 10^-(dps-1) relative, a 10x margin over the two errors combined."""
    lo = lag_weights(spec, lags, dps=dps) + nngp_lag_variances(spec, lags, dps=dps)
    hi = lag_weights(spec, lags, dps=2 * dps) + nngp_lag_variances(spec, lags, dps=2 * dps)
    for a, b in zip(lo, hi):
        assert abs(frac(a) - frac(b)) <= Fraction(1, 10 ** (dps - 1)) * frac(b)


# ---------------------------------------------------------------- errors and helpers
@pytest.mark.parametrize("lags", [0, -1, 1.5, True, "3"])
def test_bad_lags(lags):
    with pytest.raises(SpecError, match="lags must be a positive integer"):
        lag_weights(RNNSpec(sigma_w="0.5"), lags)
    with pytest.raises(SpecError, match="lags must be a positive integer"):
        nngp_lag_variances(RNNSpec(sigma_w="0.5"), lags)


@pytest.mark.parametrize("dps", [0, 4, 10**6, 2.5])
def test_bad_dps(dps):
    with pytest.raises(ValueError, match="dps must be"):
        lag_weights(RNNSpec(sigma_w="0.5"), 3, dps=dps)


def test_global_mpmath_precision_untouched():
    import mpmath

    before = mpmath.mp.prec
    lag_weights(RNNSpec(sigma_w="0.5"), 5, dps=80)
    assert mpmath.mp.prec == before


def test_markov_coefficients_are_exact_rationals():
    coef = markov_coefficients(RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c="0.7", sigma_d="0.5"))
    assert coef.r == Fraction(81, 100)
    for v in list(coef.a.values()) + list(coef.b.values()) + [coef.d]:
        assert isinstance(v, Fraction)
