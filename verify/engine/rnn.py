"""Finite-width linear RNNs built from a specification.

``conv1``: ``h_t = W h_(t-1) + F x_t``, ``y_t = C h_t + D x_t`` (``h_(-1) = 0``);
``conv2``: ``h_(t+1) = W h_t + F x_t``, ``y_t = C h_t + D x_t`` (``h_0 = 0``).
Initialization: ``W_ij ~ N(0, s_W^2/n)``, ``F_ij ~ N(0, s_F^2/n_x)``,
``C_ij ~ N(0, s_C^2/n)``, ``D_ij ~ N(0, s_D^2/n_x)``.  The arrays held are the
actual matrices (not the tildes of a metric).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Union

import numpy as np
from array_api_compat import array_namespace

from theory.spec import RNNSpec, SpecError
from verify.engine.backend import DRAWS, Backend, get_backend

__all__ = ["LinearRNN", "init_rnn", "forward", "impulse_response", "check_batch"]


@dataclass(frozen=True)
class LinearRNN:
    """Weights of one linear RNN: ``W (n, n)``, ``F (n, n_x)``, ``C (n_y, n)``, optional ``D (n_y, n_x)``."""

    W: Any
    F: Any
    C: Any
    D: Optional[Any] = None

    def __post_init__(self) -> None:
        W, F, C, D = self.W, self.F, self.C, self.D
        if W.ndim != 2 or W.shape[0] != W.shape[1]:
            raise SpecError(f"W must be square (n, n), got shape {tuple(W.shape)}")
        n = W.shape[0]
        if F.ndim != 2 or F.shape[0] != n:
            raise SpecError(f"F must have shape (n, n_x) = ({n}, n_x), got {tuple(F.shape)}")
        if C.ndim != 2 or C.shape[1] != n:
            raise SpecError(f"C must have shape (n_y, n) = (n_y, {n}), got {tuple(C.shape)}")
        if D is not None and tuple(D.shape) != (C.shape[0], F.shape[1]):
            raise SpecError(f"D must have shape (n_y, n_x) = {(C.shape[0], F.shape[1])}, got {tuple(D.shape)}")
        if 0 in (n, F.shape[1], C.shape[0]):
            raise SpecError(f"every dimension must be at least 1: width n = {n}, n_x = {F.shape[1]}, "
                            f"n_y = {C.shape[0]}")

    @property
    def n(self) -> int:
        return int(self.W.shape[0])

    @property
    def n_x(self) -> int:
        return int(self.F.shape[1])

    @property
    def n_y(self) -> int:
        return int(self.C.shape[0])

    @property
    def xp(self):
        return array_namespace(self.W)

    def check(self, spec: RNNSpec) -> None:
        """Raise :class:`SpecError` unless the dimensions (and D) match ``spec``."""
        if (self.n_x, self.n_y) != (spec.n_x, spec.n_y):
            raise SpecError(
                f"network has n_x = {self.n_x}, n_y = {self.n_y}; the specification says "
                f"n_x = {spec.n_x}, n_y = {spec.n_y}"
            )
        if spec.has_d != (self.D is not None):
            raise SpecError(
                "the specification has a D (sigma_d) but the network has none"
                if spec.has_d
                else "the network has a D but the specification has no sigma_d"
            )


def init_rnn(
    spec: RNNSpec,
    n: int,
    seed: Union[int, np.random.Generator] = 0,
    backend: Optional[Backend] = None,
    *,
    draws: Optional[str] = None,
) -> LinearRNN:
    """Draw a network of width ``n`` at initialization.

    ``draws="numpy"`` (the default, or ``backend.draws``): the draws come from a
    numpy ``Generator`` (``seed`` or a generator) in the order W, F, C, D and are
    then moved to ``backend`` (numpy float64 by default), so every backend sees
    the same network for the same seed.  ``draws="native"``: the backend's own
    generator draws them on its device in the same order (no host copy: for
    huge widths on a GPU, where numpy would draw and copy 8 GiB at n = 32768);
    the network then depends on the backend, device, dtype and library version.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SpecError(f"width n must be a positive integer, got {n!r}")
    n = int(n)
    be = backend or get_backend()
    draws = be.draws if draws is None else draws
    if draws not in DRAWS:
        raise SpecError(f"draws must be one of {', '.join(DRAWS)}, got {draws!r}")
    sw, sf, sc = spec.float64("sigma_w"), spec.float64("sigma_f"), spec.float64("sigma_c")
    shapes = [((n, n), sw / math.sqrt(n)), ((n, spec.n_x), sf / math.sqrt(spec.n_x)),
              ((spec.n_y, n), sc / math.sqrt(n))]
    if spec.has_d:
        shapes.append(((spec.n_y, spec.n_x), spec.float64("sigma_d") / math.sqrt(spec.n_x)))
    mats = []
    if draws == "native" and be.name in ("torch", "cupy"):
        if isinstance(seed, np.random.Generator):
            seed = int(seed.integers(2**63 - 1))
        gen = None
        for shape, scale in shapes:
            a, gen = be.standard_normal(shape, seed, generator=gen)
            a *= scale  # in place: no second n x n array
            mats.append(a)
    else:
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        for shape, scale in shapes:
            a = rng.standard_normal(shape)
            a *= scale  # in place (the same values as a * scale), halving peak host memory
            mats.append(be.asarray(a))
            del a
    if len(mats) == 3:
        mats.append(None)
    return LinearRNN(*mats)


def check_batch(X, n_x: int, name: str = "X"):
    """Validate a batch of input sequences of shape (B, T, n_x)."""
    shape = tuple(X.shape)
    if len(shape) != 3:
        raise SpecError(f"{name} must have shape (B, T, n_x), got shape {shape}")
    if 0 in shape:
        raise SpecError(f"{name} must be non-empty, got shape {shape}")
    if shape[2] != n_x:
        raise SpecError(f"{name} has n_x = {shape[2]}, the network has n_x = {n_x}")
    return X


def forward(rnn: LinearRNN, X, convention: str = "conv1"):
    """Outputs ``Y (B, T, n_y)`` for inputs ``X (B, T, n_x)``."""
    if convention not in ("conv1", "conv2"):
        raise SpecError(f"convention must be conv1 or conv2, got {convention!r}")
    xp = rnn.xp
    check_batch(X, rnn.n_x)
    B, T, _ = X.shape
    WT, FT, CT = xp.permute_dims(rnn.W, (1, 0)), xp.permute_dims(rnn.F, (1, 0)), xp.permute_dims(rnn.C, (1, 0))
    h = xp.zeros((B, rnn.n), dtype=rnn.W.dtype, device=_device(rnn.W))
    ys = []
    for t in range(T):
        xt = X[:, t, :]
        if convention == "conv1":
            h = h @ WT + xt @ FT
            ys.append(h @ CT)
        else:
            ys.append(h @ CT)
            h = h @ WT + xt @ FT
    Y = xp.stack(ys, axis=1)
    if rnn.D is not None:
        Y = Y + X @ xp.permute_dims(rnn.D, (1, 0))
    return Y


def impulse_response(rnn: LinearRNN, lags: int, convention: str = "conv1"):
    """Convolution kernel ``L (lags, n_y, n_x)``: ``y_t = sum_l L_l x_(t-l)``.

    conv1: ``L_0 = D + C F``, ``L_l = C W^l F``; conv2: ``L_0 = D``, ``L_l = C W^(l-1) F``.
    """
    if convention not in ("conv1", "conv2"):
        raise SpecError(f"convention must be conv1 or conv2, got {convention!r}")
    if isinstance(lags, bool) or not isinstance(lags, int) or lags < 1:
        raise SpecError(f"lags must be a positive integer, got {lags!r}")
    xp = rnn.xp
    zero = xp.zeros((rnn.n_y, rnn.n_x), dtype=rnn.W.dtype, device=_device(rnn.W))
    markov_count = lags if convention == "conv1" else lags - 1
    out, u = [], rnn.F
    for _ in range(markov_count):
        out.append(rnn.C @ u)
        u = rnn.W @ u
    if convention == "conv2":
        out = [zero] + out
    if rnn.D is not None:
        out[0] = out[0] + rnn.D
    return xp.stack(out, axis=0)


def _device(a):
    from array_api_compat import device

    return device(a)
