"""The scaled convolutional model (SCM) of the theorem.

    y_t = sum_(l=0)^(L-1) sqrt(beta_l / n_x) theta_l x_(t-l),   theta_l in R^(n_y x n_x)

trained by gradient descent on ``theta``.  Its NTK is exactly
``delta_ac sum_l beta_l <x_(t-l), x'_(t'-l)> / n_x``, the wide-limit NTK of the
linear RNN (docs/theory.md, section "The kernel"), at every "width": the model
is linear in ``theta``.  (The ``1/n_x`` is the fan-in normalization of the
theorem; for scalar inputs the model is ``sum_l sqrt(beta_l) theta_l x_(t-l)``.)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
from array_api_compat import array_namespace
from array_api_compat import device as _device

from theory.spec import RNNSpec, SpecError
from verify.engine.ntk import _lagged_inputs, lag_weights_float64
from verify.engine.rnn import check_batch

__all__ = ["ScaledConvModel", "scm_from_spec", "scm_forward", "scm_gradient", "scm_jacobian", "scm_ntk"]


@dataclass(frozen=True)
class ScaledConvModel:
    """``scale (L,) = sqrt(beta / n_x)`` and parameters ``theta (L, n_y, n_x)``."""

    scale: Any
    theta: Any

    def __post_init__(self) -> None:
        if self.scale.ndim != 1 or self.theta.ndim != 3 or self.theta.shape[0] != self.scale.shape[0]:
            raise SpecError(
                f"scale must be (L,) and theta (L, n_y, n_x) with the same L; got {tuple(self.scale.shape)} "
                f"and {tuple(self.theta.shape)}"
            )

    @property
    def lags(self) -> int:
        return int(self.scale.shape[0])

    @property
    def impulse_response(self):
        """``L_l = sqrt(beta_l / n_x) theta_l``, shape (L, n_y, n_x)."""
        return self.scale[:, None, None] * self.theta

    def with_theta(self, theta) -> "ScaledConvModel":
        return ScaledConvModel(self.scale, theta)


def scm_from_spec(spec: RNNSpec, lags: int, theta: Optional[Any] = None) -> ScaledConvModel:
    """SCM with the closed-form weights of ``spec`` (float64); ``theta`` defaults to zero."""
    beta = lag_weights_float64(spec, lags)
    scale = np.sqrt(beta / spec.n_x)
    if theta is None:
        theta = np.zeros((lags, spec.n_y, spec.n_x))
    return ScaledConvModel(scale, np.asarray(theta, dtype=np.float64) if isinstance(theta, (list, tuple)) else theta)


def scm_forward(model: ScaledConvModel, X):
    """Outputs ``(B, T, n_y)``: ``y_t = sum_l L_l x_(t-l)``, lags beyond ``L`` ignored."""
    xp = array_namespace(X)
    L, ny, nx = model.theta.shape
    check_batch(X, nx)
    B, T, _ = X.shape
    phi = xp.reshape(_lagged_inputs(X, L), (B * T, L * nx))
    kern = xp.reshape(xp.permute_dims(model.impulse_response, (0, 2, 1)), (L * nx, ny))
    return xp.reshape(phi @ kern, (B, T, ny))


def scm_gradient(model: ScaledConvModel, X, G):
    """``d/dtheta sum_(b,t) <G[b,t], y_t>``: ``grad_l = scale_l sum_(b,t) G[b,t] x_(b,t-l)^T``."""
    xp = array_namespace(X)
    L, ny, nx = model.theta.shape
    B, T, _ = X.shape
    if tuple(G.shape) != (B, T, ny):
        raise SpecError(f"G must have shape {(B, T, ny)}, got {tuple(G.shape)}")
    phi = xp.reshape(_lagged_inputs(X, L), (B * T, L, nx))
    g = xp.reshape(G, (B * T, ny))
    grad = xp.permute_dims(xp.tensordot(g, phi, axes=([0], [0])), (1, 0, 2))  # (L, ny, nx)
    return model.scale[:, None, None] * grad


def scm_jacobian(model: ScaledConvModel, X):
    """Explicit Jacobian ``J[b, t, a, l, c, i] = d y_t[a] / d theta_l[c, i] = delta_ac scale_l x_(t-l)[i]``."""
    xp = array_namespace(X)
    L, ny, nx = model.theta.shape
    B, T, _ = X.shape
    phi = _lagged_inputs(X, L) * model.scale[None, None, :, None]  # (B, T, L, nx)
    eye = xp.eye(ny, dtype=X.dtype, device=_device(X))
    return phi[:, :, None, :, None, :] * eye[None, None, :, None, :, None]


def scm_ntk(model: ScaledConvModel, X, Xp=None):
    """``K = J J'^T`` from the explicit Jacobians: shape ``(B, T, n_y, B', T', n_y)``."""
    xp = array_namespace(X)
    Xp = X if Xp is None else Xp
    J = scm_jacobian(model, X)
    Jp = scm_jacobian(model, Xp)
    B, T, ny = J.shape[:3]
    Bp, Tp = Jp.shape[:2]
    a = xp.reshape(J, (B * T * ny, -1))
    b = xp.reshape(Jp, (Bp * Tp * ny, -1))
    return xp.reshape(a @ xp.permute_dims(b, (1, 0)), (B, T, ny, Bp, Tp, ny))
