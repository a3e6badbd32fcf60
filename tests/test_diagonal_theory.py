"""Exact side of the diagonal-recurrence extension (theory.diagonal).

Closed forms are checked against mpmath quadrature of their *defining
expectations* (never against themselves), at the working precision: the
reference integral runs at ``dps + 15`` digits, and the comparison tolerance
``10^-(dps-3)`` times the scale of the integrand (its maximum on the domain,
which bounds the integral and so the absolute rounding level of any evaluation)
leaves 3 digits for the accumulated rounding of a few dozen operations.
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.diagonal import (
    P0,
    P2,
    DiagonalSpec,
    c0,
    c2,
    implicit_bias_solution,
    lag_kernel,
    lag_kernel_diagonal,
    parse_phase,
    s4d_c_share,
    s4d_spectrum,
)
from theory.precision import context, exact
from theory.spec import RNNSpec, SpecError


# --------------------------------------------------------------------------- strategies
@st.composite
def ring_laws(draw, allow_full=True):
    """Eigenvalue laws: 0 <= r_min < r_max <= 1 on a 1/1000 grid, phase in radians or in pi."""
    hi = draw(st.integers(1, 1000 if allow_full else 999))
    lo = draw(st.integers(0, hi - 1))
    if draw(st.booleans()):
        phase = Fraction(draw(st.integers(1, 200)), 100)  # radians, 0.01 .. 2
        return DiagonalSpec(r_min=Fraction(lo, 1000), r_max=Fraction(hi, 1000), max_phase=phase)
    q = Fraction(draw(st.integers(1, 20)), draw(st.integers(1, 20)))  # q pi, includes pi/10, 2 pi
    return DiagonalSpec(r_min=Fraction(lo, 1000), r_max=Fraction(hi, 1000), max_phase=q, phase_in_pi=True)


dps_values = st.sampled_from([15, 25, 40])


def quad_ctx(dps):
    return context(dps + 15)


def rel_quad(q, f, pts):
    """mpmath quadrature to relative accuracy (quad stops on an absolute error estimate, so the
    integrand is rescaled by a first rough value of the integral)."""
    rough = q.quad(f, pts)
    scale = abs(rough) if rough != 0 else 1
    return q.quad(lambda x: f(x) / scale, pts) * scale


def close(value, reference, scale, dps):
    return abs(value - reference) <= scale * context(dps).mpf(10) ** (-(dps - 3))


# --------------------------------------------------------------------------- closed forms vs quadrature
@given(ring_laws(), st.integers(0, 60), dps_values)
def test_P0_P2_match_quadrature(spec, k, dps):
    ctx = context(dps)
    q = quad_ctx(dps)
    s0, s1 = exact(q, spec.s0), exact(q, spec.s1)
    p = q.mpf(k) / 2
    pts = q.linspace(s0, s1, 5)
    ref0 = rel_quad(q, lambda s: (1 - s) * s**p, pts) / (s1 - s0)
    ref2 = rel_quad(q, lambda s: (q.log(s) ** 2 / 4 if s > 0 else 0) * (1 - s) * s**p, pts) / (s1 - s0)
    v0, v2 = P0(spec, k, ctx), P2(spec, k, ctx)
    # Both integrands are > 0 on the ring, so the closed forms must agree in the relative sense.
    assert close(v0, ref0, abs(ref0), dps), (v0, ref0)
    assert close(v2, ref2, abs(ref2), dps), (v2, ref2)


@settings(max_examples=15)
@given(ring_laws(), st.integers(0, 25), st.sampled_from([15, 30]))
def test_c0_c2_match_quadrature(spec, m, dps):
    ctx = context(dps)
    q = quad_ctx(dps)
    Phi = spec.max_phase_value(q)
    pts = q.linspace(0, Phi, 2 * m + 2)  # one panel per half oscillation
    ref0 = q.quad(lambda f: q.cos(m * f), pts) / Phi
    ref2 = q.quad(lambda f: f * f * q.cos(m * f), pts) / Phi
    # scales: |cos| <= 1, |phi^2 cos| <= Phi^2 bound the integrands, hence the rounding level
    assert close(c0(spec, m, ctx), ref0, 1, dps)
    assert close(c2(spec, m, ctx), ref2, Phi**2, dps)
    assert close(c0(spec, -m, ctx), ref0, 1, dps)  # even in m


@settings(max_examples=8)
@given(ring_laws(), st.integers(2, 5), st.sampled_from([15, 25]))
def test_tied_nu_share_matches_direct_quadrature(spec, lags, dps):
    """The tied-gamma nu share (expanded: I1 - k Q + l l' P2, I1 by quadrature) against the
    quadrature of the unexpanded defining expectation kappa E[a^2 (1-s) s^p (rho-l)(rho-l')] c0(m)."""
    spec = spec.replace(tied_gamma=True)
    K = lag_kernel(spec, lags, dps=dps).shares["nu"]
    q = quad_ctx(dps)
    s0, s1 = exact(q, spec.s0), exact(q, spec.s1)
    kappa = exact(q, spec.kappa)
    qc = context(dps + 15)
    for l in range(lags):
        for lp in range(l, lags):
            p = q.mpf(l + lp) / 2

            def f(s):
                if s == 0 or s == 1:
                    return q.mpf(0)
                # (1-s)(rho-l)(rho-l') = (s - l(1-s))(s - l'(1-s))/(1-s)
                return q.log(s) ** 2 / 4 * s**p * (s - l * (1 - s)) * (s - lp * (1 - s)) / (1 - s)

            ref = rel_quad(q, f, q.linspace(s0, s1, 5)) / (s1 - s0) * kappa * c0(spec, l - lp, qc)
            # scale of the terms of the expansion: I1 ~ E[a^2 s^(p+2)/(1-s)], k Q, l l' P2 are each
            # bounded by (1 + l)(1 + l') times max a^2 s^2/(1-s) <= 1 on the ring
            scale = kappa * (1 + l) * (1 + lp) * max(abs(ref), q.mpf(10) ** -6)
            assert close(K[l][lp], ref, scale, dps), (l, lp, K[l][lp], ref)


# --------------------------------------------------------------------------- limit identities
@given(ring_laws(), st.integers(1, 60), st.sampled_from([20, 40]))
def test_sum_of_K0_diagonal_telescopes(spec, L, dps):
    """sum_(l<L) K0(l, l) = E[(1 - s) sum_(l<L) s^l] = 1 - E[s^L] = 1 - (s1^(L+1) - s0^(L+1))/((L+1)(s1 - s0)),
    so the full sum is 1 for every ring (the gamma normalization)."""
    ctx = context(dps)
    total = sum(P0(spec, 2 * l, ctx) for l in range(L))
    s0, s1 = exact(ctx, spec.s0), exact(ctx, spec.s1)
    expected = 1 - (s1 ** (L + 1) - s0 ** (L + 1)) / ((L + 1) * (s1 - s0))
    assert close(total, expected, L, dps)


def test_full_circle_makes_all_but_theta_diagonal():
    spec = DiagonalSpec(r_min="0.5", r_max="0.95", max_phase="2pi", sigma_d=None)
    K = lag_kernel(spec, 6, dps=30)
    # c0(m) = sin(m Phi)/(m Phi) vanishes exactly at Phi = 2 pi; the computed entries are rounding
    # (30 digits, terms of size <= kappa = 1): 10^-28 leaves two digits for it
    for g in ("B", "C", "gamma", "nu"):
        off = max(abs(K.shares[g][l][lp]) for l in range(6) for lp in range(6) if l != lp)
        assert off < context(30).mpf(10) ** -28, g
    # theta: c2(m) = 2/m^2 at Phi = 2 pi, times kappa l l' P0(l + l')
    ctx = context(30)
    th = K.shares["theta"]
    assert abs(th[1][2] - exact(ctx, spec.kappa) * 2 * P0(spec, 3, ctx) * 2) < ctx.mpf(10) ** -28


def test_lru_scaling_is_readout_only():
    spec = DiagonalSpec(r_min="0.9", r_max="0.999", max_phase="pi/10", scaling="lru", sigma_b2="0.25", lr_c=3)
    K = lag_kernel(spec, 5, dps=30)
    ctx = context(30)
    assert all(v == 0 for g in K.shares if g != "C" for row in K.shares[g] for v in row)
    for l in range(5):
        for lp in range(5):
            ref = 3 * exact(ctx, Fraction(1, 2)) * P0(spec, l + lp, ctx) * c0(spec, l - lp, ctx)
            assert abs(K.total[l][lp] - ref) <= ctx.mpf(10) ** -29


@settings(max_examples=10)
@given(ring_laws(), st.booleans(), st.booleans())
def test_kernel_is_symmetric_psd_and_diagonal_consistent(spec, tied, lru):
    spec = spec.replace(tied_gamma=tied, scaling="lru" if lru else "ntk")
    K = lag_kernel(spec, 6, dps=20)
    A = np.array([[float(v) for v in row] for row in K.total])
    assert np.array_equal(A, A.T)
    # The exact kernel is PSD.  Rounding it to float64 perturbs it by ||E||_2 <= T eps max|A|, and
    # eigvalsh is backward stable (eigenvalues of A + E' with ||E'||_2 <= c T eps ||A||_2, Golub & Van
    # Loan 8.4), so by Weyl the smallest computed eigenvalue is >= -(1 + c T) T eps max|A| (||A||_2 <=
    # T max|A|).  T = 6, eps = 2.2e-16: -1e-13 max|A| allows c up to 12.
    assert np.linalg.eigvalsh(A).min() >= -1e-13 * np.abs(A).max()
    d = lag_kernel_diagonal(spec, list(range(6)), dps=20)
    ctx = context(20)
    for l in range(6):
        # two 20-digit evaluations of one number (the library controls cancellation): each within
        # ~10^-19 of it; 10^-17 leaves two digits for the accumulated rounding of a few dozen operations
        assert abs(d[l] - K.total[l][l]) <= ctx.mpf(10) ** -17 * (1 + abs(d[l]))


def test_spec_validation_messages():
    with pytest.raises(SpecError, match="r_min < r_max"):
        DiagonalSpec(r_min="0.9", r_max="0.9", max_phase=1)
    with pytest.raises(SpecError, match="r_max must be <= 1"):
        DiagonalSpec(r_min="0.9", r_max="1.1", max_phase=1)
    with pytest.raises(SpecError, match="r_min must be >= 0"):
        DiagonalSpec(r_min="-0.1", r_max="0.5", max_phase=1)
    with pytest.raises(SpecError, match="max_phase must be > 0"):
        DiagonalSpec(r_min=0, r_max="0.5", max_phase=0)
    with pytest.raises(SpecError, match="scaling"):
        DiagonalSpec(r_min=0, r_max="0.5", max_phase=1, scaling="xavier")
    with pytest.raises(SpecError, match="max_phase must be a number"):
        DiagonalSpec(r_min=0, r_max="0.5", max_phase="tau")
    assert parse_phase("3*pi/4") == (Fraction(3, 4), True)
    assert DiagonalSpec(r_min=0, r_max=1, max_phase="pi/10").groups == ("B", "C", "gamma", "nu", "theta", "D")
    assert DiagonalSpec(r_min=0, r_max=1, max_phase=1, tied_gamma=True, sigma_d=None).groups == (
        "B", "C", "nu", "theta")


def test_known_values_from_the_spec_note():
    """Numbers quoted in docs/diagonal.md (r in [0.9, 0.999], Phi = pi/10), checked against the exact
    rational integrals they come from (computed here with Fractions, not with theory.diagonal):

    * readout-only weight ratio lag 100 / lag 0 = P0(200)/P0(0) = int (1-s) s^100 ds / int (1-s) ds over
      s = r^2 in [0.81, 0.998001]; quoted as 5.3e-3, which must be its 2-digit rounding;
    * the ntk theta share on the diagonal is kappa c2(0) l^2 P0(2l) with c2(0) = E[phi^2] = Phi^2/3, so
      over the "plateau" kappa Phi^2 / (3 (s1 - s0)) it is l^2 [F(s1) - F(s0)], F(s) = s^(l+1)/(l+1) -
      s^(l+2)/(l+2): below l^2/((l+1)(l+2)) < 1 for every l (F(s) <= F(1)), and equal to that exact
      rational within float64 rounding.
    """
    s0, s1 = Fraction(81, 100), Fraction(998001, 1000000)
    F = lambda s, p: s ** (p + 1) / (p + 1) - s ** (p + 2) / (p + 2)
    ratio = (F(s1, 100) - F(s0, 100)) / (F(s1, 0) - F(s0, 0))
    assert abs(ratio - Fraction(53, 10000)) <= Fraction(5, 100000)  # 5.3e-3 is the 2-digit rounding
    spec = DiagonalSpec(r_min="0.9", r_max="0.999", max_phase="pi/10", scaling="lru")
    d = lag_kernel_diagonal(spec, [0, 100], dps=20)
    assert abs(float(d[1] / d[0]) - float(ratio)) <= 1e-15 * float(ratio)
    ntk = DiagonalSpec(r_min="0.9", r_max="0.999", max_phase="pi/10", lr_b=0, lr_c=0, lr_gamma=0, lr_nu=0,
                       lr_d=0)
    plateau = float(ntk.kappa) * (np.pi / 10) ** 2 / (3 * float(s1 - s0))
    for l, v in zip((30, 100), lag_kernel_diagonal(ntk, [30, 100], dps=20)):
        exact_ratio = l * l * (F(s1, l) - F(s0, l))
        assert exact_ratio < Fraction(l * l, (l + 1) * (l + 2)) < 1  # rises to the plateau from below
        assert abs(float(v) / plateau - float(exact_ratio)) <= 1e-14  # float64 rounding of both sides


# --------------------------------------------------------------------------- S4D
def test_s4d_lin_geometric_diagonal_and_periodic_offdiagonal():
    dt = Fraction(1, 4)
    K = s4d_c_share("lin", 20, state_size=16, dt=dt, dps=30)
    ctx = context(30)
    e = ctx.exp(-exact(ctx, dt))
    # 30-digit values, ratios of two of them: rounding ~10^-30 each; 10^-27 leaves three digits
    for l in range(19):  # beta_(l+1) / beta_l = |lambda|^2 = e^(-dt)
        assert abs(K[l + 1][l + 1] / K[l][l] - e) < ctx.mpf(10) ** -27
    # K(l, l') e^(dt (l + l')/2) depends on m = l - l' only, with period 2/dt = 8
    f = lambda l, lp: K[l][lp] * ctx.exp(exact(ctx, dt) * (l + lp) / 2)
    for l, lp in [(10, 2), (12, 1), (15, 3)]:
        assert abs(f(l, lp) - f(l - 4, lp + 4)) < ctx.mpf(10) ** -26  # m -> m - 8
    # direct complex evaluation of sum_n Re(b lam^l conj(b lam^l')) * s_C^2 (a different route)
    A = s4d_spectrum("lin", 16, ctx)
    lam = [ctx.exp(exact(ctx, dt) * a) for a in A]
    b = [(x - 1) / a for x, a in zip(lam, A)]
    ref = 2 * sum(ctx.re(bb * x**7 * ctx.conj(bb * x**3)) for bb, x in zip(b, lam))
    assert abs(K[7][3] - ref) < ctx.mpf(10) ** -27


def test_s4d_real_is_not_geometric_and_inv_is():
    Kr = s4d_c_share("real", 6, state_size=8, dt="0.1", dps=20)
    ratios = [float(Kr[l + 1][l + 1] / Kr[l][l]) for l in range(5)]
    # a sum of several geometric sequences (one rate per mode): the ratio drifts from a weighted mean
    # of the rates toward the slowest one (measured 0.637 .. 0.739).  Any spread above the rounding of
    # the float conversions (2e-16) shows it; 1e-3 is a wide margin below the measured 0.10.
    assert max(ratios) - min(ratios) > 1e-3
    Ki = s4d_c_share("inv", 6, state_size=8, dt="0.1", dps=20)
    ratios = [float(Ki[l + 1][l + 1] / Ki[l][l]) for l in range(5)]
    # exactly geometric: the float64 ratios differ only by their rounding (<= 2^-53 each, ratios < 1),
    # and numpy's exp is within one ulp: both below 2.3e-16 < 1e-15
    assert max(ratios) - min(ratios) < 1e-15 and abs(ratios[0] - np.exp(-0.1)) < 1e-15
    with pytest.raises(SpecError, match="kind"):
        s4d_c_share("hippo", 4)


# --------------------------------------------------------------------------- implicit bias
def _solution_kkt_residual(theta, X, L, L0, dps):
    """|| Theta^-1 (L - L0) - X^T alpha || for the least-squares alpha: zero iff L is the
    Theta^-1-metric minimizer among interpolants (Lagrange condition), Theta invertible."""
    ctx = context(dps + 20)
    K = ctx.matrix(theta)
    Xm = ctx.matrix(X)
    w = ctx.lu_solve(K, ctx.matrix([a - b for a, b in zip(L, L0)]))
    alpha = ctx.lu_solve(Xm * Xm.T, Xm * w)
    r = w - Xm.T * alpha
    return max(abs(r[i]) for i in range(len(L))) / max(abs(w[i]) for i in range(len(L)))


def test_implicit_bias_solution_fits_is_optimal_and_power():
    spec = DiagonalSpec(r_min="0.9", r_max="0.999", max_phase="pi/10")
    T, N = 8, 3
    K = lag_kernel(spec, T, dps=40).total
    rng = np.random.default_rng(7)
    X = rng.standard_normal((N, T)).tolist()
    y = rng.standard_normal(N).tolist()
    L0 = (0.1 * rng.standard_normal(T)).tolist()
    L = implicit_bias_solution(K, X, y, L0, dps=30)
    ctx = context(30)
    for i in range(N):
        assert abs(sum(ctx.mpf(X[i][j]) * L[j] for j in range(T)) - y[i]) < ctx.mpf(10) ** -27
    # L carries 30-digit rounding; Theta^-1 amplifies it by at most cond(Theta) (1-norm), so the
    # relative residual of the Lagrange condition is <= cond * 10^-28 (2 digits for the solve).
    q = context(60)
    Km = q.matrix(K)
    cond = q.mnorm(Km, 1) * q.mnorm(q.inverse(Km), 1)
    assert cond < 1e18  # otherwise the check below would have no power at 30 digits
    assert _solution_kkt_residual(K, X, L, [ctx.mpf(v) for v in L0], 30) < cond * 1e-28
    # power: another interpolant (add a null-space direction of X) violates the optimality condition
    null = np.linalg.svd(np.array(X))[2][-1]
    L_bad = [a + 1e-3 * float(v) for a, v in zip(L, null)]
    # Power: the interpolant moved by 1e-3 along a null direction of X violates the Lagrange condition
    # by ~1e-3 times how much Theta^-1 amplifies that direction (up to cond = 7.9e11 here; the relative
    # residual measures 0.75).  The correct interpolant is bounded by cond * 1e-28 = 8e-17 above;
    # 1e-8 sits eight decades from each, so neither check can pass by the other's accident.
    assert _solution_kkt_residual(K, X, L_bad, [ctx.mpf(v) for v in L0], 30) > 1e-8


def test_implicit_bias_solution_matches_dense_weighted_min_norm():
    """Theta = diag(beta) reduces to the dense case (theory.bias, an independent implementation)."""
    from theory.bias import min_norm_response
    from theory.weights import lag_weights

    rnn = RNNSpec(sigma_w="0.8")
    T = 7
    beta = lag_weights(rnn, T, dps=40)
    ctx = context(40)
    theta = [[beta[i] if i == j else ctx.mpf(0) for j in range(T)] for i in range(T)]
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3, T))
    y = rng.standard_normal((3, 1))
    L = implicit_bias_solution(theta, X.tolist(), y[:, 0].tolist(), dps=30)
    ref = min_norm_response(X, y, beta, dps=30).response[:, 0, 0]
    for a, b in zip(L, ref):
        assert abs(a - b) <= context(30).mpf(10) ** -28 * (1 + abs(b))


def test_implicit_bias_solution_rejects_bad_shapes():
    with pytest.raises(ValueError, match="square"):
        implicit_bias_solution([[1, 0]], [[1, 0]], [1])
    with pytest.raises(ValueError, match="N x T"):
        implicit_bias_solution([[1]], [[1, 2]], [1])
    with pytest.raises(ValueError, match="singular"):
        implicit_bias_solution([[1, 0], [0, 0]], [[0, 1]], [1])
    with pytest.raises(ValueError, match="not a finite number"):
        implicit_bias_solution([[1]], [[float("nan")]], [1])


def test_implicit_bias_solution_takes_decimal_strings_exactly():
    """Theta = 0.1, X = 10, y = 1: L = Theta X (X Theta X)^-1 y = 1/10, from the strings as written."""
    (L,) = implicit_bias_solution([["0.1"]], [["10"]], ["1"], dps=30)
    assert abs(L - context(40).mpf(1) / 10) < context(40).mpf(10) ** -32
