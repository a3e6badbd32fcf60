"""The exact finite-width test (verify.stats.exact): it accepts the truth, rejects wrong theories, states its power.

Every draw is seeded, so each outcome below is deterministic; the comments say
why each outcome is not luck: the false-failure probability of an accepting
check is the test's ``alpha`` (1 %, measured in the slow test below), and each
rejecting check uses a perturbation several times the run's own
``min_detectable`` (detected with probability far above 0.99).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from theory.spec import RNNSpec, SpecError
from verify.stats.exact import exact_test, perturb_beta, predict
from verify.stats.power import draw_grams

SPEC = RNNSpec(sigma_w="0.9")
LAGS = 6
WIDTHS = (32, 64)
SEEDS = 96


def _draws(spec, widths=WIDTHS, seeds=SEEDS, lags=LAGS, tag=0):
    return {n: draw_grams(spec, n, lags, [(tag, n, s) for s in range(seeds)]) for n in widths}


@pytest.fixture(scope="module")
def base():
    return predict(SPEC, LAGS, WIDTHS), _draws(SPEC)


def test_accepts_the_exact_mean(base):
    pred, draws = base
    res = exact_test(pred, draws)
    # False-failure probability <= alpha = 1 % (union bound; measured in test_false_failure_rate).
    assert res.verdict == "consistent", res.to_dict(entries=False)
    assert 0.01 < res.p_value <= 1
    assert res.z_entries.shape == (LAGS * (LAGS + 1) // 2,)
    md = res.min_detectable
    assert 0 < md["uniform_beta"] < 0.2 and md["power"] == 0.99


def test_wide_limit_alone_is_rejected_at_small_width(base):
    """The infinite-width kernel is *not* the finite-width mean: at n = 32 the O(1/n) couplings
    (E Theta[2, 0] = 2 s_W^2/n, l(l-1) s_W^(2l-2)/n in general) are many standard errors away."""
    pred, draws = base
    L = LAGS
    limit = {n: np.zeros_like(m) for n, m in pred.means.items()}
    for n in limit:
        for l in range(L):
            limit[n][l, 0, 0, l, 0, 0] = pred.beta[l]
    from verify.stats.exact import Prediction

    wrong = Prediction(pred.spec, L, limit, pred.beta, pred.lead_cov, "wide limit")
    assert exact_test(wrong, draws).verdict == "inconsistent"


def test_rejects_beta_off_by_several_detectable_sizes(base):
    pred, draws = base
    res = exact_test(pred, draws)
    delta = 4 * res.min_detectable["uniform_beta"]  # detected with probability >> 0.99
    for sign in (+1, -1):
        bad = exact_test(perturb_beta(pred, sign * delta), draws)
        assert bad.verdict == "inconsistent"
        assert abs(bad.z_uniform) > bad.critical["uniform"]


def test_rejects_a_single_wrong_lag_weight(base):
    pred, draws = base
    res = exact_test(pred, draws)
    per_lag = res.min_detectable["single_beta"]["per_lag"]
    lag = int(np.argmin(per_lag))
    bad = exact_test(perturb_beta(pred, 4 * per_lag[lag], lag=lag), draws)
    assert bad.verdict == "inconsistent"
    assert np.max(np.abs(bad.z_entries)) > bad.critical["entry"]


def test_rejects_swapped_convention(base):
    _, draws = base
    wrong = predict(SPEC.replace(convention="conv2"), LAGS, WIDTHS)
    from verify.stats.exact import Prediction

    wrong = Prediction(SPEC, LAGS, wrong.means, wrong.beta, wrong.lead_cov, "conv2")
    assert exact_test(wrong, draws).verdict == "inconsistent"


def test_deterministic_entries_checked_exactly():
    """conv2 with D: lag 0 carries only the D share, a constant; a wrong constant is a failure."""
    spec = RNNSpec(sigma_w="0.9", sigma_d="0.5", convention="conv2")
    widths, lags = (16, 32), 4
    pred = predict(spec, lags, widths)
    draws = _draws(spec, widths, 24, lags, tag=3)
    assert exact_test(pred, draws).verdict == "consistent"
    from verify.stats.exact import Prediction

    means = {n: m.copy() for n, m in pred.means.items()}
    for m in means.values():
        m[0, 0, 0, 0, 0, 0] *= 1 + 1e-6
    bad = exact_test(Prediction(spec, lags, means, pred.beta, pred.lead_cov, "D off"), draws)
    assert bad.verdict == "inconsistent" and bad.deterministic_failures


def test_vector_inputs_and_outputs():
    spec = RNNSpec(sigma_w="0.8", n_x=2, n_y=2)
    widths, lags = (32, 64), 3
    pred = predict(spec, lags, widths)
    draws = _draws(spec, widths, 48, lags, tag=4)
    res = exact_test(pred, draws)
    assert res.verdict == "consistent"  # false-failure probability <= 1 %
    assert len(res.entries) == (lags * 4) * (lags * 4 + 1) // 2
    # dropping the 1/n_x factor doubles every mean: rejected
    from verify.stats.exact import Prediction

    doubled = Prediction(spec, lags, {n: 2 * m for n, m in pred.means.items()}, 2 * pred.beta, pred.lead_cov)
    assert exact_test(doubled, draws).verdict == "inconsistent"


@pytest.mark.parametrize(
    "bad, message",
    [
        ({}, "at one width"),
        ({32: np.zeros((1, LAGS, 1, 1, LAGS, 1, 1))}, "at least 2"),
        ({32: np.zeros((4, LAGS + 1, 1, 1, LAGS + 1, 1, 1))}, "shape"),
        ({48: np.zeros((4, LAGS, 1, 1, LAGS, 1, 1))}, "no mean at width 48"),
        ({32: np.full((4, LAGS, 1, 1, LAGS, 1, 1), np.nan)}, "non-finite"),
    ],
)
def test_bad_input(base, bad, message):
    pred, _ = base
    with pytest.raises(SpecError, match=message):
        exact_test(pred, bad)


def test_alpha_validated(base):
    pred, draws = base
    with pytest.raises(SpecError, match="alpha"):
        exact_test(pred, draws, alpha=1.5)


@pytest.mark.slow
def test_false_failure_rate():
    """Over 200 independent repetitions the true theory is rejected at most at the nominal 1 %:
    k rejections out of 200 are inconsistent with a rate <= 1 % when P(Bin(200, 0.01) >= k) < 1e-3,
    i.e. k >= 8; the test fails only then (probability < 1e-3 if the level holds)."""
    lags, widths, seeds, reps = 16, (64, 128), 64, 200
    pred = predict(SPEC, lags, widths)
    k = sum(not exact_test(pred, _draws(SPEC, widths, seeds, lags, tag=1000 + r)).consistent for r in range(reps))
    limit = int(stats.binom.isf(1e-3, reps, 0.01)) + 1
    assert k < limit, f"{k} false failures in {reps} repetitions"


@pytest.mark.slow
def test_power_agrees_with_its_prediction():
    """For beta off by delta the measured rejection rate over 100 repetitions lies within the
    99.9 % binomial band of the predicted power of the uniform contrast (a lower bound for the
    whole test) and 1."""
    lags, widths, seeds, reps = 8, (64, 128), 64, 100
    pred = predict(SPEC, lags, widths)
    first = exact_test(pred, _draws(SPEC, widths, seeds, lags, tag=5000))
    delta = first.min_detectable["uniform_beta"] / 2  # mid-range power, where agreement is informative
    wrong = perturb_beta(pred, delta)
    rejected, predicted = 0, []
    z = stats.norm.isf(0.01)
    for r in range(reps):
        draws = _draws(SPEC, widths, seeds, lags, tag=6000 + r)
        res = exact_test(wrong, draws)
        rejected += not res.consistent
        A = (res.critical["uniform"] + z) / exact_test(pred, draws).min_detectable["uniform_beta"]
        predicted.append(stats.norm.cdf(delta * A - res.critical["uniform"]))
    p = float(np.mean(predicted))
    lo = stats.binom.ppf(5e-4, reps, p)
    assert rejected >= lo, (rejected, p)
    assert math.isfinite(p) and 0.05 < p < 0.95
