"""Empirical NTKs by automatic differentiation (``torch.func``), for any parametrized function.

The only module of the project that uses ``torch.func``.

**The kernel.**  For outputs ``y = f(theta, X)`` of a batch ``X`` under parameters
``theta = (theta_p)_p`` (a dict of tensors) and ``y' = f(theta, X')``, the empirical NTK is

    K = J J'^T,   K[r, r'] = sum_p sum_k  dy_r/dtheta_(p,k)  dy'_r'/dtheta_(p,k),

``J = dy/dtheta`` (one row per entry ``r`` of ``y``, one column per entry of the
parameters), of shape ``y.shape + y'.shape``.  Two strategies (neural-tangents'
"Jacobian contraction" and "NTK-vector products") compute the same ``K``:

* ``"jacobian"``: ``J`` and ``J'`` by reverse mode, then ``K = sum_p J_p J'_p^T``.
  Memory ``(R + R') P`` floats for the Jacobians (``R``, ``R'`` the entries of ``y``
  and ``y'``, ``P`` the parameters; ``R'`` is not counted when ``X' = X``).
* ``"products"``: column ``r'`` of ``K`` is ``J (J'^T e_r')``: a vector-Jacobian
  product with the one-hot cotangent ``e_r'`` gives ``J'^T e_r'`` (a vector in
  parameter space), a Jacobian-vector product along it gives the column.
  Memory ``O(P)`` per column, time ``R'`` vjp+jvp pairs.
* ``"auto"``: ``"jacobian"`` when its Jacobians fit in ``max_jacobian_bytes``,
  else ``"products"`` (:func:`choose_method`).

When ``f`` acts on each example separately (``y[b] = f1(theta, X[b])``) the Jacobian
of ``y`` is block-wise: ``per_example=True`` takes ``f1`` and differentiates it one
example at a time (``vmap`` over the batch), ``B`` times fewer operations than
differentiating the batch.

**The linear RNN.**  The ``"jacobian"`` and ``"products"`` methods of
:func:`verify.engine.ntk.empirical_ntk` (:func:`jacobian_ntk`,
:func:`ntk_vector_products_ntk`) are this kernel for the plain forward recurrence of one
sequence ``x (T, n_x)`` (docs/theory.md, section 'Model and conventions')

    conv1:  h_t = W h_(t-1) + F x_t,   y_t = C h_t + D x_t     (h_(-1) = 0)
    conv2:  h_(t+1) = W h_t + F x_t,   y_t = C h_t + D x_t     (h_0 = 0)

an independent route to the kernel of the lag Gram (no Krylov sequences here).  Its
NTK is ``K = J~ J~'^T`` with ``J~`` the Jacobian of the outputs with respect to the
*tilde* variables of ``spec.metric``.  Every metric writes each group as a linear map of
its tilde, ``G = r_G G~``, so the NTK in the tildes is ``sum_G s_G <dy/dG, dy'/dG>``
with ``s_G = r_G^2 lr_G`` (``lr_G`` the group's learning-rate multiplier).  For a group
of fan-in ``k`` (its number of columns):

    ntk:       r_G = sigma_G / sqrt k
    variance:  r_G = 1 / sqrt k
    standard:  r_G = 1 / sqrt n        (raw gradients, the NTK divided by the width n)

(written here from the definitions, independently of :func:`verify.engine.ntk.group_scales`,
which this route checks).  The parameters are displacements ``delta_G`` around the
network's weights, ``G(delta) = G + sqrt(s_G) delta_G`` at ``delta = 0``, so
``dy/d delta_G = sqrt(s_G) dy/dG`` and the plain Euclidean kernel ``J J'^T`` of the
deltas is the metric's NTK, learning rates included.  Frozen groups (``s_G = 0``) are
not parameters.

torch is an optional dependency (``pip install "rnn-implicit-bias[torch]"``), imported
when a kernel is computed.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from theory.spec import RNNSpec, SpecError
from verify.engine.backend import to_numpy
from verify.engine.rnn import LinearRNN, check_batch

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "METHODS",
    "Params",
    "Apply",
    "jacobian_bytes",
    "choose_method",
    "empirical_ntk",
    "jacobian_ntk",
    "ntk_vector_products_ntk",
]

#: The strategies of :func:`empirical_ntk`: ``"auto"`` picks one of the other two.
METHODS = ("auto", "jacobian", "products")

#: Parameters: named tensors (the differentiated variables).
Params = Mapping[str, "Tensor"]
#: ``apply(params, X) -> y``: a batch (or, with ``per_example=True``, one example) to its outputs.
Apply = Callable[[Dict[str, "Tensor"], "Tensor"], "Tensor"]


def _torch() -> Any:
    try:
        import torch
        import torch.func  # the submodule, used as torch.func.*
    except ImportError:
        raise ImportError("verify.engine.autodiff needs torch (pip install 'rnn-implicit-bias[torch]')") from None
    return torch


# --------------------------------------------------------------------------- the generic kernel
def jacobian_bytes(params: Params, rows: int, cols: int = 0) -> int:
    """Bytes of the Jacobians of the ``"jacobian"`` strategy: ``(rows + cols)`` times the bytes of
    the parameters (``rows``, ``cols``: the entries of ``y`` and ``y'``; ``cols = 0`` when ``X' = X``)."""
    return (int(rows) + int(cols)) * sum(int(v.numel()) * int(v.element_size()) for v in params.values())


def choose_method(method: str, params: Params, rows: int, cols: int = 0, *,
                  max_jacobian_bytes: int = 1 << 30) -> str:
    """The strategy that :func:`empirical_ntk` runs for ``method``: ``method`` itself, or for
    ``"auto"`` ``"jacobian"`` when :func:`jacobian_bytes` is at most ``max_jacobian_bytes``, else
    ``"products"``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if method != "auto":
        return method
    return "jacobian" if jacobian_bytes(params, rows, cols) <= max_jacobian_bytes else "products"


def empirical_ntk(
    params: Params,
    apply: Apply,
    X: Tensor,
    Xp: Optional[Tensor] = None,
    *,
    method: str = "auto",
    max_jacobian_bytes: int = 1 << 30,
    chunk: int = 1,
    per_example: bool = False,
) -> Tensor:
    """Empirical NTK ``K = J J'^T`` of ``apply`` at ``params`` on ``X`` and ``Xp`` (default ``X``).

    ``params``: named tensors, the differentiated variables; ``apply(params, X) -> y``.
    With ``per_example=True``, ``apply`` maps one example ``X[b]`` to its outputs ``y[b]``
    and is applied to every example of the batch (module docstring).  ``method``: one of
    :data:`METHODS`; ``chunk``: columns per vmapped NTK-vector product (``"products"``;
    1 = one column at a time, memory ``O(P)``).  Returns a tensor of shape
    ``y.shape + y'.shape`` on the parameters' device, without autograd history.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    torch = _torch()
    theta = dict(params)
    same = Xp is None or Xp is X
    Xq = X if Xp is None else Xp
    batch = torch.func.vmap(apply, in_dims=(None, 0)) if per_example else apply

    def f(p: Dict[str, Tensor]) -> Tensor:
        return batch(p, X)

    fp = f if same else (lambda p: batch(p, Xq))
    with torch.no_grad():
        if method == "auto" or not theta:
            y = f(theta)
            yp = y if same else fp(theta)
            if not theta:
                return torch.zeros(tuple(y.shape) + tuple(yp.shape), dtype=y.dtype, device=y.device)
            method = choose_method(method, theta, y.numel(), 0 if same else yp.numel(),
                                   max_jacobian_bytes=max_jacobian_bytes)
        if method == "jacobian":
            return _contract_jacobians(torch, theta, apply, X, Xq, same, per_example)
        return _ntk_vector_products(torch, theta, f, fp, chunk)


def _contract_jacobians(torch: Any, theta: Dict[str, Tensor], apply: Apply, X: Tensor,
                        Xq: Tensor, same: bool, per_example: bool) -> Tensor:
    """``K = sum_p J_p J'_p^T`` from the dense Jacobians."""
    if per_example:
        jac = torch.func.vmap(torch.func.jacrev(apply), in_dims=(None, 0))
        J = jac(theta, X)
        Jp = J if same else jac(theta, Xq)
    else:
        J = torch.func.jacrev(lambda p: apply(p, X))(theta)
        Jp = J if same else torch.func.jacrev(lambda p: apply(p, Xq))(theta)
    K: Any = None
    for k, v in theta.items():
        a, c = J[k], Jp[k]
        yshape, ypshape = a.shape[: a.ndim - v.ndim], c.shape[: c.ndim - v.ndim]
        term = a.reshape(math.prod(yshape), -1) @ c.reshape(math.prod(ypshape), -1).T
        K = term if K is None else K + term
    return K.reshape(tuple(yshape) + tuple(ypshape))


def _ntk_vector_products(torch: Any, theta: Dict[str, Tensor], f: Callable, fp: Callable,
                         chunk: int) -> Tensor:
    """Column ``r'`` of ``K`` is ``J (J'^T e_r')``: one vjp of ``y'``, one jvp of ``y``."""
    yp, vjp_fn = torch.func.vjp(fp, theta)
    cols = yp.numel()

    def column(e: Tensor) -> Tensor:
        (v,) = vjp_fn(e)
        _, out = torch.func.jvp(f, (theta,), (v,))
        return out

    many = torch.func.vmap(column) if chunk > 1 else None
    eye = torch.eye(cols, dtype=yp.dtype, device=yp.device)
    K: Any = None
    for start in range(0, cols, chunk):
        stop = min(start + chunk, cols)
        if many is None:
            col = column(eye[start].reshape(yp.shape))
            if K is None:
                K = torch.empty(tuple(col.shape) + (cols,), dtype=col.dtype, device=col.device)
            K[..., start] = col
        else:
            block = torch.movedim(many(eye[start:stop].reshape((stop - start,) + tuple(yp.shape))), 0, -1)
            if K is None:
                K = torch.empty(tuple(block.shape[:-1]) + (cols,), dtype=block.dtype, device=block.device)
            K[..., start:stop] = block
    return K.reshape(tuple(K.shape[:-1]) + tuple(yp.shape))


# --------------------------------------------------------------------------- the linear RNN
def _rnn_problem(rnn: LinearRNN, spec: RNNSpec, X: Any, Xp: Any,
                 device: Optional[str]) -> Tuple[Dict[str, Tensor], Apply, Tensor,
                                                 Optional[Tensor]]:
    """The zero deltas (parameters), the one-sequence forward pass and the batches, as torch float64."""
    torch = _torch()
    rnn.check(spec)
    Xn = np.asarray(to_numpy(X), dtype=np.float64)
    Xpn = Xn if Xp is None else np.asarray(to_numpy(Xp), dtype=np.float64)
    check_batch(Xn, rnn.n_x)
    check_batch(Xpn, rnn.n_x, "X'")
    dev = torch.device("cpu" if device is None else device)

    def t(a: Any) -> Tensor:
        return torch.as_tensor(np.asarray(to_numpy(a), dtype=np.float64), dtype=torch.float64, device=dev)

    base = {"W": t(rnn.W), "F": t(rnn.F), "C": t(rnn.C)}
    if rnn.D is not None:
        base["D"] = t(rnn.D)
    roots = {g: r for g, r in _tilde_roots(spec, base).items() if r > 0}
    deltas = {g: torch.zeros_like(base[g]) for g in roots}
    return deltas, _forward_fn(base, roots, spec.convention), t(Xn), None if Xp is None else t(Xpn)


def _tilde_roots(spec: RNNSpec, base: Mapping[str, Tensor]) -> Dict[str, float]:
    """``sqrt(s_G) = sqrt(lr_G) r_G`` of every group, from the metric's definition (module docstring)."""
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


def _forward_fn(base: Mapping[str, Tensor], roots: Mapping[str, float], convention: str) -> Apply:
    """``f(deltas, x) -> y (T, n_y)`` for one sequence, weights ``G + sqrt(s_G) delta_G``."""
    if convention not in ("conv1", "conv2"):
        raise SpecError(f"convention must be conv1 or conv2, got {convention!r}")

    def weights(deltas: Mapping[str, Tensor]) -> Dict[str, Tensor]:
        return {g: base[g] + roots[g] * deltas[g] if g in deltas else base[g] for g in base}

    def f(deltas: Dict[str, Tensor], x: Tensor) -> Tensor:
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


def jacobian_ntk(rnn: LinearRNN, spec: RNNSpec, X: Any, Xp: Any = None, *,
                 device: Optional[str] = None) -> np.ndarray:
    """The linear RNN's NTK ``(B, T, n_y, B', T', n_y)`` by Jacobian contraction (numpy float64).

    :func:`empirical_ntk` (``method="jacobian"``, one sequence at a time) of the recurrence in
    the metric's deltas (module docstring), on ``device`` (default the CPU).  Memory
    ``~ 8 (B T + B' T') n_y (n^2 + n n_x + n n_y)`` bytes for the Jacobians alone.
    """
    deltas, f, Xt, Xpt = _rnn_problem(rnn, spec, X, Xp, device)
    K = empirical_ntk(deltas, f, Xt, Xpt, method="jacobian", per_example=True)
    return K.cpu().numpy()


def ntk_vector_products_ntk(rnn: LinearRNN, spec: RNNSpec, X: Any, Xp: Any = None, *,
                            device: Optional[str] = None, chunk: int = 1) -> np.ndarray:
    """The linear RNN's NTK ``(B, T, n_y, B', T', n_y)`` by NTK-vector products (numpy float64).

    :func:`empirical_ntk` (``method="products"``) of the recurrence in the metric's deltas
    (module docstring), on ``device`` (default the CPU), ``chunk`` columns at once.
    """
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk!r}")
    deltas, f, Xt, Xpt = _rnn_problem(rnn, spec, X, Xp, device)
    K = empirical_ntk(deltas, f, Xt, Xpt, method="products", chunk=chunk, per_example=True)
    return K.cpu().numpy()
