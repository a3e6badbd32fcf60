"""Statistics of a width sweep, on numpy float64 arrays only.

* :func:`lag_gram_errors`: the error measures of one lag Gram against its limit;
* :func:`t_interval`: seed means with Student-t half-widths;
* :func:`fit_slope`: the exponent ``p`` of ``e ~ n^p`` by OLS of per-seed ``log e``
  on ``[1, log n, 1/n]`` ("corrected") or ``[1, log n]`` ("plain");
* :func:`prediction_band`: the band for the error at the largest width, from the
  law ``e ~ n^-1/2 (1 + c/n)`` fitted on the other widths;
* :func:`error_statistics`: the two together, the :class:`SweepStatistics` that
  :func:`verify.stats.sweep.verdict.verdict` judges.

Nothing here imports a backend: arrays arrive as numpy (the sweep converts each
draw's lag Gram once, in :func:`verify.stats.sweep.draws.run_task`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Optional, Sequence, Tuple

import numpy as np

from theory.spec import SpecError
from verify.internal.jsonio import jsonable

__all__ = [
    "THEORY_EXPONENT",
    "SLOPE_MODELS",
    "lag_gram_errors",
    "t_interval",
    "LogFit",
    "SlopeFit",
    "fit_slope",
    "Band",
    "prediction_band",
    "SweepStatistics",
    "error_statistics",
]

#: The theorem's rate: ``||Theta_n - Theta_inf|| ~ n^-1/2``.
THEORY_EXPONENT = -0.5
SLOPE_MODELS = ("corrected", "plain")


# ----------------------------------------------------------------- per-draw errors
def lag_gram_errors(gram: np.ndarray, limit: np.ndarray) -> Dict[str, Any]:
    """Errors of a lag Gram ``gram`` against ``limit`` (both float64, shape ``(L, n_y, n_x, L, n_y, n_x)``).

    Returns ``frob`` (relative Frobenius error), ``diag_rel`` (L,) relative
    Frobenius error of each lag-diagonal block (NaN where ``beta_l = 0``),
    ``diag_signed`` (L,) mean diagonal entry minus its limit, and ``offdiag``
    (Frobenius norm off the main diagonal over ``||limit||_F``).

    >>> lim = np.zeros((2, 1, 1, 2, 1, 1)); lim[0, 0, 0, 0, 0, 0] = lim[1, 0, 0, 1, 0, 0] = 1.0
    >>> err = lag_gram_errors(1.5 * lim, lim)
    >>> round(err["frob"], 12), err["diag_signed"].tolist(), err["offdiag"]
    (0.5, [0.5, 0.5], 0.0)
    """
    gram = np.asarray(gram, dtype=np.float64)
    limit = np.asarray(limit, dtype=np.float64)
    if gram.shape != limit.shape or gram.ndim != 6:
        raise SpecError(f"lag Gram of shape {gram.shape} does not match the limit's {limit.shape}")
    L, ny, nx = gram.shape[:3]
    m = ny * nx
    ref = float(np.linalg.norm(limit))
    if ref == 0.0:
        raise SpecError("the closed-form lag Gram is zero (every group frozen?); relative errors are undefined")
    diff = (gram - limit).reshape(L * m, L * m)
    frob = float(np.linalg.norm(diff)) / ref
    blocks_g = np.stack([gram[l, :, :, l, :, :].reshape(m, m) for l in range(L)])
    blocks_l = np.stack([limit[l, :, :, l, :, :].reshape(m, m) for l in range(L)])
    lim_norm = np.linalg.norm(blocks_l, axis=(1, 2))
    num = np.linalg.norm(blocks_g - blocks_l, axis=(1, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        diag_rel = np.where(lim_norm > 0, num / np.where(lim_norm > 0, lim_norm, 1.0), np.nan)
    diag_signed = np.einsum("lii->l", blocks_g - blocks_l) / m
    offd = gram.reshape(L * m, L * m).copy()
    np.fill_diagonal(offd, 0.0)
    return {
        "frob": frob,
        "diag_rel": diag_rel.astype(np.float64),
        "diag_signed": diag_signed.astype(np.float64),
        "offdiag": float(np.linalg.norm(offd)) / ref,
    }


# ----------------------------------------------------------------- intervals
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


# ----------------------------------------------------------------- slope
@dataclass(frozen=True)
class LogFit:
    """One OLS fit of per-seed ``log e`` on ``log n`` (and ``1/n``): the ``slope`` ``p``, its t
    ``interval``, standard error and residual ``dof``, the ``intercept`` (``log e`` at ``n = 1``) and,
    for the corrected model, the coefficient ``correction`` of ``1/n`` with its interval."""

    slope: float
    interval: Tuple[float, float]
    stderr: float
    dof: int
    intercept: float
    correction: Optional[float] = None
    correction_interval: Optional[Tuple[float, float]] = None


@dataclass(frozen=True)
class SlopeFit:
    """Fitted exponent of ``e ~ n^p`` at ``confidence``: both models' fits, ``model`` the one used.

    ``model`` "corrected": OLS of per-seed ``log e`` on ``[1, log n, 1/n]``;
    "plain": on ``[1, log n]``.  ``corrected`` is None when there are too few
    widths for it.  ``slope``, ``interval``, ``stderr``, ``dof`` and
    ``intercept`` are those of the model used; ``correction`` (the coefficient
    of ``1/n``) and ``plain_*``/``corrected_*`` read the two fits.
    """

    model: str
    plain: LogFit
    corrected: Optional[LogFit]
    confidence: float

    @property
    def used(self) -> LogFit:
        """The fit of :attr:`model`."""
        if self.model == "corrected" and self.corrected is not None:
            return self.corrected
        return self.plain

    @property
    def slope(self) -> float:
        return self.used.slope

    @property
    def interval(self) -> Tuple[float, float]:
        return self.used.interval

    @property
    def stderr(self) -> float:
        return self.used.stderr

    @property
    def dof(self) -> int:
        return self.used.dof

    @property
    def intercept(self) -> float:
        return self.used.intercept

    @property
    def correction(self) -> Optional[float]:
        return None if self.corrected is None else self.corrected.correction

    @property
    def correction_interval(self) -> Optional[Tuple[float, float]]:
        return None if self.corrected is None else self.corrected.correction_interval

    @property
    def plain_slope(self) -> float:
        return self.plain.slope

    @property
    def plain_interval(self) -> Tuple[float, float]:
        return self.plain.interval

    @property
    def corrected_slope(self) -> Optional[float]:
        return None if self.corrected is None else self.corrected.slope

    @property
    def corrected_interval(self) -> Optional[Tuple[float, float]]:
        return None if self.corrected is None else self.corrected.interval

    def to_dict(self) -> Dict[str, Any]:
        keys = ("model", "slope", "interval", "stderr", "dof", "intercept", "correction", "correction_interval",
                "plain_slope", "plain_interval", "corrected_slope", "corrected_interval", "confidence")
        return jsonable({k: getattr(self, k) for k in keys})


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
    fits: Dict[str, Optional[LogFit]] = {}
    for name, cols in (("plain", [one, lx]), ("corrected", [one, lx, ux])):
        if len(y) <= len(cols) or K < len(cols):
            fits[name] = None
            continue
        coef, cov, dof, _ = _ols(np.column_stack(cols), y)
        t = _tq(confidence, dof)
        se = float(math.sqrt(cov[1, 1]))
        extra = {}
        if name == "corrected":
            cse = float(math.sqrt(cov[2, 2])) * w.min()
            c = float(coef[2]) * w.min()
            extra = {"correction": c, "correction_interval": (c - t * cse, c + t * cse)}
        fits[name] = LogFit(slope=float(coef[1]), interval=(float(coef[1] - t * se), float(coef[1] + t * se)),
                            stderr=se, dof=dof, intercept=float(coef[0] - coef[1] * math.log(w.min())), **extra)
    plain = fits["plain"]  # fits whenever the corrected model does (it has fewer coefficients)
    if fits[model] is None or plain is None:
        raise SpecError(f"the {model} slope model needs at least {3 if model == 'corrected' else 2} widths "
                        "and more (width, seed) points than coefficients")
    return SlopeFit(model=model, plain=plain, corrected=fits["corrected"], confidence=confidence)


# ----------------------------------------------------------------- band
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
        d = jsonable(self.__dict__)
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


# ----------------------------------------------------------------- together
@dataclass(frozen=True, eq=False)
class SweepStatistics:
    """What the verdict judges: the per-seed relative Frobenius errors ``frob`` (K, S) at
    ``widths`` (ascending), the fitted exponent ``slope`` and the ``band`` at the largest width,
    all at ``confidence``."""

    widths: Tuple[int, ...]
    frob: np.ndarray
    confidence: float
    slope: SlopeFit
    band: Band


def error_statistics(widths: Sequence[int], frob: np.ndarray, *, confidence: float = 0.99,
                     slope_model: str = "corrected") -> SweepStatistics:
    """:func:`fit_slope` and :func:`prediction_band` of the errors ``frob`` (K, S) at ``widths`` (ascending)."""
    frob = np.asarray(frob, dtype=np.float64)
    return SweepStatistics(
        widths=tuple(int(n) for n in widths), frob=frob, confidence=float(confidence),
        slope=fit_slope(widths, frob, confidence, slope_model), band=prediction_band(widths, frob, confidence),
    )
