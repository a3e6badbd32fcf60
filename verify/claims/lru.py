"""LRU (diagonal complex linear recurrence) client of the claim harness.

Model and draw as :mod:`verify.engine.diagonal` (scalar input and output, conv1)::
    h_(j,t) = lambda_j h_(j,t-1) + g_j B_j x_t,   y_t = sum_j Re(C_j h_(j,t)) + D x_t
    lambda_j = exp(-exp(nu_j) + i exp(theta_j)),  g_j = exp(gamma_j)  (tied: sqrt(1 - |lambda_j|^2))

Trained variables (metric "ntk" of :mod:`theory.diagonal`): ``nu, theta, gamma``
as they are, ``b~ = B / s_B`` and ``c~ = C sqrt(n) / s_C`` (real and imaginary
parts), ``d~ = D / s_D``; each divided by ``sqrt(lr_G)`` (and multiplied back in
``apply``) so that the Euclidean NTK carries the learning-rate multipliers.
The recurrence runs in real arithmetic (``Re``/``Im`` parts).

Claim: ``K[b,t,b',t'] = sum_(l<=t, l'<=t') x[b,t-l] Theta(l,l') x'[b',t'-l']`` with
``Theta`` the exact lag kernel :func:`theory.diagonal.lag_kernel` (the network is
linear in its input, so its NTK is the lag Gram contracted with the inputs).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Tuple

import numpy as np

from theory.diagonal import DiagonalSpec, lag_kernel
from theory.spec import SpecError
from verify.engine.diagonal import init_diagonal

__all__ = ["LRU", "SPEC", "lru_model", "lru_kernel"]

#: Default: |lambda| in [0.5, 0.9], phase in [0, pi/2], s_B^2 = 1/2, s_C = 1, s_D = 1, all groups trained.
SPEC = DiagonalSpec(r_min="0.5", r_max="0.9", max_phase="pi/2")


@dataclass(frozen=True)
class LRU:
    """An LRU layer of one :class:`theory.diagonal.DiagonalSpec` (scaling "ntk")."""

    spec: DiagonalSpec = field(default_factory=lambda: SPEC)

    def __post_init__(self) -> None:
        if self.spec.scaling != "ntk":
            raise SpecError("the LRU claim client supports the scaling 'ntk' only")

    def model(self, width: int, seed: int) -> Tuple[Dict[str, Any], Callable]:
        """``(params, apply)`` for one draw of :func:`verify.engine.diagonal.init_diagonal`."""
        import torch


        spec = self.spec
        net = init_diagonal(spec, width, seed)
        sb, sc = math.sqrt(float(spec.sigma_b2)), float(spec.sigma_c)
        values = {
            "nu": net.nu, "theta": net.theta,
            "b_re": net.B.real / sb, "b_im": net.B.imag / sb,
            "c_re": net.C.real * math.sqrt(width) / sc, "c_im": net.C.imag * math.sqrt(width) / sc,
        }
        lr = {"nu": spec.lr_nu, "theta": spec.lr_theta, "b_re": spec.lr_b, "b_im": spec.lr_b,
              "c_re": spec.lr_c, "c_im": spec.lr_c}
        if net.gamma is not None:
            values["gamma"], lr["gamma"] = net.gamma, spec.lr_gamma
        if net.D is not None:
            values["d"], lr["d"] = np.array([net.D / float(spec.sigma_d or 1)]), spec.lr_d
        root = {k: math.sqrt(float(v)) for k, v in lr.items()}
        arrays = {k: np.asarray(v, dtype=np.float64) for k, v in values.items()}
        params = {k: torch.as_tensor(v / root[k]) for k, v in arrays.items() if root[k] > 0}
        frozen = {k: torch.as_tensor(v) for k, v in arrays.items() if root[k] == 0}
        scale_c = sc / math.sqrt(width)
        sd = float(spec.sigma_d) if spec.sigma_d is not None else 0.0

        def apply(p, X):
            v = {k: root[k] * p[k] if k in p else frozen[k] for k in values}
            a = torch.exp(v["nu"])
            mod = torch.exp(-a)
            ph = torch.exp(v["theta"])
            lr_, li = mod * torch.cos(ph), mod * torch.sin(ph)
            g = torch.exp(v["gamma"]) if "gamma" in v else torch.sqrt(-torch.expm1(-2.0 * a))
            gb_r, gb_i = g * sb * v["b_re"], g * sb * v["b_im"]
            c_r, c_i = scale_c * v["c_re"], scale_c * v["c_im"]
            h_r = torch.zeros((X.shape[0], a.shape[0]), dtype=X.dtype)
            h_i = torch.zeros_like(h_r)
            ys = []
            for t in range(X.shape[1]):
                x = X[:, t, :]  # (B, 1)
                h_r, h_i = lr_ * h_r - li * h_i + gb_r * x, lr_ * h_i + li * h_r + gb_i * x
                y = (h_r * c_r - h_i * c_i).sum(dim=1, keepdim=True)
                if "d" in v:
                    y = y + sd * v["d"] * x
                ys.append(y)
            return torch.stack(ys, dim=1)

        return params, apply

    def lag_kernel(self, lags: int) -> np.ndarray:
        """The exact limit lag kernel ``Theta (lags x lags)`` in float64."""
        K = lag_kernel(self.spec, lags, dps=20)
        return np.array([[float(v) for v in row] for row in K.total])

    def kernel(self, X, Xp=None) -> np.ndarray:
        """The claimed NTK ``(B, T, 1, B', T', 1)``: the lag kernel contracted with the inputs."""
        Xp = X if Xp is None else Xp
        X, Xp = np.asarray(X, dtype=np.float64), np.asarray(Xp, dtype=np.float64)
        if X.ndim != 3 or Xp.ndim != 3 or X.shape[2] != 1 or Xp.shape[2] != 1:
            raise SpecError("the LRU client has scalar input: X must have shape (B, T, 1)")
        lags = max(X.shape[1], Xp.shape[1])
        theta = self.lag_kernel(lags)
        lag_x, lag_xp = _lagged(X[..., 0], lags), _lagged(Xp[..., 0], lags)  # (B, T, L)
        K = np.einsum("btl,lm,cum->btcu", lag_x, theta, lag_xp)
        return K[:, :, None, :, :, None]


def _lagged(x: np.ndarray, lags: int) -> np.ndarray:
    """``out[b, t, l] = x[b, t - l]`` (0 when ``l > t``)."""
    B, T = x.shape
    out = np.zeros((B, T, lags))
    for l in range(min(lags, T)):
        out[:, l:, l] = x[:, : T - l]
    return out


_LRU = LRU()


def lru_model(width: int, seed: int):
    """LRU layer, :data:`SPEC`."""
    return _LRU.model(width, seed)


def lru_kernel(X, Xp):
    """Exact LRU NTK for :data:`SPEC` (:func:`theory.diagonal.lag_kernel`)."""
    return _LRU.kernel(X, Xp)
