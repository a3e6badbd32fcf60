"""Finite-width diagonal complex linear recurrence (LRU style) and its exact lag Gram.

Model (``theory.diagonal``; scalar input/output, conv1)::

    h_(j,t) = lambda_j h_(j,t-1) + g_j B_j x_t,   y_t = sum_j Re(C_j h_(j,t)) + D x_t
    lambda_j = exp(-exp(nu_j) + i exp(theta_j)),  g_j = exp(gamma_j)  (tied: sqrt(1 - |lambda_j|^2))

Initialization as the LRU reference code (Orvieto et al. 2023, appendix):
``u ~ U[0,1]``, ``nu = log(-log(u (r_max^2 - r_min^2) + r_min^2)/2)``,
``theta = log(max_phase * U[0,1])``, ``B_re, B_im ~ N(0, s_B^2)``,
``C_re, C_im ~ N(0, s_C^2/n)``, ``D ~ N(0, s_D^2)``, ``gamma = log sqrt(1 - |lambda|^2)``.

Per-unit gradients of ``L_l`` (``z_j(l) = g_j B_j lambda_j^l``, ``a = exp(nu)``,
``phi = exp(theta)``), O(n T) work and memory:

* C (metric ntk, C = (s_C/sqrt n) c~):  (s_C/sqrt n) (Re z, -Im z)
* B (B = s_B b~):                        s_B (Re(C g lambda^l), -Im(C g lambda^l))
* gamma: Re(C z);   nu: -l a Re(C z)  (tied: a (rho - l) Re(C z), rho = r^2/(1 - r^2))
* theta: -l phi Im(C z);   D: s_D at l = 0 (deterministic)

Scaling "lru": gradients with respect to C, B themselves and the Gram divided by n.
The lag Gram is a sum of n i.i.d. unit terms ``f_j`` (plus the deterministic D
share), so ``E[Theta_n]`` equals the limit exactly at every width and the sample
variance of the ``f_j`` gives the standard error of every entry.
"""
from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Dict, Optional

import numpy as np

from theory.diagonal import DiagonalSpec, lag_kernel
from theory.spec import SpecError
from verify.internal.errors import BadInput

__all__ = [
    "DiagonalRNN",
    "init_diagonal",
    "eigenvalues",
    "input_gain",
    "forward",
    "impulse_response",
    "unit_gradients",
    "EmpiricalLagGram",
    "lag_gram",
    "limit_matrix",
    "zscores",
    "bonferroni_threshold",
    "effective_rank",
    "drop_lag",
]


@dataclass(frozen=True)
class DiagonalRNN:
    """Actual parameters (float64 / complex128 arrays of length n); ``gamma`` is None when tied."""

    nu: np.ndarray
    theta: np.ndarray
    gamma: Optional[np.ndarray]
    B: np.ndarray
    C: np.ndarray
    D: Optional[float]
    spec: DiagonalSpec

    @property
    def n(self) -> int:
        return int(self.nu.shape[0])

    def replace(self, **changes) -> "DiagonalRNN":
        vals: Dict[str, Any] = dict(nu=self.nu, theta=self.theta, gamma=self.gamma, B=self.B, C=self.C, D=self.D,
                                    spec=self.spec)
        vals.update(changes)
        return DiagonalRNN(**vals)


def _check_width(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SpecError(f"width n must be a positive integer, got {n!r}")
    return int(n)


def init_diagonal(spec: DiagonalSpec, n: int, seed: int) -> DiagonalRNN:
    """Draw a width-``n`` network as the LRU reference code does (seeded numpy Generator)."""
    n = _check_width(n)
    rng = np.random.default_rng(seed)
    s0, s1 = float(spec.s0), float(spec.s1)
    u1 = rng.uniform(size=n)
    u2 = rng.uniform(size=n)
    nu = np.log(-0.5 * np.log(u1 * (s1 - s0) + s0))
    theta = np.log(spec.max_phase_float() * u2)
    sb, sc = float(spec.sigma_b2) ** 0.5, float(spec.sigma_c)
    B = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * sb
    C = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) * (sc / np.sqrt(n))
    D = float(spec.sigma_d) * float(rng.standard_normal()) if spec.sigma_d is not None else None
    a = np.exp(nu)
    gamma = None if spec.tied_gamma else 0.5 * np.log(-np.expm1(-2.0 * a))
    return DiagonalRNN(nu, theta, gamma, B, C, D, spec)


def eigenvalues(m: DiagonalRNN) -> np.ndarray:
    """``lambda_j = exp(-exp(nu_j) + i exp(theta_j))``."""
    return np.exp(-np.exp(m.nu) + 1j * np.exp(m.theta))


def input_gain(m: DiagonalRNN) -> np.ndarray:
    """``g_j = exp(gamma_j)``, or ``sqrt(1 - |lambda_j|^2)`` when tied."""
    if m.gamma is None:
        return np.sqrt(-np.expm1(-2.0 * np.exp(m.nu)))
    return np.exp(m.gamma)


def forward(m: DiagonalRNN, x) -> np.ndarray:
    """Run the recurrence on a scalar sequence ``x`` (T,) and return ``y`` (T,)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise SpecError(f"x must be a 1-D sequence, got shape {x.shape}")
    lam, gB = eigenvalues(m), input_gain(m) * m.B
    h = np.zeros(m.n, dtype=np.complex128)
    y = np.empty_like(x)
    for t, xt in enumerate(x):
        h = lam * h + gB * xt
        y[t] = np.sum((m.C * h).real) + (m.D or 0.0) * xt
    return y


def impulse_response(m: DiagonalRNN, lags: int) -> np.ndarray:
    """``L_l``, l < lags, through the recurrence (forward of a unit impulse)."""
    x = np.zeros(lags)
    x[0] = 1.0
    return forward(m, x)


def unit_gradients(m: DiagonalRNN, lags: int) -> Dict[str, np.ndarray]:
    """Per-unit gradients ``dL_l / d(param_j)``: group -> array (n, lags, c), c = 2 for the
    complex B, C (real, imaginary part), 1 otherwise, in the spec's metric (see module
    docstring), learning-rate multipliers NOT included.  D is not per unit: omitted."""
    spec = m.spec
    if isinstance(lags, bool) or not isinstance(lags, int) or lags < 1:
        raise SpecError(f"lags must be a positive integer, got {lags!r}")
    l = np.arange(lags, dtype=np.float64)
    a, phi = np.exp(m.nu), np.exp(m.theta)
    g = input_gain(m)
    pw = np.exp(np.outer(-a + 1j * phi, l))  # lambda^l, (n, T)
    z = (g * m.B)[:, None] * pw
    Cz = m.C[:, None] * z
    w = (m.C * g)[:, None] * pw
    ntk = spec.scaling == "ntk"
    cs = float(spec.sigma_c) / np.sqrt(m.n) if ntk else 1.0
    bs = float(spec.sigma_b2) ** 0.5 if ntk else 1.0
    out = {
        "C": cs * np.stack([z.real, -z.imag], axis=-1),
        "B": bs * np.stack([w.real, -w.imag], axis=-1),
        "theta": (-l[None, :] * phi[:, None] * Cz.imag)[..., None],
    }
    if m.gamma is None:
        rho = np.exp(-2 * a) / -np.expm1(-2 * a)
        out["nu"] = (a[:, None] * (rho[:, None] - l[None, :]) * Cz.real)[..., None]
    else:
        out["gamma"] = Cz.real[..., None]
        out["nu"] = (-l[None, :] * a[:, None] * Cz.real)[..., None]
    return out


@dataclass(frozen=True)
class EmpiricalLagGram:
    """Empirical lag Gram (``Theta_n``, or ``Theta_n/n`` for the "lru" scaling) by group and
    total, T x T float64, with the variance of every entry estimated from the per-unit terms
    (``var = n * sample variance of f_j`` for a sum of n i.i.d. terms; divided by n^2 for "lru")."""

    total: np.ndarray
    shares: Dict[str, np.ndarray]
    var_total: np.ndarray
    var_shares: Dict[str, np.ndarray]
    n: int
    normalized_by_n: bool


def lag_gram(m: DiagonalRNN, lags: int, *, chunk: Optional[int] = None) -> EmpiricalLagGram:
    """Exact empirical lag Gram ``Theta_n[l, l'] = sum_groups lr_g <dL_l/dp, dL_l'/dp>``."""
    spec = m.spec
    grads = unit_gradients(m, lags)
    groups = [g for g in spec.groups if g != "D"]
    lr = {g: float(spec.lr(g)) for g in spec.groups}
    n, T = m.n, lags
    chunk = chunk or max(1, (1 << 20) // (T * T))

    def unit_terms(sl):
        f = {g: lr[g] * np.einsum("jlc,jmc->jlm", grads[g][sl], grads[g][sl]) for g in groups}
        f["total"] = sum(f[g] for g in groups)
        return f

    keys = groups + ["total"]
    sums = {k: np.zeros((T, T)) for k in keys}
    for start in range(0, n, chunk):
        f = unit_terms(slice(start, start + chunk))
        for k in keys:
            sums[k] += f[k].sum(axis=0)
    means = {k: sums[k] / n for k in keys}
    sq = {k: np.zeros((T, T)) for k in keys}
    for start in range(0, n, chunk):  # second pass: centred sum of squares
        f = unit_terms(slice(start, start + chunk))
        for k in keys:
            sq[k] += ((f[k] - means[k]) ** 2).sum(axis=0)
    var_sum = {k: n * sq[k] / max(n - 1, 1) for k in keys}  # Var(sum_j f_j) estimate
    if spec.scaling == "lru":
        shares = {g: sums[g] / n for g in groups}
        var = {k: v / n**2 for k, v in var_sum.items()}
    else:
        shares = {g: sums[g] for g in groups}
        var = var_sum
    if spec.sigma_d is not None:
        dval = lr["D"] * (float(spec.sigma_d) ** 2 if spec.scaling == "ntk" else 1.0)
        dmat = np.zeros((T, T))
        dmat[0, 0] = dval / (n if spec.scaling == "lru" else 1)
        shares["D"] = dmat
        var["D"] = np.zeros((T, T))
    total = sum((shares[g] for g in shares), np.zeros((T, T)))
    return EmpiricalLagGram(total, shares, var["total"], {g: var[g] for g in shares}, n, spec.scaling == "lru")


def limit_matrix(spec: DiagonalSpec, lags: int, *, dps: int = 30) -> Dict[str, np.ndarray]:
    """The exact limit (``theory.diagonal.lag_kernel``) rounded to float64: group -> T x T, and 'total'."""
    K = lag_kernel(spec, lags, dps=dps)
    out = {g: np.array([[float(v) for v in row] for row in mat]) for g, mat in K.shares.items()}
    out["total"] = np.array([[float(v) for v in row] for row in K.total])
    return out


def zscores(emp: np.ndarray, limit: np.ndarray, var: np.ndarray, *, atol: float = 1e-12) -> np.ndarray:
    """``(emp - limit) / sqrt(var)``; entries with zero variance (deterministic) give 0 if
    they agree to ``atol`` times the matrix scale, else inf."""
    diff = emp - limit
    sd = np.sqrt(var)
    scale = max(float(np.max(np.abs(limit))), 1e-300)
    z = np.zeros_like(diff)
    pos = sd > 0
    z[pos] = diff[pos] / sd[pos]
    z[~pos] = np.where(np.abs(diff[~pos]) <= atol * scale, 0.0, np.inf)
    return z


def bonferroni_threshold(count: int, alpha: float = 1e-6) -> float:
    """Two-sided normal threshold so that ``count`` comparisons together fail with
    probability <= ``alpha`` (Bonferroni; normal approximation of each z)."""
    if count < 1:
        raise BadInput(f"count must be >= 1, got {count}")
    return NormalDist().inv_cdf(1 - alpha / (2 * count))


def effective_rank(K) -> float:
    """Entropy effective rank (Roy & Vetterli 2007) of a symmetric PSD matrix:
    ``exp(-sum_i p_i ln p_i)``, ``p_i = sigma_i / sum sigma``, float64 eigenvalues (negative
    rounding noise clipped to 0; eigenvalues below ~1e-16 of the largest contribute < 1e-14)."""
    A = np.asarray(K, dtype=np.float64)
    if A.ndim != 2 or A.shape[0] != A.shape[1]:
        raise BadInput(f"need a square matrix, got shape {A.shape}")
    ev = np.clip(np.linalg.eigvalsh((A + A.T) / 2), 0.0, None)
    if ev.sum() == 0:
        return 0.0
    p = ev / ev.sum()
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def drop_lag(weight_fn, fraction: float = 0.01, *, max_lag: int = 100_000, dense_until: int = 256,
             growth: float = 1.01):
    """First lag after the maximum where the weight falls to ``fraction`` of the maximum.

    ``weight_fn(list_of_lags) -> list`` evaluates exact weights.  Lags ``0..dense_until`` are
    all evaluated, beyond that a geometric grid (ratio ``growth``); the first grid point at or
    below the threshold is refined by evaluating every lag of its bracketing interval.  The
    maximum is taken over the evaluated lags.  Returns ``(lag, max_weight)``, ``lag = None``
    when the weight stays above the threshold up to ``max_lag``.
    """
    grid = list(range(min(dense_until, max_lag) + 1))
    x = float(grid[-1])
    while x < max_lag:
        x = max(x * growth, x + 1)
        grid.append(min(int(x), max_lag))
    grid = sorted(set(grid))
    w = [float(v) for v in weight_fn(grid)]
    imax = int(np.argmax(w))
    thr = fraction * w[imax]
    for i in range(imax, len(grid)):
        if w[i] <= thr:
            if i == 0 or grid[i] - grid[i - 1] <= 1:
                return grid[i], w[imax]
            lags = list(range(grid[i - 1] + 1, grid[i] + 1))
            for l, v in zip(lags, weight_fn(lags)):
                if float(v) <= thr:
                    return l, w[imax]
    return None, w[imax]
