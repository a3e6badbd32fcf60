"""Exact relations of the finite-width moments (theory.finite_width) that hold as at infinite width.

(c) The constant term of ``E Theta_n[l, l']`` is the wide limit ``beta_l delta_ll' / n_x``,
    share by share (the metric "standard" has F and D shares of order ``1/n``: their
    constant term, like their lag weight, is 0).
(d) Relations between specifications, exact as polynomials in ``1/n``:

* conv2 is conv1 shifted by one lag (no D): ``conv2[l+1, l'+1] = conv1[l, l']`` and conv2's
  lag-0 row and column are 0;
* the metric only rescales each group: ``variance`` share = ``ntk`` share / s_g^2 (variance of
  a share: / s_g^4); ``standard`` C and W shares equal the ``variance`` ones, its F and D shares
  are the ``variance`` ones times ``n_x / n``;
* a learning-rate multiplier ``lr_g`` multiplies share g (its variance by ``lr_g^2``); 0 removes
  it; the total is the sum of the shares and its variance a quadratic form in the multipliers;
* ``n_y`` changes nothing on the ``(a, i) = (b, j)`` entries;
* the ``1/n_x`` law: every share of the mean scales as ``1/n_x`` (its variance as ``1/n_x^2``),
  except the F and D shares of the metric ``standard``, which do not depend on ``n_x``
  (the F share's fan-in is ``n_x`` but the metric divides by ``n``).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Dict

import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory.finite_width import (
    InvPoly,
    covariance_entries,
    expected_sq_error,
    mean_lag_gram,
    variance_lag_gram,
)
from theory.precision import context
from theory.spec import RNNSpec
from theory.weights import lag_weights, markov_coefficients
from verify import strategies as vst

LR_VALUES = (0, "0.5", 1, "2.5")
GROUPS3 = ("C", "F", "W")


def specs(**kw):
    return vst.specs(lr=LR_VALUES, **kw)


def beta_shares(spec: RNNSpec, lags: int) -> Dict[str, list]:
    """Exact lag shares beta_l^g from theory.weights.markov_coefficients (a_g r^m + b_g m r^(m-1))."""
    coef = markov_coefficients(spec)
    out: Dict[str, list] = {}
    for g in GROUPS3:
        vals = []
        for l in range(lags):
            m = l if spec.convention == "conv1" else l - 1
            if m < 0:
                vals.append(Fraction(0))
                continue
            v = coef.a[g] * coef.r**m
            if m:
                v += coef.b[g] * m * coef.r ** (m - 1)
            vals.append(v)
        out[g] = vals
    if spec.has_d:
        out["D"] = [coef.d] + [Fraction(0)] * (lags - 1)
    return out


def zero_grid(lags: int):
    return [[InvPoly.zero()] * lags for _ in range(lags)]


def share(mom, g: str, l: int, lp: int) -> InvPoly:
    return mom.shares[g][l][lp] if g in mom.shares else InvPoly.zero()


# ------------------------------------------------------------ (c) constant terms
@given(specs() | specs(sigma_w=(0, 0)), st.integers(1, 7))
def test_constant_term_is_beta_over_n_x(spec, lags):
    """const(E Theta[l, l']) = beta_l delta_ll' / n_x, in total and share by share, exactly."""
    mom = mean_lag_gram(spec, lags)
    shares = beta_shares(spec, lags)
    for l in range(lags):
        for lp in range(lags):
            if l != lp:
                assert mom.total[l][lp].coeff(0) == 0, (l, lp)
                continue
            beta = sum(shares[g][l] for g in shares)
            assert mom.total[l][l].coeff(0) == beta / spec.n_x, l
            for g in shares:
                assert share(mom, g, l, l).coeff(0) == shares[g][l] / spec.n_x, (g, l)


@given(specs(), st.integers(1, 7))
def test_constant_term_matches_lag_weights(spec, lags):
    """The same against theory.weights.lag_weights at 60 digits: the exact rational differs from the
    mpmath value by at most 2^-190 relative (rounding at 60 digits, a few operations)."""
    mom = mean_lag_gram(spec, lags)
    ctx = context(60)
    beta = lag_weights(spec, lags, dps=60)
    for l in range(lags):
        got = mom.total[l][l].coeff(0) * spec.n_x
        ref = ctx.mpf(beta[l])
        assert abs(ctx.mpf(got.numerator) / got.denominator - ref) <= ctx.mpf(2) ** -190 * max(abs(ref), 1e-300)


@pytest.mark.parametrize("lags", [1, 6, 12])
def test_ntk_conv1_closed_form(lags):
    """metric ntk, conv1, no D: the constant term is (l + 2) s_C^2 s_F^2 s_W^(2l) (README)."""
    spec = RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c="0.7")
    mom = mean_lag_gram(spec, lags)
    for l in range(lags):
        assert mom.total[l][l].coeff(0) == (l + 2) * Fraction("0.49") * Fraction("1.69") * Fraction("0.81") ** l


@given(specs(metrics=("standard",)), st.integers(2, 6))
def test_standard_metric_f_and_d_shares_are_order_one_over_n(spec, lags):
    """metric standard: the F and D shares have no constant term but a non-zero 1/n term (where reachable),
    which does not carry 1/n_x: F share = lr_F s_C^2 s_W^(2m) E|(W~^T)^m c~|^2/n^2 on the diagonal."""
    mom = mean_lag_gram(spec, lags)
    for l in range(lags):
        m = l if spec.convention == "conv1" else l - 1
        f = share(mom, "F", l, l)
        assert f.coeff(0) == 0
        if m >= 0:
            # E |(W~^T)^m c~|^2 = E tr(W~^m (W~^m)^T) = n to leading order (each W~ keeps the norm)
            assert f.coeff(1) == spec.lr_f * spec.sigma_c**2 * spec.sigma_w ** (2 * m), l
        if spec.has_d:
            d = share(mom, "D", l, l)
            assert d == (InvPoly.of([0, spec.lr_d]) if l == 0 else InvPoly.zero()), l


# ----------------------------------------------------------- (d) the relations
def no_d(spec: RNNSpec) -> RNNSpec:
    return spec.replace(sigma_d=None)


@given(specs(with_d=False), st.integers(1, 6))
def test_conv2_is_conv1_shifted_by_one_lag(spec, lags):
    c1 = mean_lag_gram(spec.replace(convention="conv1"), lags)
    c2 = mean_lag_gram(spec.replace(convention="conv2"), lags + 1)
    for g in GROUPS3:
        for l in range(lags + 1):
            assert c2.shares[g][0][l] == InvPoly.zero() and c2.shares[g][l][0] == InvPoly.zero()
        for l in range(lags):
            for lp in range(lags):
                assert c2.shares[g][l + 1][lp + 1] == c1.shares[g][l][lp], (g, l, lp)
    for l in range(lags):
        for lp in range(lags):
            assert c2.total[l + 1][lp + 1] == c1.total[l][lp]


@given(specs(), st.integers(1, 6))
def test_metric_rescales_each_group(spec, lags):
    """variance share = ntk share / s_g^2; standard C, W shares = variance ones; standard F, D = variance * n_x / n."""
    ntk = mean_lag_gram(spec.replace(metric="ntk"), lags)
    var = mean_lag_gram(spec.replace(metric="variance"), lags)
    std = mean_lag_gram(spec.replace(metric="standard"), lags)
    for g in spec.groups:
        s2 = spec.sigma(g) ** 2
        assert s2 > 0
        for l in range(lags):
            for lp in range(lags):
                assert share(var, g, l, lp) == share(ntk, g, l, lp).scale(1 / s2), (g, l, lp)
                if g in ("C", "W"):
                    assert share(std, g, l, lp) == share(var, g, l, lp)
                else:
                    assert share(std, g, l, lp) == share(var, g, l, lp).scale(spec.n_x, 1)


@given(specs(), st.integers(1, 6), st.sampled_from(["C", "F", "W", "D"]),
       st.sampled_from([Fraction(0), Fraction(1, 3), Fraction(7, 2)]))
def test_learning_rate_scales_one_share(spec, lags, g, lam):
    """lr_g = lam multiplies share g by lam / lr_g (0 removes it) and leaves the others; total = sum of shares."""
    base = spec.replace(**{f"lr_{g.lower()}": 1})
    changed = spec.replace(**{f"lr_{g.lower()}": lam})
    m0, m1 = mean_lag_gram(base, lags), mean_lag_gram(changed, lags)
    for l in range(lags):
        for lp in range(lags):
            for h in spec.groups:
                want = share(m0, h, l, lp).scale(lam) if h == g else share(m0, h, l, lp)
                assert share(m1, h, l, lp) == want, (h, l, lp)
            total = InvPoly.zero()
            for h in m1.shares:
                total = total + m1.shares[h][l][lp]
            assert m1.total[l][lp] == total


@given(specs(), st.integers(1, 6))
def test_n_y_does_not_change_the_mean(spec, lags):
    ref = mean_lag_gram(spec.replace(n_y=1), lags)
    for ny in (2, 3):
        mom = mean_lag_gram(spec.replace(n_y=ny), lags)
        assert mom.total == ref.total and dict(mom.shares) == dict(ref.shares)


def nx_exponent(metric: str, g: str) -> int:
    """Power of 1/n_x in share g: 1, except the F and D shares of the metric standard (0)."""
    return 0 if metric == "standard" and g in ("F", "D") else 1


@given(specs(), st.integers(1, 6))
def test_one_over_n_x_law(spec, lags):
    ref = mean_lag_gram(spec.replace(n_x=1), lags)
    for nx in (2, 3):
        mom = mean_lag_gram(spec.replace(n_x=nx), lags)
        for g in spec.groups:
            factor = Fraction(1, nx ** nx_exponent(spec.metric, g))
            for l in range(lags):
                for lp in range(lags):
                    assert share(mom, g, l, lp) == share(ref, g, l, lp).scale(factor), (g, nx, l, lp)


# ------------------------------------------------------------------ variance
VAR_LAGS = st.integers(1, 4)


@given(specs(with_d=False), VAR_LAGS)
def test_variance_conv2_shift(spec, lags):
    c1 = variance_lag_gram(spec.replace(convention="conv1"), lags)
    c2 = variance_lag_gram(spec.replace(convention="conv2"), lags + 1)
    for l in range(lags + 1):
        assert c2.total[0][l] == InvPoly.zero() and c2.total[l][0] == InvPoly.zero()
    for l in range(lags):
        for lp in range(lags):
            assert c2.total[l + 1][lp + 1] == c1.total[l][lp]
            for g in GROUPS3:
                assert c2.shares[g][l + 1][lp + 1] == c1.shares[g][l][lp]


@given(specs(), VAR_LAGS)
def test_variance_metric_and_d(spec, lags):
    """Share variances: variance metric = ntk / s_g^4; standard C, W = variance; standard F = variance (n_x/n)^2.
    D is deterministic: it changes no variance."""
    ntk = variance_lag_gram(spec.replace(metric="ntk"), lags)
    var = variance_lag_gram(spec.replace(metric="variance"), lags)
    std = variance_lag_gram(spec.replace(metric="standard"), lags)
    for g in GROUPS3:
        s4 = spec.sigma(g) ** 4
        for l in range(lags):
            for lp in range(lags):
                assert var.shares[g][l][lp] == ntk.shares[g][l][lp].scale(1 / s4)
                want = var.shares[g][l][lp] if g != "F" else var.shares[g][l][lp].scale(spec.n_x**2, 2)
                assert std.shares[g][l][lp] == want
    other = variance_lag_gram(spec.replace(sigma_d=None if spec.has_d else "0.5"), lags)
    assert other.total == variance_lag_gram(spec, lags).total


@given(specs(), VAR_LAGS, st.lists(st.sampled_from([Fraction(0), Fraction(1, 2), Fraction(3)]), min_size=3,
                                   max_size=3))
def test_variance_is_a_quadratic_form_in_the_learning_rates(spec, lags, lams):
    """Var(total) = sum_(g,h) lam_g lam_h K_gh, with K_gg from the share variances (lr 1) and K_gh from
    the polarization Var(e_g + e_h) - Var(e_g) - Var(e_h) (two groups at lr 1, the third at 0)."""
    lam = dict(zip(GROUPS3, lams))

    def with_lr(values: Dict[str, Fraction]):
        return variance_lag_gram(spec.replace(**{f"lr_{g.lower()}": v for g, v in values.items()}), lags)

    unit = with_lr({"C": 1, "F": 1, "W": 1})
    pair = {}
    for g, h in (("C", "F"), ("C", "W"), ("F", "W")):
        pair[(g, h)] = with_lr({k: (1 if k in (g, h) else 0) for k in GROUPS3})
    got = with_lr(lam)
    for l in range(lags):
        for lp in range(lags):
            want = InvPoly.zero()
            for g in GROUPS3:
                want = want + unit.shares[g][l][lp].scale(lam[g] ** 2)
                assert got.shares[g][l][lp] == unit.shares[g][l][lp].scale(lam[g] ** 2)
            for (g, h), mom in pair.items():
                cross = mom.total[l][lp] - unit.shares[g][l][lp] - unit.shares[h][l][lp]
                want = want + cross.scale(lam[g] * lam[h])
            assert got.total[l][lp] == want, (l, lp)


@given(specs(), VAR_LAGS)
def test_variance_n_y_and_n_x(spec, lags):
    """n_y changes nothing; share variances scale as 1/n_x^2 (standard F: no n_x)."""
    ref = variance_lag_gram(spec.replace(n_x=1, n_y=1), lags)
    for nx, ny in ((1, 3), (2, 1), (3, 2)):
        mom = variance_lag_gram(spec.replace(n_x=nx, n_y=ny), lags)
        for g in GROUPS3:
            factor = Fraction(1, nx ** (2 * nx_exponent(spec.metric, g)))
            for l in range(lags):
                for lp in range(lags):
                    assert mom.shares[g][l][lp] == ref.shares[g][l][lp].scale(factor)
        if spec.metric != "standard":
            for l in range(lags):
                for lp in range(lags):
                    assert mom.total[l][lp] == ref.total[l][lp].scale(Fraction(1, nx * nx))


@given(specs(max_dims=1), VAR_LAGS, st.integers(0, 3))
def test_truncated_variance_and_covariance_consistency(spec, lags, order):
    """order=k keeps the n^0..n^-k coefficients; covariance_entries(e, e) = Var; Cov symmetric;
    expected_sq_error = sum Var + (mean - its constant term)^2."""
    full = variance_lag_gram(spec, lags)
    cut = variance_lag_gram(spec, lags, order=order)
    mean = mean_lag_gram(spec, lags)
    err = InvPoly.zero()
    for l in range(lags):
        for lp in range(lags):
            assert cut.total[l][lp] == full.total[l][lp].truncate(order)
            assert covariance_entries(spec, (l, lp), (l, lp)) == full.total[l][lp]
            e2 = (lp, (l + 1) % lags)
            assert covariance_entries(spec, (l, lp), e2) == covariance_entries(spec, e2, (l, lp))
            bias = mean.total[l][lp] - InvPoly.of([mean.total[l][lp].coeff(0)])
            err = err + full.total[l][lp] + bias * bias
    assert expected_sq_error(spec, lags) == err
    assert expected_sq_error(spec, lags, order=order) == err.truncate(order)


def test_relations_can_fail():
    """The checks above distinguish: conv2 unshifted differs from conv1, ntk differs from variance
    when s_W != 1, and the 1/n_x law with the standard exception reversed fails."""
    spec = RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c="0.7", sigma_d="0.5", n_x=2, metric="standard")
    c1 = mean_lag_gram(no_d(spec).replace(convention="conv1"), 3)
    c2 = mean_lag_gram(no_d(spec).replace(convention="conv2"), 3)
    assert c2.total[1][1] != c1.total[1][1]
    ntk = mean_lag_gram(spec.replace(metric="ntk"), 3)
    var = mean_lag_gram(spec.replace(metric="variance"), 3)
    assert ntk.shares["W"][2][2] != var.shares["W"][2][2]
    one, two = mean_lag_gram(spec.replace(n_x=1), 3), mean_lag_gram(spec, 3)
    assert two.shares["F"][1][1] == one.shares["F"][1][1] != one.shares["F"][1][1].scale(Fraction(1, 2))
    assert two.shares["C"][1][1] == one.shares["C"][1][1].scale(Fraction(1, 2)) != one.shares["C"][1][1]
