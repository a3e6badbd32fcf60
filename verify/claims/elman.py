"""Elman RNN clients of the claim harness: ``phi`` linear, ReLU or erf.

Model (``conv1``; ``conv2`` reads ``h`` before the update)::
    h_t = phi(W h_(t-1) + F x_t),   y_t = C h_t + D x_t,   h_(-1) = 0

drawn as :func:`verify.engine.rnn.init_rnn` draws the linear RNN (seeded numpy, order
W, F, C, D).  The trained variables are ``p_G = G / c_G`` with
``c_G^2 = group_scales(spec, n)[G]`` (:func:`verify.engine.ntk.group_scales`: the
metric's factor times the learning-rate multiplier), so the plain Euclidean
NTK over ``params`` is the metric's NTK; frozen groups (``c_G = 0``) are kept
out of ``params``.  Claims: :func:`theory.kernel.conv_ntk` (linear, the
theorem's weighted convolution) and :func:`theory.nonlinear.rnn_ntk`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Tuple

import numpy as np

from theory import kernel as tk
from theory.nonlinear import ACTIVATIONS, rnn_kernels
from theory.spec import RNNSpec, SpecError
from verify.engine.ntk import group_scales
from verify.engine.rnn import init_rnn

__all__ = [
    "Elman",
    "SPEC",
    "linear_model", "linear_kernel", "relu_model", "relu_kernel", "erf_model", "erf_kernel",
]

#: The clients' default network: metric ntk, conv1, s_W = 0.9, s_F = s_C = 1, n_x = n_y = 1.
SPEC = RNNSpec(sigma_w="0.9")


def _phi(torch, activation: str) -> Callable:
    return {"linear": lambda z: z, "relu": torch.relu, "erf": torch.erf}[activation]


def conv_kernel_ntk(spec: RNNSpec, X, Xp, dps: int = 20) -> np.ndarray:
    """The linear RNN's wide-limit NTK from :mod:`theory.kernel` (float64)."""

    fn = getattr(tk, "conv_ntk", None) or tk.ntk
    return np.asarray(fn(spec, X, Xp, dps=dps), dtype=np.float64)


@dataclass(frozen=True)
class Elman:
    """An Elman RNN of one activation under one specification (metric, convention, scales, D, lr)."""

    activation: str = "relu"
    spec: RNNSpec = field(default_factory=lambda: SPEC)

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            raise SpecError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {self.activation!r}")

    def weights(self, width: int, seed: int):
        """The actual matrices of one draw (a :class:`verify.engine.rnn.LinearRNN` holding numpy arrays)."""

        return init_rnn(self.spec, width, seed)

    def model(self, width: int, seed: int) -> Tuple[Dict[str, Any], Callable]:
        """``(params, apply)``: trained variables ``G / c_G`` and the forward pass."""
        import torch


        net = self.weights(width, seed)
        mats = {"W": net.W, "F": net.F, "C": net.C}
        if net.D is not None:
            mats["D"] = net.D
        scales = group_scales(self.spec, width)
        coef = {g: math.sqrt(scales[g]) for g in mats}
        params = {g: torch.as_tensor(mats[g] / coef[g]) for g in mats if coef[g] > 0}
        frozen = {g: torch.as_tensor(mats[g]) for g in mats if coef[g] == 0}
        phi = _phi(torch, self.activation)
        conv2 = self.spec.convention == "conv2"

        def apply(p, X):
            G = {g: coef[g] * p[g] if g in p else frozen[g] for g in mats}
            W, F, C = G["W"], G["F"], G["C"]
            h = torch.zeros((X.shape[0], W.shape[0]), dtype=X.dtype)
            ys = []
            for t in range(X.shape[1]):
                if conv2:
                    ys.append(h @ C.T)
                h = phi(h @ W.T + X[:, t, :] @ F.T)
                if not conv2:
                    ys.append(h @ C.T)
            Y = torch.stack(ys, dim=1)
            if "D" in G:
                Y = Y + X @ G["D"].T
            return Y

        return params, apply

    def kernel(self, X, Xp=None) -> np.ndarray:
        """The claimed limit: theory's exact kernel rounded to float64, ``(B, T, n_y, B', T', n_y)``."""
        Xp = X if Xp is None else Xp
        if self.activation == "linear":
            return conv_kernel_ntk(self.spec, X, Xp)
        return np.asarray(rnn_kernels(self.spec, self.activation, X, Xp, dps=20).ntk, dtype=np.float64)

    def nngp(self, X, Xp=None) -> np.ndarray:
        """The wide-limit covariance of the initial outputs (:mod:`theory.nonlinear`), float64."""
        Xp = X if Xp is None else Xp
        return np.asarray(rnn_kernels(self.spec, self.activation, X, Xp, dps=20).nngp, dtype=np.float64)


_LINEAR, _RELU, _ERF = Elman("linear"), Elman("relu"), Elman("erf")


def linear_model(width: int, seed: int):
    """Linear RNN, :data:`SPEC`."""
    return _LINEAR.model(width, seed)


def linear_kernel(X, Xp):
    """The theorem's kernel for :data:`SPEC` (:func:`theory.kernel.conv_ntk`)."""
    return _LINEAR.kernel(X, Xp)


def relu_model(width: int, seed: int):
    """ReLU RNN, :data:`SPEC`."""
    return _RELU.model(width, seed)


def relu_kernel(X, Xp):
    """Exact ReLU-RNN NTK for :data:`SPEC` (:func:`theory.nonlinear.rnn_ntk`)."""
    return _RELU.kernel(X, Xp)


def erf_model(width: int, seed: int):
    """erf RNN, :data:`SPEC`."""
    return _ERF.model(width, seed)


def erf_kernel(X, Xp):
    """Exact erf-RNN NTK for :data:`SPEC` (:func:`theory.nonlinear.rnn_ntk`)."""
    return _ERF.kernel(X, Xp)
