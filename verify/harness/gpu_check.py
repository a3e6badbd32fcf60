"""The prepared GPU verification (``python -m verify gpu-check``), as library code.

:func:`run_check` is one run, meant to finish within ``time_limit`` seconds (default 300)
on one GPU.  It

1. records the machine: card name and memory, CUDA/torch/cupy/numpy versions, the TF32
   switches (all off: :func:`verify.engine.backend.get_backend` turns them off);
2. runs :func:`property_checks` (library code, so an installed copy runs them too): random
   specifications, widths and lags, each checked on the device against numpy float64 on the
   CPU (lag Gram with its shares, forward pass, impulse response and batch NTK to 1e-12
   relative Frobenius; the float32 lag Gram within the rounding model of
   :func:`float32_tolerance`); then, when a source checkout with ``tests/`` and pytest is
   there, the backend and autodiff property tests (``--run-gpu`` on CUDA) under a random
   hypothesis seed that the report records (:func:`run_pytest`);
3. runs three exact checks on the device: the same (numpy-drawn) network gives the same lag
   Gram as numpy on the CPU (<= 1e-12); float32 on the device is IEEE float32, not TF32
   (error < 2^-11/10 on a fixed case); torch.func's jacobian-contraction NTK equals the
   structured NTK on the device (<= 1e-10; torch backend only);
4. times the draw, the Krylov sequences and the whole lag Gram per width (device synchronized
   before each clock read), then sweeps widths up to ``max_width`` (default 32768, where W
   alone is 8 GiB in float64) with ``seeds`` seeds through :func:`verify.stats.sweep.sweep`,
   dropping the widest widths only if the measured costs say they would not fit the time limit.

It has not yet run on a GPU; it is tested on the CPU (``device="cpu"``).
"""
from __future__ import annotations

import importlib.util
import math
import os
import platform
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from theory.spec import RNNSpec
from verify.engine.backend import ComputeOptions, get_backend, to_numpy
from verify.engine.ntk import empirical_ntk, krylov, lag_gram
from verify.engine.rnn import LinearRNN, forward, impulse_response, init_rnn
from verify.internal import limits, validate
from verify.internal.errors import BadInput
from verify.stats.sweep import SweepPlan, sweep

__all__ = ["GPUCheckOptions", "run_check", "property_checks", "float32_tolerance", "machine_info", "run_pytest",
           "exact_checks", "time_width", "markdown", "TOL64", "TOL_AUTODIFF", "TF32_TRIPWIRE"]

#: float64 cross-backend tolerance.  Two backends evaluate the same expressions and differ only
#: in summation order; the error model of :func:`float32_tolerance`, with float64's unit roundoff,
#: gives <= 2^-53 * 2 (L+1) (6 sqrt(n) + 1) ~ 1e-13 at the sizes checked (n <= 48, L <= 10).
TOL64 = 1e-12
#: torch.func against the structured NTK: two float64 routes, each within ~1e-14 (test_autodiff.py).
TOL_AUTODIFF = 1e-10
#: TF32 rounds matmul inputs to a 10-bit mantissa (u = 2^-11); rounding the weights of the fixed
#: case to TF32 alone moves its lag Gram by >= 1.4e-4, IEEE float32 by ~1.5e-7 (test_backends.py).
TF32_TRIPWIRE = 2.0 ** -11 / 10
U32 = 2.0 ** -24  # float32 unit roundoff


def float32_tolerance(n: int, lags: int) -> float:
    """Relative Frobenius tolerance of a float32 lag Gram against float64: ``u32 * 2 (L+1) (6 sqrt(n) + 1)``.

    Probabilistic rounding-error model (Higham & Mary, SIAM J. Sci. Comput. 2019): an inner
    product of length n has relative error <= 6 sqrt(n) u except with probability
    2 exp(-18) = 3e-8; L Krylov steps and the final Gram add one such error each plus u for
    rounding the weights (L + 1 terms), and a Gram entry multiplies two Krylov factors (x 2).
    """
    return U32 * 2 * (lags + 1) * (6 * math.sqrt(n) + 1)


@dataclass(frozen=True)
class GPUCheckOptions:
    """The knobs of :func:`run_check` (the command's flags)."""

    device: str = "cuda"
    backend: str = "torch"
    dtype: str = "float64"
    draws: str = "native"
    max_width: int = 32768
    num_widths: int = 7
    seeds: int = 3
    time_limit: float = 300.0
    pytest: bool = True
    pytest_k: Optional[str] = None
    lags: int = 16

    @property
    def widths(self) -> List[int]:
        """``max_width / 2^k``, ``k = 0..num_widths-1``, ascending."""
        return _widths(self.max_width, self.num_widths)

    def check(self) -> None:
        """Validate every field (one-line :class:`verify.internal.errors.BadInput` naming the flag)."""
        validate.integer(self.max_width, "--max-width", minimum=8)
        validate.integer(self.num_widths, "--num-widths", minimum=3)
        validate.integer(self.seeds, "--seeds", minimum=2)
        validate.number(self.time_limit, "--time-limit", minimum=0, open_minimum=True)
        validate.lags(self.lags)
        self.widths  # noqa: B018 - raises when the halvings go below 4

    def cost(self, spec) -> limits.Cost:
        """The sweep plus one timed draw per width (:func:`verify.internal.limits.sweep_cost`)."""
        return limits.sweep_cost(self.widths, self.seeds + 1, self.lags, spec.n_x, spec.n_y,
                                   itemsize=4 if self.dtype == "float32" else 8)


def _widths(max_width: int, count: int) -> List[int]:
    if max_width < 8:
        raise BadInput(f"--max-width must be at least 8, got {max_width}")
    if count < 3:
        raise BadInput(f"--num-widths must be at least 3 (the slope needs 3 widths), got {count}")
    widths = [max_width >> k for k in range(count)]
    if widths[-1] < 4:
        raise BadInput(f"--num-widths {count} halves --max-width {max_width} below 4")
    return sorted(widths)


def _rel(a, b) -> float:
    a = np.asarray(to_numpy(a), dtype=np.float64)
    b = np.asarray(to_numpy(b), dtype=np.float64)
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / (nb if nb > 0 else 1.0))


def machine_info(be) -> Dict[str, Any]:
    """Card, versions and the float switches that decide what the numbers mean."""
    info: Dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "numpy": np.__version__,
        "backend": be.name,
        "device": str(be.device),
        "dtype": str(be.dtype),
    }
    try:
        import array_api_compat

        info["array_api_compat"] = array_api_compat.__version__
    except ImportError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.version.cuda
        info["tf32_matmul"] = bool(torch.backends.cuda.matmul.allow_tf32)
        info["tf32_cudnn"] = bool(torch.backends.cudnn.allow_tf32)
        info["float32_matmul_precision"] = torch.get_float32_matmul_precision()
        if be.on_cuda and torch.cuda.is_available():
            props = torch.cuda.get_device_properties(0)
            info["card"] = props.name
            info["card_memory_gib"] = round(props.total_memory / 2**30, 2)
            info["compute_capability"] = f"{props.major}.{props.minor}"
    except ImportError:
        info["torch"] = None
    try:
        import cupy

        info["cupy"] = cupy.__version__
        if be.name == "cupy":
            props = cupy.cuda.runtime.getDeviceProperties(0)
            name = props["name"]
            info["card"] = name.decode() if isinstance(name, bytes) else str(name)
            info["card_memory_gib"] = round(props["totalGlobalMem"] / 2**30, 2)
            info["cupy_tf32_env"] = os.environ.get("CUPY_TF32", "0 (default: off)")
    except ImportError:
        info["cupy"] = None
    if "card" not in info:
        info["card"] = f"none (device {be.device})"
    return info


def run_pytest(options, deadline: float, out: Path, files: Optional[List[str]] = None) -> Dict[str, Any]:
    """The backend and autodiff property tests (or ``files`` under ``tests/``) of a source checkout, in a
    subprocess, under a random hypothesis seed; output in ``out/pytest.txt``.

    ``options`` needs ``device`` and ``pytest_k``.  Needs the source tree's ``tests/`` folder and pytest
    with hypothesis (the ``test`` extra); without them the result says "unavailable" and why (an
    installed copy has no tests: :func:`property_checks` covers the same identities as library code).
    """
    root = Path(__file__).resolve().parents[2]
    names = files or ["test_backends.py", "test_autodiff.py"]
    paths = [root / "tests" / f for f in names if (root / "tests" / f).exists()]
    if not paths:
        return {"status": "unavailable", "reason": f"no tests found under {root / 'tests'} (an installed copy has "
                "no tests; the library property checks ran instead)"}
    missing = [m for m in ("pytest", "hypothesis") if importlib.util.find_spec(m) is None]
    if missing:
        return {"status": "unavailable", "reason": f"needs {' and '.join(missing)} (pip install "
                "'rnn-implicit-bias[test]'); the library property checks ran instead"}
    seed = random.SystemRandom().randrange(2**32)
    cmd = [sys.executable, "-m", "pytest", *map(str, paths), "-q", "-rfEsx", "-p", "no:cacheprovider",
           f"--hypothesis-seed={seed}", "--rootdir", str(root)]
    if options.device == "cuda":
        cmd.append("--run-gpu")
    if options.pytest_k:
        cmd += ["-k", options.pytest_k]
    budget = max(10.0, deadline - time.perf_counter())
    t0 = time.perf_counter()
    env = dict(os.environ, RNN_VERIFY_PROGRESS="0")
    try:
        proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=budget, env=env)
        rc, text = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        rc = None
        text = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        text += f"\n[gpu-check] pytest stopped after {budget:.0f} s (time limit)\n"
    (out / "pytest.txt").write_text(" ".join(cmd) + "\n\n" + text)
    summary = next((line.strip() for line in reversed(text.splitlines())
                    if " passed" in line or " failed" in line or "error" in line or "no tests ran" in line), "")
    return {"status": "passed" if rc == 0 else "failed", "returncode": rc, "hypothesis_seed": seed,
            "command": " ".join(cmd), "summary": summary, "seconds": round(time.perf_counter() - t0, 2)}


def exact_checks(options: "GPUCheckOptions", spec, lags: int) -> Dict[str, Dict[str, Any]]:
    """Cross-backend identity, the float32 (no TF32) tripwire and the autodiff cross-check, on the device."""

    checks: Dict[str, Dict[str, Any]] = {}
    be64 = get_backend(options.backend, options.device, "float64")
    n = min(1024, options.max_width)
    ref = init_rnn(spec, n, 0)  # numpy draws: the same network everywhere
    got = lag_gram(LinearRNN(*(None if a is None else be64.asarray(a) for a in (ref.W, ref.F, ref.C, ref.D))),
                   spec, lags)
    err = _rel(got.total, lag_gram(ref, spec, lags).total)
    checks["cross_backend"] = {
        "statement": f"same weights (numpy draws, n = {n}, L = {lags}): lag Gram on "
                     f"{options.backend}/{options.device} "
                     f"equals numpy float64 on the CPU to {TOL64:g} (relative Frobenius)",
        "value": err, "tolerance": TOL64, "passed": bool(err <= TOL64)}

    be32 = get_backend(options.backend, options.device, "float32")
    fspec = spec.__class__(sigma_w="0.9", sigma_f="1", sigma_c="1", n_x=1, n_y=1)
    fref = init_rnn(fspec, 256, 0)
    f32 = lag_gram(LinearRNN(*(be32.asarray(a) for a in (fref.W, fref.F, fref.C))), fspec, 16)
    err32 = _rel(f32.total, lag_gram(fref, fspec, 16).total)
    checks["float32_not_tf32"] = {
        "statement": "float32 lag Gram (n = 256, L = 16, s_W = 0.9) against float64: error below "
                     "u_TF32 / 10 = 2^-11 / 10 (TF32 rounding of the weights alone gives >= 1.4e-4)",
        "value": err32, "tolerance": TF32_TRIPWIRE, "passed": bool(err32 < TF32_TRIPWIRE)}

    if options.backend == "torch":
        aspec = spec.__class__(sigma_w="0.95", sigma_f="1.3", sigma_c="0.6", sigma_d="0.8", n_x=2, n_y=2,
                               metric=spec.metric, convention=spec.convention)
        rnn = init_rnn(aspec, 32, 1, be64)
        X = np.random.default_rng(2).standard_normal((2, 8, 2))
        k_struct = empirical_ntk(rnn, aspec, be64.asarray(X))
        k_ad = empirical_ntk(rnn, aspec, X, method="jacobian", device=str(be64.device))
        err_ad = _rel(k_ad, k_struct)
        checks["autodiff"] = {
            "statement": f"torch.func jacobian-contraction NTK equals the structured NTK on {options.device} "
                         f"(n = 32, B = 2, T = 8, n_x = n_y = 2, with D) to {TOL_AUTODIFF:g}",
            "value": err_ad, "tolerance": TOL_AUTODIFF, "passed": bool(err_ad <= TOL_AUTODIFF)}
    return checks


def time_width(be, spec, n: int, lags: int, seed: int) -> Dict[str, float]:
    """Seconds for the draw, the Krylov sequences and the lag Gram at width ``n`` (synchronized)."""

    out: Dict[str, float] = {"width": n}
    torch_cuda = be.name == "torch" and be.on_cuda
    if torch_cuda:
        import torch

        torch.cuda.reset_peak_memory_stats()
    be.synchronize()
    t0 = time.perf_counter()
    rnn = init_rnn(spec, n, seed, be)
    be.synchronize()
    t1 = time.perf_counter()
    M = lags if spec.convention == "conv1" else max(lags - 1, 1)
    krylov(rnn, M)
    be.synchronize()
    t2 = time.perf_counter()
    lag_gram(rnn, spec, lags)
    be.synchronize()
    t3 = time.perf_counter()
    out.update(draw_s=t1 - t0, krylov_s=t2 - t1, lag_gram_s=t3 - t2,
               w_gib=n * n * (8 if "64" in str(be.dtype) else 4) / 2**30)
    if torch_cuda:
        import torch

        out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    del rnn
    return out


def _fmt(x: Optional[float], spec: str = ".3g") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(x, spec)


def markdown(report: Dict[str, Any]) -> str:
    m = report["machine"]
    lines = [f"# gpu-check: {report['status']}", "",
             f"- card: **{m.get('card')}**" + (f" ({m['card_memory_gib']} GiB)" if "card_memory_gib" in m else ""),
             f"- backend {m['backend']} on {m['device']}, sweep dtype {report['sweep_dtype']}, "
             f"draws {report['draws']}; torch {m.get('torch')} (CUDA {m.get('torch_cuda')}), "
             f"cupy {m.get('cupy')}, numpy {m['numpy']}, python {m['python']}",
             f"- TF32: matmul {m.get('tf32_matmul')}, cudnn {m.get('tf32_cudnn')}, "
             f"float32 matmul precision {m.get('float32_matmul_precision')}",
             f"- wall time {report['wall_seconds']:.1f} s (limit {report['time_limit']:.0f} s)", "",
             "## Checks", "", "| check | passed | value | tolerance | statement |", "|---|---|---|---|---|"]
    for name, c in report["checks"].items():
        lines.append(f"| {name} | {c['passed']} | {_fmt(c.get('value'))} | {_fmt(c.get('tolerance'))} | "
                     f"{c['statement']} |")
    pc = report.get("properties")
    if pc:
        lines += ["", f"Library property checks: {pc['status']} -- {pc['cases']} random cases (seed {pc['seed']}), "
                  f"largest error / tolerance {pc['worst_ratio']:.3g}, {pc['seconds']} s"]
        lines += [f"- {f}" for f in pc["failures"]]
    t = report.get("pytest", {})
    lines += ["", f"Property tests: {t.get('status')} -- {t.get('summary', t.get('reason', ''))} "
              f"(hypothesis seed {t.get('hypothesis_seed')}, {t.get('seconds')} s; output in pytest.txt)", ""]
    lines += ["## Timings (one draw per width, device synchronized)", "",
              "| n | W (GiB) | draw (s) | Krylov (s) | lag Gram (s) | peak memory (GiB) | sweep s/draw (median) |",
              "|---:|---:|---:|---:|---:|---:|---:|"]
    sw = report.get("sweep") or {}
    per_draw = dict(zip(sw.get("widths", []), sw.get("median_seconds_per_draw", [])))
    for r in report["timings"]:
        lines.append(f"| {r['width']} | {r['w_gib']:.3g} | {r['draw_s']:.3g} | {r['krylov_s']:.3g} | "
                     f"{r['lag_gram_s']:.3g} | {_fmt(r.get('peak_memory_gib'))} | {_fmt(per_draw.get(r['width']))} |")
    if report.get("dropped_widths"):
        lines += ["", f"Dropped (projected past the time limit): {report['dropped_widths']}"]
    if sw.get("widths"):
        lines += ["", "## Sweep (relative Frobenius error of Theta_n against the closed form)", "",
                  f"verdict **{sw['verdict']}**, slope {sw['slope']:.4f}, "
                  f"{100 * sw['confidence']:g}% interval [{sw['slope_interval'][0]:.4f}, "
                  f"{sw['slope_interval'][1]:.4f}] (theory -1/2); {len(sw['seeds'])} seeds", "",
                  "| n | mean error | t half-width | sqrt(n) x mean |", "|---:|---:|---:|---:|"]
        for n, mean, half, sq in zip(sw["widths"], sw["frob_mean"], sw["frob_half_width"], sw["sqrt_n_times_mean"]):
            lines.append(f"| {n} | {_fmt(mean, '.4g')} | {_fmt(half, '.2g')} | {_fmt(sq, '.4g')} |")
        for r in sw["rules"]:
            lines.append(f"- rule {r['name']}: {'passed' if r['passed'] else 'FAILED'} ({r['detail']})")
    if report.get("errors"):
        lines += ["", "## Errors", ""] + [f"- {e}" for e in report["errors"]]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------- main
def _random_spec(rng: np.random.Generator):
    """A random specification over every metric, convention, D or not, and learning rates."""

    dec = lambda lo, hi: f"{rng.integers(int(lo * 100), int(hi * 100) + 1) / 100:.2f}"
    return RNNSpec(sigma_w=dec(0.2, 1.1), sigma_f=dec(0.3, 2.0), sigma_c=dec(0.3, 2.0),
                   sigma_d=None if rng.random() < 0.5 else dec(0.3, 2.0), n_x=int(rng.integers(1, 4)),
                   n_y=int(rng.integers(1, 4)), metric=str(rng.choice(["ntk", "variance", "standard"])),
                   convention=str(rng.choice(["conv1", "conv2"])), lr_w=str(rng.choice(["1", "0", "0.5", "2"])),
                   lr_f=str(rng.choice(["1", "0"])), lr_c=str(rng.choice(["1", "2"])))


def property_checks(backend: str, device: str, deadline: float, *, seed: Optional[int] = None,
                    min_cases: int = 10, max_cases: int = 200) -> Dict[str, Any]:
    """Identities of the finite-width code on ``backend``/``device``, as library code (no test suite needed).

    Random cases (``seed`` recorded; drawn by :class:`numpy.random.Generator`) until ``deadline``
    (``time.perf_counter()`` value; at least ``min_cases``): for each, a spec
    (:func:`_random_spec`), width ``n <= 48``, ``L <= 10`` lags and a batch ``(B <= 3, T <= 8)``;
    the same (numpy-drawn) weights on the device must give numpy's float64 lag Gram (total and
    every share), forward pass, impulse response and batch NTK within :data:`TOL64`, and the
    float32 lag Gram must be within :func:`float32_tolerance`.  ``worst_ratio``: the largest
    error / tolerance seen (a check fails above 1).
    """

    seed = random.SystemRandom().randrange(2**32) if seed is None else int(seed)
    rng = np.random.default_rng(seed)
    be64 = get_backend(backend, device, "float64")
    be32 = get_backend(backend, device, "float32")
    on = lambda be, net: LinearRNN(*(None if a is None else be.asarray(a) for a in (net.W, net.F, net.C, net.D)))
    worst, cases, failures = 0.0, 0, []  # type: float, int, List[str]
    t0 = time.perf_counter()
    while cases < max_cases and (cases < min_cases or time.perf_counter() < deadline):
        spec = _random_spec(rng)
        n, lags = int(rng.integers(1, 49)), int(rng.integers(1, 11))
        B, T = int(rng.integers(1, 4)), int(rng.integers(1, 9))
        ref = init_rnn(spec, n, int(rng.integers(2**32)))
        X = rng.standard_normal((B, T, spec.n_x))
        got, want = lag_gram(on(be64, ref), spec, lags), lag_gram(ref, spec, lags)
        errs = {"lag Gram": _rel(got.total, want.total)}
        errs.update({f"share {g}": _rel(got.shares[g], want.shares[g]) for g in want.shares})
        net, Xb = on(be64, ref), be64.asarray(X)
        errs["forward"] = _rel(forward(net, Xb, spec.convention), forward(ref, X, spec.convention))
        errs["impulse response"] = _rel(impulse_response(net, T, spec.convention),
                                        impulse_response(ref, T, spec.convention))
        errs["batch NTK"] = _rel(empirical_ntk(net, spec, Xb), empirical_ntk(ref, spec, X))
        ratios = {k: v / TOL64 for k, v in errs.items()}
        if np.any(np.asarray(to_numpy(want.total))):
            ratios["float32 lag Gram"] = (_rel(lag_gram(on(be32, ref), spec, lags).total, want.total)
                                          / float32_tolerance(n, lags))
        cases += 1
        for k, v in ratios.items():
            worst = max(worst, v)
            if not v <= 1 and len(failures) < 5:
                failures.append(f"{k}: error/tolerance {v:.3g} (n = {n}, L = {lags}, spec {dict(spec.to_dict())})")
    return {"status": "passed" if not failures and worst <= 1 else "failed", "cases": cases, "seed": seed,
            "worst_ratio": worst, "failures": failures, "seconds": round(time.perf_counter() - t0, 2)}


def run_check(options: GPUCheckOptions, spec, out: Path) -> Dict[str, Any]:
    """Every step of the check (module docstring); ``pytest.txt`` is written into ``out``.

    Returns the report (``report["status"]`` is "passed" or "FAILED"); :func:`markdown` renders it.
    """

    options.check()
    start = time.perf_counter()
    deadline = start + float(options.time_limit)
    widths = options.widths
    be = get_backend(options.backend, options.device, options.dtype, draws=options.draws)

    lags = options.lags
    report: Dict[str, Any] = {"machine": machine_info(be), "time_limit": float(options.time_limit),
                              "sweep_dtype": options.dtype, "draws": options.draws, "spec": dict(spec.to_dict()),
                              "lags": lags, "checks": {}, "timings": [], "errors": []}

    # 2. property checks as library code (always), then the test suite when a source tree has it
    #    (together at most 45 % of the time limit)
    report["properties"] = property_checks(options.backend, options.device, start + 0.15 * options.time_limit)
    if not options.pytest:
        report["pytest"] = {"status": "skipped", "reason": "--no-pytest"}
    else:
        report["pytest"] = run_pytest(options, start + 0.45 * options.time_limit, out)
    report["checks"]["property_tests"] = {
        "statement": (f"library property checks pass ({report['properties']['cases']} random cases"
                      + (", CUDA" if options.device == "cuda" else "") + ") and the property tests pass or are "
                      "unavailable"),
        "value": report["properties"]["worst_ratio"], "tolerance": 1.0,
        "passed": report["properties"]["status"] == "passed"
        and report["pytest"]["status"] in ("passed", "skipped", "unavailable")}

    # 3. exact checks on the device
    try:
        report["checks"].update(exact_checks(options, spec, lags))
    except Exception as exc:
        report["errors"].append(f"exact checks: {type(exc).__name__}: {exc}")
        report["checks"]["exact_checks"] = {"statement": "exact checks ran", "value": None, "tolerance": None,
                                            "passed": False}

    # 4. timings (also warms the device up), then the sweep within the remaining time
    seeds = list(range(options.seeds))
    sweep_widths: List[int] = []
    try:
        time_width(be, spec, min(widths), lags, 0)  # warm-up: CUDA context, cuBLAS handles
        for n in widths:
            used = time.perf_counter()
            projected = 0.0
            if report["timings"]:  # cost ~ n^2: next width about 4x the last one
                last = report["timings"][-1]
                per = (last["draw_s"] + last["lag_gram_s"]) * (n / last["width"]) ** 2
                projected = per * (1 + len(seeds)) + sum(
                    (r["draw_s"] + r["lag_gram_s"]) * len(seeds) for r in report["timings"])
            if used + projected > deadline:
                break
            report["timings"].append(time_width(be, spec, n, lags, 10_000))
            sweep_widths.append(n)
    except Exception as exc:
        report["errors"].append(f"timings: {type(exc).__name__}: {exc}")
    report["dropped_widths"] = [n for n in widths if n not in sweep_widths]
    if len(sweep_widths) >= 3:
        try:
            compute = ComputeOptions(options.backend, options.device, options.dtype, options.draws)
            res = sweep(SweepPlan(spec, tuple(sweep_widths), tuple(seeds), lags), compute=compute, progress=True)
            d = res.to_dict()
            fm, fh = res.frob_mean()
            report["sweep"] = {
                "verdict": d["verdict"], "slope": d["slope"], "slope_interval": d["slope_interval"],
                "confidence": d["confidence"], "rules": d["rules"], "widths": d["widths"], "seeds": d["seeds"],
                "frob_mean": fm.tolist(), "frob_half_width": fh.tolist(),
                "sqrt_n_times_mean": d["frob"]["sqrt_n_times_mean"],
                "median_seconds_per_draw": (None if res.seconds is None
                                            else np.median(res.seconds, axis=1).tolist()),
                "wall_seconds": res.wall_seconds, "full": d}
        except Exception as exc:
            report["errors"].append(f"sweep: {type(exc).__name__}: {exc}")
    sw = report.get("sweep")
    report["checks"]["sweep"] = {
        "statement": f"sweep reached n = {max(widths)} with {len(seeds)} seeds and its verdict is consistent",
        "value": None if not sw else max(sw["widths"]), "tolerance": None,
        "passed": bool(sw and max(sw["widths"]) == max(widths) and sw["verdict"] == "consistent")}

    report["wall_seconds"] = time.perf_counter() - start
    ok = all(c["passed"] for c in report["checks"].values()) and not report["errors"]
    report["status"] = "passed" if ok else "FAILED"
    return report
