"""Exact identities of the empirical NTK (no statistics): they hold at every width and seed.

Norms and tolerances
--------------------
* Structured (lag Gram) NTK vs the independent BPTT reference: Frobenius norm of
  the difference over the whole NTK array ``(B, T, n_y, B', T', n_y)`` at most
  ``1e-10`` times the Frobenius norm of the reference NTK; the same per group
  share, relative to that share's norm (a share that is exactly zero must be
  exactly zero on both sides).  1e-10 is the project's accuracy standard for two
  float64 evaluations of the same sums (observed: about 1e-15).
* Relations that only reorder float64 operations (time shift, symmetry, the
  conv1/conv2 relation): the same relative Frobenius bound, 1e-10.
* Relations that are one rescaling (learning-rate multipliers): per entry
  ``8 u`` relative (u = 2^-53): the multiplier and the scale are rounded and
  multiplied in a different order, at most 4 roundings.
* The scaled convolutional model vs the exact closed form: a derived rounding
  bound, see :func:`test_scm_ntk_equals_exact_closed_form`.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory import kernel as exact_kernel
from theory.weights import lag_shares
from verify import strategies as vst
from verify.engine.ntk import empirical_ntk, lag_gram, ntk_from_lag_gram
from verify.engine.rnn import init_rnn
from verify.engine.scm import scm_from_spec, scm_ntk

U = 2.0**-53
REL = 1e-10
LR_VALUES = (0, "0.5", 1, "0.3", 2)


def _rel_close(a, b, rel=REL):
    """``||a - b||_F <= rel * ||b||_F`` (so an exactly zero ``b`` needs an exactly zero ``a``)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    err, scale = np.linalg.norm(a - b), np.linalg.norm(b)
    assert err <= rel * scale, f"relative Frobenius error {err / scale if scale else err:.3e} > {rel:g}"


@st.composite
def _case(draw, max_width=10, max_T=16, lr=LR_VALUES, **spec_kwargs):
    """(spec, rnn, X, X') for the identities: small widths (the reference costs O(B T^2 n_y n^2))."""
    spec = draw(vst.specs(lr=lr, **spec_kwargs))
    rnn = draw(vst.networks(spec, (1, max_width)))
    X = draw(vst.input_batches(spec.n_x, max_batch=2, max_T=max_T))
    Xp = draw(vst.input_batches(spec.n_x, max_batch=2, max_T=max_T))
    return spec, rnn, X, Xp


# ------------------------------------------------------------------ structured == reference


@given(_case())
def test_structured_ntk_equals_bptt_reference(case):
    spec, rnn, X, Xp = case
    ref_total, ref_shares = empirical_ntk(rnn, spec, X, Xp, method="bptt", shares=True)
    lg = lag_gram(rnn, spec, max(X.shape[1], Xp.shape[1]))
    _rel_close(ntk_from_lag_gram(lg, X, Xp), ref_total)
    _rel_close(empirical_ntk(rnn, spec, X, Xp), ref_total)
    assert set(lg.shares) == set(ref_shares) == set(spec.groups)
    for g in spec.groups:
        _rel_close(ntk_from_lag_gram(lg.shares[g], X, Xp), ref_shares[g])
    total, shares = empirical_ntk(rnn, spec, X, Xp, shares=True)  # the entry point's own shares
    np.testing.assert_array_equal(total, empirical_ntk(rnn, spec, X, Xp))
    assert set(shares) == set(ref_shares)
    for g in spec.groups:
        _rel_close(shares[g], ref_shares[g])


def test_empirical_ntk_rejects_what_it_cannot_do(monkeypatch):
    """One clear error for an unknown method, an option of another method, and a missing extra."""
    import importlib.util

    from theory.spec import RNNSpec, SpecError

    spec = RNNSpec(sigma_w="0.9")
    rnn = init_rnn(spec, 4, 0)
    X = np.ones((1, 2, 1))
    for kwargs, match in ((dict(method="exact"), "unknown NTK method 'exact'; choose one of structured, bptt"),
                          (dict(device="cpu"), "device applies to the torch methods"),
                          (dict(method="jacobian", chunk=2), "chunk applies to method 'products' only"),
                          (dict(method="products", shares=True), "shares=True needs method 'structured' or 'bptt'"),
                          (dict(method="ntvp", shares=True), "shares=True needs method 'structured' or 'bptt', not "
                                                             "'products'")):
        with pytest.raises(SpecError, match=match):
            empirical_ntk(rnn, spec, X, **kwargs)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    for method in ("jacobian", "products"):
        with pytest.raises(ImportError, match=f"NTK method '{method}' needs torch"):
            empirical_ntk(rnn, spec, X, method=method)
    with pytest.raises(ImportError, match="NTK method 'products' needs torch"):  # the alias, by its name
        empirical_ntk(rnn, spec, X, method="ntvp")


@given(_case(max_T=1), st.integers(1, 16))
def test_lag_gram_is_the_ntk_of_unit_impulses(case, lags):
    """Theta[l, a, i, l', b, j] = NTK between the impulses e_i and e_j (at time 0), outputs (l, a), (l', b)."""
    spec, rnn, _, _ = case
    impulses = np.zeros((spec.n_x, lags, spec.n_x))
    impulses[np.arange(spec.n_x), 0, np.arange(spec.n_x)] = 1.0
    ref = empirical_ntk(rnn, spec, impulses, method="bptt")  # (i, l, a, j, l', b)
    gram = lag_gram(rnn, spec, lags).total  # (l, a, i, l', b, j)
    _rel_close(gram, np.transpose(ref, (1, 2, 0, 4, 5, 3)))


# ------------------------------------------------------------------ structure of Theta_n


@given(spec=vst.specs(lr=LR_VALUES), width=st.integers(1, 40), seed=vst.seeds(), lags=vst.lags(16))
def test_lag_gram_symmetric_psd(spec, width, seed, lags):
    M = lag_gram(init_rnn(spec, width, seed), spec, lags).matrix()
    _rel_close(M.T, M)
    # A Gram matrix J J^T: eigenvalues >= 0 up to the rounding of M, which is below REL * ||M||_F
    # by the reference comparison above (the 2-norm of a perturbation is at most its Frobenius norm).
    eig = np.linalg.eigvalsh((M + M.T) / 2)
    assert eig.min() >= -REL * np.linalg.norm(M)


@given(_case(max_width=24, max_T=12), st.integers(0, 4), st.integers(0, 4))
def test_time_shift_invariance(case, k, kp):
    """Prepending k (k') zeros to every sequence of X (X') shifts the NTK block by (k, k')
    and the outputs at the prepended times have zero gradient."""
    spec, rnn, X, Xp = case
    K = empirical_ntk(rnn, spec, X, Xp)
    Xs = np.concatenate([np.zeros((X.shape[0], k, spec.n_x)), X], axis=1)
    Xps = np.concatenate([np.zeros((Xp.shape[0], kp, spec.n_x)), Xp], axis=1)
    Ks = empirical_ntk(rnn, spec, Xs, Xps)
    assert np.all(Ks[:, :k] == 0) and np.all(Ks[:, :, :, :, :kp] == 0)
    _rel_close(Ks[:, k:, :, :, kp:, :], K)


@given(_case(max_width=6, max_T=6), st.integers(1, 3))
def test_time_shift_invariance_reference(case, k):
    spec, rnn, X, Xp = case
    K = empirical_ntk(rnn, spec, X, Xp, method="bptt")
    Xs = np.concatenate([np.zeros((X.shape[0], k, spec.n_x)), X], axis=1)
    Xps = np.concatenate([np.zeros((Xp.shape[0], k, spec.n_x)), Xp], axis=1)
    Ks = empirical_ntk(rnn, spec, Xs, Xps, method="bptt")
    assert np.all(Ks[:, :k] == 0) and np.all(Ks[:, :, :, :, :k] == 0)
    _rel_close(Ks[:, k:, :, :, k:, :], K)


@given(spec=vst.specs(conventions=("conv2",), lr=LR_VALUES), width=st.integers(1, 40), seed=vst.seeds(),
       lags=vst.lags(16, min=2))
def test_conv2_lag_gram_is_conv1_shifted_by_one_lag(spec, width, seed, lags):
    """Same network: conv2 Theta[l, l'] = conv1 Theta[l-1, l'-1] for the C, F, W shares (l, l' >= 1),
    zero on lag 0 for them; the D share sits at lags (0, 0) in both conventions."""
    rnn = init_rnn(spec, width, seed)
    g2 = lag_gram(rnn, spec, lags)
    g1 = lag_gram(rnn, spec.replace(convention="conv1"), lags - 1)
    for g in ("C", "F", "W"):
        s2 = g2.shares[g]
        assert np.all(s2[0] == 0) and np.all(s2[:, :, :, 0] == 0)
        _rel_close(s2[1:, :, :, 1:], g1.shares[g])
    if spec.has_d:
        np.testing.assert_array_equal(g2.shares["D"][0, :, :, 0], g1.shares["D"][0, :, :, 0])
        assert np.count_nonzero(g2.shares["D"]) == np.count_nonzero(g2.shares["D"][0, :, :, 0])


# ------------------------------------------------------------------ learning-rate multipliers


@given(spec=vst.specs(lr=LR_VALUES), width=st.integers(1, 24), seed=vst.seeds(), lags=vst.lags(16))
def test_lr_multipliers_scale_the_shares(spec, width, seed, lags):
    rnn = init_rnn(spec, width, seed)
    base = lag_gram(rnn, spec.replace(lr_w=1, lr_f=1, lr_c=1, lr_d=1), lags)
    got = lag_gram(rnn, spec, lags)
    total = 0
    for g in spec.groups:
        lr = float(spec.lr(g))
        expected = lr * base.shares[g]
        # 8 u per entry: float(lr), the group scale times lr, the product with the raw Gram, and lr * base
        assert np.all(np.abs(got.shares[g] - expected) <= 8 * U * np.abs(expected))
        total = total + got.shares[g]
    np.testing.assert_array_equal(got.total, total)  # the total is the sum of the shares


@given(_case(max_width=6, max_T=8, lr=(0, 1)))
def test_frozen_groups_have_zero_shares(case):
    spec, rnn, X, Xp = case
    frozen = [g for g in spec.groups if spec.lr(g) == 0]
    lags = max(X.shape[1], Xp.shape[1])
    lg = lag_gram(rnn, spec, lags)
    _, ref = empirical_ntk(rnn, spec, X, Xp, method="bptt", shares=True)
    exact = lag_shares(spec, lags, dps=20)
    for g in frozen:
        assert np.all(lg.shares[g] == 0) and np.all(ref[g] == 0)
        assert all(v == 0 for v in exact[g])
    live = [g for g in spec.groups if g not in frozen]
    np.testing.assert_array_equal(lg.total, sum((lg.shares[g] for g in live), np.zeros_like(lg.total)))


# ------------------------------------------------------------------ scaled convolutional model


@given(case=vst.spec_and_batch(max_batch=2, max_T=16, lr=LR_VALUES), data=st.data())
def test_scm_ntk_equals_exact_closed_form(case, data):
    """The SCM's NTK from its explicit Jacobian equals the exact closed form (theory.kernel.conv_ntk),
    whatever theta is (the model is linear in theta, so this holds at every "width").

    Rounding bound, per entry: the Jacobian entries are x * sqrt(fl(beta)/n_x) (<= 4 roundings
    each, beta itself rounded once), the product of two (1) and a sum of at most L n_x terms:
    |K_scm - K| <= 2 (L n_x + 10) u * A + u |K| with A = the same kernel on |X|, |X'|
    (it dominates every partial sum); the factor 2 covers second-order terms and A's own rounding.
    Gradual underflow adds at most 2^-1075 per rounding: (L n_x + 10) 2^-1074 more (inputs of
    magnitude >= 1e-100, see the strategy, keep this term irrelevant in practice).
    """
    spec, X = case
    Xp = data.draw(vst.input_batches(spec.n_x, max_batch=2, max_T=16))
    L = max(X.shape[1], Xp.shape[1])
    model = scm_from_spec(spec, L)
    theta = data.draw(st.integers(0, 2**32 - 1).map(
        lambda s: np.random.default_rng(s).standard_normal((L, spec.n_y, spec.n_x))))
    K = scm_ntk(model, X, Xp)
    np.testing.assert_array_equal(scm_ntk(model.with_theta(theta), X, Xp), K)
    exact = exact_kernel.conv_ntk(spec, X, Xp, dps=30)
    K_exact = np.vectorize(float, otypes=[np.float64])(exact)
    A = scm_ntk(model, np.abs(X), np.abs(Xp))
    bound = 2 * (L * spec.n_x + 10) * U * A + U * np.abs(K_exact) + (L * spec.n_x + 10) * 2.0**-1074
    assert np.all(np.abs(K - K_exact) <= bound)
