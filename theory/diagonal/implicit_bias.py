"""The implicit bias of gradient descent with a lag kernel: the ``Theta^-1``-metric minimum-norm interpolant.

A linear model trained by gradient descent in the kernel regime with lag kernel
``Theta`` (T x T; :mod:`theory.diagonal.lru`, :mod:`theory.diagonal.s4d`, or
``diag(beta)`` of a dense RNN) moves its impulse response ``L`` from ``L0`` to

    L_inf = argmin_L (L - L0)^T Theta^-1 (L - L0)  subject to  X L = y
          = L0 + Theta X^T (X Theta X^T)^-1 (y - X L0),

the form valid for singular ``Theta`` too (GD moves ``L`` only inside the range
of ``Theta``).  This reduces to docs/theory.md, section "Training in the kernel
regime" for ``Theta = diag(beta)``; the solve is :func:`theory.bias.min_norm_solve`,
with ``Theta`` as the metric.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, List, Optional, Sequence

import numpy as np

from theory.bias import min_norm_solve
from theory.kernel import to_fraction
from theory.precision import UnstableSolve, check_dps, exact

__all__ = ["implicit_bias_solution"]


def _exact(v: Any, name: str) -> Fraction:
    """The exact value of an input entry: a decimal string as written, any other number as stored."""
    try:
        return Fraction(v) if isinstance(v, str) else to_fraction(v)
    except (TypeError, ValueError, OverflowError, ZeroDivisionError) as exc:
        raise ValueError(f"{name} contains a value that is not a finite number ({v!r})") from exc


def _array(rows: Sequence[Sequence[Any]], name: str) -> np.ndarray:
    out = np.empty((len(rows), len(rows[0]) if len(rows) else 0), dtype=object)
    for i, row in enumerate(rows):
        for j, v in enumerate(row):
            out[i, j] = _exact(v, name)
    return out


def implicit_bias_solution(kernel: Sequence[Sequence[Any]], X: Sequence[Sequence[Any]], y: Sequence[Any],
                           L0: Optional[Sequence[Any]] = None, *, dps: int = 30) -> List[Any]:
    """Gradient-descent limit ``L_inf = L0 + Theta X^T (X Theta X^T)^-1 (y - X L0)`` of a linear
    model with lag kernel ``kernel`` = ``Theta`` (T x T); see the module docstring.

    ``X`` (N x T) maps the impulse response to the fitted outputs (rows: lagged inputs),
    ``y`` (N), ``L0`` (T, default 0).  Entries may be mpmath numbers, decimal strings,
    Fractions, ints or floats, each taken exactly.  ``X Theta X^T`` is formed exactly and
    solved at rising working precision until two solves agree to ``dps + 2`` digits entry by
    entry, entries below ``10^-(dps + 2)`` times the largest correction held to that absolute
    level (:func:`theory.bias.min_norm_solve`).  Returns a list of ``T`` mpmath numbers of the
    last working precision (accurate to ``dps`` digits).  Raises ``ValueError`` if
    ``X Theta X^T`` is singular at the working precision.
    """
    dps = check_dps(dps)
    T = len(kernel)
    if any(len(row) != T for row in kernel):
        raise ValueError("the lag kernel must be a square T x T array")
    N = len(X)
    if N < 1 or any(len(row) != T for row in X):
        raise ValueError(f"X must be N x T with T = {T}")
    if len(y) != N:
        raise ValueError(f"y must have N = {N} entries, got {len(y)}")
    if L0 is not None and len(L0) != T:
        raise ValueError(f"L0 must have T = {T} entries")
    theta = _array(kernel, "the lag kernel")
    Xf = _array(X, "X")
    yf = _array([[v] for v in y], "y")
    l0 = [_exact(v, "L0") for v in L0] if L0 is not None else [Fraction(0)] * T
    r = yf - Xf.dot(np.array([[v] for v in l0], dtype=object))
    try:
        corr = min_norm_solve(Xf, theta, r, start_dps=dps + 20, agree_digits=dps + 2, floor_digits=dps + 2,
                              max_dps=dps + 5000)
    except ZeroDivisionError:
        raise ValueError("X Theta X^T is singular: the data cannot be fitted in the kernel's range") from None
    except UnstableSolve:
        raise ValueError("the Theta^-1-metric solve did not stabilize: X Theta X^T is (numerically) singular") from None
    ctx = corr.ctx
    return [+(exact(ctx, l0[i]) + corr.delta[i, 0]) for i in range(T)]
