"""The claim harness (:mod:`verify.harness.claim`) and its example clients (:mod:`verify.claims`).

What is shown, and where each threshold comes from:

* The empirical NTK (torch.func) equals the project's independent routes at finite width:
  the linear client against the structured lag-Gram NTK (:func:`verify.engine.ntk.empirical_ntk`),
  the LRU client against :func:`verify.engine.diagonal.lag_gram`; Jacobian contraction against
  NTK-vector products.  Tolerance 1e-10 relative, as in ``tests/test_autodiff.py``: float64
  sums of at most ~n^2 T^2 products, worst case ``k u`` = 2e-12 at these sizes.
* The decision rule's false-failure level and min_detectable, by simulation of the seed
  statistics (normal and skewed noise, a bias ``beta/n + gamma/n^2`` large against the noise):
  the failure count must stay below the binomial 1e-6 quantile of ``alpha``; the rule without
  its bias allowance fails the same simulation (so the test can fail).
* True claims are accepted: linear (the theorem's kernel), ReLU and erf (the exact kernels
  of :mod:`theory.nonlinear`: the numerical check of their recursion at finite width), LRU
  (:mod:`theory.diagonal`).  Each run's false-failure probability is alpha = 0.01, and each
  must also have the power to see a factor 2 (min_detectable < 1/2).
* Wrong claims are rejected: NNGP in place of the NTK, a missing factor 2, s_W = 0.85 for a
  network with s_W = 0.9.  Each configuration's power was chosen from the exact effect of the
  wrong claim: the test asserts that the exact deviation of the decisive statistic exceeds
  the run's threshold, computed from the exact kernels alone (no randomness).
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binom

torch = pytest.importorskip("torch")

from theory.spec import RNNSpec  # noqa: E402
from verify.claims import elman, lru, wrong  # noqa: E402
from verify.claims.elman import Elman  # noqa: E402
from verify.cli.main import main  # noqa: E402
from verify.harness.claim import (  # noqa: E402
    ClaimError,
    ClaimOptions,
    _layout,
    check_claim,
    claim_statistics,
    decide,
    draw_seed,
    empirical_ntk,
    load_callable,
    min_detectable,
)

FAST = dict(widths=(32, 64, 256), seeds=16, threads=1)


def rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


def inputs(B=2, T=4, seed=5, positive=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, T, 1))
    return 1 + 0.3 * X if positive else X


# --------------------------------------------------------------------------- empirical NTK
@pytest.mark.parametrize("spec", [
    RNNSpec(sigma_w="0.9"),
    RNNSpec(sigma_w="0.7", sigma_f="1.3", sigma_d="0.5", n_x=2, n_y=2, metric="variance", convention="conv2",
            lr_w="0.5", lr_f=0),
    RNNSpec(sigma_w="1.1", sigma_c="0.6", metric="standard", lr_c=2),
])
def test_linear_client_equals_structured_ntk(spec):
    from verify.engine.ntk import empirical_ntk as structured

    client = Elman("linear", spec)
    X = np.random.default_rng(1).standard_normal((2, 5, spec.n_x))
    Xp = np.random.default_rng(2).standard_normal((3, 4, spec.n_x))
    for n, seed in ((7, 0), (24, 3)):
        params, apply = client.model(n, seed)
        net = client.weights(n, seed)
        assert rel(empirical_ntk(params, apply, X), structured(net, spec, X)) <= 1e-10
        assert rel(empirical_ntk(params, apply, X, Xp), structured(net, spec, X, Xp)) <= 1e-10


def test_lru_client_equals_lag_gram():
    from verify.claims.lru import _lagged
    from verify.engine.diagonal import init_diagonal, lag_gram

    client = lru.LRU(lru.SPEC.replace(lr_nu="0.5", lr_theta=0))
    X = np.random.default_rng(3).standard_normal((2, 5, 1))
    for n, seed in ((5, 1), (40, 2)):
        params, apply = client.model(n, seed)
        G = lag_gram(init_diagonal(client.spec, n, seed), 5).total
        lx = _lagged(X[..., 0], 5)
        ref = np.einsum("btl,lm,cum->btcu", lx, G, lx)
        assert rel(empirical_ntk(params, apply, X)[:, :, 0, :, :, 0], ref) <= 1e-10


def test_jacobian_contraction_equals_ntk_vector_products():
    params, apply = elman.relu_model(16, 4)
    X, Xp = inputs(2, 3), inputs(1, 4, seed=6)
    for Y in (None, Xp):
        a = empirical_ntk(params, apply, X, Y, method="jacobian")
        b = empirical_ntk(params, apply, X, Y, method="products")
        assert rel(a, b) <= 1e-12
    K = empirical_ntk(params, apply, X, max_jacobian_bytes=1)  # "auto" falls back to products
    assert rel(K, empirical_ntk(params, apply, X)) <= 1e-12
    M = K.reshape(6, 6)
    assert np.allclose(M, M.T, rtol=0, atol=1e-13 * np.abs(M).max())


def test_linear_claim_is_the_recursion_kernel():
    """The linear client's claim (theory.kernel) equals the linear case of theory.nonlinear."""
    from theory.nonlinear import rnn_ntk

    X = inputs(2, 4)
    assert rel(elman.linear_kernel(X, X), np.asarray(rnn_ntk(elman.SPEC, "linear", X, dps=20), dtype=float)) <= 1e-15


# --------------------------------------------------------------------------- the decision rule
WIDTHS, S, NAMES = (32, 64, 256), 16, ["gain", "gain_t0", "gain_t1", "residual"]


def _simulate(rng, noise: str, beta: float, gamma: float):
    """Seed means and standard errors of 3 gain statistics (1 + beta/n + gamma/n^2 + noise/sqrt(n))
    and a residual-like one (positive mean 5/n), at WIDTHS with S seeds."""
    means, ses = {}, {}
    for n in WIDTHS:
        if noise == "normal":
            z = rng.standard_normal((S, 3))
        else:  # skewed like a sum of squares: centred gamma(4), unit variance
            z = (rng.gamma(4.0, size=(S, 3)) - 4.0) / 2.0
        vals = np.empty((S, 4))
        vals[:, :3] = 1 + beta / n + gamma / n**2 + 2.0 / np.sqrt(n) * z
        vals[:, 3] = 5.0 / n + 0.5 / n * (rng.chisquare(3, size=S) - 3)
        means[n] = {k: float(vals[:, i].mean()) for i, k in enumerate(NAMES)}
        ses[n] = {k: float(vals[:, i].std(ddof=1) / np.sqrt(S)) for i, k in enumerate(NAMES)}
    return means, ses


@pytest.mark.parametrize("noise,beta,gamma", [("normal", 3.0, 0.0), ("skewed", 3.0, 0.0), ("normal", 40.0, 400.0)])
def test_false_failure_level_and_min_detectable(noise, beta, gamma):
    """Under the rule's assumptions (n |bias| non-increasing, one sign) at most alpha = 0.01 of
    the runs may fail: the count must not exceed the binomial(reps, 0.01) quantile at 1 - 1e-6.
    A claim off by min_detectable (uniform relative error, rescaling the gain statistics) must be
    rejected in at least the binomial(reps, 0.99) 1e-6 quantile of the runs."""
    rng = np.random.default_rng(11)
    reps, alpha = 600, 0.01
    counts = {n: S for n in WIDTHS}
    fails = misses = fails_without_allowance = 0
    for _ in range(reps):
        means, ses = _simulate(rng, noise, beta, gamma)
        dec, q = decide(means, ses, counts, NAMES, alpha)
        fails += not all(d.passed for d in dec)
        fails_without_allowance += any(d.deviation > d.threshold - d.allowance for d in dec)
        eps, _ = min_detectable(dec, q["t_a"], 0.99)
        scaled = {n: {k: v / (1 + eps) if k != "residual" else v for k, v in means[n].items()} for n in WIDTHS}
        scaled_se = {n: {k: v / (1 + eps) if k != "residual" else v for k, v in ses[n].items()} for n in WIDTHS}
        dec2, _ = decide(scaled, scaled_se, counts, NAMES, alpha)
        misses += all(d.passed for d in dec2)
    assert fails <= binom.ppf(1 - 1e-6, reps, alpha)
    assert misses <= binom.ppf(1 - 1e-6, reps, 0.01)
    if beta >= 40:  # a bias of 6 standard errors at n = 256: without the allowance the rule fails
        assert fails_without_allowance > reps // 2


def test_decide_by_hand():
    """Two widths 64 and 256 (k = 64/192 = 1/3), one statistic: the threshold is
    t_a se_N + (1/3)(|m_64 - m_256| + t_b hypot(se_64, se_256)) + 1e-8."""
    from scipy.stats import t as student

    means = {64: {"gain": 1.2, "residual": 0.01}, 256: {"gain": 1.05, "residual": 0.0025}}
    ses = {64: {"gain": 0.04, "residual": 0.001}, 256: {"gain": 0.02, "residual": 0.0005}}
    dec, q = decide(means, ses, {64: 10, 256: 10}, ["gain", "residual"], 0.01)
    t2 = student.ppf(1 - 0.01 / 2 / 4, 9)
    t1 = student.ppf(1 - 0.01 / 2 / 2, 9)
    g, r = dec
    assert g.threshold == pytest.approx(t2 * 0.02 + (0.15 + t2 * np.hypot(0.04, 0.02)) / 3 + 1e-8, rel=1e-12)
    assert g.passed and g.deviation == pytest.approx(0.05)
    assert r.one_sided and r.threshold == pytest.approx(t1 * 0.0005 + (0.0075 + t2 * np.hypot(0.001, 0.0005)) / 3
                                                       + 1e-8, rel=1e-12)


def test_statistics_of_the_claim_itself():
    X = inputs(2, 3)
    K = elman.relu_kernel(X, X)
    layout = _layout(K, 2, 3, 1)
    s = claim_statistics(K, layout)
    assert s["gain"] == pytest.approx(1) and s["residual"] == pytest.approx(0, abs=1e-28)
    assert all(s[f"gain_t{t}"] == pytest.approx(1) for t in range(3)) and s["rel_error"] == 0
    s2 = claim_statistics(2 * K, layout)
    assert s2["gain"] == pytest.approx(2) and s2["rel_error"] == pytest.approx(1)


# --------------------------------------------------------------------------- true claims
@pytest.mark.parametrize("model,kernel", [
    (elman.linear_model, elman.linear_kernel),
    (elman.relu_model, elman.relu_kernel),
    (elman.erf_model, elman.erf_kernel),
    (lru.lru_model, lru.lru_kernel),
])
def test_true_claims_are_consistent(model, kernel):
    report = check_claim(model, kernel, inputs(), ClaimOptions(**FAST))
    assert report.verdict == "consistent", [d for d in report.decisions if not d.passed]
    assert report.min_detectable < 0.5  # the same run would see a missing factor 2


def test_true_claim_general_spec():
    """ReLU with D, conv2, metric variance, learning-rate multipliers, n_x = n_y = 2 and a zero
    input at t = 0 (relu'(0) = 0)."""
    spec = RNNSpec(sigma_w="0.8", sigma_f="1.2", sigma_c="0.9", sigma_d="0.5", n_x=2, n_y=2, metric="variance",
                   convention="conv2", lr_w="0.5", lr_c=2)
    X = np.random.default_rng(3).standard_normal((2, 3, 2))
    X[1, 0, :] = 0.0
    client = Elman("relu", spec)
    report = check_claim(client.model, client.kernel, X, ClaimOptions(**FAST))
    assert report.verdict == "consistent", [d for d in report.decisions if not d.passed]


# --------------------------------------------------------------------------- wrong claims
def _exact_deviation(true_kernel, wrong_kernel, X, name):
    """The deviation the decisive statistic would show at infinite width: the statistic of the
    true kernel measured against the wrong claim."""
    B, T = X.shape[:2]
    K = true_kernel(X, X)
    layout = _layout(wrong_kernel(X, X), B, T, K.shape[2])
    s = claim_statistics(K, layout)[name]
    return s if name == "residual" else abs(s - 1)


@pytest.mark.parametrize("model,true_kernel,wrong_kernel", [
    (elman.relu_model, elman.relu_kernel, wrong.relu_nngp),
    (elman.relu_model, elman.relu_kernel, wrong.relu_kernel_half),
    (elman.erf_model, elman.erf_kernel, wrong.erf_nngp),
    (elman.erf_model, elman.erf_kernel, wrong.erf_kernel_half),
])
def test_wrong_claims_are_inconsistent(model, true_kernel, wrong_kernel):
    X = inputs()
    report = check_claim(model, wrong_kernel, X, ClaimOptions(**FAST))
    assert report.verdict == "inconsistent"
    gain = next(d for d in report.decisions if d.name == "gain")
    assert _exact_deviation(true_kernel, wrong_kernel, X, "gain") > gain.threshold  # power, not luck


def test_wrong_sigma_w_linear():
    """s_W = 0.85 claimed for the linear RNN with s_W = 0.9.  Inputs with a positive mean and T = 6
    give the late equal-time blocks a 20-30 % effect; 64 seeds at n = 32, 64, 256 put their
    thresholds near 15 %."""
    X = inputs(2, 6, positive=True)
    report = check_claim(elman.linear_model, wrong.linear_kernel_sigma_w_085, X,
                         ClaimOptions(widths=(32, 64, 256), seeds=64, threads=1))
    assert report.verdict == "inconsistent"
    failed = [d for d in report.decisions if not d.passed]
    assert any(_exact_deviation(elman.linear_kernel, wrong.linear_kernel_sigma_w_085, X, d.name) > d.threshold
               for d in failed)


@pytest.mark.slow
def test_wrong_sigma_w_relu_and_its_true_claim():
    """s_W = 0.85 claimed for the ReLU RNN with s_W = 0.9: a 5-15 % effect (larger at late
    times); 128 seeds at n = 32, 64, 512.  The true claim passes the same sweep."""
    X = inputs(2, 6)
    opts = ClaimOptions(widths=(32, 64, 512), seeds=128, threads=1)
    bad = check_claim(elman.relu_model, wrong.relu_kernel_sigma_w_085, X, opts)
    assert bad.verdict == "inconsistent"
    good = check_claim(elman.relu_model, elman.relu_kernel, X, opts)
    assert good.verdict == "consistent"


# --------------------------------------------------------------------------- contract and CLI
def test_seeds_are_reproducible_and_distinct():
    seeds = {draw_seed(0, n, i) for n in (64, 128) for i in range(50)}
    assert len(seeds) == 100 and draw_seed(3, 64, 7) == draw_seed(3, 64, 7)
    a = check_claim(elman.erf_model, elman.erf_kernel, inputs(1, 2), ClaimOptions(widths=(8, 16), seeds=3, threads=1))
    b = check_claim(elman.erf_model, elman.erf_kernel, inputs(1, 2), ClaimOptions(widths=(8, 16), seeds=3, threads=1))
    assert a.draws == b.draws


def test_bad_models_and_kernels():
    X = inputs(1, 2)
    opts = ClaimOptions(widths=(4, 8), seeds=3, threads=1)
    with pytest.raises(ClaimError, match="float64"):
        check_claim(lambda n, s: ({"w": torch.ones(n, dtype=torch.float32)}, lambda p, X: X),
                    elman.relu_kernel, X, opts)
    with pytest.raises(ClaimError, match=r"shape \(B, T, n_y\)"):
        check_claim(lambda n, s: ({"w": torch.ones(n, dtype=torch.float64)}, lambda p, X: p["w"].sum() * X[:, 0]),
                    elman.relu_kernel, X, opts)
    with pytest.raises(ClaimError, match="raised ZeroDivisionError"):
        check_claim(lambda n, s: 1 / 0, elman.relu_kernel, X, opts)
    with pytest.raises(ClaimError, match="must have shape"):
        check_claim(elman.relu_model, lambda X, Xp: np.ones(3), X, opts)
    with pytest.raises(ClaimError, match="zero"):
        check_claim(elman.relu_model, lambda X, Xp: np.zeros((1, 2, 1, 1, 2, 1)), X, opts)
    for bad in (dict(widths=(4,)), dict(seeds=2), dict(alpha=1.5), dict(method="x"), dict(widths=(4, 4))):
        with pytest.raises(ClaimError):
            ClaimOptions(**{**dict(widths=(4, 8), seeds=3), **bad})
    with pytest.raises(ClaimError):
        load_callable("verify.claims.elman")
    with pytest.raises(ClaimError):
        load_callable("verify.claims.elman:nothing")


def test_draws_on_pools_equal_the_serial_draws(tmp_path):
    """Each draw depends only on its seed: a thread pool, and a pool of spawned processes that
    load the model from a file reference, give the serial report's numbers bit for bit."""
    from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
    from multiprocessing import get_context

    X = inputs(2, 3)
    opts = ClaimOptions(widths=(8, 16), seeds=3, threads=1)
    ref = check_claim(elman.relu_model, elman.relu_kernel, X, opts).to_dict()
    del ref["seconds"]
    f = tmp_path / "mine.py"
    f.write_text("from verify.claims.elman import relu_model as model\n")
    with ThreadPoolExecutor(2) as pool:
        got = check_claim(elman.relu_model, elman.relu_kernel, X, opts, executor=pool).to_dict()
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        got2 = check_claim(f"{f}:model", elman.relu_kernel, X, opts, executor=pool).to_dict()
    for g in (got, got2):
        del g["seconds"]
        assert g == ref


def test_a_model_that_cannot_travel_is_refused_before_any_work():
    from concurrent.futures import ProcessPoolExecutor

    refused = "cannot be sent to the workers.*MODULE:FUNCTION"
    with ProcessPoolExecutor(1) as pool, pytest.raises(ClaimError, match=refused):
        check_claim(lambda n, s: elman.relu_model(n, s), elman.relu_kernel, inputs(1, 2),
                    ClaimOptions(widths=(4, 8), seeds=3, threads=1), executor=pool)
    with pytest.raises(ClaimError, match="MODULE:FUNCTION"):
        check_claim("verify.claims.elman", elman.relu_kernel, inputs(1, 2), ClaimOptions(widths=(4, 8), seeds=3))


def test_load_callable_from_a_file(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text("from verify.claims.elman import erf_model as model, erf_kernel as kernel\n")
    assert load_callable(f"{f}:model") is elman.erf_model


def test_cli_claim(tmp_path, capsys):
    x = tmp_path / "X.npy"
    np.save(x, inputs(1, 3))
    args = ["claim", "--inputs", str(x), "--widths", "16,32,128", "--seeds", "12", "--threads", "1", "--json",
            "--model", "verify.claims.elman:relu_model"]
    assert main(args + ["--kernel", "verify.claims.elman:relu_kernel"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "consistent" and out["alpha"] == 0.01 and len(out["draws"]) == 36
    assert {"min_detectable", "rate", "statistics", "rule"} <= set(out)
    assert main(args + ["--kernel", "verify.claims.wrong:relu_kernel_half"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "inconsistent"
    assert main(args + ["--kernel", "verify.claims.elman:nothing"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error:")


def test_cli_kernel(tmp_path, capsys):
    from theory.nonlinear import rnn_kernels

    x = tmp_path / "X.npy"
    X = inputs(2, 3)
    np.save(x, X)
    assert main(["kernel", "--activation", "erf", "--sigma-w", "0.9", "--inputs", str(x), "--dps", "25", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert np.array(out["ntk"]).shape == (2, 3, 2, 3) and np.array(out["nngp"]).shape == (2, 3, 2, 3)
    R = rnn_kernels(RNNSpec(sigma_w="0.9"), "erf", X, dps=40, full=False)
    from theory.precision import context

    ctx = context(40)
    for got, ref in zip(np.array(out["ntk"]).reshape(-1), R.ntk.reshape(-1)):
        assert abs(ctx.mpf(got) - ctx.mpf(ref)) <= ctx.mpf(10) ** -24 * abs(ctx.mpf(ref))
    assert main(["kernel", "--activation", "relu", "--sigma-w", "0.9", "--n-y", "2", "--inputs", str(x), "--json"]) == 0
    full = np.array(json.loads(capsys.readouterr().out)["ntk"])
    assert full.shape == (2, 3, 2, 2, 3, 2) and set(full[:, :, 0, :, :, 1].reshape(-1)) == {"0.0"}
    bads = (["--activation", "tanh"], ["--activation", "relu", "--dps", "2"], ["--activation", "relu", "--n-x", "3"])
    for bad in bads:
        assert main(["kernel", "--sigma-w", "0.9", "--inputs", str(x)] + bad) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("error:")
