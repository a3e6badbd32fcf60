"""Reference empirical NTK: per-output gradients by backpropagation through time.

The ``"bptt"`` method of :func:`verify.engine.ntk.empirical_ntk` (call it through it).
Independent of the lag-Gram path in :mod:`verify.engine.ntk`: for every sequence ``b``,
time ``t`` and output coordinate ``a`` it forms the full gradients of
``y_t[a]`` with respect to W, F, C and D by running the recurrence backwards,
then contracts them with the metric's group scales.  numpy only, cost
``O(B T^2 n_y n^2)`` time and ``O(B T n_y n^2)`` memory: for small widths.

conv1 backward pass for ``y_t = C h_t + D x_t``, ``h_s = W h_(s-1) + F x_s``:
``delta_t = c_a``; for ``s = t..0``: ``dW += delta_s h_(s-1)^T``,
``dF += delta_s x_s^T``, ``delta_(s-1) = W^T delta_s``.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from theory.spec import RNNSpec, SpecError
from verify.engine.backend import to_numpy
from verify.engine.rnn import LinearRNN, check_batch

__all__ = ["output_gradients", "reference_ntk"]


def _states(W, F, x, convention):
    """Hidden states used by the backward pass.

    conv1: ``H[s] = h_s`` for s = 0..T-1 (``h_(-1) = 0``).
    conv2: ``H[s] = h_s`` for s = 0..T-1 with ``h_0 = 0``.
    """
    T = x.shape[0]
    n = W.shape[0]
    H = np.zeros((T, n))
    h = np.zeros(n)
    for s in range(T):
        if convention == "conv1":
            h = W @ h + F @ x[s]
            H[s] = h
        else:
            H[s] = h
            h = W @ h + F @ x[s]
    return H


def output_gradients(rnn: LinearRNN, X, convention: str) -> Dict[str, np.ndarray]:
    """Gradients of every output: ``{"W": (B, T, n_y, n, n), "F": (B, T, n_y, n, n_x),
    "C": (B, T, n_y, n_y, n), "D": (B, T, n_y, n_y, n_x)}``."""
    W, F, C = (to_numpy(a) for a in (rnn.W, rnn.F, rnn.C))
    X = np.asarray(to_numpy(X), dtype=np.float64)
    check_batch(X, rnn.n_x)
    B, T, nx = X.shape
    n, ny = W.shape[0], C.shape[0]
    gW = np.zeros((B, T, ny, n, n))
    gF = np.zeros((B, T, ny, n, nx))
    gC = np.zeros((B, T, ny, ny, n))
    gD = np.zeros((B, T, ny, ny, nx))
    for b in range(B):
        x = X[b]
        H = _states(W, F, x, convention)
        for t in range(T):
            for a in range(ny):
                gC[b, t, a, a, :] = H[t]
                gD[b, t, a, a, :] = x[t]
                delta = C[a].copy()
                if convention == "conv1":
                    for s in range(t, -1, -1):
                        if s > 0:
                            gW[b, t, a] += np.outer(delta, H[s - 1])
                        gF[b, t, a] += np.outer(delta, x[s])
                        delta = W.T @ delta
                else:  # h_t = W h_(t-1) + F x_(t-1): delta is dy/dh_(s+1)
                    for s in range(t - 1, -1, -1):
                        gW[b, t, a] += np.outer(delta, H[s])
                        gF[b, t, a] += np.outer(delta, x[s])
                        delta = W.T @ delta
    return {"W": gW, "F": gF, "C": gC, "D": gD}


def metric_factors(rnn: LinearRNN, spec: RNNSpec) -> Dict[str, float]:
    """Factor of each group's raw gradient Gram in the metric's NTK, from the metric's definition.

    Written here on purpose, not taken from :func:`verify.engine.ntk.group_scales` (which this
    reference checks).  A group ``G`` of fan-in ``k`` (its number of columns) is, in the
    tilde variables: ntk: ``G = (s_G / sqrt k) G~``; variance: ``G = G~ / sqrt k``; so
    ``dy/dG~ = r_G dy/dG`` and the factor is ``r_G^2 = s_G^2 / k`` or ``1 / k``.  Standard:
    the raw gradients, with the NTK divided by the width ``n``: ``1 / n``.  Each factor is
    multiplied by the group's learning rate, in exact rationals, and rounded once.
    """
    from fractions import Fraction


    n = int(np.shape(to_numpy(rnn.W))[0])
    out = {}
    for g, G in (("W", rnn.W), ("F", rnn.F), ("C", rnn.C), ("D", rnn.D)):
        if G is None:
            continue
        k = int(np.shape(to_numpy(G))[1])
        sigma = getattr(spec, "sigma_" + g.lower())
        factor = {"ntk": Fraction(sigma) ** 2 / k, "variance": Fraction(1, k)}.get(spec.metric, Fraction(1, n))
        try:
            out[g] = float(factor * getattr(spec, "lr_" + g.lower()))
        except OverflowError:
            raise SpecError(f"the NTK factor of group {g} overflows float64") from None
    return out


def reference_ntk(rnn: LinearRNN, spec: RNNSpec, X, Xp=None, *, shares: bool = False):
    """NTK ``(B, T, n_y, B', T', n_y)`` from explicit BPTT gradients.

    With ``shares=True`` returns ``(total, {group: share})``.
    """
    rnn.check(spec)
    Xp = X if Xp is None else Xp
    g1 = output_gradients(rnn, X, spec.convention)
    g2 = g1 if Xp is X else output_gradients(rnn, Xp, spec.convention)
    scales = metric_factors(rnn, spec)
    B, T, ny = g1["W"].shape[:3]
    Bp, Tp = g2["W"].shape[:2]
    out = {}
    for g, s in scales.items():
        a = g1[g].reshape(B * T * ny, -1)
        c = g2[g].reshape(Bp * Tp * ny, -1)
        out[g] = (s * (a @ c.T)).reshape(B, T, ny, Bp, Tp, ny)
    total = sum(out.values())
    return (total, out) if shares else total
