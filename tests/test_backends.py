"""One array code, several backends: numpy, array-api-strict, torch (CPU; CUDA and CuPy when present).

The fixture ``backend`` runs over every backend present.  Besides numpy and
torch it includes array-api-strict twice: on its default device and on its
second device ``device1``.  array-api-strict refuses to combine arrays of two
devices, so that second run catches, on a CPU-only machine, every array that
the code creates without ``device=`` -- the bug that would break it on CUDA.
CUDA parameters are marked ``gpu`` (run with ``--run-gpu``; ``python -m verify
gpu-check`` does that on a GPU machine).

Norm used throughout: the relative Frobenius norm ``||a - b||_F / ||b||_F``
over the whole array (``b`` the numpy float64 result).
"""
from __future__ import annotations

import math
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.spec import RNNSpec, SpecError
from verify.engine.backend import Backend, BackendError, get_backend, to_numpy
from verify.engine.ntk import empirical_ntk, lag_gram
from verify.engine.rnn import LinearRNN, forward, impulse_response, init_rnn
from verify.engine.scm import ScaledConvModel, scm_forward, scm_from_spec, scm_gradient, scm_jacobian, scm_ntk

try:  # the project's exported strategies, when that module exists
    from verify import strategies as _strategies
except ImportError:  # pragma: no cover - depends on the state of the tree
    _strategies = None

U32 = 2.0 ** -24  # float32 unit roundoff
U64 = 2.0 ** -53  # float64 unit roundoff
# float64 cross-backend tolerance (the 1e-12).  Two backends evaluate the
# same expressions and differ only in summation order; the float64 error model
# used for float32 below gives <= u64 * 2 (L+1) (6 sqrt(n) + 1) ~ 1e-13 at the
# sizes drawn here (n <= 48, L <= 10), so 1e-12 leaves an order of magnitude.
TOL64 = 1e-12


def _strict(device_name: str):
    try:
        import array_api_strict as xps
    except ImportError:
        pytest.skip("array-api-strict is not installed")
    return Backend("array-api-strict", xps, xps.Device(device_name), xps.float64)


BACKEND_PARAMS = [
    pytest.param(("numpy", "cpu"), id="numpy"),
    pytest.param(("array-api-strict", "cpu"), id="array-api-strict"),
    pytest.param(("array-api-strict", "device1"), id="array-api-strict-device1"),
    pytest.param(("torch", "cpu"), id="torch-cpu"),
    pytest.param(("torch", "cuda"), id="torch-cuda", marks=pytest.mark.gpu),
    pytest.param(("cupy", "cuda"), id="cupy-cuda", marks=pytest.mark.gpu),
]


def make_backend(name: str, device: str, dtype: str = "float64") -> Backend:
    """The backend, or a skip naming why it is absent (not installed, no CUDA)."""
    if name == "array-api-strict" and device == "device1":
        be = _strict("device1")
        return be if dtype == "float64" else Backend(be.name, be.xp, be.device, getattr(be.xp, dtype))
    try:
        return get_backend(name, device, dtype)
    except BackendError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module", params=BACKEND_PARAMS)
def backend(request) -> Backend:
    return make_backend(*request.param)


@pytest.fixture(scope="module", params=[p for p in BACKEND_PARAMS if p.values[0][1] != "device1"])
def backend32(request) -> Backend:
    return make_backend(*request.param, dtype="float32")


# ---------------------------------------------------------------- strategies
def _local_specs():
    """Specifications over both conventions, all metrics, with and without D."""
    decimal_strings = lambda lo, hi: st.integers(int(lo * 100), int(hi * 100)).map(lambda k: f"{k / 100:.2f}")
    return st.builds(
        RNNSpec,
        sigma_w=decimal_strings(0.2, 1.1), sigma_f=decimal_strings(0.3, 2.0), sigma_c=decimal_strings(0.3, 2.0),
        sigma_d=st.one_of(st.none(), decimal_strings(0.3, 2.0)),
        n_x=st.integers(1, 3), n_y=st.integers(1, 3),
        metric=st.sampled_from(["ntk", "variance", "standard"]),
        convention=st.sampled_from(["conv1", "conv2"]),
        lr_w=st.sampled_from(["1", "0", "0.5"]), lr_f=st.sampled_from(["1", "0"]),
        lr_c=st.sampled_from(["1", "2"]), lr_d=st.just("1"),
    )


_LR = (0, "0.5", 1, 2)  # learning-rate multipliers drawn per group (0 freezes a group)


def spec_strategy():
    """``verify.strategies.specs`` (all metrics, conventions, D or not, lr multipliers) when present."""
    if _strategies is not None:
        return _strategies.specs(lr=_LR)
    return _local_specs()


def spec_batch_strategy(max_T: int = 8):
    """A spec with a matching float64 input batch ``(B, T, n_x)``, B <= 3."""
    if _strategies is not None:
        return _strategies.spec_and_batch(max_batch=3, max_T=max_T, lr=_LR)
    from hypothesis.extra import numpy as hnp

    return _local_specs().flatmap(lambda s: st.tuples(st.just(s), hnp.arrays(
        np.float64, st.tuples(st.integers(1, 3), st.integers(1, max_T), st.just(s.n_x)),
        elements=st.floats(-2, 2, allow_nan=False))))


def rel(a, b) -> float:
    """Relative Frobenius error of ``a`` against ``b`` (absolute if ``b`` is all zero)."""
    a = np.asarray(to_numpy(a), dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (nb if nb > 0 else 1.0))


def on(be: Backend, rnn: LinearRNN) -> LinearRNN:
    """The same weights, moved to ``be`` (and its dtype)."""
    return LinearRNN(*(None if a is None else be.asarray(a) for a in (rnn.W, rnn.F, rnn.C, rnn.D)))


# ------------------------------------------------- float64: same weights -> same numbers
@given(spec=spec_strategy(), n=st.integers(1, 48), lags=st.integers(1, 10), seed=st.integers(0, 2**32 - 1))
def test_same_weights_same_lag_gram(backend, spec, n, lags, seed):
    ref = init_rnn(spec, n, seed)
    rnn = init_rnn(spec, n, seed, backend)  # numpy draws moved to the backend: the same network
    for a, b in zip((rnn.W, rnn.F, rnn.C), (ref.W, ref.F, ref.C)):
        assert np.array_equal(to_numpy(a), b)
    got, want = lag_gram(rnn, spec, lags), lag_gram(ref, spec, lags)
    assert got.total.dtype == backend.dtype
    assert rel(got.total, want.total) <= TOL64
    assert set(got.shares) == set(want.shares)
    for g in want.shares:
        assert rel(got.shares[g], want.shares[g]) <= TOL64, g


@given(case=spec_batch_strategy(), n=st.integers(1, 32), seed=st.integers(0, 2**32 - 1))
def test_same_forward_impulse_response_and_ntk(backend, case, n, seed):
    spec, X = case
    B, T, _ = X.shape
    ref = init_rnn(spec, n, seed)
    rnn = on(backend, ref)
    Xb = backend.asarray(X)
    assert rel(forward(rnn, Xb, spec.convention), forward(ref, X, spec.convention)) <= TOL64
    assert rel(impulse_response(rnn, T, spec.convention), impulse_response(ref, T, spec.convention)) <= TOL64
    K = empirical_ntk(rnn, spec, Xb)
    assert tuple(K.shape) == (B, T, spec.n_y, B, T, spec.n_y)
    assert rel(K, empirical_ntk(ref, spec, X)) <= TOL64


def test_forward_is_the_impulse_response_convolution(backend):
    """An identity, on every backend: y_t = sum_l L_l x_(t-l) (L from impulse_response)."""
    for conv in ("conv1", "conv2"):
        spec = RNNSpec(sigma_w="0.9", sigma_f="1.2", sigma_c="0.7", sigma_d="0.5", n_x=2, n_y=3, convention=conv)
        rnn = init_rnn(spec, 24, 3, backend)
        X = np.random.default_rng(4).standard_normal((2, 7, 2))
        Y = to_numpy(forward(rnn, backend.asarray(X), conv))
        Lk = to_numpy(impulse_response(rnn, 7, conv))
        want = np.zeros_like(Y)
        for t in range(7):
            for l in range(t + 1):
                want[:, t] += X[:, t - l] @ Lk[l].T
        assert rel(Y, want) <= TOL64


@pytest.fixture(scope="module")
def scm_backend(backend) -> Backend:
    return backend


@given(spec=spec_strategy(), lags=st.integers(1, 8), B=st.integers(1, 3), T=st.integers(1, 8),
       seed=st.integers(0, 2**32 - 1))
@settings(max_examples=10)
def test_scaled_convolutional_model_on_backends(scm_backend, spec, lags, B, T, seed):
    """scm_forward, scm_gradient, scm_jacobian and scm_ntk of the same model agree with numpy."""
    backend = scm_backend
    rng = np.random.default_rng(seed)
    ref = scm_from_spec(spec, lags, rng.standard_normal((lags, spec.n_y, spec.n_x)))
    model = ScaledConvModel(backend.asarray(ref.scale), backend.asarray(ref.theta))
    X = rng.standard_normal((B, T, spec.n_x))
    G = rng.standard_normal((B, T, spec.n_y))
    Xb = backend.asarray(X)
    assert rel(scm_forward(model, Xb), scm_forward(ref, X)) <= TOL64
    assert rel(scm_gradient(model, Xb, backend.asarray(G)), scm_gradient(ref, X, G)) <= TOL64
    assert rel(scm_jacobian(model, Xb), scm_jacobian(ref, X)) <= TOL64
    assert rel(scm_ntk(model, Xb), scm_ntk(ref, X)) <= TOL64


def test_scm_jacobian_respects_the_device():
    be = _strict("device1")
    spec = RNNSpec(sigma_w="0.9", sigma_f="1", sigma_c="1", n_x=1, n_y=2)
    ref = scm_from_spec(spec, 3)
    model = ScaledConvModel(be.asarray(ref.scale), be.asarray(ref.theta))
    # array-api-strict refuses to combine arrays of two devices: an array made without device=
    # inside scm_jacobian would raise here; the result lives on device1 and equals numpy's
    J = scm_jacobian(model, be.asarray(np.ones((1, 3, 1))))
    from array_api_compat import device

    assert device(J) == be.device
    assert np.array_equal(to_numpy(J), scm_jacobian(ref, np.ones((1, 3, 1))))


# ------------------------------------------------------------------ float32
def float32_tolerance(n: int, lags: int) -> float:
    """Relative Frobenius tolerance of a float32 lag Gram against float64.

    Model (first order, probabilistic rounding-error analysis of Higham & Mary,
    SIAM J. Sci. Comput. 2019): an inner product of length n has relative error
    <= lambda sqrt(n) u except with probability 2 exp(-lambda^2/2); lambda = 6
    gives 3e-8 per inner product.  Each of the <= L Krylov steps and the final
    Gram adds one such error plus u from rounding the weights to float32
    (L + 1 terms); a Gram entry multiplies two Krylov factors (x 2).  Every share
    is a positive semi-definite Gram, so the total has no cancellation in the
    Frobenius norm.  Growth factor G = 2 (L + 1) (6 sqrt(n) + 1); tolerance u32 G.
    Measured (1,500 random specs, n <= 200, L <= 16, numpy): the largest error is
    0.09 of this tolerance, the median 0.005.
    """
    return U32 * 2 * (lags + 1) * (6 * math.sqrt(n) + 1)


@given(spec=spec_strategy(), n=st.integers(1, 64), lags=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_float32_lag_gram_error_is_within_the_rounding_model(backend32, spec, n, lags, seed):
    ref = init_rnn(spec, n, seed)
    rnn = on(backend32, ref)
    got = lag_gram(rnn, spec, lags)
    assert got.total.dtype == backend32.dtype  # really computed in float32
    want = lag_gram(ref, spec, lags).total
    if not np.any(want):  # e.g. conv2 with one lag and no D: the lag Gram is exactly zero, in float32 too
        assert not np.any(to_numpy(got.total))
    else:
        err = rel(got.total, want)
        assert err <= float32_tolerance(n, lags), (err, float32_tolerance(n, lags))


def test_float32_error_measured(backend32):
    """A fixed case whose numbers docs/gpu.md quotes: n = 256, L = 16, s_W = 0.9 (conv1, metric ntk).

    Also checks the float32 path is not secretly float64: rounding random weights
    to float32 must leave an error far above float64 roundoff.
    """
    spec = RNNSpec(sigma_w="0.9", sigma_f="1", sigma_c="1", n_x=1, n_y=1)
    ref = init_rnn(spec, 256, 0)
    err = rel(lag_gram(on(backend32, ref), spec, 16).total, lag_gram(ref, spec, 16).total)
    tol = float32_tolerance(256, 16)
    # Rounding random weights to float32 perturbs them by u32/sqrt(3) = 3.4e-8 RMS (relative rounding
    # error uniform on [-u, u]), and the lag Gram by that order (measured 1.5e-7): far above
    # 1e3 * u64 = 1.1e-13, so an error below that means the "float32" path ran in float64.
    assert 1e3 * U64 < err <= tol
    # TF32 tripwire (CUDA): TF32 rounds matmul inputs to a 10-bit mantissa, u = 2^-11, i.e. a
    # perturbation of u/sqrt(3) = 2.8e-4 RMS of the weights (measured effect on Theta: 1.4e-4 .. 3.3e-4,
    # seeds 0-2).  u_tf32 / 10 = 4.9e-5 lies 3x below that and 300x above IEEE float32's 1.5e-7.
    assert err < 2.0 ** -11 / 10
    print(f"float32 lag Gram ({backend32.name}), n=256, L=16: relative Frobenius error {err:.2e} "
          f"(tolerance {tol:.2e})")


# ----------------------------------------------------------- native draws
@pytest.mark.parametrize("name, device", [
    pytest.param("torch", "cpu", id="torch-cpu"),
    pytest.param("torch", "cuda", id="torch-cuda", marks=pytest.mark.gpu),
    pytest.param("cupy", "cuda", id="cupy-cuda", marks=pytest.mark.gpu),
])
def test_native_draws_are_seeded_and_scaled(name, device):
    be = make_backend(name, device)
    nat = get_backend(name, device, draws="native")
    spec = RNNSpec(sigma_w="0.8", sigma_f="1.5", sigma_c="0.5", sigma_d="1", n_x=2, n_y=1)
    n = 256
    a, b, c = init_rnn(spec, n, 7, nat), init_rnn(spec, n, 7, nat), init_rnn(spec, n, 8, nat)
    assert all(np.array_equal(to_numpy(x), to_numpy(y)) for x, y in zip((a.W, a.F, a.C, a.D), (b.W, b.F, b.C, b.D)))
    assert not np.array_equal(to_numpy(a.W), to_numpy(c.W))
    assert a.W.dtype == be.dtype and a.D is not None
    # numpy draws (the default) are not the native ones: the default is unchanged
    assert not np.array_equal(to_numpy(a.W), init_rnn(spec, n, 7).W)
    # W_ij ~ N(0, s_W^2/n): the sample variance of sqrt(n) W / s_W over N = n^2 = 65,536
    # entries has standard error sqrt(2/N) = 0.0055; 6 of them (0.033) bound a false
    # failure by 2e-9 (the draw is seeded, so the test is deterministic anyway).
    # Same for the mean (standard error 1/sqrt(N)).
    z = to_numpy(a.W) * math.sqrt(n) / 0.8
    assert abs(z.var() - 1) <= 6 * math.sqrt(2 / z.size)
    assert abs(z.mean()) <= 6 / math.sqrt(z.size)
    # the lag Gram does not care where the draws came from
    ref = LinearRNN(*(to_numpy(x) for x in (a.W, a.F, a.C, a.D)))
    assert rel(lag_gram(a, spec, 6).total, lag_gram(ref, spec, 6).total) <= TOL64


def test_native_draws_on_numpy_are_the_numpy_draws():
    spec = RNNSpec(sigma_w="0.8", sigma_f="1", sigma_c="1", n_x=1, n_y=1)
    a = init_rnn(spec, 16, 3, get_backend("numpy", draws="native"))
    assert np.array_equal(a.W, init_rnn(spec, 16, 3).W)


# ----------------------------------------------- missing backend or device: one line
def _one_line(exc) -> str:
    msg = str(exc)
    assert msg and "\n" not in msg
    return msg


@pytest.mark.parametrize("args, needle", [
    (("jax", "cpu"), "unknown backend 'jax'"),
    (("numpy", "tpu"), "unknown device 'tpu'"),
    (("numpy", "cuda"), "numpy backend runs on the CPU only"),
    (("array-api-strict", "cuda"), "array-api-strict runs on the CPU only"),
    (("cupy", "cpu"), "cupy backend needs --device cuda"),
    (("numpy", "cpu", "float16"), "dtype must be float64 or float32"),
])
def test_bad_backend_device_or_dtype(args, needle):
    with pytest.raises(BackendError) as info:
        get_backend(*args)
    assert needle in _one_line(info.value)


def test_bad_draws():
    with pytest.raises(BackendError, match="draws must be one of numpy, native"):
        get_backend("numpy", draws="gpu")
    spec = RNNSpec(sigma_w="0.8", sigma_f="1", sigma_c="1", n_x=1, n_y=1)
    with pytest.raises(SpecError, match="draws must be one of"):
        init_rnn(spec, 4, 0, draws="curand")


def test_missing_packages_give_one_line(monkeypatch):
    for mod, name, device, needle in (
        ("cupy", "cupy", "cuda", "backend cupy is not installed"),
        ("torch", "torch", "cpu", "backend torch is not installed"),
        ("array_api_strict", "array-api-strict", "cpu", "backend array-api-strict is not installed"),
    ):
        with monkeypatch.context() as m:
            m.setitem(sys.modules, mod, None)  # import of a None entry raises ImportError
            with pytest.raises(BackendError) as info:
                get_backend(name, device)
            assert needle in _one_line(info.value)


def test_cuda_absent_gives_one_line(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(BackendError) as info:
        get_backend("torch", "cuda")
    assert "device cuda is not available to torch" in _one_line(info.value)


@pytest.mark.parametrize("argv, needle", [
    (["gpu-check", "--backend", "torch", "--device", "cuda"], "device cuda is not available to torch"),
    (["gpu-check", "--backend", "cupy", "--device", "cuda"], "cupy"),
    (["gpu-check", "--backend", "numpy"], "invalid choice"),
])
def test_cli_missing_backend_or_device_exits_2(argv, needle, tmp_path, capsys, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CUDA machine behaves like this one
    monkeypatch.setitem(sys.modules, "cupy", None)
    from verify.cli.main import main

    assert main(argv + ["--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and needle in err
    assert not (tmp_path / "o" / "gpu_check.json").exists()


def test_to_numpy_round_trip(backend):
    a = np.arange(6.0).reshape(2, 3)
    b = to_numpy(backend.asarray(a))
    assert isinstance(b, np.ndarray) and np.array_equal(b, a)


# ------------------------------------------------------------- the GPU script, on the CPU
def test_gpu_check_on_the_cpu(tmp_path, capsys):
    """``python -m verify gpu-check --device cpu`` at small widths: every section of the report is there."""
    pytest.importorskip("torch")
    from verify.cli.main import main

    out = tmp_path / "gc"
    rc = main(["gpu-check", "--device", "cpu", "--backend", "torch", "--max-width", "256", "--num-widths", "3",
               "--seeds", "2", "--lags", "8", "--sigma-w", "0.5", "--no-pytest", "--out", str(out)])
    rep = __import__("json").loads((out / "gpu_check.json").read_text())
    assert rc == (0 if rep["status"] == "passed" else 1)
    assert rep["machine"]["backend"] == "torch" and rep["machine"]["device"] == "cpu"
    assert rep["machine"]["torch"] and rep["machine"]["card"].startswith("none")
    for name in ("cross_backend", "float32_not_tf32", "autodiff"):
        assert rep["checks"][name]["passed"], (name, rep["checks"][name])
    assert rep["checks"]["cross_backend"]["value"] <= TOL64
    assert [t["width"] for t in rep["timings"]] == [64, 128, 256]
    assert all(t["draw_s"] >= 0 and t["lag_gram_s"] > 0 for t in rep["timings"])
    sw = rep["sweep"]
    assert sw["widths"] == [64, 128, 256] and sw["seeds"] == [0, 1]
    assert sw["verdict"] in ("consistent", "inconsistent") and len(sw["frob_mean"]) == 3
    assert rep["pytest"]["status"] == "skipped" and not rep["errors"]
    md = (out / "gpu_check.md").read_text()
    assert "## Checks" in md and "## Timings" in md and "## Sweep" in md
    assert "# gpu-check" in capsys.readouterr().out


def test_gpu_check_drops_widths_that_do_not_fit_the_time_limit(tmp_path):
    """With no time left, no width is swept: the report says so and the run fails (exit 1)."""
    pytest.importorskip("torch")
    from verify.cli.main import main

    out = tmp_path / "gc"
    rc = main(["gpu-check", "--device", "cpu", "--backend", "torch", "--max-width", "64", "--num-widths", "3",
               "--seeds", "2", "--lags", "4", "--no-pytest", "--time-limit", "0.001", "--out", str(out)])
    rep = __import__("json").loads((out / "gpu_check.json").read_text())
    assert rc == 1 and rep["status"] == "FAILED"
    assert rep["dropped_widths"] == [16, 32, 64] and "sweep" not in rep
    assert rep["checks"]["sweep"]["passed"] is False
    assert rep["checks"]["cross_backend"]["passed"]  # the exact checks still ran


def test_gpu_check_runs_the_property_tests(tmp_path):
    """The pytest step: a subprocess on this file with a recorded hypothesis seed (here a small -k)."""
    import time
    from argparse import Namespace

    from verify.harness.gpu_check import run_pytest

    args = Namespace(device="cpu", pytest_k="bad_backend_device_or_dtype")
    res = run_pytest(args, time.perf_counter() + 120, tmp_path, files=["test_backends.py"])
    assert res["status"] == "passed", (tmp_path / "pytest.txt").read_text()
    assert "6 passed" in res["summary"] and "--run-gpu" not in res["command"]
    assert f"--hypothesis-seed={res['hypothesis_seed']}" in (tmp_path / "pytest.txt").read_text()


@pytest.mark.parametrize("extra, needle", [
    (["--max-width", "4"], "--max-width must be at least 8"),
    (["--num-widths", "2"], "--num-widths must be at least 3"),
    (["--seeds", "1"], "--seeds must be at least 2"),
    (["--dtype", "float16"], "invalid choice"),
])
def test_gpu_check_bad_input_exits_2(extra, needle, tmp_path, capsys):
    from verify.cli.main import main

    assert main(["gpu-check", "--device", "cpu", "--out", str(tmp_path / "o")] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and needle in err


# ------------------------------------------------- the computing commands take --backend/--device
def _saved_network(tmp_path):
    from verify.engine.npz import save_rnn

    spec = RNNSpec(sigma_w="0.9", sigma_f="1", sigma_c="1", n_x=1, n_y=1)
    path = tmp_path / "net.npz"
    save_rnn(init_rnn(spec, 40, 3), path)
    return path


@pytest.mark.parametrize("command", ["run", "sweep", "ntk"])
@pytest.mark.parametrize("backend_args, needle", [
    (["--backend", "torch", "--device", "cuda"], "device cuda is not available to torch"),
    (["--backend", "cupy", "--device", "cuda"], "backend cupy is not installed"),
    (["--backend", "numpy", "--device", "cuda"], "numpy backend runs on the CPU only"),
])
def test_commands_with_a_missing_backend_or_device_exit_2(command, backend_args, needle, tmp_path, capsys,
                                                          monkeypatch):
    pytest.importorskip(f"verify.cli.commands.{command}")
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setitem(sys.modules, "cupy", None)
    from verify.cli.main import main

    extra = (["--weights", str(_saved_network(tmp_path)), "--sigma-w", "0.9", "--lags", "4"] if command == "ntk"
             else ["--out", str(tmp_path / "o")])
    assert main([command] + backend_args + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and needle in err, err


def test_ntk_command_same_lag_gram_on_every_cpu_backend(tmp_path, capsys):
    """End to end: ``python -m verify ntk --json`` gives the same Theta_n with numpy, array-api-strict, torch."""
    pytest.importorskip("verify.cli.commands.ntk")
    from verify.cli.main import main

    path = _saved_network(tmp_path)
    grams = {}
    for name in ("numpy", "array-api-strict", "torch"):
        try:
            get_backend(name)
        except BackendError:
            continue
        assert main(["ntk", "--weights", str(path), "--sigma-w", "0.9", "--lags", "6", "--backend", name,
                     "--json"]) == 0
        grams[name] = np.array(__import__("json").loads(capsys.readouterr().out)["theta"], dtype=np.float64)
    assert "numpy" in grams and len(grams) >= 2
    for name, gram in grams.items():
        assert gram.shape == (6, 6) and rel(gram, grams["numpy"]) <= TOL64, name
