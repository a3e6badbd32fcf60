"""Exact side: closed-form lag weights and weighted-convolution kernels of the
linear-RNN implicit-bias theorem, in arbitrary precision (mpmath, no randomness).

``theory`` never imports ``verify``.
"""
from theory.bias import (
    MinNormSolution,
    design_matrix,
    kernel_predict,
    min_norm_response,
    min_norm_response_float64,
    unweighted_min_norm,
    weighted_min_norm,
)
from theory.kernel import conv_kernel, conv_ntk, nngp
from theory.series import Series, mean_lag, memory_horizon, peak_lag, series, tail_weight, total_weight
from theory.spec import CONVENTIONS, GROUPS, METRICS, RNNSpec, SpecError
from theory.weights import lag_shares, lag_weights, markov_coefficients, nngp_lag_variances

__all__ = [
    "RNNSpec", "SpecError", "METRICS", "CONVENTIONS", "GROUPS",
    "lag_shares", "lag_weights", "markov_coefficients", "nngp_lag_variances",
    "Series", "series", "total_weight", "tail_weight", "mean_lag", "peak_lag", "memory_horizon",
    "conv_kernel", "conv_ntk", "nngp",
    "MinNormSolution", "design_matrix", "kernel_predict", "min_norm_response", "min_norm_response_float64",
    "unweighted_min_norm", "weighted_min_norm",
]
