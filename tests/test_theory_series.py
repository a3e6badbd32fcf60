"""Closed-form series (theory.series) against partial sums of the lag weights.

Exactly summable check: sum_(l<N) beta_l + tail(N) == total for every N; the
partial sum is taken exactly (each mpf converted to its rational value), so the
only errors are the roundings of the terms and of the two closed forms:
|error| <= 2^(1-prec) (sum_l beta_l + tail + total) <= 4 * 2^(1-prec) * total.
"""
from __future__ import annotations

from fractions import Fraction
from functools import partial

import pytest
from helpers import decimals, frac, ulp
from helpers import specs as shared_specs
from hypothesis import assume, example, given
from hypothesis import strategies as st

from theory.series import mean_lag, memory_horizon, peak_lag, series, tail_weight, total_weight
from theory.spec import METRICS, RNNSpec, SpecError
from theory.weights import lag_weights

#: Specifications with a convergent series by default (s_W <= 0.95); s_F, s_C, s_D in [0.05, 2].
specs = partial(shared_specs, sigma_w=decimals("0", "0.95", 3))


def nonzero(spec: RNNSpec) -> bool:
    return total_weight(spec, dps=15) > 0


dpss = st.integers(10, 50)


# ---------------------------------------------------------------- total and tails
@given(specs(), st.integers(0, 300), dpss)
@example(RNNSpec(sigma_w="0.99999999", sigma_f="1.3", sigma_c="0.7"), 40, 20)
@example(RNNSpec(sigma_w="0.9999", sigma_d="0.5", convention="conv2"), 1, 12)
def test_partial_sum_plus_tail_is_total(spec, n, dps):
    total = frac(total_weight(spec, dps=dps))
    tail = frac(tail_weight(spec, n, dps=dps))
    partial = sum((frac(b) for b in lag_weights(spec, n, dps=dps)), Fraction(0)) if n else Fraction(0)
    assert abs(partial + tail - total) <= 4 * ulp(dps) * total
    assert 0 <= tail <= total


@given(specs(), st.integers(0, 60))
def test_tail_steps_by_one_weight(spec, n):
    """tail(n) - tail(n+1) = beta_n (to working precision)."""
    dps = 30
    beta = frac(lag_weights(spec, n + 1, dps=dps)[n])
    a, b = frac(tail_weight(spec, n, dps=dps)), frac(tail_weight(spec, n + 1, dps=dps))
    assert abs(a - b - beta) <= 3 * ulp(dps) * a


@given(specs(sigma_w=decimals("0", "0.999999", 6)), st.integers(10, 40))
@example(RNNSpec(sigma_w="0.99999999", sigma_f="1.3", sigma_c="0.7"), 30)
@example(RNNSpec(sigma_w="0.999999999999", metric="variance", convention="conv2"), 12)
def test_series_change_nothing_below_the_old_precision(spec, dps):
    """dps and 2*dps closed forms agree to 10^-(dps-1) relative: each is within 2^(1-prec) < 10^-dps.

    (Before the fix of theory.series, 1 - r was computed from the rounded r and lost
    log2(1/(1-r)) bits: s_W = 0.99999999 gave only ~26 correct digits at dps = 30.)
    """
    assume(nonzero(spec))
    tol = Fraction(1, 10 ** (dps - 1))
    for fn in (total_weight, mean_lag, lambda s, dps: tail_weight(s, 7, dps=dps)):
        a, b = frac(fn(spec, dps=dps)), frac(fn(spec, dps=2 * dps))
        assert abs(a - b) <= tol * abs(b)
    assert peak_lag(spec, dps=dps) == peak_lag(spec, dps=2 * dps)


# ---------------------------------------------------------------- mean lag
@given(specs(sigma_w=decimals("0", "0.9", 3)), st.integers(10, 30))
def test_mean_lag_between_partial_sum_and_bounded_tail(spec, dps):
    """sum_(l<N) l beta_l <= mean * total <= the same + tail bound.

    Tail bound: for l >= N >= 2 (Markov index m >= N - 1 >= 1) the ratio of
    consecutive terms (l+1) beta_(l+1) / (l beta_l) is at most
    rho = r (1 + 1/N) (1 + 1/(N-1)) (test_theory_weights checks beta ratio <= r (1 + 1/m)),
    so sum_(l>=N) l beta_l <= N beta_N / (1 - rho).
    """
    assume(nonzero(spec))
    r = spec.sigma_w**2
    # choose N (floats only steer the choice; the bound below is exact): rho below
    # (1 + r)/2 and N^2 ((1 + r)/2)^N below 10^-dps, so the bracket is tight
    half = (1 + float(r)) / 2
    n = 8
    while float(r) * (n + 1) / (n - 1) >= half or n * n * half**n > 10.0**-dps:
        n += 8
    rho = r * Fraction(n + 1, n) * Fraction(n, n - 1)
    assert rho < 1
    beta = [frac(b) for b in lag_weights(spec, n + 1, dps=dps + 10)]
    total = frac(total_weight(spec, dps=dps + 10))
    first = sum(l * beta[l] for l in range(n))
    bound = n * beta[n] / (1 - rho)
    m = frac(mean_lag(spec, dps=dps)) * total
    slack = 4 * ulp(dps) * (m + first)  # rounding of mean_lag (dps) dominates the dps+10 terms
    assert first - slack <= m <= first + bound + slack


# ---------------------------------------------------------------- peak
@given(specs(sigma_w=decimals("0", "0.97", 4)))
@example(RNNSpec(sigma_w="0.5", metric="variance", lr_c="2/3", lr_f="2/3"))  # beta_0 == beta_1 exactly
@example(RNNSpec(sigma_w="0.9", metric="variance", lr_c="4300/1539", lr_f=0))  # g_2 == g_3 exactly
@example(RNNSpec(sigma_w="0.9", metric="variance", lr_c="4300/1539", lr_f=0, convention="conv2"))
def test_peak_is_the_first_argmax(spec):
    """Interval check at 60 digits: no lag certainly above the peak, every earlier lag certainly below.

    Exact ties (examples above) make the interval of a tied earlier lag overlap the
    peak's, so returning the later of two tied lags fails here, as it should.
    Beyond the listed lags the weights decrease: once g_(m+1)/g_m <= 1 it stays so
    (the ratio r (1 + b/(a r + b m)) decreases in m), checked on the last pair.
    """
    assume(nonzero(spec))
    p = peak_lag(spec, dps=30)
    n = 2 * p + 12
    enc = lag_weights(spec, n, dps=60, interval=True)
    lo = [frac(e._mpi_[0]) for e in enc]
    hi = [frac(e._mpi_[1]) for e in enc]
    assert hi[-1] <= lo[-2]  # decreasing at the end of the window
    for l in range(n):
        if l < p:
            assert hi[l] < lo[p], (l, p)
        else:
            assert lo[l] <= hi[p], (l, p)


def test_peak_with_d_tie_at_lag_zero():
    """conv1 with D: beta_0 = g_0 + d tied exactly with the rising peak g_3 -> lag 0 wins."""
    base = RNNSpec(sigma_w="0.9", metric="variance", lr_c="4300/1539", lr_f=0)
    w = lag_weights(base, 4, dps=60)
    assert frac(w[1]) > frac(w[0])  # rising
    r, A, B = Fraction(81, 100), Fraction(4300, 1539), Fraction(1)
    gap = (A * r**3 + 3 * B * r**2) - A  # exact g_3 - g_0, only to build the tie
    tied = base.replace(sigma_d=1, lr_d=gap)
    enc = lag_weights(tied, 4, dps=60, interval=True)
    assert frac(enc[0]._mpi_[1]) >= frac(enc[3]._mpi_[0]) and frac(enc[3]._mpi_[1]) >= frac(enc[0]._mpi_[0])
    assert peak_lag(tied) == 0


# ---------------------------------------------------------------- memory horizon
@given(specs(sigma_w=decimals("0", "0.99", 3)), st.sampled_from(["0.5", "0.1", "0.01", "1e-6", "1/3"]))
def test_memory_horizon_is_the_smallest_l(spec, fraction):
    """tail(L) <= eps * total and tail(L - 1) > eps * total, both at 50 digits.

    A false failure needs tail within 10^-48 relative of eps * total: the
    horizon itself is computed at 50 digits + 96 guard bits.
    """
    assume(nonzero(spec))
    L = memory_horizon(spec, fraction, dps=30)
    eps = Fraction(fraction)
    total = frac(total_weight(spec, dps=50))
    assert L >= 1
    assert frac(tail_weight(spec, L, dps=50)) <= eps * total
    assert frac(tail_weight(spec, L - 1, dps=50)) > eps * total


def test_memory_horizon_far_out():
    s = RNNSpec(sigma_w="0.99999999", sigma_f="1.3", sigma_c="0.7")
    L = memory_horizon(s, "0.01", dps=30)
    assert L > 10**8
    total = frac(total_weight(s, dps=40))
    assert frac(tail_weight(s, L, dps=40)) <= total / 100 < frac(tail_weight(s, L - 1, dps=40))


# ---------------------------------------------------------------- series object
def test_series_bundle_matches_the_functions():
    s = RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c="0.7", sigma_d="0.5")
    out = series(s, fraction="0.05", dps=30)
    assert out.total == total_weight(s, dps=30)
    assert out.mean_lag == mean_lag(s, dps=30)
    assert out.peak_lag == peak_lag(s, dps=30)
    assert out.horizon == memory_horizon(s, "0.05", dps=30)
    d = out.to_dict(12)
    assert d["horizon_fraction"] == "0.05" and len(d["total"].replace(".", "").lstrip("0")) == 12


# ---------------------------------------------------------------- errors
@given(st.one_of(decimals("1", "5", 3), st.just(Fraction(1))), st.sampled_from(METRICS))
def test_sigma_w_at_least_one_is_a_clear_error(sw, metric):
    spec = RNNSpec(sigma_w=sw, metric=metric)
    for fn in (total_weight, mean_lag, peak_lag, series, memory_horizon, lambda s: tail_weight(s, 3)):
        with pytest.raises(SpecError, match=r"need sigma_w < 1") as info:
            fn(spec)
        assert "\n" not in str(info.value)


@pytest.mark.parametrize("fraction", ["0", "1", "1.5", "-0.1", "nan"])
def test_bad_horizon_fraction(fraction):
    with pytest.raises(SpecError, match="fraction"):
        memory_horizon(RNNSpec(sigma_w="0.5"), fraction)


@pytest.mark.parametrize("lags", [-1, 1.5, True])
def test_bad_tail_lags(lags):
    with pytest.raises(SpecError, match="lags must be a non-negative integer"):
        tail_weight(RNNSpec(sigma_w="0.5"), lags)


def test_all_frozen_is_a_clear_error():
    s = RNNSpec(sigma_w="0.5", lr_w=0, lr_f=0, lr_c=0)
    assert total_weight(s) == 0
    for fn in (mean_lag, memory_horizon):
        with pytest.raises(SpecError, match="all lag weights are zero"):
            fn(s)
