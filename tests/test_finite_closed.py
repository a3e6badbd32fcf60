"""The closed forms of theory.finite_closed against the exact engine, lag by lag.

The closed forms were found by exact interpolation of the engine's values; each
assertion below checks one at a lag the interpolation did not use as well, up
to l = 15, so a wrong formula (or an engine change that moves a coefficient)
fails here.
"""
from __future__ import annotations

from fractions import Fraction

import pytest

from theory.finite_closed import (
    coupling,
    diag_correction,
    lead_variance,
    ntk_coupling,
    ntk_diagonal_correction,
    ntk_variance,
)
from theory.finite_width import mean_lag_gram, raw_covariance, raw_mean, variance_lag_gram
from theory.spec import RNNSpec

LAGS = range(0, 16)


@pytest.mark.parametrize("group", ["C", "F", "W"])
def test_diagonal_means_have_no_1_over_n_term_and_the_stated_1_over_n2_term(group):
    for l in LAGS:
        p = raw_mean(group, l, l)
        assert p.coeff(1) == 0, l
        assert p.coeff(2) == diag_correction(group, l), l


@pytest.mark.parametrize("group", ["C", "F", "W"])
def test_couplings(group):
    for l in LAGS:
        for lp in range(l):
            got = raw_mean(group, l, lp).coeff(1)
            assert got == coupling(group, l, lp), (l, lp)
            assert raw_mean(group, lp, l).coeff(1) == coupling(group, lp, l), (lp, l)


@pytest.mark.parametrize("group", ["C", "F", "W"])
def test_leading_variances(group):
    for l in LAGS:
        assert raw_covariance(group, l, l, group, l, l, 1).coeff(1) == lead_variance(group, l), l


def test_leading_cross_covariance_of_c_and_w_shares():
    for l in LAGS:
        assert raw_covariance("C", l, l, "W", l, l, 1).coeff(1) == l * (l + 1), l
        assert raw_covariance("F", l, l, "W", l, l, 1).coeff(1) == l * (l + 1), l
        assert raw_covariance("C", l, l, "F", l, l, 1).coeff(1) == 0, l


def test_ntk_totals_match_the_lag_gram():
    spec = RNNSpec(sigma_w="1")
    mean = mean_lag_gram(spec, 16)
    var = variance_lag_gram(spec, 16, order=1)
    for l in LAGS:
        assert mean.total[l][l].coeff(2) == ntk_diagonal_correction(l)
        assert var.total[l][l].coeff(1) == ntk_variance(l)
        for lp in range(l):
            assert mean.total[l][lp].coeff(1) == ntk_coupling(l, lp)


def test_known_values():
    # E Theta_n[2,2] = 4 + 6/n^2, E Theta_n[3,3] = 5 + 40/n^2 + ..., E Theta_n[l, l-2] = l (l-1)/n + ...
    assert ntk_diagonal_correction(2) == 6 and ntk_diagonal_correction(3) == 40
    assert all(ntk_coupling(l, l - 2) == l * (l - 1) for l in range(2, 40))
    assert ntk_variance(0) == 4  # Var(|f|^2/n + |c|^2) with c ~ N(0, I/n): 2/n + 2/n


def test_bad_arguments():
    with pytest.raises(ValueError):
        diag_correction("X", 2)
    with pytest.raises(ValueError):
        coupling("C", 2, 2)
    with pytest.raises(ValueError):
        lead_variance("C", -1)
    assert isinstance(coupling("C", 3, 0), Fraction) and coupling("C", 3, 0) == 0
