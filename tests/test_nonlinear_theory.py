"""Exact kernels of linear, ReLU and erf Elman RNNs (:mod:`theory.nonlinear`).

* The linear activation reproduces the theorem's kernel (:mod:`theory.kernel`) for every
  metric, convention, D and learning-rate multiplier: both sides are rounded once to
  ``dps`` digits, so they may differ by 1 ulp of each; the tolerance
  ``10^-(dps-2) sqrt(K_ii K'_jj)`` is that (a PSD kernel's entries are bounded by the
  Cauchy-Schwarz scale) with room for the recursion's ``2 prec + 64``-bit roundings.
* The Gaussian moments agree with independent quadrature (scipy ``quad`` of
  conditional one-dimensional integrals).
* Hand-derived values: ``T = 1`` and the ``(1, 1)`` entry at ``T = 2`` (derivation in the
  test docstrings).
* Precision: ``dps = 30`` agrees with ``dps = 60`` to 28 digits of the same scale.
* Structure: symmetry, PSD, conv2 = conv1 shifted by one step, bad input.

The finite-width agreement (the recursion against torch.func NTKs of wide networks) is in
``tests/test_claim.py``.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory import kernel as tk
from theory.nonlinear import gaussian_moments, rnn_kernels, rnn_ntk
from theory.precision import context, exact
from theory.spec import RNNSpec, SpecError
from verify import strategies as vst

conv_ntk = getattr(tk, "conv_ntk", None) or tk.ntk
conv_nngp = tk.nngp


def _scale(KX, KXp):
    """``sqrt(K(x,x)_ii K(x',x')_jj)`` for scalar kernels (B, T, B', T') as a float array."""
    dx = np.array([float(KX[b, t, b, t]) for b in range(KX.shape[0]) for t in range(KX.shape[1])])
    dxp = np.array([float(KXp[b, t, b, t]) for b in range(KXp.shape[0]) for t in range(KXp.shape[1])])
    return np.sqrt(np.abs(np.outer(dx, dxp))).reshape(KX.shape[0], KX.shape[1], KXp.shape[0], KXp.shape[1])


def _assert_close(A, B, scale, digits):
    """``|A - B| <= 10^-digits * scale`` entrywise (exactly, in a 200-digit local context),
    exact equality where the scale is 0."""
    ctx = context(200)
    A = np.asarray(A, dtype=object).reshape(scale.shape)
    B = np.asarray(B, dtype=object).reshape(scale.shape)
    tol = ctx.mpf(10) ** (-digits)
    for a, b, s in zip(A.reshape(-1), B.reshape(-1), scale.reshape(-1)):
        diff = abs(ctx.mpf(a) - ctx.mpf(b))
        if s == 0:
            assert diff == 0
        else:
            assert diff <= tol * ctx.mpf(float(s)), (a, b, s)


# --------------------------------------------------------------------------- linear = theorem
@given(case=vst.spec_and_batch(max_batch=2, max_T=5, lr=(0, "0.5", 1, 2)), data=st.data())
@settings(max_examples=30)
def test_linear_activation_is_the_theorem_kernel(case, data):
    """Every term of ``sum_l beta_l <x_(t-l), x'_(t'-l)>/n_x`` is bounded by the same kernel of
    ``|X|, |X'|`` (``beta_l >= 0``), so that kernel bounds every intermediate of both routes."""
    spec, X = case
    Xp = data.draw(vst.input_batches(spec.n_x, max_batch=2, max_T=5))
    dps = 30
    R = rnn_kernels(spec, "linear", X, Xp, dps=dps, full=False)
    for mine, ref in ((R.ntk, conv_ntk), (R.nngp, conv_nngp)):
        scale = np.asarray(ref(spec, np.abs(X), np.abs(Xp), dps=dps, full=False), dtype=float)
        _assert_close(mine, ref(spec, X, Xp, dps=dps, full=False), scale, dps - 2)


def test_linear_full_layout_is_delta_ab():
    spec = RNNSpec(sigma_w="0.8", sigma_d="0.5", n_x=2, n_y=3)
    X = np.random.default_rng(0).standard_normal((2, 3, 2))
    K = rnn_ntk(spec, "linear", X, dps=20)
    ref = conv_ntk(spec, X, X, dps=20)
    assert K.shape == (2, 3, 3, 2, 3, 3)
    scale = np.ones(K.shape)
    _assert_close(K, ref, scale * float(np.max(np.abs(np.asarray(ref, dtype=float)))), 18)
    assert all(K[:, :, a, :, :, c].reshape(-1)[0] == 0 for a in range(3) for c in range(3) if a != c)


# --------------------------------------------------------------------------- Gaussian moments
COVARIANCES = [(1.0, 1.0, 0.3), (0.5, 2.0, -0.7), (1.3, 0.4, 0.7), (2.0, 2.0, 1.99), (0.7, 0.9, 0.0)]


@pytest.mark.parametrize("a,b,c", COVARIANCES)
def test_relu_moments_against_quadrature(a, b, c):
    """Conditioning on u (v | u ~ N(m u, s^2), m = c/a, s^2 = b - c^2/a):
    E[relu(u) relu(v)] = int_0^inf u (m u Phi(m u/s) + s phi(m u/s)) p(u) du and
    E[step(u) step(v)] = int_0^inf Phi(m u/s) p(u) du, by scipy's quad (error estimates
    below 1e-11 asserted; tolerance 1e-9)."""
    from scipy.integrate import quad
    from scipy.stats import norm

    m, sd = c / a, np.sqrt(b - c * c / a)
    pu = lambda u: norm.pdf(u, scale=np.sqrt(a))
    e_ref, e_err = quad(lambda u: u * (m * u * norm.cdf(m * u / sd) + sd * norm.pdf(m * u / sd)) * pu(u),
                        0, np.inf, epsabs=1e-13, epsrel=1e-13, limit=200)
    ed_ref, ed_err = quad(lambda u: norm.cdf(m * u / sd) * pu(u), 0, np.inf, epsabs=1e-13, epsrel=1e-13, limit=200)
    assert e_err < 1e-11 and ed_err < 1e-11
    e, ed = gaussian_moments("relu", a, b, c, dps=20)
    assert abs(float(e) - e_ref) <= 1e-9
    assert abs(float(ed) - ed_ref) <= 1e-9


@pytest.mark.parametrize("a,b,c", COVARIANCES)
def test_erf_moments_against_quadrature(a, b, c):
    """Conditioning on u (v | u ~ N(m u, s^2)) and the Gaussian averages of a shifted erf and
    erf' (E[erf(mu + s Z)] = erf(mu / sqrt(1 + 2 s^2)), E[exp(-(mu + s Z)^2)] =
    exp(-mu^2/(1 + 2 s^2)) / sqrt(1 + 2 s^2)): one-dimensional integrals over u by scipy's quad
    (error estimates below 1e-11 asserted; tolerance 1e-9)."""
    from scipy.integrate import quad
    from scipy.special import erf
    from scipy.stats import norm

    m, s2 = c / a, b - c * c / a
    g = 1 + 2 * s2
    pu = lambda u: norm.pdf(u, scale=np.sqrt(a))
    dphi = lambda u: 2 / np.sqrt(np.pi) * np.exp(-u * u)
    e_ref, e_err = quad(lambda u: erf(u) * erf(m * u / np.sqrt(g)) * pu(u), -np.inf, np.inf,
                        epsabs=1e-13, epsrel=1e-13, limit=200)
    ed_ref, ed_err = quad(lambda u: dphi(u) * 2 / np.sqrt(np.pi) * np.exp(-(m * u) ** 2 / g) / np.sqrt(g) * pu(u),
                          -np.inf, np.inf, epsabs=1e-13, epsrel=1e-13, limit=200)
    assert e_err < 1e-11 and ed_err < 1e-11
    e, ed = gaussian_moments("erf", a, b, c, dps=20)
    assert abs(float(e) - e_ref) <= 1e-9
    assert abs(float(ed) - ed_ref) <= 1e-9


def test_relu_degenerate_variance_follows_relu_prime_zero():
    """A zero input at t = 0 gives u = 0 exactly; torch's relu'(0) = 0, so both moments are 0."""
    assert gaussian_moments("relu", 0, 1, 0) == (0, 0)
    e, ed = gaussian_moments("erf", 0, 1, 0, dps=30)
    ctx = context(40)
    assert e == 0 and abs(ctx.mpf(ed) - 4 / ctx.pi / ctx.sqrt(3)) < ctx.mpf(10) ** -28


def test_moments_reject_non_covariances():
    with pytest.raises(SpecError):
        gaussian_moments("relu", 1, 1, 2)
    with pytest.raises(SpecError):
        gaussian_moments("tanh", 1, 1, 0)


# --------------------------------------------------------------------------- hand-derived values
@pytest.mark.parametrize("x0,x1,sw", [(1, 2, "1/2"), (0, 3, "0.9"), (-2, 1, "1.1")])
def test_relu_two_steps_by_hand(x0, x1, sw):
    """ReLU, metric ntk, s_F = s_C = 1, n_x = 1: Sigma_00 = x0^2, E[relu^2] = Sigma/2, E[step^2] = 1/2
    (1/2 only when Sigma > 0; 0 for a zero input).  K_00 = Sigma_00/2 + Theta_00/2 = x0^2;
    Sigma_11 = x1^2 + s^2 x0^2/2, Theta_11 = x1^2 + s^2 E_00 + s^2 Ed_00 Theta_00 = x1^2 + s^2 x0^2
    (x0 != 0), so K_11 = Sigma_11/2 + Theta_11/2 = x1^2 + 3 s^2 x0^2 / 4."""
    s2 = Fraction(sw) ** 2
    spec = RNNSpec(sigma_w=sw)
    K = rnn_ntk(spec, "relu", [[[x0], [x1]]], dps=30, full=False)
    k00 = Fraction(x0) ** 2
    k11 = Fraction(x1) ** 2 + 3 * s2 * Fraction(x0) ** 2 / 4
    ctx = context(40)
    tol = ctx.mpf(10) ** -28
    assert abs(ctx.mpf(K[0, 0, 0, 0]) - exact(ctx, k00)) <= tol * max(1, k00)
    assert abs(ctx.mpf(K[0, 1, 0, 1]) - exact(ctx, k11)) <= tol * max(1, k11)


def test_erf_one_step_by_hand():
    """erf, T = 1, x = 1, s_F = 2, s_C = 3: a = 4; NTK = s_C^2 (E[erf^2] + Ed * s_F^2 x^2)
    = 9 ((2/pi) asin(2a/(1+2a)) + (4/pi) a / sqrt((1+2a)^2 - 4a^2))."""
    spec = RNNSpec(sigma_w="0.5", sigma_f=2, sigma_c=3)
    R = rnn_kernels(spec, "erf", [[[1.0]]], dps=40, full=False)
    ctx = context(60)
    a = ctx.mpf(4)
    e = 2 / ctx.pi * ctx.asin(2 * a / (1 + 2 * a))
    ed = 4 / ctx.pi / ctx.sqrt((1 + 2 * a) ** 2 - 4 * a * a)
    ntk, nngp = 9 * (e + ed * a), 9 * e
    assert abs(ctx.mpf(R.ntk[0, 0, 0, 0]) - ntk) <= ctx.mpf(10) ** -38 * ntk
    assert abs(ctx.mpf(R.nngp[0, 0, 0, 0]) - nngp) <= ctx.mpf(10) ** -38 * nngp


# --------------------------------------------------------------------------- precision, structure
@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_digits_agree_across_precisions(activation):
    spec = RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c="0.7", n_x=2)
    rng = np.random.default_rng(4)
    X = rng.standard_normal((2, 4, 2))
    X[0, 0] = X[1, 0]  # identical inputs: rho = 1 exactly, the arccos's worst case
    lo = rnn_kernels(spec, activation, X, dps=30, full=False)
    hi = rnn_kernels(spec, activation, X, dps=60, full=False)
    scale = _scale(hi.ntk, hi.ntk)
    _assert_close(lo.ntk, hi.ntk, scale, 28)
    _assert_close(lo.nngp, hi.nngp, _scale(hi.nngp, hi.nngp), 28)


@pytest.mark.parametrize("activation", ["linear", "relu", "erf"])
def test_symmetry_and_positive_semidefinite(activation):
    spec = RNNSpec(sigma_w="1.1", sigma_d="0.3", n_x=1, metric="variance", lr_f="0.5")
    rng = np.random.default_rng(5)
    X, Xp = rng.standard_normal((2, 3, 1)), rng.standard_normal((3, 2, 1))
    K = np.asarray(rnn_ntk(spec, activation, X, dps=20, full=False), dtype=float).reshape(6, 6)
    assert np.array_equal(K, K.T)
    assert np.linalg.eigvalsh(K).min() >= -1e-12 * np.abs(K).max()
    a = np.asarray(rnn_ntk(spec, activation, X, Xp, dps=20, full=False), dtype=float)
    b = np.asarray(rnn_ntk(spec, activation, Xp, X, dps=20, full=False), dtype=float)
    assert np.array_equal(a, b.transpose(2, 3, 0, 1))


@pytest.mark.parametrize("activation", ["relu", "erf"])
def test_conv2_is_conv1_one_step_later(activation):
    """conv2 (h_(t+1) = phi(W h_t + F x_t), y_t = C h_t): y_0 = 0 and y_t is conv1's y_(t-1)."""
    spec = RNNSpec(sigma_w="0.9", sigma_f="1.2")
    X = np.random.default_rng(6).standard_normal((2, 4, 1))
    K2 = rnn_kernels(spec.replace(convention="conv2"), activation, X, dps=25, full=False)
    K1 = rnn_kernels(spec, activation, X[:, :3], dps=25, full=False)
    for a, b in ((K2.ntk, K1.ntk), (K2.nngp, K1.nngp)):
        assert all(v == 0 for v in a[:, 0].reshape(-1)) and all(v == 0 for v in a[:, :, :, 0].reshape(-1))
        assert all(x == y for x, y in zip(a[:, 1:, :, 1:].reshape(-1), b.reshape(-1)))


def test_bad_input():
    spec = RNNSpec(sigma_w="0.9")
    with pytest.raises(SpecError, match="activation"):
        rnn_kernels(spec, "tanh", [[[1.0]]])
    with pytest.raises(SpecError, match="shape"):
        rnn_kernels(spec, "relu", [[1.0]])
    with pytest.raises(SpecError, match="n_x"):
        rnn_kernels(spec, "relu", np.ones((1, 2, 3)))
    with pytest.raises(SpecError, match="non-finite"):
        rnn_kernels(spec, "relu", np.array([[[np.nan]]]))
    with pytest.raises(SpecError, match="not a number"):
        rnn_kernels(spec, "relu", np.array([[["a"]]], dtype=object))
    with pytest.raises(ValueError):
        rnn_kernels(spec, "relu", [[[1.0]]], dps=2)
