"""The problem every method is timed on, the methods, and their cost models.

The methods are those of the library's single entry point
:func:`verify.engine.ntk.empirical_ntk` (``method=`` one of :data:`verify.engine.ntk.NTK_METHODS`),
plus the Krylov sequences alone as the floor.

One problem per size ``(n, T)``: metric "ntk", convention conv1, ``s_W = 0.9``,
``s_F = s_C = 1``, no D, scalar input and output (``n_x = n_y = 1``), the
network drawn by ``init_rnn(spec, n, seed=0)`` and ``B = 4`` input sequences
``X ~ N(0, 1)`` of shape ``(B, T, 1)`` from ``default_rng(1)``.  Every method
(and every memory-probe subprocess) rebuilds exactly these inputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from theory.spec import RNNSpec
from verify.engine.ntk import NTK_METHOD_ALIASES, NTK_METHODS

BATCH = 4
SPEC = RNNSpec(sigma_w="0.9", sigma_f=1, sigma_c=1, n_x=1, n_y=1, metric="ntk", convention="conv1")


def problem(n: int, T: int, batch: int = BATCH):
    """``(spec, rnn, X)`` for size ``(n, T)``: the same arrays in every process."""
    from verify.engine.rnn import init_rnn

    rnn = init_rnn(SPEC, n, seed=0)
    X = np.random.default_rng(1).standard_normal((batch, T, SPEC.n_x))
    return SPEC, rnn, X


def _krylov(spec, rnn, X):
    from verify.engine.ntk import krylov

    return krylov(rnn, X.shape[1])


def _ntk(spec, rnn, X, *, method: str):
    """One method of the library's entry point :func:`verify.engine.ntk.empirical_ntk`."""
    from verify.engine.ntk import empirical_ntk

    return empirical_ntk(rnn, spec, X, method=method)


def _lag_gram(spec, rnn, X):
    from verify.engine.ntk import lag_gram

    return lag_gram(rnn, spec, X.shape[1])


def _params(n: int, nx: int = 1, ny: int = 1) -> int:
    return n * n + n * nx + n * ny


def _jac_bytes(n: int, T: int, B: int) -> float:
    """The dense Jacobian alone: ``8 B T n_y (n^2 + n n_x + n n_y)`` bytes."""
    return 8.0 * B * T * _params(n)


@dataclass(frozen=True)
class Method:
    """A timed method: ``run(spec, rnn, X)``, whether it needs torch, and a lower bound on its memory."""

    name: str
    label: str
    run: Callable
    torch: bool = False
    # lower bound on the bytes it must hold (None: O(n^2 + T n), never skipped)
    min_bytes: Optional[Callable[[int, int, int], float]] = None
    # time scales like (n T)^2 for fixed B (used to extrapolate; None = never skipped on time)
    quadratic_time: bool = False
    ntk: bool = True  # returns the NTK (compared with the structured one)


#: How each method of :data:`verify.engine.ntk.NTK_METHODS` is labelled and costed here:
#: (label, needs torch, memory lower bound, time ~ (n T)^2).
_COSTS: Dict[str, Tuple[str, bool, Optional[Callable[[int, int, int], float]], bool]] = {
    "structured": ("structured: lag Gram + contraction (verify.engine.ntk)", False, None, False),
    "bptt": ("reference BPTT (verify.engine.reference)", False, _jac_bytes, True),
    "jacobian": ("torch.func vmap(jacrev) contraction", True, _jac_bytes, True),
    "products": ("torch.func NTK-vector products", True, None, True),
}

#: The Krylov floor, then every method of :func:`verify.engine.ntk.empirical_ntk`, run through it.
METHODS: Dict[str, Method] = {
    "krylov": Method("krylov", "Krylov floor (verify.engine.ntk.krylov)", _krylov, ntk=False),
    **{name: Method(name, _COSTS[name][0], partial(_ntk, method=name), torch=_COSTS[name][1],
                    min_bytes=_COSTS[name][2], quadratic_time=_COSTS[name][3])
       for name in NTK_METHODS},
}

#: Former names of methods, still accepted by ``--methods``: the benchmark's own ("reference",
#: "ntk_vp") and :data:`verify.engine.ntk.NTK_METHOD_ALIASES` ("ntvp").
ALIASES = {"reference": "bptt", "ntk_vp": "products", **NTK_METHOD_ALIASES}

#: parts of the structured method, timed separately to show where its time goes
PARTS: Dict[str, Callable] = {"lag_gram": _lag_gram}


def warm_up(method: Method, runs: int = 2) -> None:
    """Run ``method`` at a tiny size (n = 8, T = 2) so that one-time set-up is not timed or counted."""
    spec, rnn, X = problem(8, 2)
    for _ in range(runs):
        method.run(spec, rnn, X)


def extrapolate(seconds: float, size: Tuple[int, int], to: Tuple[int, int]) -> float:
    """Scale a measured time by ``(n T)^2`` (the reference, jacobian and NTK-vp costs at fixed B)."""
    (n0, t0), (n1, t1) = size, to
    return seconds * ((n1 * t1) / (n0 * t0)) ** 2


def max_rel_diff(a, b) -> float:
    """``max |a - b| / max |b|``."""
    a, b = np.asarray(a), np.asarray(b)
    scale = float(np.max(np.abs(b)))
    return float(np.max(np.abs(a - b)) / scale) if scale > 0 else float(np.max(np.abs(a - b)))
