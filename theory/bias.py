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

Exactness: inputs are converted to exact rationals (a float is its binary
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
from typing import Optional, Sequence, Union

import numpy as np

from theory.kernel import _integerize, _to_fraction
from theory.precision import UnstableSolve, check_dps, context, until_stable
from theory.spec import RNNSpec, SpecError
from theory.weights import check_lags, lag_weights

__all__ = [
    "design_matrix",
    "MinNormSolution",
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
            fo[k] = _to_fraction(float(v) if isinstance(v, np.floating) else v)
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
        wf = [_to_fraction(w) for w in weights]
        if any(w <= 0 for w in wf):
            raise ValueError("lag weights must be > 0 (a zero weight freezes a lag: drop it from the design)")
    # exact integer forms: Phi = Pi / dx, w = wi / dw (per column (l, i))
    Pi, dx = _integerize(Pf)
    wcol = np.array([wf[l] for l in range(lags) for _ in range(n_x)], dtype=object)
    wi, dw = _integerize(wcol)
    # residual r = y - Phi L0 (exact)
    if L0f is None:
        L0f = np.empty((lags, n_y, n_x), dtype=object)
        L0f[...] = Fraction(0)
    L0cols = L0f.transpose(0, 2, 1).reshape(p, n_y)  # (l, i) x a
    r = yf - Pf.dot(L0cols)
    Kint = (Pi * wi[None, :]).dot(Pi.T)  # exact: X B X^T * dx^2 * dw
    spread = _decades(wf)
    # L - L0 = dx * diag(wi) Pi^T Kint^-1 r   (the factors dw, dx^2 cancel)
    start, step = dps + spread + 20, 30
    try:
        hi, wp = until_stable(lambda w: _solve(Kint, Pi, wi, dx, dx * dx * dw, r, w), start, agree_digits=dps + 1,
                              max_dps=start + step * (2**max_refinements - 1), step=step,
                              values=lambda res: res[0].reshape(-1))
    except UnstableSolve as exc:
        raise ValueError(
            f"the weighted minimum-norm solve did not stabilize up to {exc.dps} digits: X B X^T is singular "
            "(linearly dependent rows of the design?)"
        ) from None
    return _finish(hi, L0f, dps, wp)


def _decades(wf) -> int:
    hi, lo = max(wf), min(wf)
    return int(ceil(log10(float(hi / lo)))) if hi != lo else 0


def _solve(Kint, Pi, wi, dx, scale: int, r, wp: int):
    ctx = context(wp)
    N = Kint.shape[0]
    K = ctx.matrix(N, N)
    for a in range(N):
        for b in range(N):
            K[a, b] = ctx.mpf(int(Kint[a, b]))
    n_y = r.shape[1]
    alphas, dLs = [], []
    for a in range(n_y):
        rhs = ctx.matrix([ctx.mpf(v.numerator) / v.denominator for v in r[:, a]])
        try:
            al = ctx.lu_solve(K, rhs)  # the LU factors are cached on K across columns
        except ZeroDivisionError:
            raise ValueError("X B X^T is singular: the fitted outputs are linearly dependent") from None
        al = np.array([al[k] for k in range(N)], dtype=object)
        proj = Pi.T.dot(al)  # (p,) mpf
        dL = np.array([ctx.mpf(int(wi[k])) * int(dx) * proj[k] for k in range(len(wi))], dtype=object)
        alphas.append(al * int(scale))
        dLs.append(dL)
    return np.stack(dLs, axis=1), np.stack(alphas, axis=1), ctx


def _finish(cur, L0f, dps: int, wp: int) -> MinNormSolution:
    dL, alpha, wctx = cur
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
    return MinNormSolution(L, al, dps, wp)


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
