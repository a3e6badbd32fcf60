"""Width sweeps: the empirical lag Gram against its closed form, with statistics.

For every width ``n`` and seed ``s`` a network is drawn (:func:`verify.rnn.init_rnn`),
its lag Gram ``Theta_n`` computed exactly (:func:`verify.ntk.lag_gram`) and compared
with the limit ``Theta_inf = diag(beta) (x) I / n_x`` (:func:`verify.ntk.limit_lag_gram`,
``beta`` from :mod:`theory`).  Per draw, only a few numbers come back
(:func:`lag_gram_errors`):

* ``frob``: ``||Theta_n - Theta_inf||_F / ||Theta_inf||_F``;
* ``diag_rel[l]``: the same on the lag-diagonal block ``Theta_n[l, :, :, l, :, :]``;
* ``diag_signed[l]``: mean over ``(a, i)`` of ``Theta_n[l, a, i, l, a, i]`` minus
  ``beta_l / n_x`` (signed, absolute units): the seed mean of this is the bias;
* ``offdiag``: the Frobenius norm of ``Theta_n`` off the main diagonal of its
  ``(L n_y n_x)``-square matrix form (where the limit is 0), over ``||Theta_inf||_F``.

What theory predicts (``shared/spec/theory.md`` section 4): entries fluctuate by
``O(n^-1/2)`` and the mean has an ``O(1/n)`` bias growing with the lag.  Hence
``e_n = n^-1/2 ||G + n^-1/2 H||`` with ``G`` Gaussian, and (``G -> -G`` symmetry
kills the ``n^-1/2`` term of an even function)

    E log e_n = a - (1/2) log n + c / n + O(n^-3/2).

Statistics (all at confidence level ``confidence``, default 0.99), see
:func:`summarize`:

* seed means with Student-t intervals (per width, ``S - 1`` degrees of freedom);
* the exponent ``p``: ordinary least squares of the per-seed ``log e`` on
  ``[1, log n, 1/n]`` (model ``"corrected"``, the default: the ``c/n`` column
  absorbs the O(1/n) correction so ``p`` estimates the asymptotic exponent) or on
  ``[1, log n]`` (model ``"plain"``), with the classical t interval (``N - k`` dof).
  Draws are independent across (width, seed), and ``log e`` is roughly
  homoscedastic (the law of ``e sqrt n`` has a width-independent limit).  Both
  slopes are always reported;
* the band at the largest width: the law with the theoretical exponent,
  ``log e + (1/2) log n = a + c/n``, is fitted on the *other* widths and the
  t prediction interval for the mean of ``S`` new ``log e`` at ``n_max`` is formed;
  its image ``exp(.) n_max^-1/2`` is the band for the geometric seed mean there;
* the bias: ``n`` times the seed-mean relative signed diagonal error per lag and
  width with its t interval (stabilizes across widths when the bias is ``O(1/n)``;
  the interval grows like ``sqrt n`` because fluctuations are ``O(n^-1/2)``, so the
  bias is resolved only with many seeds at small widths: the *bias probe*).

Verdict ``"consistent"`` exactly when all rules of :data:`RULES` hold.  Under the
model each of ``rate`` and ``band`` fails with probability ``1 - confidence`` and
``decay`` with a negligible one, so the false-failure probability is at most
``2 (1 - confidence)`` (2 % at the default) for a sweep with enough power
(see :func:`summarize`).  Checked on 30 independent repetitions of the default
job's draws (base seeds 0..29): no rule failed; the corrected slopes had mean
-0.503 and sd 0.083 (reported standard errors 0.07..0.09), whereas the plain
model's slopes had mean -0.536 and its 99 % interval missed -1/2 in 4 of 30
(the O(1/n) correction biases it at widths 128..512): why "corrected" is the
default.

Every task is a picklable top-level function of a frozen dataclass, so any
``concurrent.futures.Executor`` (process pools, Dask, Ray) can run it; the
result is a pure function of the inputs (timings aside).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np

from theory.spec import RNNSpec, SpecError
from theory.weights import check_lags

__all__ = [
    "SweepTask",
    "TaskResult",
    "SlopeFit",
    "Band",
    "Rule",
    "SweepResult",
    "RULES",
    "SLOPE_MODELS",
    "THEORY_EXPONENT",
    "task_seed_sequence",
    "lag_gram_errors",
    "run_task",
    "sweep",
    "summarize",
    "fit_slope",
    "t_interval",
]

THEORY_EXPONENT = -0.5
SLOPE_MODELS = ("corrected", "plain")

#: The verdict's rules (name -> statement); each is evaluated by :func:`summarize`.
RULES = {
    "rate": "the confidence interval of the fitted exponent p contains -1/2",
    "decay": "the confidence interval of p lies below 0 (the error does decrease with width)",
    "band": ("the geometric seed mean of the error at the largest width lies in the prediction band "
             "of the law e ~ n^-1/2 (1 + c/n) fitted on the other widths"),
}


# ----------------------------------------------------------------------------- tasks
def task_seed_sequence(base_seed: int, width: int, seed: int) -> np.random.SeedSequence:
    """The seed sequence of draw ``(width, seed)``: ``SeedSequence([base_seed, width, seed])``.

    Independent streams for every (width, seed); the same network for the same
    triple whatever else the sweep contains, or in which order it runs.
    """
    return np.random.SeedSequence([int(base_seed), int(width), int(seed)])


@dataclass(frozen=True)
class SweepTask:
    """One draw of a sweep: everything :func:`run_task` needs, picklable."""

    spec: RNNSpec
    width: int
    seed: int
    base_seed: int
    lags: int
    limit: np.ndarray  # float64 (L, n_y, n_x, L, n_y, n_x)
    backend: str = "numpy"
    device: str = "cpu"
    dtype: str = "float64"
    draws: str = "numpy"


@dataclass(frozen=True, eq=False)
class TaskResult:
    """The numbers of one draw (float64); ``seconds`` is wall time of draw + lag Gram."""

    width: int
    seed: int
    frob: float
    diag_rel: np.ndarray
    diag_signed: np.ndarray
    offdiag: float
    seconds: float


def lag_gram_errors(theta: np.ndarray, limit: np.ndarray) -> Dict[str, Any]:
    """Errors of a lag Gram ``theta`` against ``limit`` (both float64, shape ``(L, n_y, n_x, L, n_y, n_x)``).

    Returns ``frob`` (relative Frobenius error), ``diag_rel`` (L,) relative
    Frobenius error of each lag-diagonal block (NaN where ``beta_l = 0``),
    ``diag_signed`` (L,) mean diagonal entry minus its limit, and ``offdiag``
    (Frobenius norm off the main diagonal over ``||limit||_F``).
    """
    theta = np.asarray(theta, dtype=np.float64)
    limit = np.asarray(limit, dtype=np.float64)
    if theta.shape != limit.shape or theta.ndim != 6:
        raise SpecError(f"lag Gram of shape {theta.shape} does not match the limit's {limit.shape}")
    L, ny, nx = theta.shape[:3]
    m = ny * nx
    ref = float(np.linalg.norm(limit))
    if ref == 0.0:
        raise SpecError("the closed-form lag Gram is zero (every group frozen?); relative errors are undefined")
    diff = (theta - limit).reshape(L * m, L * m)
    frob = float(np.linalg.norm(diff)) / ref
    blocks_t = np.stack([theta[l, :, :, l, :, :].reshape(m, m) for l in range(L)])
    blocks_l = np.stack([limit[l, :, :, l, :, :].reshape(m, m) for l in range(L)])
    lim_norm = np.linalg.norm(blocks_l, axis=(1, 2))
    num = np.linalg.norm(blocks_t - blocks_l, axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        diag_rel = np.where(lim_norm > 0, num / np.where(lim_norm > 0, lim_norm, 1.0), np.nan)
    diag_signed = np.einsum("lii->l", blocks_t - blocks_l) / m
    offd = theta.reshape(L * m, L * m).copy()
    np.fill_diagonal(offd, 0.0)
    return {
        "frob": frob,
        "diag_rel": diag_rel.astype(np.float64),
        "diag_signed": diag_signed.astype(np.float64),
        "offdiag": float(np.linalg.norm(offd)) / ref,
    }


def run_task(task: SweepTask) -> TaskResult:
    """Draw network ``(task.width, task.seed)``, compute its lag Gram, return its errors.

    Top level and pure (apart from ``seconds``), so any executor can run it.
    """
    from .backend import get_backend, to_numpy
    from .ntk import lag_gram
    from .rnn import init_rnn

    be = get_backend(task.backend, task.device, task.dtype, draws=task.draws)
    rng = np.random.default_rng(task_seed_sequence(task.base_seed, task.width, task.seed))
    t0 = time.perf_counter()
    rnn = init_rnn(task.spec, task.width, rng, backend=be)
    theta = to_numpy(lag_gram(rnn, task.spec, task.lags).total)
    be.synchronize()
    seconds = time.perf_counter() - t0
    del rnn
    err = lag_gram_errors(np.asarray(theta, dtype=np.float64), task.limit)
    return TaskResult(task.width, task.seed, err["frob"], err["diag_rel"], err["diag_signed"],
                      err["offdiag"], seconds)


# ------------------------------------------------------------------------ statistics
def _tq(confidence: float, dof: int) -> float:
    """Two-sided Student-t quantile ``t_{dof, (1 + confidence)/2}``."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2.0, dof))


def t_interval(samples: np.ndarray, confidence: float, axis: int = -1) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and Student-t half-width ``t_{S-1} sd / sqrt S`` along ``axis`` (NaN half-width if ``S < 2``).

    Exact coverage for Gaussian samples; for the per-seed errors (norms of
    near-Gaussian fluctuations) approximate, by the central limit theorem.
    """
    x = np.asarray(samples, dtype=np.float64)
    S = x.shape[axis]
    mean = np.mean(x, axis=axis)
    if S < 2:
        return mean, np.full_like(mean, np.nan)
    sd = np.std(x, axis=axis, ddof=1)
    return mean, _tq(confidence, S - 1) * sd / math.sqrt(S)


@dataclass(frozen=True)
class SlopeFit:
    """Fitted exponent of ``e ~ n^p``: ``slope`` with its t ``interval`` at ``confidence``.

    ``model`` "corrected": OLS of per-seed ``log e`` on ``[1, log n, 1/n]``
    (``correction`` = the coefficient of ``1/n``); "plain": on ``[1, log n]``.
    ``plain_slope``/``plain_interval`` and ``corrected_*`` hold both models' fits.
    """

    model: str
    slope: float
    interval: Tuple[float, float]
    stderr: float
    dof: int
    intercept: float
    correction: Optional[float]
    correction_interval: Optional[Tuple[float, float]]
    plain_slope: float
    plain_interval: Tuple[float, float]
    corrected_slope: Optional[float]
    corrected_interval: Optional[Tuple[float, float]]
    confidence: float

    def to_dict(self) -> Dict[str, Any]:
        return _jsonable(self.__dict__)


def _ols(X: np.ndarray, y: np.ndarray):
    """OLS coefficients, their covariance ``s^2 (X^T X)^-1``, the residual dof and ``s^2``."""
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    dof = X.shape[0] - X.shape[1]
    r = y - X @ coef
    s2 = float(r @ r) / dof
    cov = s2 * np.linalg.inv(X.T @ X)
    return coef, cov, dof, s2


def fit_slope(widths: Sequence[int], errors: np.ndarray, confidence: float = 0.99,
              model: str = "corrected") -> SlopeFit:
    """Fit ``log e[k, s] = a + p log n_k (+ c / n_k)`` by OLS over all (width, seed) points.

    The interval is ``p +- t_{N-k} se(p)`` with the classical OLS standard error
    (independent draws; ``log e`` about homoscedastic).  The ``1/n`` column is
    scaled by the smallest width for conditioning; ``correction`` is reported
    as the coefficient of ``1/n`` itself.
    """
    if model not in SLOPE_MODELS:
        raise SpecError(f"slope model must be one of {', '.join(SLOPE_MODELS)}, got {model!r}")
    w = np.asarray(widths, dtype=np.float64)
    E = np.asarray(errors, dtype=np.float64)
    K, S = E.shape
    if np.any(~np.isfinite(E)) or np.any(E <= 0):
        raise SpecError("the log-log fit needs finite positive errors; some errors are zero or not finite")
    y = np.log(E).ravel()
    lx = np.repeat(np.log(w / w.min()), S)
    ux = np.repeat(w.min() / w, S)
    one = np.ones_like(lx)
    fits = {}
    for name, cols in (("plain", [one, lx]), ("corrected", [one, lx, ux])):
        if len(y) <= len(cols) or K < len(cols):
            fits[name] = None
            continue
        coef, cov, dof, _ = _ols(np.column_stack(cols), y)
        t = _tq(confidence, dof)
        se = float(math.sqrt(cov[1, 1]))
        entry = {"slope": float(coef[1]), "se": se, "dof": dof,
                 "interval": (float(coef[1] - t * se), float(coef[1] + t * se)),
                 "intercept": float(coef[0] - coef[1] * math.log(w.min()))}
        if name == "corrected":
            cse = float(math.sqrt(cov[2, 2])) * w.min()
            c = float(coef[2]) * w.min()
            entry["correction"] = c
            entry["correction_interval"] = (c - t * cse, c + t * cse)
        fits[name] = entry
    main = fits[model]
    if main is None:
        raise SpecError(f"the {model} slope model needs at least {3 if model == 'corrected' else 2} widths "
                        "and more (width, seed) points than coefficients")
    corr = fits["corrected"]
    return SlopeFit(
        model=model, slope=main["slope"], interval=main["interval"], stderr=main["se"], dof=main["dof"],
        intercept=main["intercept"],
        correction=None if corr is None else corr["correction"],
        correction_interval=None if corr is None else corr["correction_interval"],
        plain_slope=fits["plain"]["slope"], plain_interval=fits["plain"]["interval"],
        corrected_slope=None if corr is None else corr["slope"],
        corrected_interval=None if corr is None else corr["interval"],
        confidence=confidence,
    )


@dataclass(frozen=True)
class Band:
    """Prediction band for the error at the largest width (see :func:`prediction_band`).

    ``observed``: the geometric seed mean there; ``lower``/``upper``: the band for
    it; ``predicted``: its centre; ``arithmetic_mean`` with its t interval too.
    """

    width: int
    observed: float
    predicted: float
    lower: float
    upper: float
    arithmetic_mean: float
    arithmetic_interval: Tuple[float, float]
    dof: int
    confidence: float

    @property
    def contains(self) -> bool:
        return self.lower <= self.observed <= self.upper

    def to_dict(self) -> Dict[str, Any]:
        d = _jsonable(self.__dict__)
        d["contains"] = self.contains
        return d


def prediction_band(widths: Sequence[int], errors: np.ndarray, confidence: float = 0.99) -> Band:
    """Band for the geometric seed mean of ``e`` at the largest width, from the other widths.

    With ``z = log e + (1/2) log n`` (width-independent up to ``c/n`` if the
    theorem's rate holds), OLS of ``z`` on ``[1, n_min/n]`` over the smaller
    widths gives ``z0_hat`` at ``n_max``; the mean ``zbar`` of the ``S`` new values
    there satisfies ``(zbar - z0_hat) / (s sqrt(x0^T (X^T X)^-1 x0 + 1/S)) ~ t_{N1-2}``
    for independent homoscedastic Gaussian residuals, so the band misses with
    probability ``1 - confidence``.  ``s`` pools the smaller widths, whose
    spread is larger (pre-asymptotic tails at small n), so the band errs wide.
    With a single smaller width the ``c/n`` column is dropped.
    """
    w = np.asarray(widths, dtype=np.float64)
    E = np.asarray(errors, dtype=np.float64)
    K, S = E.shape
    order = np.argsort(w)
    w, E = w[order], E[order]
    z = np.log(E) + 0.5 * np.log(w)[:, None]
    small_w = np.repeat(w[:-1], S)
    ys = z[:-1].ravel()
    cols = [np.ones_like(small_w)]
    if K - 1 >= 2:
        cols.append(w.min() / small_w)
    X = np.column_stack(cols)
    if len(ys) <= X.shape[1]:
        raise SpecError("the prediction band needs more (width, seed) points at the smaller widths")
    coef, _, dof, s2 = _ols(X, ys)
    x0 = np.array([1.0, w.min() / w[-1]][: X.shape[1]])
    lever = float(x0 @ np.linalg.inv(X.T @ X) @ x0)
    half = _tq(confidence, dof) * math.sqrt(s2 * (lever + 1.0 / S))
    z0 = float(x0 @ coef)
    scale = 1.0 / math.sqrt(w[-1])
    am, ah = t_interval(E[-1], confidence)
    return Band(
        width=int(w[-1]),
        observed=float(np.exp(np.mean(np.log(E[-1])))),
        predicted=math.exp(z0) * scale,
        lower=math.exp(z0 - half) * scale,
        upper=math.exp(z0 + half) * scale,
        arithmetic_mean=float(am),
        arithmetic_interval=(float(am - ah), float(am + ah)),
        dof=dof,
        confidence=confidence,
    )


@dataclass(frozen=True)
class Rule:
    """One rule of the verdict: its ``name``, the ``statement``, whether it ``passed`` and the numbers."""

    name: str
    statement: str
    passed: bool
    detail: str

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


# ---------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class SweepResult:
    """Everything a sweep measured and concluded.  Arrays are float64 numpy:
    ``frob`` and ``offdiag`` (K, S), ``diag_rel`` and ``diag_signed`` (K, S, L) with
    widths along axis 0 (ascending) and seeds along axis 1; ``beta`` (L,).
    """

    spec: RNNSpec
    widths: Tuple[int, ...]
    seeds: Tuple[int, ...]
    lags: int
    base_seed: int
    backend: str
    device: str
    dtype: str
    draws: str
    confidence: float
    beta: np.ndarray
    frob: np.ndarray
    diag_rel: np.ndarray
    diag_signed: np.ndarray
    offdiag: np.ndarray
    slope: SlopeFit
    band: Band
    rules: Tuple[Rule, ...]
    seconds: np.ndarray = field(repr=False, default=None)
    wall_seconds: float = field(default=float("nan"))
    bias_widths: Tuple[int, ...] = ()
    bias_seeds: Tuple[int, ...] = ()
    bias_diag_signed: Optional[np.ndarray] = field(repr=False, default=None)

    @property
    def verdict(self) -> str:
        """``"consistent"`` exactly when every rule passed, else ``"inconsistent"``."""
        return "consistent" if all(r.passed for r in self.rules) else "inconsistent"

    @property
    def seed_sequences(self) -> list:
        """``[base_seed, width, seed]`` of every draw (the entropy of its ``SeedSequence``)."""
        return [[self.base_seed, n, s] for n in self.widths for s in self.seeds]

    def frob_mean(self) -> Tuple[np.ndarray, np.ndarray]:
        """Seed mean of the relative Frobenius error per width and its t half-width."""
        return t_interval(self.frob, self.confidence, axis=1)

    def frob_geomean(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Geometric seed mean per width with the t interval of ``log e`` mapped back: (gm, lo, hi)."""
        m, h = t_interval(np.log(self.frob), self.confidence, axis=1)
        return np.exp(m), np.exp(m - h), np.exp(m + h)

    def rel_signed(self, probe: bool = False) -> np.ndarray:
        """Relative signed diagonal error ``diag_signed / (beta_l / n_x)`` (K, S, L); NaN where ``beta_l = 0``.
        ``probe=True``: of the bias probe's draws (:attr:`bias_widths` x :attr:`bias_seeds`)."""
        ref = self.beta / self.spec.n_x
        d = self.bias_diag_signed if probe else self.diag_signed
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ref > 0, d / np.where(ref > 0, ref, 1.0), np.nan)

    @property
    def has_probe(self) -> bool:
        """Whether the bias comes from a separate probe (more seeds at small widths)."""
        return self.bias_diag_signed is not None

    def bias_source(self) -> Tuple[Tuple[int, ...], int]:
        """Widths and number of seeds the bias table is computed from."""
        if self.has_probe:
            return self.bias_widths, len(self.bias_seeds)
        return self.widths, len(self.seeds)

    def bias_table(self) -> Tuple[np.ndarray, np.ndarray]:
        """``n`` times the seed-mean relative signed diagonal error, per width and lag (K, L),
        and ``n`` times its t half-width, over the widths of :meth:`bias_source` (the probe
        when there is one).  Rows agree for an O(1/n) bias (up to O(1/n^2) terms, large
        at small n and long lags); the half-width grows like ``sqrt n`` (fluctuations
        are O(n^-1/2)), which is why the probe uses many seeds at small widths."""
        m, h = t_interval(self.rel_signed(self.has_probe), self.confidence, axis=1)
        n = np.asarray(self.bias_source()[0], dtype=np.float64)[:, None]
        return n * m, n * h

    def to_dict(self, timings: bool = True) -> Dict[str, Any]:
        """JSON-friendly dictionary (NaN -> None); ``timings=False`` leaves out wall times."""
        fm, fh = self.frob_mean()
        gm, glo, ghi = self.frob_geomean()
        om, oh = t_interval(self.offdiag, self.confidence, axis=1)
        dm, dh = t_interval(self.diag_rel, self.confidence, axis=1)
        bt, bh = self.bias_table()
        out = {
            "verdict": self.verdict,
            "slope": self.slope.slope,
            "slope_interval": list(self.slope.interval),
            "theory_exponent": THEORY_EXPONENT,
            "confidence": self.confidence,
            "rules": [r.to_dict() for r in self.rules],
            "fit": self.slope.to_dict(),
            "band": self.band.to_dict(),
            "spec": dict(self.spec.to_dict()),
            "widths": list(self.widths),
            "seeds": list(self.seeds),
            "lags": self.lags,
            "base_seed": self.base_seed,
            "seed_sequences": self.seed_sequences,
            "backend": {"name": self.backend, "device": self.device, "dtype": self.dtype, "draws": self.draws},
            "beta": self.beta,
            "frob": {"per_seed": self.frob, "mean": fm, "half_width": fh,
                     "geometric_mean": gm, "geometric_interval": np.stack([glo, ghi], axis=1),
                     "sqrt_n_times_mean": fm * np.sqrt(np.asarray(self.widths, dtype=np.float64))},
            "offdiag": {"per_seed": self.offdiag, "mean": om, "half_width": oh},
            "diag_rel": {"per_seed": self.diag_rel, "mean": dm, "half_width": dh},
            "diag_signed": {"per_seed": self.diag_signed},
            "bias": {
                "description": ("n * seed-mean relative signed diagonal error (Theta_n[l,l] - beta_l)/beta_l "
                                "per width (rows) and lag (columns), with n * its t half-width; "
                                "an O(1/n) bias makes the rows agree (up to O(1/n^2) terms)"),
                "widths": list(self.bias_source()[0]), "seeds": self.bias_source()[1],
                "probe": self.has_probe,
                "probe_per_seed_diag_signed": self.bias_diag_signed,
                "n_times_mean": bt, "n_times_half_width": bh,
            },
        }
        if timings:
            out["timings"] = {"per_draw_seconds": self.seconds, "wall_seconds": self.wall_seconds}
        return _jsonable(out)


def _jsonable(obj):
    """numpy -> lists, NaN/inf -> None, tuples -> lists, recursively."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj


def summarize(spec: RNNSpec, widths: Sequence[int], seeds: Sequence[int], lags: int, beta: np.ndarray,
              frob: np.ndarray, diag_rel: np.ndarray, diag_signed: np.ndarray, offdiag: np.ndarray, *,
              base_seed: int = 0, confidence: float = 0.99, slope_model: str = "corrected",
              backend: str = "numpy", device: str = "cpu", dtype: str = "float64", draws: str = "numpy",
              seconds: Optional[np.ndarray] = None, wall_seconds: float = float("nan"),
              bias_widths: Sequence[int] = (), bias_seeds: Sequence[int] = (),
              bias_diag_signed: Optional[np.ndarray] = None) -> SweepResult:
    """Statistics and verdict from per-draw numbers (a pure function; :func:`sweep` calls it).

    Widths are sorted ascending (rows reordered with them).  Rules (:data:`RULES`):
    ``rate``: ``-1/2`` in the slope interval; ``decay``: the interval's upper end
    ``< 0``; ``band``: the geometric seed mean at the largest width inside
    :func:`prediction_band`.  Each of ``rate`` and ``band`` fails with probability
    ``1 - confidence`` when the theorem holds (t intervals under the models
    stated in :func:`fit_slope` and :func:`prediction_band`); ``decay`` with
    about ``P(t > 1/(2 se) - t_q)``, negligible when the slope's standard error
    ``se`` is well below ``1/(4 t_q)`` (~0.09 at 99 %; the default job has
    ~0.08, its upper end sits near -0.26).  A sweep with too few seeds or too
    narrow a range of widths fails ``decay`` for lack of power: "inconsistent"
    then means "not verified" (the rule's detail says so).  Union bound for a
    powered sweep: ``<= 2(1 - confidence)``.
    """
    order = np.argsort(np.asarray(widths))
    widths = tuple(int(widths[i]) for i in order)
    take = lambda a: None if a is None else np.asarray(a, dtype=np.float64)[order]
    frob, diag_rel, diag_signed, offdiag = take(frob), take(diag_rel), take(diag_signed), take(offdiag)
    seconds = take(seconds)
    if bias_diag_signed is not None:
        border = np.argsort(np.asarray(bias_widths))
        bias_widths = [bias_widths[i] for i in border]
        bias_diag_signed = np.asarray(bias_diag_signed, dtype=np.float64)[border]
    fit = fit_slope(widths, frob, confidence, slope_model)
    band = prediction_band(widths, frob, confidence)
    lo, hi = fit.interval
    pct = f"{100 * confidence:g}%"
    rules = (
        Rule("rate", RULES["rate"], bool(lo <= THEORY_EXPONENT <= hi),
             f"p = {fit.slope:.4f}, {pct} interval [{lo:.4f}, {hi:.4f}] ({fit.model} model)"),
        Rule("decay", RULES["decay"], bool(hi < 0),
             f"upper end {hi:.4f}" + ("" if hi < 0 or (hi - lo) / 2 < 0.5 else
                                      f" (interval half-width {(hi - lo) / 2:.2f}: too little power; "
                                      "add seeds or a wider range of widths)")),
        Rule("band", RULES["band"], band.contains,
             f"geometric mean {band.observed:.4g} at n = {band.width}, {pct} band "
             f"[{band.lower:.4g}, {band.upper:.4g}]"),
    )
    return SweepResult(
        spec=spec, widths=widths, seeds=tuple(int(s) for s in seeds), lags=int(lags), base_seed=int(base_seed),
        backend=backend, device=device, dtype=dtype, draws=draws, confidence=float(confidence),
        beta=np.asarray(beta, dtype=np.float64), frob=frob, diag_rel=diag_rel, diag_signed=diag_signed,
        offdiag=offdiag, slope=fit, band=band, rules=rules, seconds=seconds, wall_seconds=float(wall_seconds),
        bias_widths=tuple(int(n) for n in bias_widths), bias_seeds=tuple(int(v) for v in bias_seeds),
        bias_diag_signed=None if bias_diag_signed is None else np.asarray(bias_diag_signed, dtype=np.float64),
    )


# ----------------------------------------------------------------------------- sweep
def _check_ints(values, name: str, minimum: int) -> Tuple[int, ...]:
    try:
        vals = tuple(values)
    except TypeError:
        raise SpecError(f"{name} must be a sequence of integers, got {values!r}") from None
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise SpecError(f"{name} must be integers >= {minimum}, got {v!r}")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise SpecError(f"{name} must be distinct, got {list(out)}")
    return tuple(out)


def sweep(
    spec: RNNSpec,
    widths: Sequence[int],
    seeds: Union[int, Sequence[int]],
    lags: int,
    *,
    backend: str = "numpy",
    device: str = "cpu",
    dtype: str = "float64",
    draws: str = "numpy",
    executor=None,
    progress: bool = True,
    base_seed: int = 0,
    confidence: float = 0.99,
    slope_model: str = "corrected",
    bias_seeds: int = 0,
    bias_widths: Optional[Sequence[int]] = None,
) -> SweepResult:
    """Run every (width, seed) draw and summarize (:func:`summarize`).

    ``seeds``: a count ``S`` (seeds ``0..S-1``) or distinct non-negative integers;
    draw ``(n, s)`` uses ``SeedSequence([base_seed, n, s])``.  ``executor``: any
    ``concurrent.futures.Executor`` (its ``map`` runs :func:`run_task` on
    picklable :class:`SweepTask` objects; results come back in order), or
    ``None`` for serial.  Results do not depend on the executor.
    ``progress``: a bar on standard error (drawn on a terminal only).

    Bias probe: with ``bias_seeds > 0`` the bias table uses seeds
    ``0..bias_seeds-1`` at ``bias_widths`` (default: the three smallest widths);
    draws shared with the main sweep are computed once.  The bias is O(1/n)
    while fluctuations are O(n^-1/2), so it is resolved only with many seeds at
    small widths, where draws are cheap.  The probe does not enter the verdict.
    """
    from .backend import get_backend
    from .ntk import lag_weights_float64, limit_lag_gram
    from .progress import progress as bar

    if not isinstance(spec, RNNSpec):
        raise SpecError(f"spec must be an RNNSpec, got {type(spec).__name__}")
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise SpecError(f"seeds must be a positive count or a list of seeds, got {seeds}")
        seeds = tuple(range(int(seeds)))
    seeds = _check_ints(seeds, "seeds", 0)
    widths = _check_ints(widths, "widths", 1)
    if len(widths) < 3 or len(seeds) < 2:
        raise SpecError(f"a slope with an interval needs at least 3 widths and 2 seeds; "
                        f"got {len(widths)} width(s) and {len(seeds)} seed(s)")
    check_lags(lags)
    if isinstance(base_seed, bool) or not isinstance(base_seed, (int, np.integer)) or base_seed < 0:
        raise SpecError(f"base_seed must be a non-negative integer, got {base_seed!r}")
    if not (isinstance(confidence, (int, float)) and 0.5 <= float(confidence) < 1):
        raise SpecError(f"confidence must be in [0.5, 1), got {confidence!r}")
    if slope_model not in SLOPE_MODELS:
        raise SpecError(f"slope model must be one of {', '.join(SLOPE_MODELS)}, got {slope_model!r}")
    get_backend(backend, device, dtype, draws=draws)  # fail early, in this process, with one line
    beta = lag_weights_float64(spec, lags)
    limit = limit_lag_gram(spec, lags)
    if not np.any(limit):
        raise SpecError("the closed-form lag Gram is zero (every group frozen?); relative errors are undefined")
    widths = tuple(sorted(widths))
    if isinstance(bias_seeds, bool) or not isinstance(bias_seeds, (int, np.integer)) or bias_seeds < 0:
        raise SpecError(f"bias_seeds must be a non-negative integer, got {bias_seeds!r}")
    probe_widths: Tuple[int, ...] = ()
    probe_seeds: Tuple[int, ...] = ()
    if bias_seeds:
        if bias_seeds < 2:
            raise SpecError(f"bias_seeds must be 0 (no probe) or at least 2, got {bias_seeds}")
        probe_widths = tuple(sorted(_check_ints(widths[:3] if bias_widths is None else bias_widths,
                                                "bias_widths", 1)))
        if not probe_widths:
            raise SpecError("bias_widths must name at least one width")
        probe_seeds = tuple(range(int(bias_seeds)))
    # largest widths first: pools finish together; results are placed by key
    keys = [(n, s) for n in reversed(widths) for s in seeds]
    seen = set(keys)
    keys += [(n, s) for n in probe_widths for s in probe_seeds if (n, s) not in seen]
    tasks = [SweepTask(spec, n, s, int(base_seed), int(lags), limit, backend, device, dtype, draws) for n, s in keys]
    t0 = time.perf_counter()
    results = map(run_task, tasks) if executor is None else executor.map(run_task, tasks)
    results = bar(results, total=len(tasks), desc="sweep", enabled=None if progress else False)
    got = dict(zip(keys, results))
    wall = time.perf_counter() - t0
    grid = [[got[(n, s)] for s in seeds] for n in widths]
    frob = np.array([[r.frob for r in row] for row in grid])
    offd = np.array([[r.offdiag for r in row] for row in grid])
    secs = np.array([[r.seconds for r in row] for row in grid])
    drel = np.array([[r.diag_rel for r in row] for row in grid])
    dsig = np.array([[r.diag_signed for r in row] for row in grid])
    probe = None
    if probe_widths:
        probe = np.array([[got[(n, s)].diag_signed for s in probe_seeds] for n in probe_widths])
    return summarize(spec, widths, seeds, lags, beta, frob, drel, dsig, offd, base_seed=base_seed,
                     confidence=float(confidence), slope_model=slope_model, backend=backend, device=device,
                     dtype=dtype, draws=draws, seconds=secs, wall_seconds=wall,
                     bias_widths=probe_widths, bias_seeds=probe_seeds, bias_diag_signed=probe)
