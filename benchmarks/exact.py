"""The exact side's cost: lag weights (points and interval enclosures) and the wide-limit kernel.

Specification: metric "ntk", conv1, ``s_W = 0.9``, ``s_F = 1.3``, ``s_C = 0.7``
(the README example); kernel inputs ``X ~ N(0, 1)`` from ``default_rng(2)``,
taken as their exact binary values.  Each case: median of ``repeats`` runs
(one run when the first takes over 10 s).
"""
from __future__ import annotations

import statistics
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np

from theory.spec import RNNSpec

EXACT_SPEC = RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c="0.7")


def _median_time(fn, repeats: int) -> Tuple[float, int]:
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if times[0] > 10.0:
            break
    return statistics.median(times), len(times)


def exact_cases(lags: Sequence[int], dps_list: Sequence[int], kernel_shape: Tuple[int, int],
                kernel_dps: int) -> List[Tuple[str, object]]:
    """``(description, thunk)`` for every exact-side case."""
    from theory.kernel import conv_ntk
    from theory.weights import lag_weights

    cases = []
    for L in lags:
        for dps in dps_list:
            for interval in (False, True):
                what = "interval enclosures" if interval else "lag weights"
                cases.append((f"{what}: {L} lags at {dps} digits",
                              (lambda L=L, dps=dps, iv=interval: lag_weights(EXACT_SPEC, L, dps=dps, interval=iv))))
    B, T = kernel_shape
    X = np.random.default_rng(2).standard_normal((B, T, 1))
    cases.append((f"kernel theory.kernel.conv_ntk: B={B}, T={T} at {kernel_dps} digits",
                   lambda: conv_ntk(EXACT_SPEC, X, dps=kernel_dps)))
    return cases


def run_exact(lags=(1000, 10000), dps_list=(50, 500), kernel_shape=(8, 64), kernel_dps=30,
              repeats: int = 3, log=None) -> List[Dict]:
    """Records ``{"case", "median_s", "repeats"}``."""
    out = []
    for desc, fn in exact_cases(lags, dps_list, kernel_shape, kernel_dps):
        if log:
            log(f"  exact: {desc}")
        med, k = _median_time(fn, repeats)
        out.append({"case": desc, "median_s": med, "repeats": k})
    return out
