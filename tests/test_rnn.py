"""Finite-width linear RNN (verify.engine.rnn): forward pass, impulse response, conventions, files.

Rounding tolerances: two float64 evaluations of the same multilinear expression
differ by at most ``2 gamma_K A`` per entry, ``gamma_K ~ K u`` (u = 2^-53) where
``K`` bounds the number of roundings along any path and ``A`` is the same
expression evaluated on the absolute values of every matrix and input (it
dominates the absolute value of every partial sum).  Here ``K = T (n + n_x + 2) + n + 2``;
gradual underflow adds ``K 2^-1074``.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from theory.spec import RNNSpec, SpecError
from verify import strategies as vst
from verify.engine.npz import load_rnn, save_rnn
from verify.engine.rnn import LinearRNN, forward, impulse_response, init_rnn

U = 2.0**-53


def _abs_rnn(rnn: LinearRNN) -> LinearRNN:
    return LinearRNN(abs(rnn.W), abs(rnn.F), abs(rnn.C), None if rnn.D is None else abs(rnn.D))


def _rounding_bound(rnn: LinearRNN, X, convention: str) -> np.ndarray:
    """``2 K u A`` with ``A`` the forward pass of the absolute network on ``|X|`` (module docstring)."""
    T = X.shape[1]
    K = T * (rnn.n + rnn.n_x + 2) + rnn.n + 2
    # + K 2^-1074: gradual underflow adds at most 2^-1075 absolute per rounding
    return 2 * K * U * forward(_abs_rnn(rnn), abs(X), convention) + K * 2.0**-1074


def _convolve(L: np.ndarray, X: np.ndarray) -> np.ndarray:
    """``y_t = sum_(l <= t) L_l x_(t-l)`` done directly."""
    B, T, _ = X.shape
    Y = np.zeros((B, T, L.shape[1]))
    for t in range(T):
        for l in range(t + 1):
            Y[:, t] += X[:, t - l] @ L[l].T
    return Y


@given(case=vst.spec_and_batch(max_T=16), width=st.integers(1, 12), seed=vst.seeds())
def test_forward_is_convolution_with_impulse_response(case, width, seed):
    spec, X = case
    rnn = init_rnn(spec, width, seed)
    T = X.shape[1]
    Y = forward(rnn, X, spec.convention)
    L = impulse_response(rnn, T, spec.convention)
    assert Y.shape == (X.shape[0], T, spec.n_y) and L.shape == (T, spec.n_y, spec.n_x)
    bound = _rounding_bound(rnn, X, spec.convention)
    assert np.all(np.abs(Y - _convolve(L, X)) <= bound)


@given(case=vst.spec_and_batch(max_T=16, with_d=True), width=st.integers(1, 12), seed=vst.seeds())
def test_conv2_is_conv1_delayed_by_one_step(case, width, seed):
    """Same weights: conv2 output at t = D x_t + (conv1 output without D) at t-1; conv2 L_0 = D,
    L_l = (conv1 L without D)_(l-1)."""
    spec, X = case
    rnn = init_rnn(spec, width, seed)
    no_d = dataclasses.replace(rnn, D=None)
    T = X.shape[1]
    L1 = impulse_response(no_d, T, "conv1")
    L2 = impulse_response(rnn, T, "conv2")
    np.testing.assert_array_equal(L2[0], rnn.D)
    np.testing.assert_array_equal(L2[1:], L1[: T - 1])  # the same products, in the same order
    Y1 = forward(no_d, X, "conv1")
    Y2 = forward(rnn, X, "conv2")
    expected = X @ rnn.D.T
    expected[:, 1:] += Y1[:, :-1]
    bound = _rounding_bound(rnn, X, "conv2")
    assert np.all(np.abs(Y2 - expected) <= bound)


@pytest.mark.parametrize("convention", ["conv1", "conv2"])
def test_impulse_response_of_a_hand_made_network(convention):
    # n = 2, W = [[0, 1], [0, 0]] (nilpotent), F = e_2, C = e_1^T, D = 5:
    # C F = 0, C W F = 1, C W^2 F = 0.
    rnn = LinearRNN(np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([[0.0], [1.0]]), np.array([[1.0, 0.0]]),
                    np.array([[5.0]]))
    L = impulse_response(rnn, 4, convention)[:, 0, 0]
    expected = [5.0, 1.0, 0.0, 0.0] if convention == "conv1" else [5.0, 0.0, 1.0, 0.0]
    np.testing.assert_array_equal(L, expected)
    Y = forward(rnn, np.array([[[1.0], [0.0], [0.0], [0.0]]]), convention)[0, :, 0]
    np.testing.assert_array_equal(Y, expected)


@given(spec=vst.specs(max_dims=3), width=st.integers(1, 9), seed=vst.seeds())
def test_save_load_round_trip(tmp_path_factory, spec, width, seed):
    rnn = init_rnn(spec, width, seed)
    path = tmp_path_factory.mktemp("rnn") / "net.npz"
    save_rnn(rnn, path)
    with np.load(path) as data:
        assert sorted(data.files) == (["C", "D", "F", "W"] if spec.has_d else ["C", "F", "W"])
        assert data["W"].shape == (width, width) and data["F"].shape == (width, spec.n_x)
        assert data["C"].shape == (spec.n_y, width)
    back = load_rnn(path)
    for name in ("W", "F", "C", "D"):
        a, b = getattr(rnn, name), getattr(back, name)
        if a is None:
            assert b is None
        else:
            np.testing.assert_array_equal(a, b)  # bit-exact
    back.check(spec)


def test_same_seed_same_network_and_scales():
    spec = RNNSpec(sigma_w="0.5", sigma_f="2", sigma_c="0.25", sigma_d="3", n_x=2, n_y=3)
    a, b = init_rnn(spec, 64, 7), init_rnn(spec, 64, 7)
    np.testing.assert_array_equal(a.W, b.W)
    assert not np.array_equal(a.W, init_rnn(spec, 64, 8).W)
    # init_rnn draws W, F, C, D in this order from default_rng(seed), scaled by sigma / sqrt(fan-in)
    rng = np.random.default_rng(7)
    np.testing.assert_allclose(a.W, rng.standard_normal((64, 64)) * 0.5 / 8, rtol=4 * U, atol=0)
    np.testing.assert_allclose(a.F, rng.standard_normal((64, 2)) * 2 / np.sqrt(2), rtol=4 * U, atol=0)
    np.testing.assert_allclose(a.C, rng.standard_normal((3, 64)) * 0.25 / 8, rtol=4 * U, atol=0)
    np.testing.assert_allclose(a.D, rng.standard_normal((3, 2)) * 3 / np.sqrt(2), rtol=4 * U, atol=0)


# ----------------------------------------------------------------------------- errors


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert msg and "\n" not in msg
    return msg


def test_load_missing_file(tmp_path):
    with pytest.raises(SpecError) as e:
        load_rnn(tmp_path / "nope.npz")
    assert "no such file" in _one_line(e)


def test_load_missing_key(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, W=np.eye(3), F=np.ones((3, 1)))
    with pytest.raises(SpecError) as e:
        load_rnn(path)
    msg = _one_line(e)
    assert "missing" in msg and "C" in msg


def test_load_missing_key_message_is_not_wrapped(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, W=np.eye(3), F=np.ones((3, 1)))
    with pytest.raises(SpecError) as e:
        load_rnn(path)
    assert "not a readable" not in _one_line(e)


def test_load_rejects_complex_weights(tmp_path):
    path = tmp_path / "complex.npz"
    np.savez(path, W=np.eye(2) * (1 + 1j), F=np.ones((2, 1)), C=np.ones((1, 2)))
    with pytest.raises(SpecError):
        load_rnn(path)


def test_load_not_an_npz(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_text("not a zip file")
    with pytest.raises(SpecError) as e:
        load_rnn(path)
    assert "junk.npz" in _one_line(e)


def test_load_shape_mismatch_and_non_finite(tmp_path):
    path = tmp_path / "shape.npz"
    np.savez(path, W=np.eye(3), F=np.ones((4, 1)), C=np.ones((1, 3)))
    with pytest.raises(SpecError) as e:
        load_rnn(path)
    assert "F must have shape" in _one_line(e)
    path = tmp_path / "nan.npz"
    np.savez(path, W=np.eye(2) * np.nan, F=np.ones((2, 1)), C=np.ones((1, 2)))
    with pytest.raises(SpecError) as e:
        load_rnn(path)
    assert "non-finite" in _one_line(e)


@pytest.mark.parametrize(
    "W, F, C, D, needle",
    [
        (np.ones((2, 3)), np.ones((2, 1)), np.ones((1, 2)), None, "W must be square"),
        (np.eye(2), np.ones((3, 1)), np.ones((1, 2)), None, "F must have shape"),
        (np.eye(2), np.ones((2, 1)), np.ones((1, 3)), None, "C must have shape"),
        (np.eye(2), np.ones((2, 1)), np.ones((1, 2)), np.ones((2, 2)), "D must have shape"),
        (np.eye(2), np.ones(2), np.ones((1, 2)), None, "F must have shape"),
    ],
)
def test_linear_rnn_shape_errors(W, F, C, D, needle):
    with pytest.raises(SpecError) as e:
        LinearRNN(W, F, C, D)
    assert needle in _one_line(e)


def test_forward_and_impulse_response_errors():
    rnn = init_rnn(RNNSpec(sigma_w="0.5", n_x=2), 4, 0)
    cases = ((np.ones((1, 3, 3)), "n_x = 3"), (np.ones((3, 2)), "(B, T, n_x)"), (np.ones((0, 3, 2)), "non-empty"))
    for X, needle in cases:
        with pytest.raises(SpecError) as e:
            forward(rnn, X)
        assert needle in _one_line(e)
    with pytest.raises(SpecError) as e:
        forward(rnn, np.ones((1, 3, 2)), "conv3")
    assert "convention" in _one_line(e)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(SpecError) as e:
            impulse_response(rnn, bad)
        assert "lags" in _one_line(e)
    for bad in (0, -3, 1.5, True):
        with pytest.raises(SpecError) as e:
            init_rnn(RNNSpec(sigma_w="0.5"), bad, 0)
        assert "width" in _one_line(e)


def test_check_against_spec():
    rnn = init_rnn(RNNSpec(sigma_w="0.5", n_x=2, n_y=1), 4, 0)
    with pytest.raises(SpecError) as e:
        rnn.check(RNNSpec(sigma_w="0.5", n_x=1, n_y=1))
    assert "n_x" in _one_line(e)
    with pytest.raises(SpecError) as e:
        rnn.check(RNNSpec(sigma_w="0.5", n_x=2, n_y=1, sigma_d=1))
    assert "D" in _one_line(e)


# ----------------------------------------------------------------------------- strategies


@given(spec=vst.specs(lr=(0, "0.5", 1)), X=vst.input_batches(2, max_batch=3, max_T=16))
def test_strategies_stay_in_their_ranges(spec, X):
    from fractions import Fraction

    assert Fraction("0.2") <= spec.sigma_w <= Fraction("1.1")
    for s in (spec.sigma_f, spec.sigma_c) + ((spec.sigma_d,) if spec.has_d else ()):
        assert Fraction("0.3") <= s <= 2 and (s * 100).denominator == 1  # exact decimals
    assert 1 <= spec.n_x <= 3 and 1 <= spec.n_y <= 3
    assert {spec.lr(g) for g in "WFCD"} <= {0, Fraction(1, 2), 1}
    assert X.dtype == np.float64 and 1 <= X.shape[0] <= 3 and 1 <= X.shape[1] <= 16 and X.shape[2] == 2
    assert np.all(np.isfinite(X)) and np.all(np.abs(X) <= 2)


def test_strategy_argument_errors():
    with pytest.raises(SpecError, match="low must be <= high"):
        vst.scales(1, "0.5")
    with pytest.raises(SpecError, match="max_T"):
        vst.input_batches(1, max_T=0)
    with pytest.raises(SpecError, match="min_T"):
        vst.input_batches(1, min_T=5, max_T=2)
    with pytest.raises(SpecError, match="lags"):
        vst.lags(0)
