"""Full-batch gradient descent on a finite-width linear RNN and on the scaled convolutional model.

Loss: ``0.5 * sum_(b, t in times) ||y_t(x_b) - target[b, t]||^2`` (squared loss on
the fitted output times, ``"last"`` by default: one label per sequence).

Gradient descent runs on the metric's tilde variables (docs/theory.md, section
"Initialization and metrics").  With ``P = a_g P~`` (``ntk``: ``a_W = s_W/sqrt n``, ``a_F = s_F/sqrt n_x``,
``a_C = s_C/sqrt n``, ``a_D = s_D/sqrt n_x``; ``variance``: ``1/sqrt(fan-in)``;
``standard``: ``a = 1`` with step ``eta/n``), a step ``P~ <- P~ - eta lr_g dLoss/dP~``
is ``P <- P - eta * lr_g a_g^2 * dLoss/dP``, and ``lr_g a_g^2`` (``lr_g / n`` for
``standard``) is exactly :func:`verify.engine.ntk.group_scales`: the networks are stored
in actual coordinates and updated with those scales.  ``dLoss/dP`` comes from
backpropagation through time written for this model (:func:`bptt_gradients`);
:func:`tilde_gradients` gives ``a_g dLoss/dP``.

Step size: ``eta = 1 / lambda_max``, the top eigenvalue of the NTK on the fitted
outputs (the larger of the wide-limit NTK and the network's empirical NTK at
initialization).  For the linearized dynamics ``r <- (I - eta K) r`` every mode
then decays monotonically (stability needs ``eta < 2/lambda_max``, so the
empirical kernel may drift by a factor 2 during training before anything
diverges).  The number of steps brings the slowest mode of the limit kernel
down by ``tol``: ``steps = log(tol) / log(1 - lambda_min/lambda_max)``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Optional, Sequence

import numpy as np

from theory.bias import Times, kernel_predict, output_rows
from theory.spec import RNNSpec, SpecError
from verify.engine.ntk import empirical_ntk, group_scales, limit_lag_gram, ntk_from_lag_gram
from verify.engine.rnn import LinearRNN, check_batch, impulse_response
from verify.engine.scm import ScaledConvModel, scm_forward, scm_gradient
from verify.internal.errors import BadInput
from verify.internal.progress import progress

__all__ = [
    "bptt_gradients",
    "tilde_factors",
    "tilde_gradients",
    "fitted_residual",
    "GDPlan",
    "plan_gd",
    "TrainResult",
    "train_rnn",
    "train_scm",
    "scm_matching",
    "kernel_predictor",
    "relative_distance",
]


# ----------------------------------------------------------------- gradients
def bptt_gradients(rnn: LinearRNN, X: np.ndarray, G: np.ndarray, convention: str = "conv1",
                   H: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """``d/dP sum_(b,t) <G[b,t], y_t>`` for P in W, F, C (and D), by backpropagation through time.

    conv1 (``h_t = W h_(t-1) + F x_t``, ``y_t = C h_t + D x_t``): with
    ``delta_t = dLoss/dh_t = C^T G_t + W^T delta_(t+1)`` (``delta_T = 0``):
    ``dC = sum_t G_t h_t^T``, ``dD = sum_t G_t x_t^T``, ``dW = sum_t delta_t h_(t-1)^T``,
    ``dF = sum_t delta_t x_t^T``.
    conv2 (``h_(t+1) = W h_t + F x_t``, ``h_0 = 0``): the same with
    ``dW = sum_t delta_(t+1) h_t^T``, ``dF = sum_t delta_(t+1) x_t^T`` (t = 0..T-2).
    Numpy float64; ``G`` has the outputs' shape ``(B, T, n_y)``; ``H`` (optional) are the
    hidden states of the forward pass, if already computed.
    """
    if convention not in ("conv1", "conv2"):
        raise SpecError(f"convention must be conv1 or conv2, got {convention!r}")
    check_batch(X, rnn.n_x)
    B, T, nx = X.shape
    if G.shape != (B, T, rnn.n_y):
        raise SpecError(f"G must have shape {(B, T, rnn.n_y)}, got {G.shape}")
    W, C = rnn.W, rnn.C
    n = rnn.n
    H = _states(rnn, X, convention) if H is None else H
    # backward
    Delta = np.zeros((B, T, n))  # dLoss/dh_t
    d = np.zeros((B, n))
    for t in range(T - 1, -1, -1):
        d = G[:, t] @ C + d @ W  # C^T G_t + W^T delta_(t+1), as rows
        Delta[:, t] = d
    ny, nx = rnn.n_y, rnn.n_x
    flat = lambda A, k: A.reshape(-1, k)  # (b, t) rows
    grads = {"C": flat(G, ny).T @ flat(H, n)}
    if convention == "conv1":
        Hprev = np.concatenate([np.zeros((B, 1, n)), H[:, :-1]], axis=1)
        grads["W"] = flat(Delta, n).T @ flat(Hprev, n)
        grads["F"] = flat(Delta, n).T @ flat(X, nx)
    else:
        # h_(t+1) = W h_t + F x_t: its adjoint is delta_(t+1), t = 0..T-2
        grads["W"] = flat(Delta[:, 1:], n).T @ flat(H[:, :-1], n)
        grads["F"] = flat(Delta[:, 1:], n).T @ flat(X[:, :-1], nx)
    if rnn.D is not None:
        grads["D"] = flat(G, ny).T @ flat(X, nx)
    return grads


def _states(rnn: LinearRNN, X: np.ndarray, convention: str) -> np.ndarray:
    """Hidden states ``H[b, t] = h_t`` (conv1: after reading x_t; conv2: before, ``h_0 = 0``)."""
    B, T, _ = X.shape
    W, F = rnn.W, rnn.F
    H = np.zeros((B, T, rnn.n))
    FX = X @ F.T  # (B, T, n): F x_t for every t at once
    h = np.zeros((B, rnn.n))
    for t in range(T):
        if convention == "conv1":
            h = h @ W.T + FX[:, t]
            H[:, t] = h
        else:
            H[:, t] = h
            h = h @ W.T + FX[:, t]
    return H


def _outputs(rnn: LinearRNN, X: np.ndarray, H: np.ndarray) -> np.ndarray:
    Y = H @ rnn.C.T
    return Y if rnn.D is None else Y + X @ rnn.D.T


def tilde_factors(spec: RNNSpec, n: int) -> Dict[str, float]:
    """``a_g`` with ``P = a_g P~`` for the metric (``standard``: 1, its step carries the ``1/n``)."""
    fan = {"W": n, "C": n, "F": spec.n_x, "D": spec.n_x}
    if spec.metric == "ntk":
        return {g: float(spec.sigma(g)) / math.sqrt(fan[g]) for g in spec.groups}
    if spec.metric == "variance":
        return {g: 1.0 / math.sqrt(fan[g]) for g in spec.groups}
    return {g: 1.0 for g in spec.groups}


def tilde_gradients(rnn: LinearRNN, spec: RNNSpec, X, G) -> Dict[str, np.ndarray]:
    """``d/dP~ sum <G, y> = a_g d/dP sum <G, y>`` (chain rule through ``P = a_g P~``)."""
    a = tilde_factors(spec, rnn.n)
    return {g: a[g] * v for g, v in bptt_gradients(rnn, X, G, spec.convention).items()}


# ----------------------------------------------------------------- GD
def fitted_residual(Y: np.ndarray, targets: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    """``G[b, t] = y_t - target`` on the fitted times (zero elsewhere): the loss's output gradient."""
    G = np.zeros_like(Y)
    G[:, rows] = Y[:, rows] - targets
    return G


@dataclass(frozen=True)
class GDPlan:
    """Step size and step count (see the module docstring), with the eigenvalues they came from."""

    eta: float
    steps: int
    lambda_max: float
    lambda_min_limit: float
    lambda_max_limit: float


def _fitted_kernel(K: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    B, T, ny = K.shape[:3]
    Ks = K[:, rows][:, :, :, :, rows]
    m = B * len(rows) * ny
    return Ks.reshape(m, m)


def plan_gd(spec: RNNSpec, X: np.ndarray, times: Times = "last", *, rnn: Optional[LinearRNN] = None,
            tol: float = 1e-6, max_steps: int = 20000) -> GDPlan:
    """``eta = 1/lambda_max`` and the steps that shrink the slowest limit-kernel mode by ``tol``."""
    B, T, _ = X.shape
    rows = output_rows(T, times)
    K_lim = _fitted_kernel(ntk_from_lag_gram(limit_lag_gram(spec, T), X), rows)
    ev = np.linalg.eigvalsh(K_lim)
    lam_max_lim, lam_min_lim = float(ev[-1]), float(ev[0])
    lam = lam_max_lim
    if rnn is not None:
        K_emp = _fitted_kernel(np.asarray(empirical_ntk(rnn, spec, X)), rows)
        lam = max(lam, float(np.linalg.eigvalsh(K_emp)[-1]))
    if lam_min_lim <= 0:
        raise BadInput("the limit NTK on the fitted outputs is singular: the data cannot be interpolated")
    eta = 1.0 / lam
    rate = 1.0 - eta * lam_min_lim
    steps = max_steps if rate <= 0 else min(max_steps, int(math.ceil(math.log(tol) / math.log(rate))))
    return GDPlan(eta, max(steps, 1), lam, lam_min_lim, lam_max_lim)


@dataclass(frozen=True)
class TrainResult:
    """Final model, the loss after every step (``losses[0]`` at initialization) and the step size."""

    model: Any  # a LinearRNN or a ScaledConvModel
    losses: np.ndarray
    eta: float
    steps: int


def train_rnn(rnn: LinearRNN, spec: RNNSpec, X: np.ndarray, targets: np.ndarray, *, eta: float, steps: int,
              times: Times = "last", desc: str = "", show_progress: bool = True) -> TrainResult:
    """Full-batch GD on the tildes of ``spec``'s metric; ``targets`` shape ``(B, len(times), n_y)``.

    ``show_progress=False`` silences the per-step bar (for callers that draw their own).
    """
    rnn.check(spec)
    B, T, _ = X.shape
    rows = output_rows(T, times)
    targets = np.asarray(targets, dtype=np.float64).reshape(B, len(rows), spec.n_y)
    scales = group_scales(spec, rnn.n)
    P = {"W": rnn.W, "F": rnn.F, "C": rnn.C}
    if rnn.D is not None:
        P["D"] = rnn.D
    losses = np.empty(steps + 1)
    steps_iter: Iterable[int] = range(steps + 1)
    if show_progress:
        steps_iter = progress(steps_iter, total=steps + 1, desc=desc or f"GD RNN n={rnn.n}")
    for k in steps_iter:
        cur = LinearRNN(P["W"], P["F"], P["C"], P.get("D"))
        H = _states(cur, X, spec.convention)
        G = fitted_residual(_outputs(cur, X, H), targets, rows)
        losses[k] = 0.5 * float(np.sum(G * G))
        if k == steps:
            break
        grads = bptt_gradients(cur, X, G, spec.convention, H)
        P = {g: P[g] - eta * scales[g] * grads[g] for g in P}
    return TrainResult(LinearRNN(P["W"], P["F"], P["C"], P.get("D")), losses, eta, steps)


def scm_matching(rnn: LinearRNN, spec: RNNSpec, scm: ScaledConvModel) -> ScaledConvModel:
    """SCM whose initial impulse response equals the network's: ``theta_l = L_l(0) / scale_l``.

    Lags with ``scale_l = 0`` (weight 0) must have ``L_l(0) = 0``; they keep ``theta_l = 0``.
    """
    L0 = np.asarray(impulse_response(rnn, scm.lags, spec.convention))
    s = np.asarray(scm.scale)
    theta = np.zeros_like(L0)
    pos = s > 0
    theta[pos] = L0[pos] / s[pos, None, None]
    if np.any(np.abs(L0[~pos]) > 0):
        raise SpecError("the network's impulse response is nonzero at a lag whose weight is 0")
    return scm.with_theta(theta)


def train_scm(model: ScaledConvModel, X: np.ndarray, targets: np.ndarray, *, eta: float, steps: int,
              times: Times = "last", desc: str = "") -> TrainResult:
    """The same GD on the SCM's ``theta`` (its NTK is the wide-limit NTK exactly)."""
    B, T, _ = X.shape
    rows = output_rows(T, times)
    ny = model.theta.shape[1]
    targets = np.asarray(targets, dtype=np.float64).reshape(B, len(rows), ny)
    losses = np.empty(steps + 1)
    for k in range(steps + 1):
        Y = scm_forward(model, X)
        G = fitted_residual(Y, targets, rows)
        losses[k] = 0.5 * float(np.sum(G * G))
        if k == steps:
            break
        model = model.with_theta(model.theta - eta * scm_gradient(model, X, G))
    return TrainResult(model, losses, eta, steps)


def kernel_predictor(spec: RNNSpec, X: np.ndarray, targets: np.ndarray, X_test: np.ndarray, *,
                     L0: Optional[np.ndarray] = None, times: Times = "last", dps: int = 30) -> np.ndarray:
    """Predictions (float64, ``(B* len(times), n_y)``) of the infinitely wide network trained to
    convergence: :func:`theory.bias.kernel_predict`, i.e. the convolution with the beta-weighted
    minimum-norm impulse response (``L0 = None``: mean over initializations)."""

    out = kernel_predict(spec, X, np.asarray(targets).reshape(-1, spec.n_y), X_test, L0=L0, times=times, dps=dps)
    return np.vectorize(float, otypes=[np.float64])(out)


def relative_distance(L: np.ndarray, L_ref: np.ndarray, L0: np.ndarray) -> float:
    """``||L - L_ref||_F / ||L_ref - L0||_F``: distance to a solution, relative to how far it moved."""
    den = float(np.linalg.norm(np.asarray(L_ref) - np.asarray(L0)))
    if den == 0:
        raise BadInput("the reference solution equals the initialization: relative distance undefined")
    return float(np.linalg.norm(np.asarray(L) - np.asarray(L_ref))) / den
