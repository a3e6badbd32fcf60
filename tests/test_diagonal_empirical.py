"""Finite-width side of the diagonal-recurrence extension (verify.engine.diagonal).

Statistics.  The lag Gram of a diagonal recurrence is a sum of n i.i.d. unit
terms f_j (plus the deterministic D share), so E[Theta_n] = limit at EVERY
width and each entry has standard error sqrt(n Var f_j), estimated from the
per-unit terms.  A comparison of ``count`` entries fails when some
|z| > Phi^-1(1 - alpha/(2 count)) with alpha = 1e-6 (Bonferroni): the
false-failure probability per hypothesis example is <= 1e-6 under the normal
approximation of each z (CLT over n >= 2000 i.i.d. terms with finite moments of
all orders; the seeds test below checks the calibration: z over many seeds
has mean 0 and variance 1).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.diagonal import DiagonalSpec
from verify.engine.diagonal import (
    bonferroni_threshold,
    impulse_response,
    init_diagonal,
    lag_gram,
    limit_matrix,
    unit_gradients,
    zscores,
)

ALPHA = 1e-6


@st.composite
def diag_specs(draw):
    hi = draw(st.integers(1, 1000))
    lo = draw(st.integers(0, hi - 1))
    if draw(st.booleans()):
        phase, in_pi = Fraction(draw(st.integers(1, 628)), 100), False
    else:
        phase, in_pi = Fraction(draw(st.integers(1, 20)), draw(st.integers(1, 20))), True
    return DiagonalSpec(
        r_min=Fraction(lo, 1000), r_max=Fraction(hi, 1000), max_phase=phase, phase_in_pi=in_pi,
        tied_gamma=draw(st.booleans()), scaling=draw(st.sampled_from(["ntk", "lru"])),
        sigma_b2=draw(st.sampled_from([Fraction(1, 2), Fraction(1, 8), Fraction(1)])),
        sigma_c=draw(st.sampled_from([Fraction(1), Fraction(3, 2)])),
        sigma_d=draw(st.sampled_from([None, Fraction(1)])),
        lr_theta=draw(st.sampled_from([Fraction(1), Fraction(0), Fraction(1, 3)])),
    )


def _compare(G, lim, groups, alpha=ALPHA):
    """Max |z| over the upper triangles of the listed groups, and the Bonferroni threshold."""
    T = lim["total"].shape[0]
    iu = np.triu_indices(T)
    zs = []
    for g in groups:
        emp = G.total if g == "total" else G.shares[g]
        var = G.var_total if g == "total" else G.var_shares[g]
        zs.append(zscores(emp, lim[g], var)[iu])
    z = np.concatenate(zs)
    return float(np.max(np.abs(z))), bonferroni_threshold(z.size, alpha)


def _finite_width_mean_lru(spec, lags, n):
    """Exact E[Theta_n / n] under the "lru" scaling: the C share (readout-only limit) plus
    1/n times the raw-parameter shares of the other groups.  Raw gradients are the ntk ones
    divided by the tilde factors (B = s_B b~, D = s_D D~; nu, theta, gamma are the same), so
    their expectations are the ntk shares / s_B^2 (B), / s_D^2 (D), unchanged otherwise."""
    lim = limit_matrix(spec, lags)
    ntk = limit_matrix(spec.replace(scaling="ntk"), lags)
    out = {"C": lim["C"]}
    for g in spec.groups:
        if g == "C":
            continue
        f = 1.0
        if g == "B":
            f = 1 / float(spec.sigma_b2)
        if g == "D":
            f = 1 / float(spec.sigma_d) ** 2
        out[g] = ntk[g] * f / n
    out["total"] = sum(out[g] for g in spec.groups)
    return out


@given(diag_specs(), st.integers(2, 7), st.integers(0, 2**32 - 1))
def test_empirical_lag_gram_matches_limit_by_zscores(spec, lags, seed):
    n = 2000
    G = lag_gram(init_diagonal(spec, n, seed), lags)
    if spec.scaling == "ntk":
        ref = limit_matrix(spec, lags, dps=20)
    else:
        ref = _finite_width_mean_lru(spec, lags, n)
    groups = list(spec.groups) + ["total"]
    zmax, thr = _compare(G, ref, groups)
    assert zmax <= thr, (zmax, thr)


def test_wide_network_all_settings_and_power():
    """Width 20,000: every group and the total agree with the limit; a 3 % perturbation of the
    limit (10 % for the full-disk law, whose entries have a larger relative standard error,
    0.6 % against 0.2 % at (0, 0)), and the untied-gamma kernel used for a tied network (a
    plausible bug), are rejected.  Expected z of the perturbed comparison: delta / rel. SE ~ 13-70."""
    n, T = 20_000, 8
    for kw in ({}, {"tied_gamma": True}, {"r_min": 0, "r_max": 1, "max_phase": "6.28"}):
        spec = DiagonalSpec(**{**dict(r_min="0.9", r_max="0.999", max_phase="pi/10"), **kw})
        G = lag_gram(init_diagonal(spec, n, seed=11), T)
        lim = limit_matrix(spec, T)
        zmax, thr = _compare(G, lim, list(spec.groups) + ["total"])
        assert zmax <= thr, (kw, zmax, thr)
        # power: the same data against a perturbed limit
        delta = 0.10 if spec.r_max == 1 else 0.03
        bad = {g: (1 + delta) * v for g, v in lim.items()}
        assert _compare(G, bad, ["total"])[0] > thr
    tied = DiagonalSpec(r_min="0.9", r_max="0.999", max_phase="pi/10", tied_gamma=True)
    G = lag_gram(init_diagonal(tied, n, seed=12), T)
    wrong = limit_matrix(tied.replace(tied_gamma=False), T)
    assert _compare(G, wrong, ["nu"])[0] > bonferroni_threshold(T * (T + 1) // 2, ALPHA)


def test_no_bias_over_many_seeds_at_tiny_width():
    """E[Theta_n] = limit exactly at every width: average S = 3000 networks of width n = 4
    (the dense RNN has an O(1/n) bias here).  The standard error of the seed mean comes from
    the sample variance of the per-seed Grams; Bonferroni over the upper triangle, alpha = 1e-6.
    Also the calibration of the z-scores: per-seed z of one entry have mean ~0, variance ~1."""
    spec = DiagonalSpec(r_min="0.5", r_max="0.99", max_phase="pi/4")
    T, n, S = 6, 4, 3000
    lim = limit_matrix(spec, T)
    tot = np.stack([lag_gram(init_diagonal(spec, n, seed), T).total for seed in range(S)])
    mean = tot.mean(axis=0)
    se = tot.std(axis=0, ddof=1) / np.sqrt(S)
    iu = np.triu_indices(T)
    z = ((mean - lim["total"]) / se)[iu]
    assert np.max(np.abs(z)) <= bonferroni_threshold(z.size, ALPHA), z
    # calibration at a width where the per-unit variance is estimated from the units themselves:
    zs = []
    for seed in range(200):
        G = lag_gram(init_diagonal(spec, 500, 10_000 + seed), 3)
        zs.append(zscores(G.total, lim["total"][:3, :3], G.var_total)[1, 2])
    zs = np.array(zs)
    # mean of 200 N(0,1): sd 0.071, |mean| < 5.3 sd = 0.38 fails w.p. ~1e-7;
    # variance: sample var of 200 approx N(1, 2/199) (sd 0.1, plus kurtosis slack): [0.5, 1.6]
    assert abs(zs.mean()) < 0.38 and 0.5 < zs.var(ddof=1) < 1.6, (zs.mean(), zs.var(ddof=1))


def test_lru_limit_is_the_nngp_covariance():
    """Readout-only kernel = Cov(L_l, L_l') of the initial response (no D), exactly at every width:
    Cov = sum_j E[Re(C z_l) Re(C z_l')] = n * (s_C^2/n) E[g^2 |B|^2 r^k cos(m phi)].
    Checked on S = 8000 networks of width 3: z from the sample variance of the products, Bonferroni, alpha = 1e-6."""
    spec = DiagonalSpec(r_min="0.6", r_max="0.95", max_phase="pi/3", sigma_d=None)
    lru = spec.replace(scaling="lru")
    T, S = 5, 8_000
    lim = limit_matrix(lru, T)["total"]
    L = np.stack([impulse_response(init_diagonal(spec, 3, seed), T) for seed in range(S)])
    prods = L[:, :, None] * L[:, None, :]  # mean-zero responses: E[L_l L_l'] = Cov
    z = (prods.mean(0) - lim) / (prods.std(0, ddof=1) / np.sqrt(S))
    iu = np.triu_indices(T)
    assert np.max(np.abs(z[iu])) <= bonferroni_threshold(len(iu[0]), ALPHA)


@settings(max_examples=15)
@given(diag_specs(), st.integers(0, 2**32 - 1))
def test_gradients_match_finite_differences_through_the_recurrence(spec, seed):
    """Per-unit gradients against central differences of the impulse response computed by the
    recurrence itself (forward of a unit impulse).  Step h = 1e-5: truncation h^2/6 |f'''| and
    rounding ~ 1e-16 |f| / h, both below 1e-8 times the scale of L (|f'''| ~ l^3 |L| with l <= 5
    for nu, theta; bounded for the linear B, C); tolerance 1e-6 relative to the largest gradient."""
    n, T, h = 4, 6, 1e-5
    spec = spec.replace(scaling="ntk")
    m = init_diagonal(spec, n, seed)
    grads = unit_gradients(m, T)
    sb, sc = float(spec.sigma_b2) ** 0.5, float(spec.sigma_c) / np.sqrt(n)

    def fd(make):
        return (impulse_response(make(h), T) - impulse_response(make(-h), T)) / (2 * h)

    for j in range(n):
        e = np.zeros(n)
        e[j] = 1.0
        checks = {
            ("nu", 0): lambda d: m.replace(nu=m.nu + d * e),
            ("theta", 0): lambda d: m.replace(theta=m.theta + d * e),
            ("C", 0): lambda d: m.replace(C=m.C + sc * d * e),
            ("C", 1): lambda d: m.replace(C=m.C + 1j * sc * d * e),
            ("B", 0): lambda d: m.replace(B=m.B + sb * d * e),
            ("B", 1): lambda d: m.replace(B=m.B + 1j * sb * d * e),
        }
        if m.gamma is not None:
            checks[("gamma", 0)] = lambda d: m.replace(gamma=m.gamma + d * e)
        for (g, c), make in checks.items():
            num = fd(make)
            ana = grads[g][j, :, c]
            scale = max(np.max(np.abs(ana)), 1e-300)
            assert np.max(np.abs(num - ana)) <= 1e-6 * scale + 1e-12, (g, c, j, num, ana)


def test_init_follows_the_lru_law():
    """|lambda|^2 uniform on [r_min^2, r_max^2], phase on [0, max_phase], g = sqrt(1-|lambda|^2);
    KS distances for n = 20000 (critical value at 1e-6: sqrt(-ln(5e-7)/2)/sqrt(n) = 0.0190)."""
    from verify.engine.diagonal import eigenvalues, input_gain

    spec = DiagonalSpec(r_min="0.4", r_max="0.9", max_phase="pi/10")
    m = init_diagonal(spec, 20_000, 5)
    lam = eigenvalues(m)
    s = np.sort(np.abs(lam) ** 2)
    cdf = (s - 0.16) / (0.81 - 0.16)
    ks = np.max(np.abs(cdf - np.arange(1, s.size + 1) / s.size))
    assert ks < 0.019
    ph = np.sort(np.angle(lam))
    ks = np.max(np.abs(ph / (np.pi / 10) - np.arange(1, ph.size + 1) / ph.size))
    assert ks < 0.019 and ph.min() >= 0
    assert np.allclose(input_gain(m), np.sqrt(1 - np.abs(lam) ** 2), rtol=1e-12)
    with pytest.raises(ValueError, match="width"):
        init_diagonal(spec, 0, 1)


def test_s4d_c_share_is_the_covariance_of_a_random_s4d_readout():
    """S4D as the S4 code draws it: C ~ CN(0, 1) (torch.randn cfloat: Re, Im ~ N(0, 1/2)),
    L_l = 2 Re sum_n C_n b_n lambda_n^l.  E[L_l L_l'] must equal s4d_c_share (s_C^2 = 2) exactly;
    checked on S = 20000 draws, z from the sample variance
    of the products, Bonferroni over the upper triangle, alpha = 1e-6."""
    from theory.diagonal import s4d_c_share, s4d_spectrum
    from theory.precision import context

    T, N, dt = 6, 8, 0.25
    ctx = context(30)
    A = np.array([complex(a) for a in s4d_spectrum("lin", N, ctx)])
    lam = np.exp(dt * A)
    b = (lam - 1) / A
    rng = np.random.default_rng(2024)
    S = 20_000
    C = (rng.standard_normal((S, N // 2)) + 1j * rng.standard_normal((S, N // 2))) / np.sqrt(2)
    z = b[:, None] * lam[:, None] ** np.arange(T)[None, :]  # (modes, T)
    L = 2 * (C @ z).real  # (S, T)
    prods = L[:, :, None] * L[:, None, :]
    K = np.array([[float(v) for v in row] for row in s4d_c_share("lin", T, state_size=N, dt="0.25", dps=20)])
    zs = (prods.mean(0) - K) / (prods.std(0, ddof=1) / np.sqrt(S))
    iu = np.triu_indices(T)
    assert np.max(np.abs(zs[iu])) <= bonferroni_threshold(len(iu[0]), ALPHA)
    # power: the same draws against the kernel without the 2 Re doubling (s_C^2 = 1/2 of it)
    zs_bad = (prods.mean(0) - K / 2) / (prods.std(0, ddof=1) / np.sqrt(S))
    assert np.max(np.abs(zs_bad[iu])) > bonferroni_threshold(len(iu[0]), ALPHA)
