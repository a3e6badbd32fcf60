"""The implicit bias of training: the beta-weighted minimum-norm impulse response.

Full-batch gradient descent with a small step on a wide linear RNN (kernel regime,
docs/theory.md, section "Training in the kernel regime") moves the impulse response ``L`` to

    L_inf = argmin_L sum_l ||L_l - L_l(0)||^2 / beta_l   subject to  X vec(L) = y
          = L(0) + B X^T (X B X^T)^(-1) (y - X L(0)),      B = diag(beta_l) (x) I_(n_x).

The **data matrix** ``X`` (the *lagged-input design*) maps an impulse response to
the fitted outputs.  For input sequences ``x[b, t, i]`` (shape ``(B, T, n_x)``)
and the set of fitted output times ``times``, its rows are indexed by ``(b, t)``
(``t`` in ``times``, row-major) and its columns by ``(l, i)`` (lag-major)::

    X[(b, t), (l, i)] = x[b, t - l, i]    (0 when t < l),

so that ``y[(b, t), a] = sum_(l, i) X[(b, t), (l, i)] L[l, a, i]`` for every
output coordinate ``a``: the output coordinates decouple, and each column of
``y`` is solved with the same ``X`` (see :func:`design_matrix`).
``B = I`` gives the unweighted (Euclidean) minimum-norm interpolant.  A common
factor of the weights (such as the ``1/n_x`` of the NTK) cancels.

The wide network trained to convergence predicts, on new sequences, the
convolution with ``L_inf``; equivalently
``f(X*) = f_0(X*) + K(X*, X) K(X, X)^(-1) (y - f_0(X))`` with the NTK ``K`` of
:mod:`theory.kernel` (the tests check the two routes agree).

Exactness (:func:`min_norm_solve`, the one minimum-norm solve of the exact side:
it also takes a full metric, such as the lag kernels of :mod:`theory.diagonal`):
inputs are converted to exact rationals (a float is its binary
value), ``X B X^T`` is formed in exact integer arithmetic, and only the linear
solve is rounded: it runs in mpmath at a working precision ``wp`` (starting at
``dps`` + the decades spanned by beta + 20) that is raised until two solves, at
``wp`` and more, agree to ``dps + 1`` digits in every entry of ``L - L(0)``
(entries below ``10^-wp`` times the largest are held to that absolute level):
:func:`theory.precision.until_stable`.
**Why float64 fails** (:func:`min_norm_response_float64`): for
``s_W = 0.5`` and about 100 lags beta spans 60 decades.  Nothing underflows
(``1e-60`` is far inside the float64 range), but every entry of ``X B X^T`` is a
sum whose terms range over those 60 decades, so rounding to 16 digits erases the
long-lag contributions: the float64 matrix has condition number far above
``1/eps = 4.5e15`` (``~beta_0 / beta_(N-1)`` for ``N`` fitted outputs), and its
solve returns an impulse response with O(1) relative error or worse.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import ceil, log10
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from theory.kernel import integerize, to_fraction
from theory.precision import Context, UnstableSolve, check_dps, context, until_stable
from theory.spec import RNNSpec, SpecError
from theory.weights import check_lags, lag_weights

__all__ = [
    "design_matrix",
    "MinNormSolution",
    "MinNormCorrection",
    "min_norm_solve",
    "min_norm_response",
    "weighted_min_norm",
    "unweighted_min_norm",
    "min_norm_response_float64",
    "kernel_predict",
    "output_rows",
]

Times = Union[str, Sequence[int]]


def output_rows(T: int, times: Times = "last") -> list:
    """The fitted output times: ``"last"`` -> ``[T-1]``, ``"all"`` -> ``0..T-1``, or explicit ints."""
    if isinstance(times, str):
        if times == "last":
            return [T - 1]
        if times == "all":
            return list(range(T))
        raise ValueError(f"times must be 'last', 'all' or a sequence of time indices, got {times!r}")
    out = [int(t) for t in times]
    if not out or any(t < 0 or t >= T for t in out):
        raise ValueError(f"times must be non-empty indices in 0..{T - 1}, got {list(times)!r}")
    return out


def design_matrix(X, lags: int, times: Times = "last") -> np.ndarray:
    """Lagged-input design ``X[(b, t), (l, i)] = x[b, t-l, i]`` (0 for ``t < l``).

    ``X`` has shape ``(B, T, n_x)``; the result has shape ``(B * len(times), lags * n_x)``
    with the input's dtype (a pure rearrangement: no rounding).

    >>> design_matrix(np.array([[[1.0], [2.0], [3.0]]]), 2, "all").tolist()
    [[1.0, 0.0], [2.0, 1.0], [3.0, 2.0]]
    """
    check_lags(lags)
    arr = np.asarray(X)
    if arr.ndim != 3 or 0 in arr.shape:
        raise SpecError(f"X must be a non-empty array of shape (B, T, n_x), got shape {arr.shape}")
    B, T, nx = arr.shape
    rows = output_rows(T, times)
    out = np.zeros((B, len(rows), lags, nx), dtype=arr.dtype)
    for k, t in enumerate(rows):
        for l in range(min(lags, t + 1)):
            out[:, k, l, :] = arr[:, t - l, :]
    return out.reshape(B * len(rows), lags * nx)


@dataclass(frozen=True)
class MinNormSolution:
    """``response`` (lags, n_y, n_x) and ``alpha`` (N, n_y): ``L = L0 + B X^T alpha``, mpf at ``dps``.

    ``working_dps`` is the precision at which the final solve agreed with one 30
    digits more precise.
    """

    response: np.ndarray
    alpha: np.ndarray
    dps: int
    working_dps: int

    def to_float(self) -> np.ndarray:
        """The impulse response rounded to float64."""
        return np.vectorize(float, otypes=[np.float64])(self.response)


def _fractions(a, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=object)
    out = np.empty(arr.shape, dtype=object)
    fo, fi = out.reshape(-1), arr.reshape(-1)
    for k, v in enumerate(fi):
        if isinstance(v, (float, np.floating)) and not np.isfinite(v):
            raise ValueError(f"{name} contains a non-finite value ({float(v)!r})")
        try:
            fo[k] = to_fraction(float(v) if isinstance(v, np.floating) else v)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} contains a value that is not a finite number ({v!r})") from exc
    return out


def _check_shapes(Phi, y, lags: int, n_x: int, L0) -> tuple:
    if Phi.ndim != 2:
        raise ValueError(f"the design X must be a matrix (N, lags * n_x), got shape {Phi.shape}")
    N, p = Phi.shape
    if p != lags * n_x:
        raise ValueError(f"the design has {p} columns; {lags} lags x n_x = {n_x} need {lags * n_x}")
    if y.ndim != 2 or y.shape[0] != N:
        raise ValueError(f"y must have shape (N, n_y) = ({N}, n_y), got {y.shape}")
    n_y = y.shape[1]
    if L0 is not None and L0.shape != (lags, n_y, n_x):
        raise ValueError(f"L0 must have shape {(lags, n_y, n_x)}, got {L0.shape}")
    if N > p:
        raise ValueError(
            f"{N} fitted outputs but only {p} impulse-response coefficients: the data cannot be "
            "interpolated in general (X B X^T is singular); fit fewer outputs or use more lags"
        )
    return N, p, n_y


def min_norm_response(
    Phi,
    y,
    weights: Optional[Sequence],
    *,
    n_x: int = 1,
    L0=None,
    dps: int = 30,
    max_refinements: int = 6,
) -> MinNormSolution:
    """``L0 + B X^T (X B X^T)^(-1) (y - X L0)`` to ``dps`` digits (see the module docstring).

    ``Phi`` is the design ``(N, lags * n_x)`` of :func:`design_matrix`, ``y`` the
    targets ``(N, n_y)``, ``weights`` the ``lags`` per-lag weights (mpmath numbers,
    Fractions, ints or floats, taken as exact; all > 0) or ``None`` for ``B = I``.
    ``L0`` (lags, n_y, n_x) defaults to zero.
    """
    dps = check_dps(dps)
    Pf = _fractions(Phi, "X")
    yf = _fractions(y, "y")
    if yf.ndim == 1:
        yf = yf.reshape(-1, 1)
    p = Pf.shape[1] if Pf.ndim == 2 else 0
    if n_x < 1 or p % n_x:
        raise ValueError(f"n_x = {n_x} does not divide the {p} columns of the design")
    lags = p // n_x
    L0f = None if L0 is None else _fractions(L0, "L0")
    N, p, n_y = _check_shapes(Pf, yf, lags, n_x, L0f)
    if weights is None:
        wf = [Fraction(1)] * lags
    else:
        if len(weights) != lags:
            raise ValueError(f"need {lags} lag weights, got {len(weights)}")
        wf = [to_fraction(w) for w in weights]
        if any(w <= 0 for w in wf):
            raise ValueError("lag weights must be > 0 (a zero weight freezes a lag: drop it from the design)")
    wcol = np.array([wf[l] for l in range(lags) for _ in range(n_x)], dtype=object)  # B per column (l, i)
    # residual r = y - Phi L0 (exact)
    if L0f is None:
        L0f = np.empty((lags, n_y, n_x), dtype=object)
        L0f[...] = Fraction(0)
    L0cols = L0f.transpose(0, 2, 1).reshape(p, n_y)  # (l, i) x a
    r = yf - Pf.dot(L0cols)
    start, step = dps + _decades(wf) + 20, 30
    try:
        corr = min_norm_solve(Pf, wcol, r, start_dps=start, agree_digits=dps + 1,
                              max_dps=start + step * (2**max_refinements - 1), step=step)
    except ZeroDivisionError:
        raise ValueError("X B X^T is singular: the fitted outputs are linearly dependent") from None
    except UnstableSolve as exc:
        raise ValueError(
            f"the weighted minimum-norm solve did not stabilize up to {exc.dps} digits: X B X^T is singular "
            "(linearly dependent rows of the design?)"
        ) from None
    return _finish(corr, L0f, dps)


def _decades(wf) -> int:
    hi, lo = max(wf), min(wf)
    return int(ceil(log10(float(hi / lo)))) if hi != lo else 0


class MinNormCorrection(NamedTuple):
    """``delta = M X^T alpha`` (p, n_y) and ``alpha = (X M X^T)^(-1) r`` (N, n_y): mpmath numbers of ``ctx``,
    the working context of the last solve, at ``working_dps`` digits (see :func:`min_norm_solve`)."""

    delta: np.ndarray
    alpha: np.ndarray
    ctx: Context
    working_dps: int


def min_norm_solve(Phi: np.ndarray, metric: np.ndarray, r: np.ndarray, *, start_dps: int, agree_digits: int,
                   max_dps: int, step: int = 30, floor_digits: Optional[int] = None) -> MinNormCorrection:
    """The minimum-norm correction in the metric of a positive semi-definite ``M``, at rising precision:

        L - L0 = delta = M X^T alpha,    alpha = (X M X^T)^(-1) r,    r = y - X L0,

    the minimizer of ``(L - L0)^T M^(-1) (L - L0)`` subject to ``X L = y`` (for singular
    ``M``: the minimizer within ``L0 + range(M)``, where gradient descent moves ``L``).  Every
    minimum-norm solve of the exact side is this one: :func:`min_norm_response` (``M = B``,
    diagonal) and :func:`theory.diagonal.implicit_bias_solution` (``M = Theta``, a lag kernel).

    ``Phi`` (N, p) is the design ``X``, ``r`` (N, n_y) the residuals, and ``metric`` either the
    ``p`` diagonal entries of ``M`` (shape (p,)) or ``M`` itself (shape (p, p)); all three are
    object arrays of exact :class:`~fractions.Fraction` s.  With ``X = Pi / dx`` and ``M = Mi / dm``
    (integers ``Pi``, ``Mi``) the Gram ``G = Pi Mi Pi^T = dx^2 dm X M X^T`` is formed exactly, and
    ``delta = dx Mi Pi^T G^(-1) r`` (the factors ``dm`` and ``dx^2`` cancel).  Only the solve with
    ``G`` is rounded: it runs at ``start_dps`` digits and rises by :func:`theory.precision.until_stable`
    (``agree_digits``, ``floor_digits``, ``step``, ``max_dps``, on the entries of ``delta``) until two
    solves agree.

    Raises ``ZeroDivisionError`` when ``G`` is singular at the working precision and
    :class:`~theory.precision.UnstableSolve` when no two solves agree (callers name the cause).
    """
    diagonal = metric.ndim == 1
    Pi, dx = integerize(Phi)
    Mi, dm = integerize(metric)
    if diagonal:
        G = (Pi * Mi[None, :]).dot(Pi.T)  # exact: X B X^T * dx^2 * dm
    else:
        G = Pi.dot(Mi.dot(Pi.T))  # exact: X M X^T * dx^2 * dm
    scale = dx * dx * dm

    def solve(wp: int) -> Tuple[np.ndarray, np.ndarray, Context]:
        ctx = context(wp)
        N = G.shape[0]
        K = ctx.matrix(N, N)
        for a in range(N):
            for b in range(N):
                K[a, b] = ctx.mpf(int(G[a, b]))
        alphas, deltas = [], []
        for a in range(r.shape[1]):
            rhs = ctx.matrix([ctx.mpf(v.numerator) / v.denominator for v in r[:, a]])
            col = ctx.lu_solve(K, rhs)  # the LU factors are cached on K across columns
            al = np.array([col[k] for k in range(N)], dtype=object)
            proj = Pi.T.dot(al)  # (p,) mpf: Pi^T G^-1 r
            if diagonal:
                dL = np.array([ctx.mpf(int(Mi[k])) * int(dx) * proj[k] for k in range(len(Mi))], dtype=object)
            else:
                dL = np.array([int(dx) * v for v in Mi.dot(proj)], dtype=object)
            alphas.append(al * int(scale))
            deltas.append(dL)
        return np.stack(deltas, axis=1), np.stack(alphas, axis=1), ctx

    (delta, alpha, ctx), wp = until_stable(solve, start_dps, agree_digits=agree_digits, max_dps=max_dps, step=step,
                                           floor_digits=floor_digits, values=lambda res: res[0].reshape(-1))
    return MinNormCorrection(delta, alpha, ctx, wp)


def _finish(corr: MinNormCorrection, L0f, dps: int) -> MinNormSolution:
    dL, alpha, wctx = corr.delta, corr.alpha, corr.ctx
    ctx = context(dps)
    p, n_y = dL.shape
    lags, _, n_x = L0f.shape
    L = np.empty((lags, n_y, n_x), dtype=object)
    for l in range(lags):
        for i in range(n_x):
            for a in range(n_y):
                v = L0f[l, a, i]
                L[l, a, i] = ctx.mpf(wctx.mpf(v.numerator) / v.denominator + dL[l * n_x + i, a])
    al = np.vectorize(lambda v: ctx.mpf(v), otypes=[object])(alpha)
    return MinNormSolution(L, al, dps, corr.working_dps)


def weighted_min_norm(spec: RNNSpec, Phi, y, *, L0=None, dps: int = 30) -> MinNormSolution:
    """The beta-weighted minimum-norm impulse response, beta from :func:`theory.weights.lag_weights`.

    Lags with ``beta_l = 0`` (a frozen group, conv2's lag 0 without D) cannot move
    from ``L0``: their design columns are dropped from the solve.
    """
    p = np.shape(Phi)[1]
    if p % spec.n_x:
        raise ValueError(f"the design has {p} columns, not a multiple of n_x = {spec.n_x}")
    lags = p // spec.n_x
    beta = lag_weights(spec, lags, dps=dps + 20)
    keep = [l for l in range(lags) if beta[l] != 0]
    if not keep:
        raise ValueError("all lag weights are zero: training moves nothing")
    if len(keep) == lags:
        return min_norm_response(Phi, y, beta, n_x=spec.n_x, L0=L0, dps=dps)
    cols = [l * spec.n_x + i for l in keep for i in range(spec.n_x)]
    Pa = _fractions(Phi, "X")  # exact rationals: the adjustment below must not round
    y2 = _fractions(y, "y").reshape(len(Pa), -1)
    n_y = y2.shape[1]
    if L0 is None:
        L0a = np.empty((lags, n_y, spec.n_x), dtype=object)
        L0a[...] = Fraction(0)
    else:
        L0a = _fractions(L0, "L0")
    # move the frozen lags' fixed contribution to the right-hand side (exactly)
    frozen = [l * spec.n_x + i for l in range(lags) if l not in keep for i in range(spec.n_x)]
    L0cols = L0a.transpose(0, 2, 1).reshape(p, n_y)
    y_adj = y2 - Pa[:, frozen].dot(L0cols[frozen]) if frozen else y2
    sol = min_norm_response(Pa[:, cols], y_adj, [beta[l] for l in keep], n_x=spec.n_x,
                            L0=L0a[keep], dps=dps)
    ctx = context(dps)
    L = np.empty((lags, n_y, spec.n_x), dtype=object)
    for l in range(lags):
        for a in range(n_y):
            for i in range(spec.n_x):
                if l in keep:
                    L[l, a, i] = sol.response[keep.index(l), a, i]
                else:
                    L[l, a, i] = ctx.mpf(L0a[l, a, i].numerator) / L0a[l, a, i].denominator
    return MinNormSolution(L, sol.alpha, dps, sol.working_dps)


def unweighted_min_norm(Phi, y, *, n_x: int = 1, L0=None, dps: int = 30) -> MinNormSolution:
    """The Euclidean minimum-norm interpolant (``B = I``): the contrast without implicit bias."""
    return min_norm_response(Phi, y, None, n_x=n_x, L0=L0, dps=dps)


def min_norm_response_float64(Phi, y, weights: Optional[Sequence], *, n_x: int = 1, L0=None) -> np.ndarray:
    """The same formula in float64: ``L0 + B X^T solve(X B X^T, y - X L0)``.

    Accurate only while ``cond(X B X^T) << 1/eps``; see the module docstring for
    where (and why) it fails.  Returns float64 (lags, n_y, n_x).
    """
    Phi = np.asarray(Phi, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    p = Phi.shape[1]
    lags = p // n_x
    n_y = y.shape[1]
    L0 = np.zeros((lags, n_y, n_x)) if L0 is None else np.asarray(L0, dtype=np.float64)
    _check_shapes(Phi, y, lags, n_x, L0)
    w = np.ones(lags) if weights is None else np.array([float(v) for v in weights])
    wcol = np.repeat(w, n_x)
    L0cols = L0.transpose(0, 2, 1).reshape(p, n_y)
    r = y - Phi @ L0cols
    K = (Phi * wcol) @ Phi.T
    alpha = np.linalg.solve(K, r)
    dL = wcol[:, None] * (Phi.T @ alpha)
    return L0 + dL.reshape(lags, n_x, n_y).transpose(0, 2, 1)


def kernel_predict(
    spec: RNNSpec,
    X_train,
    y_train,
    X_test,
    *,
    lags: Optional[int] = None,
    times: Times = "last",
    L0=None,
    dps: int = 30,
) -> np.ndarray:
    """Prediction of the infinitely wide network trained to convergence, on new sequences.

    ``f(X*) = X*_design L_inf`` with ``L_inf`` from :func:`weighted_min_norm`
    (``L0 = 0``: the mean over initializations; pass the network's ``L(0)`` for one
    draw).  Predicts the outputs at ``times`` of each test sequence: shape
    ``(B* len(times), n_y)``, mpf at ``dps``.  ``lags`` defaults to the longest
    sequence length.
    """
    Xtr, Xte = np.asarray(X_train), np.asarray(X_test)
    for name, arr in (("X_train", Xtr), ("X_test", Xte)):
        if arr.ndim != 3 or arr.shape[2] != spec.n_x:
            raise SpecError(f"{name} must have shape (B, T, n_x = {spec.n_x}), got {arr.shape}")
    lags = lags or max(Xtr.shape[1], Xte.shape[1])
    Phi = design_matrix(Xtr, lags, times)
    y = np.asarray(y_train, dtype=object).reshape(Phi.shape[0], -1)
    sol = weighted_min_norm(spec, Phi, y, L0=L0, dps=dps)
    Pt = _fractions(design_matrix(Xte, lags, times), "X_test")
    ctx = context(dps + 10)
    Lcols = sol.response.transpose(0, 2, 1).reshape(lags * spec.n_x, -1)
    out = np.empty((Pt.shape[0], Lcols.shape[1]), dtype=object)
    cd = context(dps)
    for r in range(Pt.shape[0]):
        for a in range(Lcols.shape[1]):
            s = ctx.mpf(0)
            for k in range(Pt.shape[1]):
                if Pt[r, k]:
                    s += ctx.mpf(Pt[r, k].numerator) / Pt[r, k].denominator * Lcols[k, a]
            out[r, a] = cd.mpf(s)
    return out
