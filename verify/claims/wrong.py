"""Deliberately wrong claims about the Elman clients of :mod:`verify.claims.elman`.

The models are the true ones (:data:`verify.claims.elman.SPEC`, s_W = 0.9); the
kernels are wrong in three ways the harness must detect:

* ``*_kernel_sigma_w_085``: the exact kernel of the same network with s_W = 0.85;
* ``*_nngp``: the NNGP covariance given in place of the NTK;
* ``*_kernel_half``: the true kernel missing a factor of 2.
"""
from __future__ import annotations

import numpy as np

from verify.claims.elman import SPEC, Elman

__all__ = [
    "linear_kernel_sigma_w_085", "relu_kernel_sigma_w_085", "erf_kernel_sigma_w_085",
    "relu_nngp", "erf_nngp", "relu_kernel_half", "erf_kernel_half",
]

_WRONG_SPEC = SPEC.replace(sigma_w="0.85")


def linear_kernel_sigma_w_085(X, Xp) -> np.ndarray:
    """Linear RNN: the theorem's kernel at s_W = 0.85 (the model uses 0.9)."""
    return Elman("linear", _WRONG_SPEC).kernel(X, Xp)


def relu_kernel_sigma_w_085(X, Xp) -> np.ndarray:
    """ReLU RNN: the exact NTK at s_W = 0.85 (the model uses 0.9)."""
    return Elman("relu", _WRONG_SPEC).kernel(X, Xp)


def erf_kernel_sigma_w_085(X, Xp) -> np.ndarray:
    """erf RNN: the exact NTK at s_W = 0.85 (the model uses 0.9)."""
    return Elman("erf", _WRONG_SPEC).kernel(X, Xp)


def relu_nngp(X, Xp) -> np.ndarray:
    """ReLU RNN: the NNGP covariance in place of the NTK."""
    return Elman("relu").nngp(X, Xp)


def erf_nngp(X, Xp) -> np.ndarray:
    """erf RNN: the NNGP covariance in place of the NTK."""
    return Elman("erf").nngp(X, Xp)


def relu_kernel_half(X, Xp) -> np.ndarray:
    """ReLU RNN: the true NTK divided by 2."""
    return Elman("relu").kernel(X, Xp) / 2


def erf_kernel_half(X, Xp) -> np.ndarray:
    """erf RNN: the true NTK divided by 2."""
    return Elman("erf").kernel(X, Xp) / 2
