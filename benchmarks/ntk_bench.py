"""Time the empirical-NTK methods side by side, in one process, on the same inputs.

For each size ``(n, T)`` (ascending by ``n T``) and each method:

1. skip it, with the reason, when its memory lower bound (the dense Jacobian,
   ``8 B T (n^2 + 2n)`` bytes) exceeds the memory budget, or when its time,
   extrapolated by ``(n T)^2`` from the largest size already measured, exceeds
   ``SKIP_FACTOR`` times the time budget, or when it already ran out of time at
   a size with no larger ``n T``;
2. measure its peak memory in a fresh subprocess (:mod:`benchmarks.memprobe`),
   killed after the time budget (a kill or an out-of-memory error is reported
   as a skip with the reason);
3. time it in this process: one run; if that took under a second it was a
   warm-up and ``repeats`` timed runs follow, otherwise it counts and more runs
   follow while they fit in the time budget (at least one, at most ``repeats``).
   Reported: the median and the minimum wall time (``time.perf_counter``).

Every NTK is compared with the structured one (max |difference| / max |K|).
"""
from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from .methods import BATCH, METHODS, extrapolate, max_rel_diff, problem, warm_up

SKIP_FACTOR = 4.0  # skip without trying when the extrapolated time exceeds this many budgets
REPO_ROOT = Path(__file__).resolve().parent.parent


def _has_torch() -> bool:
    """Whether torch is installed (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _gb(b: float) -> str:
    return f"{b / 2**30:.2f} GiB"


def _probe(method: str, n: int, T: int, batch: int, max_bytes: Optional[float], timeout: float,
           use_tracemalloc: bool) -> Dict:
    """Run :mod:`benchmarks.memprobe` in a fresh interpreter (same environment, same thread settings)."""
    arg = json.dumps({"method": method, "n": n, "T": T, "batch": batch, "max_bytes": max_bytes,
                      "tracemalloc": use_tracemalloc})
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.memprobe", arg], cwd=str(REPO_ROOT), env=env,
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"ok": False, "error": f"memory probe killed after {timeout:.0f} s (over the time budget)"}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "error": f"memory probe exited with status {proc.returncode}: {tail[:200]}"}
    return json.loads(lines[-1])


def _time(fn, repeats: int, budget: float) -> Tuple[List[float], object]:
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    times: List[float] = []
    if first >= 1.0:
        times.append(first)
        target = max(1, min(repeats, int(budget // first)))
    else:
        target = repeats  # the first run was a warm-up
    while len(times) < target:
        del out  # freed by reference counting (no cycles); gc.collect runs once per method and size
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def run_ntk(
    sizes: Sequence[Tuple[int, int]],
    methods: Sequence[str],
    *,
    repeats: int = 5,
    max_seconds: float = 120.0,
    max_bytes: float = 8 * 2**30,
    memory: bool = True,
    use_tracemalloc: bool = True,
    batch: int = BATCH,
    log=None,
) -> List[Dict]:
    """Benchmark records (one per size and method), see the module docstring."""
    log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
    torch_ok = _has_torch()
    measured: Dict[str, Tuple[Tuple[int, int], float]] = {}
    too_slow: Dict[str, Tuple[int, int]] = {}  # method -> size at which its probe was killed on time
    records: List[Dict] = []
    order = sorted(set(sizes), key=lambda s: (s[0] * s[1], s[0]))
    for name in methods:  # one-time set-up (lazy imports, BLAS buffers, torch.func) is not timed
        if torch_ok or not METHODS[name].torch:
            warm_up(METHODS[name])
    for n, T in order:
        spec, rnn, X = problem(n, T, batch)
        structured_K = None
        for name in methods:
            m = METHODS[name]
            rec: Dict = {"n": n, "T": T, "B": batch, "method": name, "label": m.label}
            records.append(rec)
            reason = None
            if m.torch and not torch_ok:
                reason = "torch is not installed"
            elif m.min_bytes is not None and m.min_bytes(n, T, batch) > max_bytes:
                reason = (f"needs at least {_gb(m.min_bytes(n, T, batch))} (the dense Jacobian, 8 B T n^2 bytes) "
                          f"> memory budget {_gb(max_bytes)}")
            elif name in too_slow and n * T >= too_slow[name][0] * too_slow[name][1]:
                n0, t0 = too_slow[name]
                reason = f"already over the time budget at n={n0}, T={t0} (a problem no larger than this one)"
            elif m.quadratic_time and name in measured:
                (size0, secs0) = measured[name]
                est = extrapolate(secs0, size0, (n, T))
                if est > SKIP_FACTOR * max_seconds:
                    reason = (f"estimated {est:.0f} s per run ({secs0:.2f} s at n={size0[0]}, T={size0[1]}, "
                              f"scaled by (nT)^2) > {SKIP_FACTOR:g} x time budget {max_seconds:g} s")
            if reason is None and memory:
                log(f"  n={n} T={T} {name}: memory probe")
                probe = _probe(name, n, T, batch, max_bytes, timeout=2 * max_seconds + 60,
                               use_tracemalloc=use_tracemalloc)
                if not probe.get("ok"):
                    reason = probe.get("error", "memory probe failed")
                    if "killed" in reason:
                        too_slow[name] = (n, T)
                else:
                    for k in ("rss_peak_bytes", "rss_method", "tracemalloc_peak_bytes"):
                        if k in probe:
                            rec[k] = probe[k]
                    rec["probe_seconds"] = probe["seconds"]
                    if probe["seconds"] > max_seconds:
                        reason = (f"one run took {probe['seconds']:.0f} s in the memory probe "
                                  f"> time budget {max_seconds:g} s; not timed again")
                        rec["median_s"] = rec["min_s"] = probe["seconds"]
                        rec["repeats"] = 1
                        rec["timed_in"] = "memory-probe subprocess"
                        measured[name] = ((n, T), probe["seconds"])
            if reason is not None:
                rec.update(status="once" if "median_s" in rec else "skipped", reason=reason)
                log(f"  n={n} T={T} {name}: {rec['status']} ({reason})")
                continue
            log(f"  n={n} T={T} {name}: timing")
            times, out = _time(lambda: m.run(spec, rnn, X), repeats, max_seconds)
            rec.update(status="ok", times=times, median_s=statistics.median(times), min_s=min(times),
                       repeats=len(times), timed_in="main process")
            measured[name] = ((n, T), statistics.median(times))
            if m.ntk:
                if name == "structured":
                    structured_K = out
                elif structured_K is not None:
                    rec["max_rel_diff_vs_structured"] = max_rel_diff(out, structured_K)
            del out
            gc.collect()
            if name == "structured":
                rec["parts"] = _structured_parts(spec, rnn, X, repeats)
    return records


def _structured_parts(spec, rnn, X, repeats: int) -> Dict[str, float]:
    """Medians of the structured method's parts: Krylov, lag Gram (includes Krylov), contraction."""
    from verify.engine.ntk import krylov, lag_gram, ntk_from_lag_gram

    T = X.shape[1]
    lg = lag_gram(rnn, spec, T)
    parts = {}
    for key, fn in (("krylov", lambda: krylov(rnn, T)), ("lag_gram", lambda: lag_gram(rnn, spec, T)),
                    ("contraction", lambda: ntk_from_lag_gram(lg, X))):
        times, _ = _time(fn, repeats, 10.0)
        parts[key] = statistics.median(times)
    return parts


def structured_peak(rec: Dict) -> float:
    """The structured method's peak for memory ratios: the larger of its RSS delta and its
    tracemalloc peak, at least one page.  An RSS delta can miss memory the allocator
    reuses from earlier frees; tracemalloc counts every numpy allocation, so the max
    errs towards a *smaller* jacobian/structured ratio."""
    return float(max(rec.get("rss_peak_bytes") or 0, rec.get("tracemalloc_peak_bytes") or 0, 4096))


def ratios(records: List[Dict]) -> List[Dict]:
    """Per size: jacobian / structured (time, memory) and structured / Krylov floor (time)."""
    by = {}
    for r in records:
        by.setdefault((r["n"], r["T"]), {})[r["method"]] = r
    out = []
    for (n, T), d in sorted(by.items()):
        row = {"n": n, "T": T}
        s, j, k = d.get("structured"), d.get("jacobian"), d.get("krylov")
        if s and s.get("status") == "ok":
            if j and j.get("median_s") is not None:
                row["jacobian_over_structured_time"] = j["median_s"] / s["median_s"]
                if j.get("rss_peak_bytes") and s.get("rss_peak_bytes") is not None:
                    row["jacobian_over_structured_memory"] = j["rss_peak_bytes"] / structured_peak(s)
            if k and k.get("status") == "ok":
                row["structured_over_krylov_time"] = s["median_s"] / k["median_s"]
        out.append(row)
    return out


def targets(rows: List[Dict]) -> List[Dict]:
    """The issue's targets, evaluated where the sizes were measured."""
    res = []
    at = {(r["n"], r["T"]): r for r in rows}
    r = at.get((1024, 32))
    speed = r.get("jacobian_over_structured_time") if r else None
    mem = r.get("jacobian_over_structured_memory") if r else None
    res.append({"target": "structured >= 100x faster than torch.func jacobian (n=1024, T=32, B=4)",
                "value": speed, "met": None if speed is None else speed >= 100})
    res.append({"target": "structured peak memory >= 10x lower than torch.func jacobian (n=1024, T=32, B=4)",
                "value": mem, "met": None if mem is None else mem >= 10})
    for (n, T), row in sorted(at.items()):
        if n == 4096 and row.get("structured_over_krylov_time") is not None:
            v = row["structured_over_krylov_time"]
            res.append({"target": f"structured within 3x of the Krylov floor (n=4096, T={T})", "value": v,
                        "met": v <= 3})
    if not any(t["target"].startswith("structured within 3x") for t in res):
        res.append({"target": "structured within 3x of the Krylov floor (n=4096)", "value": None, "met": None})
    return res


def profile_structured(n: int, T: int, batch: int = BATCH, top: int = 12) -> str:
    """cProfile of one structured-NTK run (after a warm-up): the ``top`` functions by own time."""
    import cProfile
    import io
    import pstats

    spec, rnn, X = problem(n, T, batch)
    run = METHODS["structured"].run
    run(spec, rnn, X)
    prof = cProfile.Profile()
    prof.enable()
    run(spec, rnn, X)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    lines = [ln for ln in buf.getvalue().splitlines() if ln.strip()]
    return "\n".join(lines[2:])  # drop the file-name header
