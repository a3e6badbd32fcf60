"""The exact weighted-convolution kernels theory.kernel.conv_ntk / nngp.

Each kernel entry is the exact rational contraction rounded once to dps digits,
plus the weights' own rounding at dps + 10 digits (module docstring): relative to
S = sum_l |w_l| |<x_(t-l), x'_(t'-l)>| / n_x the error is at most
2^(1-prec) * S (final rounding, S >= |K|) + 2^-(prec+33) * S.
"""
from __future__ import annotations

from fractions import Fraction
from functools import partial

import numpy as np
import pytest
from helpers import decimals, frac, ulp
from helpers import specs as shared_specs
from hypothesis import given
from hypothesis import strategies as st

from theory.kernel import conv_kernel, conv_ntk, nngp
from theory.precision import context
from theory.spec import RNNSpec, SpecError
from theory.weights import lag_weights, nngp_lag_variances

#: s_W in [0.05, 1.3], s_F, s_C, s_D in [0.1, 2], n_x, n_y in {1, 2}; only W's learning rate varies.
specs = partial(shared_specs, sigma_w=decimals("0.05", "1.3"), sigma=decimals("0.1", "2"), n_x=st.integers(1, 2),
                n_y=st.integers(1, 2), lr={"w": st.sampled_from([0, 1, Fraction(1, 2), 3])})


@st.composite
def batch(draw, n_x, max_b=3, max_t=5):
    """Float64 batch from a seeded generator, or small integers (exact ties, zeros)."""
    b, t = draw(st.integers(1, max_b)), draw(st.integers(1, max_t))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if draw(st.booleans()):
        return rng.standard_normal((b, t, n_x)) * 10.0 ** rng.integers(-3, 3)
    return rng.integers(-3, 4, size=(b, t, n_x)).astype(float)


@st.composite
def problems(draw):
    spec = draw(specs())
    return spec, draw(batch(spec.n_x)), draw(batch(spec.n_x)), draw(st.integers(10, 30))


def kernel_fns():
    return [(conv_ntk, lag_weights), (nngp, nngp_lag_variances)]


# ---------------------------------------------------------------- reference
def direct(spec, X, Xp, weights_fn, dps):
    """Double loop in a local mpmath context at dps + 20 digits: (value, S) per (b, t, b', t')."""
    ctx = context(dps + 20)
    w = weights_fn(spec, min(X.shape[1], Xp.shape[1]), dps=dps + 20)
    B, T, n_x = X.shape
    Bp, Tp, _ = Xp.shape
    val = np.empty((B, T, Bp, Tp), dtype=object)
    mag = np.empty((B, T, Bp, Tp), dtype=object)
    for b in range(B):
        for t in range(T):
            for bp in range(Bp):
                for tp in range(Tp):
                    s, a = ctx.mpf(0), ctx.mpf(0)
                    for l in range(min(t, tp) + 1):
                        dot = ctx.fsum(ctx.mpf(float(X[b, t - l, i])) * ctx.mpf(float(Xp[bp, tp - l, i]))
                                       for i in range(n_x))
                        s += w[l] * dot
                        a += abs(w[l] * dot)
                    val[b, t, bp, tp] = s / n_x
                    mag[b, t, bp, tp] = a / n_x
    return val, mag


@given(problems())
def test_agrees_with_a_direct_double_loop(problem):
    """|K - direct| <= (2^(1-prec) + 2^(-prec-33)) S (module bound) + 2^-(prec+60) S (the
    reference's own error at dps + 20 digits, about 66 more bits): 2 ulp * S covers both."""
    spec, X, Xp, dps = problem
    for kfn, wfn in kernel_fns():
        k = kfn(spec, X, Xp, dps=dps, full=False)
        ref, mag = direct(spec, X, Xp, wfn, dps)
        assert k.shape == ref.shape
        for v, r, s in zip(k.reshape(-1), ref.reshape(-1), mag.reshape(-1)):
            assert abs(frac(v) - frac(r)) <= 2 * ulp(dps) * frac(s)


# ---------------------------------------------------------------- structure
def as_matrix(K):
    B, T, ny, Bp, Tp, _ = K.shape
    return K.reshape(B * T * ny, Bp * Tp * ny)


@given(specs(), st.data())
def test_symmetric_exactly(spec, data):
    X = data.draw(batch(spec.n_x))
    for kfn, _ in kernel_fns():
        M = as_matrix(kfn(spec, X, dps=20))
        assert (M == M.T).all()


@given(specs(), st.data())
def test_swapping_batches_transposes(spec, data):
    X, Xp = data.draw(batch(spec.n_x)), data.draw(batch(spec.n_x))
    for kfn, _ in kernel_fns():
        a = kfn(spec, X, Xp, dps=20)
        b = kfn(spec, Xp, X, dps=20)
        assert (a == b.transpose(3, 4, 5, 0, 1, 2)).all()


@given(specs(), st.data())
def test_block_structure_delta_ac(spec, data):
    X, Xp = data.draw(batch(spec.n_x)), data.draw(batch(spec.n_x))
    full = conv_ntk(spec, X, Xp, dps=20)
    scalar = conv_ntk(spec, X, Xp, dps=20, full=False)
    assert full.shape == X.shape[:2] + (spec.n_y,) + Xp.shape[:2] + (spec.n_y,)
    for a in range(spec.n_y):
        for c in range(spec.n_y):
            block = full[:, :, a, :, :, c]
            if a == c:
                assert (block == scalar).all()
            else:
                assert all(v == 0 for v in block.reshape(-1))


@given(specs(), st.data(), st.integers(1, 4))
def test_shift_invariant_in_time(spec, data, k):
    """Prepending k zero steps to both batches shifts the kernel by (k, k) and adds zero rows.

    The exact contraction is identical; only the weights differ (computed for more lags,
    with more guard bits) below 2^-(prec+33) relative, so entries agree to 1 ulp (not
    necessarily bit for bit: a rounding boundary may fall between them)."""
    X, Xp = data.draw(batch(spec.n_x)), data.draw(batch(spec.n_x))
    pad = lambda A: np.concatenate([np.zeros((A.shape[0], k, A.shape[2])), A], axis=1)
    dps = 20
    for kfn, _ in kernel_fns():
        a = kfn(spec, X, Xp, dps=dps, full=False)
        b = kfn(spec, pad(X), pad(Xp), dps=dps, full=False)
        assert all(v == 0 for v in b[:, :k].reshape(-1)) and all(v == 0 for v in b[:, :, :, :k].reshape(-1))
        for u, v in zip(a.reshape(-1), b[:, k:, :, k:].reshape(-1)):
            assert abs(frac(u) - frac(v)) <= ulp(dps) * abs(frac(u))


def test_conv_kernel_is_exactly_shift_invariant_with_fixed_weights():
    rng = np.random.default_rng(7)
    X, Xp = rng.standard_normal((2, 4, 2)), rng.standard_normal((3, 5, 2))
    w = lag_weights(RNNSpec(sigma_w="0.8", n_x=2), 8, dps=40)
    pad = lambda A: np.concatenate([np.zeros((A.shape[0], 3, 2)), A], axis=1)
    a = conv_kernel(w, X, Xp, dps=25)
    b = conv_kernel(w, pad(X), pad(Xp), dps=25)
    assert (b[:, 3:, :, 3:] == a).all()


@given(specs(), st.data())
def test_positive_semidefinite(spec, data):
    """K = Phi diag(w) Phi^T (w >= 0) is PSD; its rounded version K~ has |K~ - K| <= 2^(1-prec) |K|
    entrywise (up to the weights' 2^-33 smaller part), so by Weyl
    lambda_min(K~) >= -||K~ - K||_F >= -2^(1-prec) N max|K| * (1 + 2^-32).
    The eigenvalues are computed by mpmath's eigsy at dps + 20 digits (error ~10^-20 of that bound).
    float64 (numpy eigvalsh): backward stable, lambda_min >= -(||E|| + rounding of K to float64)
    with ||E|| <= c N eps ||K||_2; we use 4 N eps ||K||_F (c = 4 generous for LAPACK's dsyevd at
    N <= 30)."""
    X = data.draw(batch(spec.n_x, max_b=2, max_t=4))
    dps = 15
    for kfn, _ in kernel_fns():
        M = as_matrix(kfn(spec, X, dps=dps))
        N = M.shape[0]
        ctx = context(dps + 20)
        A = ctx.matrix([[ctx.mpf(v) for v in row] for row in M])
        ev = ctx.eigsy(A, eigvals_only=True)
        kmax = max(abs(frac(v)) for v in M.reshape(-1))
        bound = 2 * ulp(dps) * N * kmax
        assert min(frac(e) for e in ev) >= -bound
        F = np.array([[float(v) for v in row] for row in M])
        lam = np.linalg.eigvalsh(F)
        assert lam.min() >= -4 * N * np.finfo(float).eps * np.linalg.norm(F)


# ---------------------------------------------------------------- layout and errors
def test_xp_none_means_x():
    X = np.arange(6, dtype=float).reshape(1, 3, 2)
    s = RNNSpec(sigma_w="0.5", n_x=2, n_y=2)
    assert (conv_ntk(s, X, dps=15) == conv_ntk(s, X, X, dps=15)).all()


def test_small_hand_example():
    """One sequence x = (1, 2), n_x = 1, ntk conv1 s = 1/2: beta = (2, 3/4), so
    K[0,0] = 2, K[0,1] = 2*2 = 4, K[1,1] = 2*4 + (3/4)*1 = 35/4."""
    k = conv_ntk(RNNSpec(sigma_w="0.5"), np.array([[[1.0], [2.0]]]), dps=15, full=False)
    assert [frac(v) for v in k.reshape(-1)] == [2, 4, 4, Fraction(35, 4)]


@pytest.mark.parametrize(
    "X, fragment",
    [
        (np.zeros((2, 3)), "shape \\(B, T, n_x\\)"),
        (np.zeros((1, 3, 2)), "n_x = 2, the specification says n_x = 1"),
        (np.full((1, 2, 1), np.nan), "non-finite"),
        (np.full((1, 2, 1), np.inf), "non-finite"),
        (np.zeros((0, 2, 1)), "non-empty"),
        ([[["a"]]], "not a finite number|strings"),
    ],
)
def test_bad_inputs(X, fragment):
    with pytest.raises((SpecError, TypeError), match=fragment):
        conv_ntk(RNNSpec(sigma_w="0.5"), X)


def test_mpf_inputs_keep_their_sign():
    """Inputs given as mpmath numbers are exact rationals with their sign (regression)."""
    import mpmath

    from theory.kernel import to_fraction

    assert to_fraction(mpmath.mpf(-1.5)) == Fraction(-3, 2)
    assert to_fraction(mpmath.mpf("0.75")) == Fraction(3, 4)
    assert to_fraction(mpmath.mpf(0)) == 0
    for bad in (mpmath.inf, -mpmath.inf, mpmath.nan):
        with pytest.raises(SpecError):
            to_fraction(bad)
