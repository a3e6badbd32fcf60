"""verify.experiments.train: hand-written BPTT against finite differences; GD against the exact min-norm limit."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.bias import design_matrix, unweighted_min_norm, weighted_min_norm
from theory.spec import RNNSpec, SpecError
from verify.engine.ntk import group_scales
from verify.engine.rnn import LinearRNN, forward, impulse_response, init_rnn
from verify.engine.scm import scm_from_spec
from verify.experiments.train import (
    bptt_gradients,
    kernel_predictor,
    plan_gd,
    relative_distance,
    scm_matching,
    tilde_factors,
    tilde_gradients,
    train_rnn,
    train_scm,
)


def _with(rnn: LinearRNN, g: str, P) -> LinearRNN:
    parts = {"W": rnn.W, "F": rnn.F, "C": rnn.C, "D": rnn.D}
    parts[g] = P
    return LinearRNN(**parts)


@settings(max_examples=20)
@given(seed=st.integers(0, 2**31 - 1), metric=st.sampled_from(["ntk", "variance", "standard"]),
       convention=st.sampled_from(["conv1", "conv2"]), with_d=st.booleans(),
       nx=st.integers(1, 2), ny=st.integers(1, 2), T=st.integers(1, 5))
def test_tilde_gradients_match_finite_differences(seed, metric, convention, with_d, nx, ny, T):
    """d/dP~ sum <G, y> by BPTT vs central differences in the tilde coordinates.

    The objective is a polynomial of degree <= T in the weights; with step h = 1e-5 (tilde units)
    the central-difference truncation error is O(h^2 * third derivative) ~ 1e-9 of the scale, and
    rounding adds ~eps/h ~ 1e-11: a relative tolerance of 1e-6 cannot fail falsely.
    """
    rng = np.random.default_rng(seed)
    spec = RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c="0.7", sigma_d="0.5" if with_d else None,
                   n_x=nx, n_y=ny, metric=metric, convention=convention)
    n = 5
    rnn = init_rnn(spec, n, seed=rng)
    X = rng.standard_normal((3, T, nx))
    G = rng.standard_normal((3, T, ny))
    grads = tilde_gradients(rnn, spec, X, G)
    a = tilde_factors(spec, n)
    obj = lambda r: float(np.sum(G * forward(r, X, convention)))
    h = 1e-5
    for g, grad in grads.items():
        P = getattr(rnn, g)
        fd = np.zeros_like(P)
        for idx in np.ndindex(P.shape):
            E = np.zeros_like(P)
            E[idx] = a[g] * h  # one tilde unit of h moves P by a_g h
            fd[idx] = (obj(_with(rnn, g, P + E)) - obj(_with(rnn, g, P - E))) / (2 * h)
        scale = max(1.0, float(np.max(np.abs(fd))))
        assert np.max(np.abs(grad - fd)) <= 1e-6 * scale, g


def test_update_scales_are_group_scales():
    """A tilde step of eta*lr_g is an actual step of eta*lr_g*a_g^2 = eta*group_scales (standard: eta*lr/n)."""
    for metric in ("ntk", "variance"):
        spec = RNNSpec(sigma_w="0.8", sigma_f="1.5", sigma_c="0.6", sigma_d="0.3", n_x=2, metric=metric,
                       lr_w="0.5", lr_f="2", lr_c="1", lr_d="3")
        a, gs = tilde_factors(spec, 37), group_scales(spec, 37)
        for g in spec.groups:
            assert math.isclose(float(spec.lr(g)) * a[g] ** 2, gs[g], rel_tol=1e-14)
    spec = RNNSpec(sigma_w="0.8", metric="standard", lr_w="0.5")
    assert tilde_factors(spec, 37)["W"] == 1.0
    assert math.isclose(group_scales(spec, 37)["W"], 0.5 / 37, rel_tol=1e-14)


def test_bad_convention_and_shapes():
    spec = RNNSpec(sigma_w="0.5")
    rnn = init_rnn(spec, 4, seed=0)
    X = np.ones((2, 3, 1))
    with pytest.raises(SpecError, match="convention"):
        bptt_gradients(rnn, X, np.ones((2, 3, 1)), "conv3")
    with pytest.raises(SpecError, match="G must have shape"):
        bptt_gradients(rnn, X, np.ones((2, 2, 1)))


def _setting(seed=1):
    """The training setting of `python -m verify reproduce`: s_W = 0.8, T = 10, six sequences,
    one label (the last output) each."""
    spec = RNNSpec(sigma_w="0.8")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((6, 10, 1))
    Phi = design_matrix(X, 10)
    y = (Phi @ 0.9 ** np.arange(10))[:, None]
    return spec, X, Phi, y


def test_scm_gd_converges_to_weighted_min_norm():
    """The SCM is linear with the limit NTK: GD from theta(0) ends at the beta-weighted interpolant.

    plan_gd shrinks the slowest mode by tol = 1e-10, so the remaining distance is <= 1e-10 times
    the initial residual's size in impulse-response units (cond ~ 20 here): 1e-7 is a bound.
    """
    spec, X, Phi, y = _setting()
    rnn = init_rnn(spec, 64, seed=3)
    scm0 = scm_matching(rnn, spec, scm_from_spec(spec, 10))
    L0 = np.asarray(impulse_response(rnn, 10))
    assert np.allclose(scm0.impulse_response, L0, rtol=1e-13, atol=0)
    plan = plan_gd(spec, X, tol=1e-10)
    res = train_scm(scm0, X, y, eta=plan.eta, steps=plan.steps)
    Lw = weighted_min_norm(spec, Phi, y, L0=L0).to_float()
    assert relative_distance(res.model.impulse_response, Lw, L0) < 1e-7
    assert np.all(np.diff(res.losses) <= 1e-12 * res.losses[0])  # eta = 1/lambda_max: monotone


def test_plan_gd_step_is_stable():
    spec, X, _, _ = _setting()
    rnn = init_rnn(spec, 32, seed=0)
    plan = plan_gd(spec, X, rnn=rnn, tol=1e-6)
    assert plan.eta * plan.lambda_max == pytest.approx(1.0)
    assert plan.lambda_max >= plan.lambda_max_limit
    assert plan.steps == math.ceil(math.log(1e-6) / math.log(1 - plan.eta * plan.lambda_min_limit))


def test_rnn_gd_fits_and_prefers_weighted_solution():
    """Width 512, network seeds 0 and 1: the trained RNN interpolates and sits nearer the
    beta-weighted min-norm solution than the unweighted one.

    Deterministic (all seeded), so it cannot flake.  Measured margins (full reproduce run, n = 512,
    seeds 0-7): distance to the weighted solution 0.05-0.13, to the unweighted one 0.14-0.61; the
    ordering held for all 8 seeds, tightly only for seed 7 (0.134 vs 0.136).  Seeds 0 and 1 have
    0.075 vs 0.61 and 0.060 vs 0.61: a factor 8 of slack.  The interpolation bound follows from
    tol = 1e-6 on the slowest mode (measured final/initial loss <= 1e-11 at n = 512).
    """
    spec, X, Phi, y = _setting()
    for seed in (0, 1):
        rnn = init_rnn(spec, 512, seed=seed)
        plan = plan_gd(spec, X, rnn=rnn, tol=1e-6)
        res = train_rnn(rnn, spec, X, y, eta=plan.eta, steps=plan.steps)
        assert res.losses[-1] < 1e-6 * res.losses[0]
        L0 = np.asarray(impulse_response(rnn, 10))
        L = np.asarray(impulse_response(res.model, 10))
        dw = relative_distance(L, weighted_min_norm(spec, Phi, y, L0=L0).to_float(), L0)
        du = relative_distance(L, unweighted_min_norm(Phi, y, L0=L0).to_float(), L0)
        assert dw < du


def _distances(width: int, seeds):
    spec, X, Phi, y = _setting()
    out = []
    for seed in seeds:
        rnn = init_rnn(spec, width, seed=seed)
        plan = plan_gd(spec, X, rnn=rnn, tol=1e-6)
        res = train_rnn(rnn, spec, X, y, eta=plan.eta, steps=plan.steps, show_progress=False)
        L0 = np.asarray(impulse_response(rnn, 10))
        L = np.asarray(impulse_response(res.model, 10))
        out.append((relative_distance(L, weighted_min_norm(spec, Phi, y, L0=L0).to_float(), L0),
                    relative_distance(L, unweighted_min_norm(Phi, y, L0=L0).to_float(), L0)))
    return np.array(out)


def test_training_claim_carried_to_width_128():
    """The README's claim (distance < 0.1 to the weighted min-norm solution at width 1024, checked with
    --run-slow below) in the default suite, at width 128 where it costs a few seconds.

    The trained network leaves the kernel regime by O(n^-1/2) (the NTK fluctuates by O(n^-1/2) at
    initialization and moves by O(n^-1/2) during training), so the distance scales like n^-1/2 (the
    README's table: sqrt(n) x distance = 2.6, 2.2, 2.0, 1.25 at n = 64, 256, 512, 1024, not growing).
    The claim carried to n = 128 by that rate: mean distance over seeds 0-3 below
    0.1 sqrt(1024 / 128) = 0.28, and below the mean distance to the unweighted solution.  Seeded, so
    deterministic; measured 0.148 (per seed 0.08-0.24) against 0.34 unweighted.
    """
    d = _distances(128, range(4))
    assert d[:, 0].mean() < 0.1 * np.sqrt(1024 / 128)
    assert d[:, 0].mean() < d[:, 1].mean()


@pytest.mark.slow
def test_width_1024_within_tenth_of_weighted_min_norm():
    """The issue's claim at width 1024, network seeds 0-3: distance < 0.1, and < half the unweighted distance."""
    spec, X, Phi, y = _setting()
    for seed in range(4):
        rnn = init_rnn(spec, 1024, seed=seed)
        plan = plan_gd(spec, X, rnn=rnn, tol=1e-6)
        res = train_rnn(rnn, spec, X, y, eta=plan.eta, steps=plan.steps)
        L0 = np.asarray(impulse_response(rnn, 10))
        L = np.asarray(impulse_response(res.model, 10))
        dw = relative_distance(L, weighted_min_norm(spec, Phi, y, L0=L0).to_float(), L0)
        du = relative_distance(L, unweighted_min_norm(Phi, y, L0=L0).to_float(), L0)
        assert dw < 0.1 and du > 2 * dw, (seed, dw, du)


def test_kernel_predictor_is_converged_scm():
    """The kernel predictor equals the SCM trained to convergence from the same L(0), on new data."""
    spec, X, Phi, y = _setting()
    rnn = init_rnn(spec, 16, seed=5)
    L0 = np.asarray(impulse_response(rnn, 10))
    Xs = np.random.default_rng(8).standard_normal((4, 10, 1))
    plan = plan_gd(spec, X, tol=1e-12)
    res = train_scm(scm_matching(rnn, spec, scm_from_spec(spec, 10)), X, y, eta=plan.eta, steps=plan.steps)
    from verify.engine.scm import scm_forward

    f_scm = np.asarray(scm_forward(res.model, Xs))[:, -1, 0]
    f_k = kernel_predictor(spec, X, y, Xs, L0=L0)[:, 0]
    # slowest mode shrunk by 1e-12; cond ~ 20 and O(1) data: 1e-9 absolute is a bound with slack
    assert np.max(np.abs(f_scm - f_k)) < 1e-9


def _skewed_case(metric, group, monkeypatch):
    """A spec with D, the reference NTK, and group_scales made 1 % wrong in ``group``; returns
    (rnn, spec, X, reference, structured NTK under the wrong factors)."""
    import verify.engine.ntk as vn
    from verify.engine.reference import reference_ntk

    spec = RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c="0.7", sigma_d="0.5", n_x=2, n_y=2, metric=metric,
                   lr_w="0.5", lr_c="2")
    rnn = init_rnn(spec, 6, seed=3)
    X = np.random.default_rng(4).standard_normal((2, 4, 2))
    ref = reference_ntk(rnn, spec, X)
    assert _rel(vn.empirical_ntk(rnn, spec, X), ref) < 1e-10
    real = vn.group_scales
    monkeypatch.setattr(vn, "group_scales", lambda s, n: {g: v * (1.01 if g == group else 1.0)
                                                          for g, v in real(s, n).items()})
    return rnn, spec, X, ref, vn.empirical_ntk(rnn, spec, X)


def _rel(a, b) -> float:
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b)))


@pytest.mark.parametrize("metric", ["ntk", "variance", "standard"])
@pytest.mark.parametrize("group", ["W", "F", "C", "D"])
def test_bptt_reference_does_not_share_the_metric_factors(metric, group, monkeypatch):
    """The BPTT reference writes each metric's factors itself: a 1 % error in one factor of
    verify.engine.ntk.group_scales moves the structured NTK (by ~1e-2 of that group's share, far above the
    1e-10 of the identity tests) but not the reference."""
    from verify.engine.reference import reference_ntk

    rnn, spec, X, ref, wrong = _skewed_case(metric, group, monkeypatch)
    assert _rel(wrong, ref) > 1e-6
    assert _rel(reference_ntk(rnn, spec, X), ref) == 0.0


@pytest.mark.parametrize("metric", ["ntk", "variance", "standard"])
@pytest.mark.parametrize("group", ["W", "F", "C", "D"])
def test_autodiff_reference_does_not_share_the_metric_factors(metric, group, monkeypatch):
    """The same for torch.func's NTK: it keeps agreeing with the BPTT reference, not with the wrong factors."""
    pytest.importorskip("torch")
    from verify.engine.autodiff import jacobian_ntk

    rnn, spec, X, ref, wrong = _skewed_case(metric, group, monkeypatch)
    ad = jacobian_ntk(rnn, spec, X)
    assert _rel(ad, ref) < 1e-10 and _rel(wrong, ad) > 1e-6
