"""Width sweeps (verify.stats.sweep): per-draw errors, determinism, executors, statistics and verdict.

Statistical tests here use fixed seeds (deterministic); each states the
false-failure probability its threshold would have under a fresh seed.
"""
from __future__ import annotations

import json
import math
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from theory.spec import RNNSpec, SpecError
from verify.engine.backend import BackendError, ComputeOptions
from verify.engine.ntk import lag_gram, limit_lag_gram
from verify.engine.rnn import init_rnn
from verify.stats.sweep import (
    SweepDraws,
    SweepPlan,
    SweepTask,
    fit_slope,
    lag_gram_errors,
    prediction_band,
    run_task,
    summarize,
    sweep,
    t_interval,
    task_seed_sequence,
)

SPEC = RNNSpec(sigma_w="0.9")
SMALL = dict(widths=(16, 32, 64), seeds=3, lags=4)


def run(widths, seeds, lags, *, spec=SPEC, compute=ComputeOptions(), executor=None, **plan):
    """``sweep`` of ``SweepPlan(spec, widths, seeds, lags, **plan)``, no progress bar."""
    return sweep(SweepPlan(spec, widths, seeds, lags, **plan), compute=compute, executor=executor, progress=False)


def _same(a, b) -> bool:
    """Bit-for-bit equality of two sweep results (timings excluded)."""
    return json.dumps(a.to_dict(timings=False), sort_keys=True) == json.dumps(b.to_dict(timings=False), sort_keys=True)


# ------------------------------------------------------------------ per-draw numbers
def test_lag_gram_errors_by_hand():
    # limit diag(2, 1) (scalar io, 2 lags); gram = [[2.2, 0.3], [0.3, 0.9]]
    limit = np.zeros((2, 1, 1, 2, 1, 1))
    limit[0, 0, 0, 0, 0, 0], limit[1, 0, 0, 1, 0, 0] = 2.0, 1.0
    gram = limit.copy()
    gram[0, 0, 0, 0, 0, 0] = 2.2
    gram[1, 0, 0, 1, 0, 0] = 0.9
    gram[0, 0, 0, 1, 0, 0] = gram[1, 0, 0, 0, 0, 0] = 0.3
    err = lag_gram_errors(gram, limit)
    ref = math.sqrt(5.0)
    assert err["frob"] == pytest.approx(math.sqrt(0.04 + 0.01 + 2 * 0.09) / ref, rel=1e-14)
    np.testing.assert_allclose(err["diag_rel"], [0.1, 0.1], rtol=1e-13)
    np.testing.assert_allclose(err["diag_signed"], [0.2, -0.1], rtol=1e-13)
    assert err["offdiag"] == pytest.approx(math.sqrt(2 * 0.09) / ref, rel=1e-14)


def test_lag_gram_errors_blocks_and_zero_weight():
    # n_y = 1, n_x = 2: a lag whose beta is 0 has no relative diagonal error (NaN), but a signed one
    limit = np.zeros((2, 1, 2, 2, 1, 2))
    for i in range(2):
        limit[0, 0, i, 0, 0, i] = 0.5
    gram = limit.copy()
    gram[1, 0, 0, 1, 0, 0] = 0.25
    gram[0, 0, 0, 0, 0, 1] = 0.1  # within the lag-0 block, off the identity
    err = lag_gram_errors(gram, limit)
    assert np.isnan(err["diag_rel"][1])
    assert err["diag_rel"][0] == pytest.approx(0.1 / math.sqrt(0.5), rel=1e-14)
    np.testing.assert_allclose(err["diag_signed"], [0.0, 0.125], atol=1e-15)
    assert err["offdiag"] == pytest.approx(0.1 / math.sqrt(0.5), rel=1e-14)
    with pytest.raises(SpecError, match="zero"):
        lag_gram_errors(gram, np.zeros_like(limit))
    with pytest.raises(SpecError, match="shape"):
        lag_gram_errors(gram[:1, :, :, :1], limit)


def test_task_is_the_documented_draw():
    """Draw (n, s) of a sweep is init_rnn with SeedSequence([base, n, s]); errors recomputed independently."""
    limit = limit_lag_gram(SPEC, 5)
    r = run_task(SweepTask(SPEC, 48, 2, 7, 5, limit))
    rnn = init_rnn(SPEC, 48, np.random.default_rng(np.random.SeedSequence([7, 48, 2])))
    th = np.asarray(lag_gram(rnn, SPEC, 5).total).reshape(5, 5)
    lim = limit.reshape(5, 5)
    assert r.frob == pytest.approx(np.linalg.norm(th - lim) / np.linalg.norm(lim), rel=1e-13)
    np.testing.assert_allclose(r.diag_signed, np.diag(th) - np.diag(lim), rtol=1e-12, atol=1e-15)
    assert task_seed_sequence(7, 48, 2).entropy == np.random.SeedSequence([7, 48, 2]).entropy


# ------------------------------------------------------------------ sweep mechanics
def test_sweep_shapes_keys_and_json():
    res = run(**SMALL, base_seed=3)
    assert res.frob.shape == (3, 3) and res.diag_rel.shape == (3, 3, 4) and res.offdiag.shape == (3, 3)
    assert res.seed_sequences[0] == [3, 16, 0] and len(res.seed_sequences) == 9
    d = res.to_dict()
    text = json.dumps(d, allow_nan=False)  # NaN must have become null
    assert d["verdict"] in ("consistent", "inconsistent") and d["verdict"] == res.verdict
    assert d["slope"] == res.slope.slope
    for key in ("rules", "fit", "band", "spec", "widths", "seeds", "beta", "frob", "bias", "timings", "seed_sequences"):
        assert key in d, key
    assert "timings" not in res.to_dict(timings=False)
    assert json.loads(text)["widths"] == [16, 32, 64]
    # the sweep's beta is theory's, rounded once
    from verify.engine.ntk import lag_weights_float64

    np.testing.assert_array_equal(res.beta, lag_weights_float64(SPEC, 4))


def test_sweep_order_and_seed_list_do_not_matter():
    a = run((64, 16, 32), (0, 1, 2), 4)
    b = run(**SMALL)
    assert a.widths == (16, 32, 64) and _same(a, b)
    # a draw does not depend on the other draws of the sweep
    c = run((16, 32, 64, 128), (2, 5), 4)
    np.testing.assert_array_equal(c.frob[:3, 0], b.frob[:, 2])


def test_thread_pool_equals_serial_bit_for_bit():
    serial = run(**SMALL)
    with ThreadPoolExecutor(max_workers=3) as ex:
        threaded = run(**SMALL, executor=ex)
    assert _same(serial, threaded)


def test_process_pool_equals_serial_bit_for_bit():
    kw = dict(SMALL, widths=(8, 16, 24), seeds=2)
    serial = run(**kw)
    with ProcessPoolExecutor(max_workers=2) as ex:
        pooled = run(**kw, executor=ex)
    assert _same(serial, pooled)


def test_bias_probe_shares_the_sweeps_draws():
    res = run(**SMALL, bias_seeds=5, bias_widths=(32, 16))
    assert res.has_probe and res.bias_widths == (16, 32) and res.bias_seeds == tuple(range(5))
    assert res.bias_diag_signed.shape == (2, 5, 4)
    # probe seeds 0..2 at 16 and 32 are the sweep's own draws
    np.testing.assert_array_equal(res.bias_diag_signed[:, :3], res.diag_signed[:2])
    bt, bh = res.bias_table()
    assert bt.shape == (2, 4)
    m, _ = t_interval(res.rel_signed(probe=True)[1], res.confidence, axis=0)
    np.testing.assert_allclose(bt[1], 32 * m, rtol=1e-14)
    no_probe = run(**SMALL)
    assert not no_probe.has_probe and no_probe.bias_table()[0].shape == (3, 4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(widths=(16, 32), seeds=3), "at least 3 widths"),
        (dict(widths=(16, 32, 64), seeds=1), "at least 3 widths and 2 seeds"),
        (dict(widths=(16, 16, 32), seeds=2), "distinct"),
        (dict(widths=(16, 0, 32), seeds=2), "widths must be integers >= 1"),
        (dict(widths=(16, 32, 64), seeds=(0, -1)), "seeds must be integers >= 0"),
        (dict(widths=(16, 32, 64), seeds=0), "positive count"),
        (dict(widths=(16, 32, 64), seeds=2, lags=0), "lags"),
        (dict(widths=(16, 32, 64), seeds=2, confidence=1.0), "confidence"),
        (dict(widths=(16, 32, 64), seeds=2, slope_model="cubic"), "slope model"),
        (dict(widths=(16, 32, 64), seeds=2, base_seed=-1), "base_seed"),
        (dict(widths=(16, 32, 64), seeds=2, bias_seeds=1), "bias_seeds"),
    ],
)
def test_sweep_rejects_bad_arguments(kwargs, match):
    kw = dict(lags=4)
    kw.update(kwargs)
    with pytest.raises(SpecError, match=match):
        SweepPlan(SPEC, kw.pop("widths"), kw.pop("seeds"), kw.pop("lags"), **kw)


def test_sweep_rejects_bad_backend_before_any_work():
    with pytest.raises(BackendError):
        run((16, 32, 64), 2, 4, compute=ComputeOptions(backend="nope"))
    with pytest.raises(SpecError, match="zero"):
        run((16, 32, 64), 2, 4, spec=RNNSpec(sigma_w="0.9", lr_w=0, lr_f=0, lr_c=0))
    with pytest.raises(SpecError, match="SweepPlan"):
        sweep(SPEC)


# ------------------------------------------------------------------ statistics
def _synthetic(widths, S, p, rng, c=2.0, sd=0.25):
    """Errors with a known law: e = c n^p exp(sd Z), Z ~ N(0, 1)."""
    w = np.asarray(widths, dtype=float)[:, None]
    return c * w ** p * np.exp(sd * rng.standard_normal((len(widths), S)))


WIDTHS = (128, 256, 512, 1024, 2048, 4096)


@pytest.mark.parametrize("p", [-0.5, -1.0, -0.25])
def test_slope_recovery_and_coverage(p):
    """Synthetic errors with a known exponent p.  Over R = 400 replicates at
    confidence 0.9, the number of intervals missing p is Binomial(400, 0.1)
    (mean 40, sd 6) for both models (the plain model is exact here, the
    corrected one has a zero true c): the test allows 15..70 misses, a
    false-failure probability below 1e-6 (normal tail beyond 4.2 sd below,
    5 sd above).  The mean estimate is unbiased: |mean - p| < 5 sd/sqrt(R)
    (false failure ~6e-7)."""
    rng = np.random.default_rng(20260101)
    R = 400
    for model in ("plain", "corrected"):
        est, miss = [], 0
        for _ in range(R):
            fit = fit_slope(WIDTHS, _synthetic(WIDTHS, 8, p, rng), 0.9, model)
            est.append(fit.slope)
            miss += not (fit.interval[0] <= p <= fit.interval[1])
        assert 15 <= miss <= 70, (model, miss)
        est = np.asarray(est)
        assert abs(est.mean() - p) < 5 * est.std(ddof=1) / math.sqrt(R), (model, est.mean())


def test_corrected_model_recovers_exponent_with_1_over_n_term():
    """e = n^-1/2 exp(c/n) exactly (no noise but tiny jitter): the corrected fit finds p and c,
    the plain fit is biased.  Jitter sd 1e-9 makes the intervals ~1e-8 wide: tolerances 1e-6."""
    rng = np.random.default_rng(5)
    w = np.asarray(WIDTHS, dtype=float)[:, None]
    E = w ** -0.5 * np.exp(40.0 / w) * np.exp(1e-9 * rng.standard_normal((6, 4)))
    fit = fit_slope(WIDTHS, E, 0.99, "corrected")
    assert fit.slope == pytest.approx(-0.5, abs=1e-6) and fit.correction == pytest.approx(40.0, abs=1e-4)
    assert fit.plain_slope < -0.52  # the plain model is biased by the c/n term
    band = prediction_band(WIDTHS, E, 0.99)
    assert band.predicted == pytest.approx(4096 ** -0.5 * math.exp(40 / 4096), rel=1e-6) and band.contains


def test_band_coverage_under_the_law():
    """e = 3 n^-1/2 exp(0.3 Z): the band at n_max misses with probability 0.1 at confidence 0.9;
    misses over 400 replicates ~ Binomial(400, 0.1): allowed 15..70 (false failure < 1e-6)."""
    rng = np.random.default_rng(11)
    miss = sum(not prediction_band(WIDTHS, _synthetic(WIDTHS, 8, -0.5, rng, 3.0, 0.3), 0.9).contains
               for _ in range(400))
    assert 15 <= miss <= 70, miss


def _summary(E, **kw):
    K, S = E.shape
    L = 3
    z = np.zeros((K, S, L))
    return summarize(SweepPlan(SPEC, WIDTHS, S, L, **kw), SweepDraws(WIDTHS, tuple(range(S)), E, z, z, E), np.ones(L))


def test_verdict_rules_on_known_laws():
    """The default verdict on synthetic errors: consistent for n^-1/2; the rate rule fails for
    n^-1 and the decay rule for n^0.  Per-seed log-sd 0.25 with 8 seeds over 6 widths gives a slope
    se ~0.07 (corrected model), so -1 and 0 lie > 6 se from -1/2 (false failure < 1e-6 each);
    for the consistent case the fixed seed is one draw of a rule set with false-failure <= 2 %."""
    rng = np.random.default_rng(3)
    good = _summary(_synthetic(WIDTHS, 8, -0.5, rng))
    assert good.verdict == "consistent", good.rules
    fast = _summary(_synthetic(WIDTHS, 8, -1.0, rng))
    assert fast.verdict == "inconsistent" and not {r.name: r.passed for r in fast.rules}["rate"]
    flat = _summary(_synthetic(WIDTHS, 8, 0.0, rng))
    status = {r.name: r.passed for r in flat.rules}
    assert flat.verdict == "inconsistent" and not status["decay"] and not status["rate"]
    # errors at the largest width 3x off the law: the band rule catches it
    E = _synthetic(WIDTHS, 8, -0.5, rng)
    E[-1] *= 3.0
    jump = _summary(E)
    assert not {r.name: r.passed for r in jump.rules}["band"]


def test_summary_rejects_zero_errors():
    E = np.ones((6, 3))
    E[0, 0] = 0.0
    with pytest.raises(SpecError, match="positive"):
        _summary(E)


def test_t_interval_matches_scipy():
    from scipy import stats

    x = np.array([1.0, 2.0, 4.0, 7.0])
    m, h = t_interval(x, 0.95)
    lo, hi = stats.t.interval(0.95, 3, loc=x.mean(), scale=stats.sem(x))
    assert m - h == pytest.approx(lo, rel=1e-12) and m + h == pytest.approx(hi, rel=1e-12)
    assert np.isnan(t_interval(np.array([1.0]), 0.95)[1])


def test_real_sweep_small_widths_is_consistent():
    """End to end on real networks (default spec, L = 4, widths 32..2048, 6 seeds): the rules hold.
    Fixed seeds, so deterministic; with a fresh base seed it fails with probability <= 2 % plus the
    decay rule's (slope se ~0.1 here; base seeds 0..7 all passed).  Fewer widths lack power:
    widths 64..1024 gave a slope interval of half-width 0.6."""
    res = run((32, 64, 128, 256, 512, 1024, 2048), 6, 4, base_seed=0)
    assert res.verdict == "consistent", [r.detail for r in res.rules]
    assert res.slope.interval[0] <= -0.5 <= res.slope.interval[1]
