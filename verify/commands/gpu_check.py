"""``python -m verify gpu-check --out DIR``: the prepared GPU verification script.

One command, meant to finish within ``--time-limit`` seconds (default 300) on one
H100.  It

1. records the machine: card name and memory, CUDA/torch/cupy/numpy versions,
   the TF32 switches (all off: :func:`verify.backend.get_backend` turns them off);
2. runs the project's backend and autodiff property tests with pytest
   (``--run-gpu`` on CUDA, so the ``torch-cuda``/``cupy-cuda`` parameters run),
   under a random hypothesis seed that the report records;
3. runs three exact checks on the device: the same (numpy-drawn) network gives
   the same lag Gram as numpy on the CPU (<= 1e-12 relative Frobenius, float64);
   float32 on the device is IEEE float32, not TF32 (error < 2^-11/10 on a fixed
   case); torch.func's jacobian-contraction NTK equals the structured NTK on the
   device (<= 1e-10; torch backend only);
4. times the draw, the Krylov sequences and the whole lag Gram per width (device
   synchronized before each clock read), then sweeps widths up to
   ``--max-width`` (default 32768, where W alone is 8 GiB in float64) with
   ``--seeds`` seeds through :func:`verify.sweep.sweep`, dropping the widest
   widths only if the measured costs say they would not fit the time limit;
5. writes ``DIR/gpu_check.json``, ``DIR/gpu_check.md`` and ``DIR/pytest.txt``.

Exit status 0 when every check passed, 1 when one failed (the report says
which), 2 for bad input or a backend/device that is not there (one line).
"""
from __future__ import annotations

import json
import math
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from .. import output, validate
from ..cli import UsageError, add_spec_arguments, arg_type, spec_from_args
from ..report_json import versioned

TOL64 = 1e-12  # cross-backend float64; see tests/test_backends.py
TOL_AUTODIFF = 1e-10  # torch.func vs structured; see tests/test_autodiff.py
TF32_TRIPWIRE = 2.0 ** -11 / 10  # see tests/test_backends.py::test_float32_error_measured


def add_arguments(p) -> None:
    p.add_argument("--out", required=True, help="output folder for gpu_check.json, gpu_check.md, pytest.txt")
    p.add_argument("--force", action="store_true", help="replace an existing report in --out")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="device (default cuda)")
    p.add_argument("--backend", choices=("torch", "cupy"), default="torch", help="array backend (default torch)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="sweep dtype (default float64)")
    p.add_argument("--draws", choices=("native", "numpy"), default="native",
                   help="where the sweep draws weights: native (on the device, default: no 8 GiB host draw "
                        "and copy at n = 32768) or numpy (the same networks as a CPU sweep)")
    p.add_argument("--max-width", type=arg_type(_at_least(8), "--max-width"), default=32768, help="largest width (default 32768)")
    p.add_argument("--num-widths", type=arg_type(_at_least(3), "--num-widths"), default=7,
                   help="number of widths: max-width / 2^k, k = 0..num-widths-1 (default 7)")
    p.add_argument("--seeds", type=arg_type(_at_least(2), "--seeds"), default=3, help="seeds per width (default 3)")
    p.add_argument("--time-limit", type=arg_type(_positive_number, "--time-limit"), default=300.0, help="seconds for the whole check (default 300)")
    p.add_argument("--pytest-k", default=None, help="only the property tests matching this pytest -k expression")
    p.add_argument("--no-pytest", action="store_true", help="skip the property tests")
    add_spec_arguments(p, sigma_w="0.9", lags=16)


# ----------------------------------------------------------------------- helpers
def _at_least(minimum: int):
    return lambda text, flag: validate.integer(text, flag, minimum=minimum)


def _positive_number(text, flag):
    return validate.number(text, flag, minimum=0, open_minimum=True)


def _widths(max_width: int, count: int) -> List[int]:
    if max_width < 8:
        raise UsageError(f"--max-width must be at least 8, got {max_width}")
    if count < 3:
        raise UsageError(f"--num-widths must be at least 3 (the slope needs 3 widths), got {count}")
    widths = [max_width >> k for k in range(count)]
    if widths[-1] < 4:
        raise UsageError(f"--num-widths {count} halves --max-width {max_width} below 4")
    return sorted(widths)


def _rel(a, b) -> float:
    from ..backend import to_numpy

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


def run_pytest(args, deadline: float, out: Path, files: Optional[List[str]] = None) -> Dict[str, Any]:
    """The backend and autodiff property tests (or ``files`` under ``tests/``), in a subprocess,
    under a random hypothesis seed; output in ``out/pytest.txt``."""
    root = Path(__file__).resolve().parents[2]
    names = files or ["test_backends.py", "test_autodiff.py"]
    files = [root / "tests" / f for f in names if (root / "tests" / f).exists()]
    if not files:
        return {"status": "skipped", "reason": f"no tests found under {root / 'tests'} (installed package?)"}
    seed = random.SystemRandom().randrange(2**32)
    cmd = [sys.executable, "-m", "pytest", *map(str, files), "-q", "-rfEsx", "-p", "no:cacheprovider",
           f"--hypothesis-seed={seed}", "--rootdir", str(root)]
    if args.device == "cuda":
        cmd.append("--run-gpu")
    if args.pytest_k:
        cmd += ["-k", args.pytest_k]
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


def exact_checks(args, spec, lags: int) -> Dict[str, Dict[str, Any]]:
    """Cross-backend identity, the float32 (no TF32) tripwire and the autodiff cross-check, on the device."""
    from ..backend import get_backend
    from ..ntk import empirical_ntk, lag_gram
    from ..rnn import LinearRNN, init_rnn

    checks: Dict[str, Dict[str, Any]] = {}
    be64 = get_backend(args.backend, args.device, "float64")
    n = min(1024, args.max_width)
    ref = init_rnn(spec, n, 0)  # numpy draws: the same network everywhere
    got = lag_gram(LinearRNN(*(None if a is None else be64.asarray(a) for a in (ref.W, ref.F, ref.C, ref.D))),
                   spec, lags)
    err = _rel(got.total, lag_gram(ref, spec, lags).total)
    checks["cross_backend"] = {
        "statement": f"same weights (numpy draws, n = {n}, L = {lags}): lag Gram on {args.backend}/{args.device} "
                     f"equals numpy float64 on the CPU to {TOL64:g} (relative Frobenius)",
        "value": err, "tolerance": TOL64, "passed": bool(err <= TOL64)}

    be32 = get_backend(args.backend, args.device, "float32")
    fspec = spec.__class__(sigma_w="0.9", sigma_f="1", sigma_c="1", n_x=1, n_y=1)
    fref = init_rnn(fspec, 256, 0)
    f32 = lag_gram(LinearRNN(*(be32.asarray(a) for a in (fref.W, fref.F, fref.C))), fspec, 16)
    err32 = _rel(f32.total, lag_gram(fref, fspec, 16).total)
    checks["float32_not_tf32"] = {
        "statement": "float32 lag Gram (n = 256, L = 16, s_W = 0.9) against float64: error below "
                     "u_TF32 / 10 = 2^-11 / 10 (TF32 rounding of the weights alone gives >= 1.4e-4)",
        "value": err32, "tolerance": TF32_TRIPWIRE, "passed": bool(err32 < TF32_TRIPWIRE)}

    if args.backend == "torch":
        aspec = spec.__class__(sigma_w="0.95", sigma_f="1.3", sigma_c="0.6", sigma_d="0.8", n_x=2, n_y=2,
                               metric=spec.metric, convention=spec.convention)
        rnn = init_rnn(aspec, 32, 1, be64)
        X = np.random.default_rng(2).standard_normal((2, 8, 2))
        k_struct = empirical_ntk(rnn, aspec, be64.asarray(X))
        k_ad = empirical_ntk(rnn, aspec, X, method="jacobian", device=str(be64.device))
        err_ad = _rel(k_ad, k_struct)
        checks["autodiff"] = {
            "statement": f"torch.func jacobian-contraction NTK equals the structured NTK on {args.device} "
                         f"(n = 32, B = 2, T = 8, n_x = n_y = 2, with D) to {TOL_AUTODIFF:g}",
            "value": err_ad, "tolerance": TOL_AUTODIFF, "passed": bool(err_ad <= TOL_AUTODIFF)}
    return checks


def time_width(be, spec, n: int, lags: int, seed: int) -> Dict[str, float]:
    """Seconds for the draw, the Krylov sequences and the lag Gram at width ``n`` (synchronized)."""
    from ..ntk import krylov, lag_gram
    from ..rnn import init_rnn

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
def run(args) -> int:
    from ..backend import get_backend

    start = time.perf_counter()
    deadline = start + float(args.time_limit)
    if args.time_limit <= 0:
        raise UsageError(f"--time-limit must be positive, got {args.time_limit}")
    if args.seeds < 2:
        raise UsageError(f"--seeds must be at least 2 (a seed mean with an interval), got {args.seeds}")
    widths = _widths(args.max_width, args.num_widths)
    spec = spec_from_args(args)
    validate.float64_spec(spec, args.lags, width=min(widths))
    validate.check_sweep(widths, args.seeds + 1, args.lags, spec.n_x, spec.n_y,
                         itemsize=4 if args.dtype == "float32" else 8)  # the sweep plus one timed draw per width
    be = get_backend(args.backend, args.device, args.dtype, draws=args.draws)  # BackendError: one line, exit 2
    with output.report_folder(args.out, GPU_CHECK_FILES, force=args.force) as outputs:
        ok = _run_into(args, be, spec, widths, start, deadline, outputs.staging)
    print(f"wrote {outputs.final('gpu_check.json')}, gpu_check.md" + (", pytest.txt" if not args.no_pytest else ""))
    return 0 if ok else 1


GPU_CHECK_FILES = ("gpu_check.json", "gpu_check.md", "pytest.txt")


def _run_into(args, be, spec, widths, start, deadline, out: Path) -> bool:
    from ..backend import ComputeOptions
    from ..sweep import SweepPlan, sweep

    lags = args.lags
    report: Dict[str, Any] = {"machine": machine_info(be), "time_limit": float(args.time_limit),
                              "sweep_dtype": args.dtype, "draws": args.draws, "spec": dict(spec.to_dict()),
                              "lags": lags, "checks": {}, "timings": [], "errors": []}

    # 2. property tests (at most 45 % of the time limit)
    if args.no_pytest:
        report["pytest"] = {"status": "skipped", "reason": "--no-pytest"}
    else:
        report["pytest"] = run_pytest(args, start + 0.45 * args.time_limit, out)
    report["checks"]["property_tests"] = {
        "statement": "backend and autodiff property tests pass" + (" (CUDA parameters included)"
                                                                   if args.device == "cuda" else ""),
        "value": None, "tolerance": None,
        "passed": report["pytest"]["status"] in ("passed", "skipped")}

    # 3. exact checks on the device
    try:
        report["checks"].update(exact_checks(args, spec, lags))
    except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
        report["errors"].append(f"exact checks: {type(exc).__name__}: {exc}")
        report["checks"]["exact_checks"] = {"statement": "exact checks ran", "value": None, "tolerance": None,
                                            "passed": False}

    # 4. timings (also warms the device up), then the sweep within the remaining time
    seeds = list(range(args.seeds))
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
    except Exception as exc:  # noqa: BLE001 - e.g. out of device memory: recorded
        report["errors"].append(f"timings: {type(exc).__name__}: {exc}")
    report["dropped_widths"] = [n for n in widths if n not in sweep_widths]
    if len(sweep_widths) >= 3:
        try:
            res = sweep(SweepPlan(spec, sweep_widths, seeds, lags),
                        compute=ComputeOptions(args.backend, args.device, args.dtype, args.draws), progress=True)
            d = res.to_dict()
            fm, fh = res.frob_mean()
            report["sweep"] = {
                "verdict": d["verdict"], "slope": d["slope"], "slope_interval": d["slope_interval"],
                "confidence": d["confidence"], "rules": d["rules"], "widths": d["widths"], "seeds": d["seeds"],
                "frob_mean": fm.tolist(), "frob_half_width": fh.tolist(),
                "sqrt_n_times_mean": d["frob"]["sqrt_n_times_mean"],
                "median_seconds_per_draw": np.median(res.seconds, axis=1).tolist(),
                "wall_seconds": res.wall_seconds, "full": d}
        except Exception as exc:  # noqa: BLE001
            report["errors"].append(f"sweep: {type(exc).__name__}: {exc}")
    sw = report.get("sweep")
    report["checks"]["sweep"] = {
        "statement": f"sweep reached n = {max(widths)} with {len(seeds)} seeds and its verdict is consistent",
        "value": None if not sw else max(sw["widths"]), "tolerance": None,
        "passed": bool(sw and max(sw["widths"]) == max(widths) and sw["verdict"] == "consistent")}

    report["wall_seconds"] = time.perf_counter() - start
    ok = all(c["passed"] for c in report["checks"].values()) and not report["errors"]
    report["status"] = "passed" if ok else "FAILED"
    (out / "gpu_check.json").write_text(json.dumps(_jsonable(versioned(report)), indent=1))
    (out / "gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    return ok


def _jsonable(obj):
    from ..sweep import _jsonable as j

    return j(obj)
