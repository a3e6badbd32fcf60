"""Empirical NTK of a linear RNN by automatic differentiation (``torch.func``).

The ``"jacobian"`` and ``"ntvp"`` methods of :func:`verify.engine.ntk.empirical_ntk`
(call them through it): an independent route to the same kernel as the lag
Gram, and the baseline the benchmarks compare it against.  Nothing here
uses the lag Gram or the Krylov sequences: ``f(params, x)`` is the plain
forward recurrence of one sequence ``x (T, n_x)`` (docs/theory.md, section
'Model and conventions')

    conv1:  h_t = W h_(t-1) + F x_t,   y_t = C h_t + D x_t     (h_(-1) = 0)
    conv2:  h_(t+1) = W h_t + F x_t,   y_t = C h_t + D x_t     (h_0 = 0)

and the NTK is ``K = J~ J~'^T`` with ``J~`` the Jacobian of the outputs with
respect to the *tilde* variables of ``spec.metric``.

Metric scaling.  Every metric writes each group as a linear map of its tilde,
``G = r_G G~``, and the NTK in the tildes is ``sum_G r_G^2 <dy/dG, dy'/dG>``
times the group's learning-rate multiplier: the factor ``s_G = r_G^2 * lr_G`` (for the
"standard" metric, ``1/n``: the NTK divided by n), which :func:`_tilde_roots` writes again
from the definitions, independently of :func:`verify.engine.ntk.group_scales` that it checks.
Here each group is re-parametrized around the network's current value as ``G(delta) = G + sqrt(s_G) * delta_G`` and
differentiated at ``delta = 0``, so ``dy/d delta_G = sqrt(s_G) dy/dG`` and the
plain Euclidean Gram of the delta-Jacobians is the metric's NTK, learning
rates included.  Frozen groups (``s_G = 0``) are left out of the parameters.

Two strategies, as in neural-tangents:

* :func:`jacobian_ntk` -- "jacobian contraction": ``vmap(jacrev(f))`` over the
  sequences gives the dense Jacobians (``B T n_y`` rows of ``n^2 + ...``
  columns, ``8 B T n_y n^2`` bytes), then one matrix product per group.
* :func:`ntk_vector_products_ntk` -- "NTK-vector products": column by column,
  a ``vjp`` of the second batch's outputs with a one-hot cotangent gives the
  parameter-space vector ``J~'^T e``, a ``jvp`` of the first batch along it
  gives the column ``J~ J~'^T e``.  Memory ``O(n^2)`` per column, time
  ``B' T' n_y`` vjp+jvp pairs.

torch is an optional dependency (``pip install "rnn-implicit-bias[torch]"``);
it is imported inside the functions.  Computation is in float64 on the CPU
unless ``device`` says otherwise; results are numpy float64 arrays of shape
``(B, T, n_y, B', T', n_y)``.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import numpy as np

from theory.spec import RNNSpec, SpecError
from verify.engine.backend import to_numpy
from verify.engine.rnn import LinearRNN, check_batch

__all__ = ["jacobian_ntk", "ntk_vector_products_ntk"]


def _torch():
    try:
        import torch
        import torch.func  # noqa: F401
    except ImportError:
        raise ImportError("verify.engine.autodiff needs torch (pip install 'rnn-implicit-bias[torch]')") from None
    return torch


def _setup(rnn: LinearRNN, spec: RNNSpec, X, Xp, device):
    """Base weights, the scale roots, the zero deltas and the two batches, all as torch float64."""
    torch = _torch()
    rnn.check(spec)
    X = np.asarray(to_numpy(X), dtype=np.float64)
    Xp = X if Xp is None else np.asarray(to_numpy(Xp), dtype=np.float64)
    check_batch(X, rnn.n_x)
    check_batch(Xp, rnn.n_x, "X'")
    dev = torch.device("cpu" if device is None else device)

    def t(a):
        return torch.as_tensor(np.asarray(to_numpy(a), dtype=np.float64), dtype=torch.float64, device=dev)

    base = {"W": t(rnn.W), "F": t(rnn.F), "C": t(rnn.C)}
    if rnn.D is not None:
        base["D"] = t(rnn.D)
    roots = {g: r for g, r in _tilde_roots(spec, base).items() if r > 0}
    deltas = {g: torch.zeros_like(base[g]) for g in roots}
    return torch, base, roots, deltas, t(X), t(Xp)


def _tilde_roots(spec: RNNSpec, base: Dict) -> Dict[str, float]:
    """``sqrt(lr_G) r_G`` with ``G = r_G G~``, from the definition of each metric (deliberately not
    :func:`verify.engine.ntk.group_scales`, which this module cross-checks): for a group of fan-in ``k``
    (its number of columns), ntk: ``r_G = s_G / sqrt k``; variance: ``r_G = 1 / sqrt k``;
    standard (raw gradients, NTK divided by the width ``n``): ``1 / sqrt n``."""
    n = int(base["W"].shape[0])
    out = {}
    for g, G in base.items():
        k = int(G.shape[1])
        if spec.metric == "ntk":
            r = float(getattr(spec, "sigma_" + g.lower())) / math.sqrt(k)
        elif spec.metric == "variance":
            r = 1.0 / math.sqrt(k)
        else:
            r = 1.0 / math.sqrt(n)
        out[g] = r * math.sqrt(float(getattr(spec, "lr_" + g.lower())))
    return out


def _forward_fn(base: Dict, roots: Dict[str, float], convention: str):
    """``f(deltas, x) -> y (T, n_y)`` for one sequence, weights ``G + sqrt(s_G) delta_G``."""
    if convention not in ("conv1", "conv2"):
        raise SpecError(f"convention must be conv1 or conv2, got {convention!r}")

    def weights(deltas):
        return {g: base[g] + roots[g] * deltas[g] if g in deltas else base[g] for g in base}

    def f(deltas, x):
        import torch

        p = weights(deltas)
        W, F, C = p["W"], p["F"], p["C"]
        T = x.shape[0]
        h = torch.zeros(W.shape[0], dtype=W.dtype, device=W.device)
        ys = []
        for s in range(T):
            if convention == "conv1":
                h = W @ h + F @ x[s]
                ys.append(C @ h)
            else:
                ys.append(C @ h)
                h = W @ h + F @ x[s]
        y = torch.stack(ys, dim=0)
        if "D" in p:
            y = y + x @ p["D"].T
        return y

    return f


def _zero_ntk(X, Xp, ny: int) -> np.ndarray:
    B, T = X.shape[:2]
    Bp, Tp = Xp.shape[:2]
    return np.zeros((B, T, ny, Bp, Tp, ny))


def jacobian_ntk(rnn: LinearRNN, spec: RNNSpec, X, Xp=None, *, device: Optional[str] = None) -> np.ndarray:
    """Empirical NTK ``(B, T, n_y, B', T', n_y)`` by jacobian contraction.

    ``J_b = jacrev(f)(0, x_b)`` for every sequence (``vmap`` over the batch),
    then ``K = sum_G J_G J'_G^T``.  Memory ``~ 8 (B T + B' T') n_y (n^2 + n n_x
    + n n_y) bytes`` for the Jacobians alone.
    """
    torch, base, roots, deltas, Xt, Xpt = _setup(rnn, spec, X, Xp, device)
    ny = rnn.n_y
    if not deltas:
        return _zero_ntk(Xt, Xpt, ny)
    f = _forward_fn(base, roots, spec.convention)
    jac = torch.func.vmap(torch.func.jacrev(f), in_dims=(None, 0))
    with torch.no_grad():
        J = jac(deltas, Xt)  # {g: (B, T, n_y, *shape_g)}
        Jp = J if Xp is None else jac(deltas, Xpt)
        B, T = Xt.shape[:2]
        Bp, Tp = Xpt.shape[:2]
        K: Any = None
        for g in deltas:
            a = J[g].reshape(B * T * ny, -1)
            c = Jp[g].reshape(Bp * Tp * ny, -1)
            term = a @ c.T
            K = term if K is None else K + term
    return K.reshape(B, T, ny, Bp, Tp, ny).cpu().numpy()


def ntk_vector_products_ntk(
    rnn: LinearRNN,
    spec: RNNSpec,
    X,
    Xp=None,
    *,
    device: Optional[str] = None,
    chunk: int = 1,
) -> np.ndarray:
    """Empirical NTK ``(B, T, n_y, B', T', n_y)`` by NTK-vector products.

    Column ``(b', t', c)`` is ``J~ (J~'^T e)``: one ``vjp`` of the second
    batch's outputs with the one-hot cotangent ``e``, then one ``jvp`` of the
    first batch along the result.  ``chunk`` columns are done at once with
    ``vmap`` (1 = strictly one column at a time, memory ``O(n^2)``).
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    torch, base, roots, deltas, Xt, Xpt = _setup(rnn, spec, X, Xp, device)
    ny = rnn.n_y
    if not deltas:
        return _zero_ntk(Xt, Xpt, ny)
    f = _forward_fn(base, roots, spec.convention)
    batched = torch.func.vmap(f, in_dims=(None, 0))

    def f_x(d):
        return batched(d, Xt)

    def f_xp(d):
        return batched(d, Xpt)

    B, T = Xt.shape[:2]
    Bp, Tp = Xpt.shape[:2]
    cols = Bp * Tp * ny
    _, vjp_fn = torch.func.vjp(f_xp, deltas)

    def column(e):
        (v,) = vjp_fn(e)
        _, out = torch.func.jvp(f_x, (deltas,), (v,))
        return out

    many = torch.func.vmap(column) if chunk > 1 else None
    K = torch.empty((B, T, ny, cols), dtype=torch.float64, device=Xt.device)
    eye = torch.eye(cols, dtype=torch.float64, device=Xt.device)
    with torch.no_grad():
        for start in range(0, cols, chunk):
            stop = min(start + chunk, cols)
            if many is None:
                K[..., start] = column(eye[start].reshape(Bp, Tp, ny))
            else:
                E = eye[start:stop].reshape(stop - start, Bp, Tp, ny)
                K[..., start:stop] = torch.movedim(many(E), 0, -1)
    return K.reshape(B, T, ny, Bp, Tp, ny).cpu().numpy()
