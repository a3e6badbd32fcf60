"""Empirical NTK of a finite-width linear RNN through its lag Gram.

Since ``dy_t/dtheta = sum_l (dL_l/dtheta) x_(t-l)``, the NTK of any batch is a
contraction of the *lag Gram* (docs/theory.md, section 'The lag Gram and
its Krylov structure')

    Theta_n[l, a, i, l', b, j] = < dL_l[a, i] / dtheta~ , dL_l'[b, j] / dtheta~ >

with the inputs.  Per Markov parameter ``M_m = C W^m F`` and with the Krylov
sequences ``u^i_m = W^m f_i`` and ``v^a_m = (W^T)^m c_a``:

* C share: ``delta_ab <u^i_m, u^j_m'>``
* F share: ``delta_ij <v^a_m, v^b_m'>``
* W share: ``sum_(k<m, k'<m') <v^a_k, v^b_k'> <u^i_(m-1-k), u^j_(m'-1-k')>``
* D share: ``delta_ab delta_ij`` at lags (0, 0)

each multiplied by the metric's scale of that group (:func:`group_scales`) and
its learning-rate multiplier.  The theorem: ``Theta_n -> diag(beta) (x) I / n_x``.

Written against the array API: numpy, array-api-strict, torch and cupy arrays
all work (the namespace is taken from the network's arrays).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as _device

from theory.spec import RNNSpec, SpecError, short_text
from theory.weights import check_lags, lag_weights
from verify.engine.autodiff import jacobian_ntk, ntk_vector_products_ntk
from verify.engine.float64 import float64_spec
from verify.engine.reference import reference_ntk
from verify.engine.rnn import LinearRNN, check_batch

__all__ = [
    "LagGram",
    "group_scales",
    "krylov",
    "lag_gram",
    "ntk_from_lag_gram",
    "empirical_ntk",
    "NTK_METHODS",
    "NTK_METHOD_ALIASES",
    "limit_lag_gram",
    "lag_weights_float64",
]


@dataclass(frozen=True)
class LagGram:
    """Lag Gram of one network: ``total`` and per-group ``shares``, each of shape
    ``(L, n_y, n_x, L, n_y, n_x)``, lags ``0..L-1`` in the spec's convention."""

    total: Any
    shares: Dict[str, Any]
    spec: RNNSpec
    n: int

    @property
    def lags(self) -> int:
        return int(self.total.shape[0])

    def matrix(self, which: str = "total"):
        """The lag Gram as a square matrix over the index ``(l, a, i)``."""
        arr = self.total if which == "total" else self.shares[which]
        L, ny, nx = arr.shape[:3]
        xp = array_namespace(arr)
        return xp.reshape(arr, (L * ny * nx, L * ny * nx))


def group_scales(spec: RNNSpec, n: int) -> Dict[str, float]:
    """Factor of each group's raw gradient inner product in the metric's NTK.

    The NTK is taken with respect to the tilde variables: ``ntk``: W, F, C, D =
    (s_W/sqrt n) W~, (s_F/sqrt n_x) F~, (s_C/sqrt n) C~, (s_D/sqrt n_x) D~;
    ``variance``: W~/sqrt n, F~/sqrt n_x, C~/sqrt n, D~/sqrt n_x;
    ``standard``: the raw gradients, NTK divided by n.  Learning-rate
    multipliers are included.
    """
    nx = spec.n_x
    if spec.metric == "ntk":
        raw = {
            # x * x, not x ** 2: float64 overflow gives inf (reported below), not OverflowError
            "W": spec.float64("sigma_w") * spec.float64("sigma_w") / n,
            "F": spec.float64("sigma_f") * spec.float64("sigma_f") / nx,
            "C": spec.float64("sigma_c") * spec.float64("sigma_c") / n,
            "D": spec.float64("sigma_d") * spec.float64("sigma_d") / nx,
        }
    elif spec.metric == "variance":
        raw = {"W": 1.0 / n, "F": 1.0 / nx, "C": 1.0 / n, "D": 1.0 / nx}
    else:
        raw = {g: 1.0 / n for g in "WFCD"}
    out = {g: raw[g] * spec.float64("lr_" + g.lower()) for g in spec.groups}
    bad = [g for g, v in out.items() if not np.isfinite(v)]
    if bad:
        given = ", ".join(f"sigma_{g.lower()} = {short_text(spec.sigma(g))}" for g in bad)
        raise SpecError(f"the NTK scale of group(s) {', '.join(bad)} overflows float64 at width {n} "
                        f"(s_g^2 lr_g / fan-in with {given})")
    return out


def krylov(rnn: LinearRNN, steps: int) -> Tuple[object, object]:
    """``U (steps, n_x, n)`` with ``U[m, i] = W^m f_i`` and ``V (steps, n_y, n)`` with ``V[m, a] = (W^T)^m c_a``."""
    if steps < 1:
        raise SpecError(f"steps must be a positive integer, got {steps}")
    xp = rnn.xp
    us, vs = [], []
    u = xp.permute_dims(rnn.F, (1, 0))  # rows f_i
    v = rnn.C  # rows c_a
    WT = xp.permute_dims(rnn.W, (1, 0))
    for m in range(steps):
        us.append(u)
        vs.append(v)
        if m + 1 < steps:
            u = u @ WT  # (W u)^T = u^T W^T
            v = v @ rnn.W  # (W^T v)^T = v^T W
    return xp.stack(us, axis=0), xp.stack(vs, axis=0)


def _grams(K):
    """``G[p, i, q, j] = <K[p, i], K[q, j]>`` for Krylov stacks ``K (M, c, n)``."""
    xp = array_namespace(K)
    M, c, n = K.shape
    flat = xp.reshape(K, (M * c, n))
    return xp.reshape(flat @ xp.permute_dims(flat, (1, 0)), (M, c, M, c))


def _w_share(Gv, Gu, M: int):
    """``S[m, a, i, m', b, j] = sum_(k<m, k'<m') Gv[k, a, k', b] Gu[m-1-k, i, m'-1-k', j]``.

    A truncated 2-D convolution of the two Gram matrices, done exactly (no FFT):
    for each ``k``, ``R_k[p, m'] = sum_q Q[p, q] P[k, m'-1-q]`` is a matrix product
    with a Toeplitz matrix, and ``S[k+1+p, m'] += R_k[p, m']``.
    """
    xp = array_namespace(Gu)
    ny, nx = Gv.shape[1], Gu.shape[1]
    dev, dt = _device(Gu), Gu.dtype
    # P[a, b, k, k'] and Q[i, j, p, q]
    P = xp.permute_dims(Gv, (1, 3, 0, 2))
    Q = xp.permute_dims(Gu, (1, 3, 0, 2))
    # Toeplitz index: Tp_k[q, m'] = P[k, m'-1-q] where m'-1-q >= 0
    q = np.arange(M).reshape(M, 1)
    mp = np.arange(M).reshape(1, M)
    idx = mp - 1 - q
    mask = xp.asarray((idx >= 0).astype(np.float64), dtype=dt, device=dev)
    flat_idx = xp.asarray(np.clip(idx, 0, M - 1).reshape(-1), device=dev)
    S = xp.zeros((ny, ny, nx, nx, M, M), dtype=dt, device=dev)
    for k in range(M - 1):
        row = P[:, :, k, :]  # (ny, ny, M)
        Tk = xp.reshape(xp.take(row, flat_idx, axis=2), (ny, ny, M, M)) * mask  # (a, b, q, m')
        Qs = Q[:, :, : M - 1 - k, :]  # (i, j, p, q)
        R = Qs[None, None, ...] @ Tk[:, :, None, None, ...]  # (a, b, i, j, p, m')
        S[:, :, :, :, k + 1 :, :] = S[:, :, :, :, k + 1 :, :] + R
    # -> (m, a, i, m', b, j)
    return xp.permute_dims(S, (4, 0, 2, 5, 1, 3))


def _to_lags(markov, lags: int, convention: str, zero_like):
    """Place a Markov-indexed share ``(M, ., ., M, ., .)`` on lags 0..lags-1."""
    if convention == "conv1":
        return markov
    xp = array_namespace(markov)
    out = xp.zeros(zero_like, dtype=markov.dtype, device=_device(markov))
    out[1:, :, :, 1:, :, :] = markov
    return out


def lag_gram(rnn: LinearRNN, spec: RNNSpec, lags: int) -> LagGram:
    """Exact empirical lag Gram of ``rnn`` under ``spec``'s metric and convention.

    Cost: ``O((n_x + n_y) L n^2)`` for the Krylov sequences, ``O((n_x+n_y)^2 L n)``
    for their Gram matrices and ``O(n_x^2 n_y^2 L^4)`` for the W share; memory
    ``O(n^2 + L n)``, independent of any batch.
    """
    check_lags(lags)
    rnn.check(spec)
    xp = rnn.xp
    n, nx, ny = rnn.n, rnn.n_x, rnn.n_y
    dt, dev = rnn.W.dtype, _device(rnn.W)
    M = lags if spec.convention == "conv1" else lags - 1
    shape = (lags, ny, nx, lags, ny, nx)
    scales = group_scales(spec, n)
    shares = {}
    if M > 0:
        U, V = krylov(rnn, M)
        Gu, Gv = _grams(U), _grams(V)  # (M, nx, M, nx), (M, ny, M, ny)
        eye_y = xp.eye(ny, dtype=dt, device=dev)
        eye_x = xp.eye(nx, dtype=dt, device=dev)
        # C share: delta_ab <u^i_m, u^j_m'>  -> (m, a, i, m', b, j)
        c_share = eye_y[None, :, None, None, :, None] * Gu[:, None, :, :, None, :]
        f_share = Gv[:, :, None, :, :, None] * eye_x[None, None, :, None, None, :]
        w_share = _w_share(Gv, Gu, M)
        for g, arr in (("C", c_share), ("F", f_share), ("W", w_share)):
            shares[g] = _to_lags(arr * scales[g], lags, spec.convention, shape)
    else:  # conv2 with a single lag: only D reaches lag 0
        for g in ("C", "F", "W"):
            shares[g] = xp.zeros(shape, dtype=dt, device=dev)
    if spec.has_d:
        d = xp.zeros(shape, dtype=dt, device=dev)
        eye = xp.eye(ny * nx, dtype=dt, device=dev)
        d[0, :, :, 0, :, :] = xp.reshape(eye, (ny, nx, ny, nx)) * scales["D"]
        shares["D"] = d
    total = shares["C"] + shares["F"] + shares["W"]
    if "D" in shares:
        total = total + shares["D"]
    return LagGram(total=total, shares=shares, spec=spec, n=n)


def _lagged_inputs(X, lags: int):
    """``Phi[b, t, l, i] = x[b, t-l, i]`` (zero for ``t < l``), shape (B, T, lags, n_x)."""
    xp = array_namespace(X)
    B, T, nx = X.shape
    cols = []
    for l in range(lags):
        if l < T:
            pad = xp.zeros((B, l, nx), dtype=X.dtype, device=_device(X))
            cols.append(xp.concat([pad, X[:, : T - l, :]], axis=1))
        else:
            cols.append(xp.zeros((B, T, nx), dtype=X.dtype, device=_device(X)))
    return xp.stack(cols, axis=2)


def ntk_from_lag_gram(gram, X, Xp=None):
    """``K[b, t, a, b', t', c] = sum Phi[b,t,l,i] Theta[l,a,i,l',c,j] Phi'[b',t',l',j]``.

    ``gram`` is a :class:`LagGram` or an array ``(L, n_y, n_x, L, n_y, n_x)`` with
    ``L >= max(T, T')``.  Returns shape ``(B, T, n_y, B', T', n_y)``.
    """
    arr = gram.total if isinstance(gram, LagGram) else gram
    xp = array_namespace(arr)
    L, ny, nx = arr.shape[:3]
    Xp = X if Xp is None else Xp
    check_batch(X, nx)
    check_batch(Xp, nx, "X'")
    B, T, _ = X.shape
    Bp, Tp, _ = Xp.shape
    if L < max(T, Tp):
        raise SpecError(f"the lag Gram has {L} lags; sequences of length {max(T, Tp)} need at least that many")
    phi = xp.reshape(_lagged_inputs(X, L), (B * T, L * nx))
    phip = xp.reshape(_lagged_inputs(Xp, L), (Bp * Tp, L * nx))
    # Theta -> (a, c, (l, i), (l', j))
    th = xp.reshape(xp.permute_dims(arr, (1, 4, 0, 2, 3, 5)), (ny, ny, L * nx, L * nx))
    K = phi[None, None, ...] @ th @ xp.permute_dims(phip, (1, 0))[None, None, ...]  # (a, c, BT, B'T')
    K = xp.reshape(K, (ny, ny, B, T, Bp, Tp))
    return xp.permute_dims(K, (2, 3, 0, 4, 5, 1))


#: The methods of :func:`empirical_ntk` (neural-tangents' ``implementation=``).
NTK_METHODS = ("structured", "bptt", "jacobian", "products")
#: Other names :func:`empirical_ntk` accepts: ``"ntvp"``, the former name of ``"products"``.
NTK_METHOD_ALIASES = {"ntvp": "products"}
_TORCH_METHODS = ("jacobian", "products")


def empirical_ntk(rnn: LinearRNN, spec: RNNSpec, X, Xp=None, *, method: str = "structured",
                  device: str | None = None, chunk: int = 1, shares: bool = False):
    """Empirical NTK ``K[b, t, a, b', t', c]`` of the batches ``X (B, T, n_x)`` and ``Xp`` (default ``X``).

    Shape ``(B, T, n_y, B', T', n_y)``, under ``spec``'s metric, convention and
    learning rates, by one of :data:`NTK_METHODS` (all compute the same kernel):
    * ``"structured"`` (default): the lag Gram (:func:`lag_gram`) contracted with
      the lagged inputs (:func:`ntk_from_lag_gram`); arrays of the network's
      backend; time ``O((n_x + n_y) L n^2)``, memory ``O(n^2 + L n)``;
    * ``"bptt"``: explicit per-output gradients by backpropagation through time
      (:func:`verify.engine.reference.reference_ntk`, the independent reference); numpy;
      memory ``O(B T n_y n^2)``;
    * ``"jacobian"``: ``torch.func`` ``vmap(jacrev)`` Jacobians, then their
      contraction (:func:`verify.engine.autodiff.jacobian_ntk`); needs torch;
    * ``"products"``: ``torch.func`` NTK-vector products, one ``vjp`` + ``jvp`` per
      column, ``chunk`` columns at once (:func:`verify.engine.autodiff.ntk_vector_products_ntk`);
      needs torch.  ``"ntvp"`` is an alias (:data:`NTK_METHOD_ALIASES`).

    ``device``: the torch device of ``"jacobian"`` and ``"products"`` (default the CPU;
    the other methods compute where the network's arrays are).  ``shares=True``
    (``"structured"`` and ``"bptt"``) returns ``(total, {group: share})``.
    The torch methods return numpy float64 arrays.

    >>> from theory.spec import RNNSpec
    >>> from verify.engine.rnn import init_rnn
    >>> spec = RNNSpec(sigma_w="0.9")
    >>> rnn = init_rnn(spec, 8, seed=0)
    >>> X = np.random.default_rng(1).standard_normal((2, 3, 1))
    >>> K = empirical_ntk(rnn, spec, X)
    >>> K.shape, bool(np.allclose(K, empirical_ntk(rnn, spec, X, method="bptt"), rtol=1e-12, atol=0))
    ((2, 3, 1, 2, 3, 1), True)
    """
    if isinstance(method, str):
        method = NTK_METHOD_ALIASES.get(method, method)
    if method not in NTK_METHODS:
        raise SpecError(f"unknown NTK method {method!r}; choose one of {', '.join(NTK_METHODS)}")
    if device is not None and method not in _TORCH_METHODS:
        raise SpecError(f"device applies to the torch methods ({', '.join(_TORCH_METHODS)}); method {method!r} "
                        "computes where the network's arrays are")
    if chunk != 1 and method != "products":
        raise SpecError(f"chunk applies to method 'products' only, not {method!r}")
    if shares and method in _TORCH_METHODS:
        raise SpecError(f"shares=True needs method 'structured' or 'bptt', not {method!r}")
    if method == "structured":
        return _structured_ntk(rnn, spec, X, Xp, shares)
    if method == "bptt":
        return reference_ntk(rnn, spec, X, Xp, shares=shares)
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise ImportError(f"NTK method {method!r} needs torch (pip install 'rnn-implicit-bias[torch]')")

    if method == "jacobian":
        return jacobian_ntk(rnn, spec, X, Xp, device=device)
    return ntk_vector_products_ntk(rnn, spec, X, Xp, device=device, chunk=chunk)


def _structured_ntk(rnn: LinearRNN, spec: RNNSpec, X, Xp, shares: bool):
    """The ``"structured"`` method: the lag Gram of ``max(T, T')`` lags, contracted with the inputs."""
    Xp = X if Xp is None else Xp
    lags = max(X.shape[1], Xp.shape[1])
    gram = lag_gram(rnn, spec, lags)
    total = ntk_from_lag_gram(gram, X, Xp)
    if not shares:
        return total
    return total, {g: ntk_from_lag_gram(share, X, Xp) for g, share in gram.shares.items()}


def lag_weights_float64(spec: RNNSpec, lags: int, *, dps: int = 30) -> np.ndarray:
    """``beta_0..beta_(L-1)`` from :func:`theory.weights.lag_weights`, rounded to float64.

    Raises :class:`SpecError` when a weight overflows float64 (weights below the
    float64 range round to 0 or a subnormal; their exact values are in ``theory``).
    """

    beta = np.array([float(b) for b in lag_weights(spec, lags, dps=dps)])
    if not np.all(np.isfinite(beta)):
        float64_spec(spec, lags, squares=False)  # raises, naming the field that overflows
        raise SpecError(f"lag weights overflow float64 with {lags} lags; use fewer lags or the exact side (theory)")
    return beta


def limit_lag_gram(spec: RNNSpec, lags: int, *, dps: int = 30) -> np.ndarray:
    """The closed form ``diag(beta) (x) I / n_x`` as a float64 numpy array, shape
    ``(L, n_y, n_x, L, n_y, n_x)``; ``beta`` from :func:`lag_weights_float64`.
    """
    beta = lag_weights_float64(spec, lags, dps=dps)
    eye = np.eye(spec.n_y * spec.n_x).reshape(spec.n_y, spec.n_x, spec.n_y, spec.n_x)
    out = np.zeros((lags, spec.n_y, spec.n_x, lags, spec.n_y, spec.n_x))
    for l in range(lags):
        out[l, :, :, l, :, :] = beta[l] * eye / spec.n_x
    return out
