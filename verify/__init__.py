"""Finite-width side: empirical NTKs of linear RNNs, comparisons with the exact
closed forms of :mod:`theory`, sweeps, training, and the command line
``python -m verify``.
"""
from verify._version import __version__
from verify.engine.backend import Backend, BackendError, get_backend
from verify.engine.npz import load_rnn, save_rnn
from verify.engine.ntk import LagGram, empirical_ntk, group_scales, krylov, lag_gram, limit_lag_gram, ntk_from_lag_gram
from verify.engine.rnn import LinearRNN, forward, impulse_response, init_rnn

__all__ = [
    "__version__",
    "LinearRNN", "init_rnn", "forward", "impulse_response", "save_rnn", "load_rnn",
    "LagGram", "lag_gram", "ntk_from_lag_gram", "empirical_ntk", "group_scales", "krylov", "limit_lag_gram",
    "Backend", "BackendError", "get_backend",
]
