"""Monte Carlo at small widths against the exact finite-width mean and variance of the lag Gram.

For each width ``n`` one seeded batch of ``S = 10^5`` networks (``n_x = n_y = 1``,
``s_W = 0.9``, ``s_F = 1.3``, ``s_C = 0.7``) is drawn at once: ``W (S, n, n)``,
``f (S, n)``, ``c (S, n)``.  One network serves every metric, convention and D
(they change the gradient metric and the lag indexing, not the draw).  The lag
Gram of each draw is computed here from its definition,

    Theta[l, l'] = sum_g scale_g < dL_l / d theta_g , dL_l' / d theta_g >,

with ``L_m = c^T W^m f`` the Markov parameter of lag ``l`` (conv1 ``m = l``,
conv2 ``m = l - 1``, lag 0 of conv2 is D alone) and the gradients

    dL_m/dc = W^m f = u_m,   dL_m/df = (W^T)^m c = v_m,   dL_m/dW = sum_(k<m) v_k u_(m-1-k)^T,

so ``<dL_m/dW, dL_m'/dW>_F = sum_(k<m, k'<m') <v_k, v_k'> <u_(m-1-k), u_(m'-1-k')>``, and
``dL_0/dD = 1``.  The metric scales (``metric_scales``) are the squared factors
relating each group to the variable gradient descent moves (README, "Conventions").
These formulas are checked on single draws against finite differences of
``verify.engine.rnn.impulse_response`` and against ``verify.engine.ntk.lag_gram``.

Statistics.  For the sample mean, ``z = (mean - E) / sqrt(s^2 / S)``; for the
sample variance, ``z = (s^2 - Var) / sqrt((m4 - s^4) / S)`` with ``m4`` the
sample fourth central moment (``Var s^2 = (mu4 - sigma^4) / S + O(S^-2)``).  Both
are asymptotically standard normal.  Every z-score checked in this file belongs
to one family of ``N_Z`` tests; the family-wise false-failure probability is
``FAMILY_ALPHA = 1e-6`` (Bonferroni), so each ``|z|`` must stay below
``Z_MAX = Phi^-1(1 - FAMILY_ALPHA / (2 N_Z))`` (about 6.2).  The seeds are fixed,
so the file cannot flake; the threshold is what a fresh seed would face.

Normal approximation.  The lag Gram entries are polynomials of degree up to
``2 l + 2`` in Gaussians; at ``n <= 4`` their high moments are large and the
sample variance of an entry with ``l + l' >= 3`` is strongly skewed (over 30 seeds
at ``S = 2 10^4``, ``n = 2``, the variance z of entry (4, 4) reached -12; the
entries with ``l + l' <= 2`` stayed within |z| < 3.5).  So the variance is checked
on ``l + l' <= 2`` at ``n <= 4`` and on every entry of ``ENTRIES`` at ``n >= 8``;
the mean on every entry at every width.

Power.  ``test_*_rejects_*`` show that the same statistics reject realistic wrong
answers (the mean without its ``1/n^2`` terms, the variance cut after its ``1/n``
term, the variance of complex Gaussians, the wide limit, moments shifted by one
lag): each has ``|z| > Z_MAX``.  Their correct-answer z-scores are the same
numbers as in the family above (same draws, same entries), not new tests.
"""
from __future__ import annotations

from fractions import Fraction
from functools import lru_cache
from typing import Dict, List, Tuple

import numpy as np
import pytest
from scipy.stats import norm

from theory.finite_width import mean_lag_gram, variance_lag_gram
from theory.spec import RNNSpec

SIGMAS = {"W": "0.9", "F": "1.3", "C": "0.7", "D": "0.5"}
S_DRAWS = 100_000
CHUNK = 12_500
LAGS = 5  # lags 0..4
WIDTHS = (2, 3, 4, 8, 32)
SLOW_WIDTHS = (64,)
ENTRIES = [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2), (3, 1), (3, 3), (4, 2), (4, 4)]
SPECS = [(metric, conv, d) for metric in ("ntk", "variance", "standard") for conv in ("conv1", "conv2")
         for d in (False, True)]


def variance_entries(n: int) -> List[Tuple[int, int]]:
    """Entries whose sample variance is checked at width n (see the module docstring)."""
    return [e for e in ENTRIES if n >= 8 or e[0] + e[1] <= 2]


def count_z(widths) -> int:
    return sum(len(SPECS) * (len(ENTRIES) + len(variance_entries(n))) for n in widths)


FAMILY_ALPHA = 1e-6
N_Z = count_z(WIDTHS + SLOW_WIDTHS)
Z_MAX = float(norm.isf(FAMILY_ALPHA / (2 * N_Z)))


def make_spec(metric: str, conv: str, d: bool) -> RNNSpec:
    return RNNSpec(sigma_w=SIGMAS["W"], sigma_f=SIGMAS["F"], sigma_c=SIGMAS["C"],
                   sigma_d=SIGMAS["D"] if d else None, metric=metric, convention=conv)


# ------------------------------------------------------------- the definitions
def metric_scales(metric: str, n: int, n_x: int = 1) -> Dict[str, float]:
    """Squared factor between each group and the variable that gradient descent moves.

    ntk: W = (s_W/sqrt n) W~, F = (s_F/sqrt n_x) F~, C = (s_C/sqrt n) C~, D = (s_D/sqrt n_x) D~;
    variance: the same without the s_g; standard: the raw parameters, NTK divided by n.
    """
    s = {g: float(v) for g, v in SIGMAS.items()}
    if metric == "ntk":
        return {"W": s["W"] ** 2 / n, "F": s["F"] ** 2 / n_x, "C": s["C"] ** 2 / n, "D": s["D"] ** 2 / n_x}
    if metric == "variance":
        return {"W": 1 / n, "F": 1 / n_x, "C": 1 / n, "D": 1 / n_x}
    return {g: 1 / n for g in "WFCD"}


def krylov_grams(W: np.ndarray, f: np.ndarray, c: np.ndarray, markov: int) -> Tuple[np.ndarray, np.ndarray]:
    """``Gu[s, m, m'] = <W^m f, W^m' f>`` and ``Gv[s, m, m'] = <(W^T)^m c, (W^T)^m' c>`` for a batch."""
    U, V = [f], [c]
    for _ in range(1, markov):
        U.append(np.matmul(W, U[-1][..., None])[..., 0])
        V.append(np.matmul(V[-1][:, None, :], W)[:, 0, :])  # (W^T v)^T = v^T W
    U, V = np.stack(U, 1), np.stack(V, 1)
    return np.matmul(U, U.transpose(0, 2, 1)), np.matmul(V, V.transpose(0, 2, 1))


def lag_gram_batch(Gu: np.ndarray, Gv: np.ndarray, metric: str, conv: str, d: bool, n: int,
                   lags: int = LAGS) -> np.ndarray:
    """``Theta (S, lags, lags)`` of every draw from its Krylov Grams (n_x = n_y = 1)."""
    scale = metric_scales(metric, n)
    S, M = Gu.shape[:2]
    w = np.zeros_like(Gu)
    for m in range(M):
        for mp in range(M):
            for k in range(m):
                for kp in range(mp):
                    w[:, m, mp] += Gv[:, k, kp] * Gu[:, m - 1 - k, mp - 1 - kp]
    markov = scale["C"] * Gu + scale["F"] * Gv + scale["W"] * w
    out = np.zeros((S, lags, lags))
    if conv == "conv1":
        out[:] = markov[:, :lags, :lags]
    else:
        out[:, 1:, 1:] = markov[:, : lags - 1, : lags - 1]
    if d:
        out[:, 0, 0] += scale["D"]
    return out


def draw_network_batch(rng: np.random.Generator, S: int, n: int):
    """``W (S, n, n)`` with N(0, s_W^2/n) entries, ``f = F[:, 0]`` with N(0, s_F^2), ``c = C[0]`` with N(0, s_C^2/n)."""
    W = rng.standard_normal((S, n, n)) * (float(SIGMAS["W"]) / np.sqrt(n))
    f = rng.standard_normal((S, n)) * float(SIGMAS["F"])
    c = rng.standard_normal((S, n)) * (float(SIGMAS["C"]) / np.sqrt(n))
    return W, f, c


@lru_cache(maxsize=None)
def grams(n: int, draws: int = S_DRAWS) -> Tuple[np.ndarray, np.ndarray]:
    """Krylov Grams of ``draws`` networks of width n (seed 1000 + n), Markov indices 0..LAGS-1."""
    rng = np.random.default_rng(1000 + n)
    parts_u, parts_v = [], []
    for start in range(0, draws, CHUNK):
        W, f, c = draw_network_batch(rng, min(CHUNK, draws - start), n)
        gu, gv = krylov_grams(W, f, c, LAGS)
        parts_u.append(gu)
        parts_v.append(gv)
    return np.concatenate(parts_u), np.concatenate(parts_v)


@lru_cache(maxsize=None)
def exact(metric: str, conv: str, d: bool):
    spec = make_spec(metric, conv, d)
    return mean_lag_gram(spec, LAGS), variance_lag_gram(spec, LAGS)


# ------------------------------------------------------------------ statistics
def mean_z(x: np.ndarray, expected: float) -> float:
    return float((x.mean() - expected) / np.sqrt(x.var(ddof=1) / x.size))


def var_z(x: np.ndarray, expected: float) -> float:
    s2 = x.var(ddof=1)
    m4 = np.mean((x - x.mean()) ** 4)
    return float((s2 - expected) / np.sqrt((m4 - s2 * s2) / x.size))


def check_width(n: int) -> int:
    """Every z-score of width n within Z_MAX; entries of zero variance checked exactly. Returns the z count."""
    Gu, Gv = grams(n)
    count = 0
    failures = []
    for metric, conv, d in SPECS:
        X = lag_gram_batch(Gu, Gv, metric, conv, d, n)
        mean, var = exact(metric, conv, d)
        for l, lp in ENTRIES:
            x = X[:, l, lp]
            mu, v = float(mean.total[l][lp](n)), float(var.total[l][lp](n))
            if conv == "conv2" and 0 in (l, lp):
                # only D reaches lag 0 in conv2: a constant entry, exact mean and zero variance
                assert v == 0.0 and np.all(x == mu), (metric, conv, d, l, lp)
                count += 1 + ((l, lp) in variance_entries(n))
                continue
            z = mean_z(x, mu)
            count += 1
            if abs(z) > Z_MAX:
                failures.append(("mean", metric, conv, d, l, lp, z))
            if (l, lp) in variance_entries(n):
                z = var_z(x, v)
                count += 1
                if abs(z) > Z_MAX:
                    failures.append(("variance", metric, conv, d, l, lp, z))
    assert not failures, f"|z| > {Z_MAX:.2f} at n = {n}: {failures}"
    return count


# ----------------------------------------------------------------- the checks
def test_threshold_is_derived():
    """Z_MAX from the Bonferroni family: two-sided tail FAMILY_ALPHA / N_Z per z-score."""
    assert 2 * norm.sf(Z_MAX) * N_Z == pytest.approx(FAMILY_ALPHA, rel=1e-9)
    assert 5.3 < Z_MAX < 6.5


@pytest.mark.parametrize("n", WIDTHS)
def test_monte_carlo_matches_exact_moments(n):
    assert check_width(n) == count_z([n])


@pytest.mark.slow
@pytest.mark.parametrize("n", SLOW_WIDTHS)
def test_monte_carlo_matches_exact_moments_wide(n):
    assert check_width(n) == count_z([n])


# ---------------------------------------------------------------------- power
def _sample(n: int, metric: str, conv: str, d: bool, l: int, lp: int) -> np.ndarray:
    Gu, Gv = grams(n)
    return lag_gram_batch(Gu, Gv, metric, conv, d, n)[:, l, lp]


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("entry", [(2, 2), (3, 1), (4, 4)])
def test_mean_without_its_second_order_is_rejected(n, entry):
    """The exact mean with every coefficient of 1/n^2 and beyond dropped: |z| > Z_MAX at n = 2..4."""
    mean, _ = exact("ntk", "conv1", False)
    poly = mean.total[entry[0]][entry[1]]
    assert poly.degree >= 2
    x = _sample(n, "ntk", "conv1", False, *entry)
    assert abs(mean_z(x, float(poly(n)))) < Z_MAX
    assert abs(mean_z(x, float(poly.truncate(1)(n)))) > Z_MAX


@pytest.mark.parametrize("n", [2, 3, 4])
@pytest.mark.parametrize("entry", [(1, 1), (2, 0)])
def test_variance_cut_after_first_order_is_rejected(n, entry):
    """The exact variance cut after its leading 1/n term (order=1): |z| > Z_MAX at n = 2..4."""
    _, var = exact("variance", "conv1", False)
    cut = variance_lag_gram(make_spec("variance", "conv1", False), LAGS, order=1)
    x = _sample(n, "variance", "conv1", False, *entry)
    assert abs(var_z(x, float(var.total[entry[0]][entry[1]](n)))) < Z_MAX
    assert abs(var_z(x, float(cut.total[entry[0]][entry[1]](n)))) > Z_MAX


@pytest.mark.parametrize("n", [2, 3, 4, 8])
@pytest.mark.parametrize("entry", [(1, 1), (2, 0), (3, 1)])
def test_wide_limit_is_rejected_at_small_width(n, entry):
    """The wide limit beta_l delta_ll' (the constant term) as the mean: |z| > Z_MAX for n <= 8."""
    mean, _ = exact("standard", "conv1", False)
    poly = mean.total[entry[0]][entry[1]]
    x = _sample(n, "standard", "conv1", False, *entry)
    assert abs(mean_z(x, float(poly.coeff(0)))) > Z_MAX


@pytest.mark.parametrize("n", WIDTHS)
def test_complex_gaussian_variance_is_rejected(n):
    """metric variance, lag (0, 0): Theta = |f|^2 / n + |c|^2 with f_i ~ N(0, s_F^2), c_i ~ N(0, s_C^2 / n).
    Real Gaussians (by hand): Var = 2 (s_F^4 + s_C^4) / n, which the engine must give; complex Gaussians
    (E|z|^4 = 2 (E|z|^2)^2 instead of 3 (E z^2)^2): half of it, which the sample variance must reject."""
    _, var = exact("variance", "conv1", False)
    sf4, sc4 = (Fraction(SIGMAS["F"]) ** 4, Fraction(SIGMAS["C"]) ** 4)
    real = 2 * (sf4 + sc4) / n
    assert var.total[0][0](n) == real
    x = _sample(n, "variance", "conv1", False, 0, 0)
    assert abs(var_z(x, float(real))) < Z_MAX
    assert abs(var_z(x, float(real / 2))) > Z_MAX


@pytest.mark.parametrize("n", WIDTHS)
def test_lag_off_by_one_is_rejected(n):
    """conv2 draws against conv1's exact moments (lags shifted by one): the means at (1, 1), (2, 2) reject."""
    mean1, _ = exact("ntk", "conv1", False)
    for l in (1, 2):
        x = _sample(n, "ntk", "conv2", False, l, l)
        assert abs(mean_z(x, float(mean1.total[l][l](n)))) > Z_MAX


# ------------------------------------------- the definitions on single draws
def _finite_difference_lag_gram(rnn, metric: str, conv: str, n: int, lags: int) -> np.ndarray:
    """Theta from central differences of the impulse response, parameter by parameter."""
    from verify.engine.rnn import LinearRNN, impulse_response

    scale = metric_scales(metric, n)
    h = 1e-5
    theta = np.zeros((lags, lags))
    for g in ("W", "F", "C", "D"):
        base = getattr(rnn, g)
        if base is None:
            continue
        for idx in np.ndindex(base.shape):
            grads = []
            for sign in (1, -1):
                arr = base.copy()
                arr[idx] += sign * h
                mats = {k: getattr(rnn, k) for k in ("W", "F", "C", "D")}
                mats[g] = arr
                grads.append(impulse_response(LinearRNN(**mats), lags, conv)[:, 0, 0])
            grad = (grads[0] - grads[1]) / (2 * h)
            theta += scale[g] * np.outer(grad, grad)
    return theta


@pytest.mark.parametrize("metric, conv, d", [("ntk", "conv1", True), ("variance", "conv2", False),
                                             ("standard", "conv1", False), ("ntk", "conv2", True)])
def test_batched_definition_matches_finite_differences_and_lag_gram(metric, conv, d):
    """On single seeded networks (n = 3, 5) the batched Theta equals (i) the Gram of finite-difference
    gradients of the impulse response, to 1e-7 relative (central differences of a polynomial of degree
    <= 5 with step 1e-5: truncation ~1e-10, rounding ~1e-11), and (ii) verify.engine.ntk.lag_gram, to 1e-12."""
    from verify.engine.ntk import lag_gram
    from verify.engine.rnn import init_rnn

    spec = make_spec(metric, conv, d)
    for n, seed in ((3, 11), (5, 12)):
        rnn = init_rnn(spec, n, seed)
        W, f, c = rnn.W[None], rnn.F[:, 0][None], rnn.C[0][None]
        gu, gv = krylov_grams(W, f, c, LAGS)
        mine = lag_gram_batch(gu, gv, metric, conv, d, n)[0]
        fd = _finite_difference_lag_gram(rnn, metric, conv, n, LAGS)
        ref = np.asarray(lag_gram(rnn, spec, LAGS).total)[:, 0, 0, :, 0, 0]
        scale = np.abs(ref).max()
        np.testing.assert_allclose(mine, fd, rtol=0, atol=1e-7 * scale)
        np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-12 * scale)
