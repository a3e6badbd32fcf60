"""Cost of the exact finite-width moments (:mod:`theory.finite_width`, engine :mod:`theory.wick`).

``python -m benchmarks finite-width [--quick] [--json OUT] [--markdown]``.

Every case runs *cold*, in a fresh interpreter (the engine's memo in
``theory.wick._ENGINE`` and the ``lru_cache`` s of ``theory.finite_width`` start
empty; a subprocess is the one sure way to clear all of them), once; it reports
wall and CPU seconds of the call and the process's peak resident memory.
Specification: metric "ntk", conv1, ``s_W = 0.9``, ``s_F = s_C = 1`` (the scales do
not change the cost: the spec-free traces carry it).

Cases:

* the mean ``E Theta_n[l, l']`` for all ``l, l' < L`` from the engine alone (the shipped
  table switched off) and with the shipped table (``theory/data/trace_means.json``);
* the exact variance for ``l, l' <= 6, 7, 8`` and the leading ``1/n`` variance
  (``order=1``) for ``l, l' < 16, 18, 20``;
* how far the mean reaches in 10 minutes: the largest ``L`` whose engine-only mean
  fits in 600 CPU seconds, extrapolated from the measured growth per lag when a direct
  run is longer (the engine is single-threaded pure Python: its CPU time is its wall
  time on an idle core, and stays meaningful on a shared machine);
* the time to load the shipped table;
* the engine's hot loop with python-flint: the single word ``T^13 W^13`` from a cold
  engine, with the packed polynomial as one Python int (the engine as it is: Kronecker
  packing, shifts and adds), as a ``flint.fmpz_poly`` (``left_shift`` and ``+``), and
  as a ``flint.fmpz`` (the same packing in FLINT integers).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
TEN_MINUTES = 600.0
WORD = "T" * 13 + "W" * 13
TARGETS = {"mean, l, l' < 16 (engine only)": 60.0, "exact variance, l, l' <= 6": 60.0}


# ----------------------------------------------------------------------------- flint variants
def flint_engine(kind: str):
    """A :class:`theory.wick.WickEngine` whose packed polynomials are FLINT objects.

    ``kind="poly"``: ``flint.fmpz_poly`` in ``X`` (a pairing of depth ``delta`` is
    ``left_shift(delta)``); ``kind="fmpz"``: the engine's Kronecker packing in ``flint.fmpz``.
    """
    import flint

    from theory.wick import WickEngine, canonical_state, first_letter_pairings

    class FlintEngine(WickEngine):
        def packed(self, state, depth):  # type: ignore[override]
            one = flint.fmpz_poly([1]) if kind == "poly" else flint.fmpz(1)
            if not state:
                return one
            key = (state, depth)
            got = self._memo.get(key)
            if got is not None:
                return got
            t = len(state)
            total = flint.fmpz_poly() if kind == "poly" else flint.fmpz(0)
            for child, empties in first_letter_pairings(state):
                canon = canonical_state(child)
                delta = 1 + t - len(canon) - empties
                if delta > depth:
                    continue
                sub = self.packed(canon, depth - delta)
                total += sub.left_shift(delta) if kind == "poly" else (sub << (self.bits * delta))
            self._memo[key] = total
            return total

    return FlintEngine()


def word_coefficients(kind: str, word: str = WORD) -> Dict[int, int]:
    """``E tr(word)`` as ``{power of n: coefficient}`` with the engine variant ``kind`` (int, poly, fmpz)."""
    from theory.wick import WickEngine

    if kind == "int":
        return WickEngine().moment([word])
    eng = flint_engine(kind)
    p = len(word) // 2
    top = p + 1
    packed = eng.packed((word,), top)
    if kind == "poly":
        coeffs = [int(c) for c in packed.coeffs()]
    else:
        value, mask, coeffs = int(packed), (1 << eng.bits) - 1, []
        while value:
            coeffs.append(value & mask)
            value >>= eng.bits
    return {top - d - p: c for d, c in enumerate(coeffs) if c}


# ----------------------------------------------------------------------------- cases (run in the child)
def _spec():
    from theory.spec import RNNSpec

    return RNNSpec(sigma_w="0.9")


def _no_table() -> None:
    import theory.finite_width

    theory.finite_width.lookup = lambda group, m, mp: None  # raw_mean looks the name up at call time


def case_mean(lags: int, table: bool) -> Dict[str, Any]:
    from theory.finite_width import mean_lag_gram

    if not table:
        _no_table()
    mean = mean_lag_gram(_spec(), lags)
    return {"check": str(mean.total[lags - 1][lags - 1])[:40]}


def case_variance(lags: int, order: Optional[int]) -> Dict[str, Any]:
    from theory.finite_width import variance_lag_gram

    var = variance_lag_gram(_spec(), lags, order)
    return {"check": str(var.total[lags - 1][lags - 1])[:40]}


def case_table_load() -> Dict[str, Any]:
    from theory.tables import load_table

    return {"max_index": load_table().max_index}


def case_word(kind: str) -> Dict[str, Any]:
    coeffs = word_coefficients(kind)
    return {"coefficients": {str(k): str(v) for k, v in sorted(coeffs.items())}}


CASES: Dict[str, Callable[..., Dict[str, Any]]] = {
    "mean": case_mean, "variance": case_variance, "table_load": case_table_load, "word": case_word,
}


def _child(payload: str) -> None:
    spec = json.loads(payload)
    fn = CASES[spec.pop("case")]
    import theory.finite_width
    import theory.tables  # noqa: F401

    t0, c0 = time.perf_counter(), time.process_time()
    extra = fn(**spec)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux
    print(json.dumps({"wall_s": wall, "cpu_s": cpu, "peak_rss_bytes": peak, **extra}))


# ----------------------------------------------------------------------------- driver
def measure(case: str, timeout: float, **kwargs) -> Dict[str, Any]:
    """Run one case in a fresh interpreter; ``{"case", ..., "wall_s", "cpu_s", "peak_rss_bytes"}``
    or ``"timed_out": True`` past ``timeout`` seconds."""
    payload = json.dumps({"case": case, **kwargs})
    record: Dict[str, Any] = {"case": case, **kwargs}
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.finite_width", "--child", payload],
                              cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        record["timed_out"] = True
        record["timeout_s"] = timeout
        return record
    if proc.returncode != 0:
        record["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return record
    record.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return record


def reach(times: Dict[int, float], budget: float = TEN_MINUTES) -> Dict[str, Any]:
    """Largest ``L`` with ``times[L] <= budget``: measured when a measured ``L`` reaches past it,
    else extrapolated with the growth ratio of the last two measured sizes."""
    sizes = sorted(times)
    fits = [L for L in sizes if times[L] <= budget]
    if len(fits) < len(sizes):
        return {"lags": max(fits) if fits else None, "extrapolated": False}
    if len(sizes) < 2:
        return {"lags": sizes[-1] if sizes else None, "extrapolated": False}
    a, b = sizes[-2], sizes[-1]
    ratio = (times[b] / times[a]) ** (1.0 / (b - a))
    L, t = b, times[b]
    while t * ratio <= budget:
        L, t = L + 1, t * ratio
    return {"lags": L, "extrapolated": True, "ratio_per_lag": ratio, "estimated_s_at_lags": t,
            "estimated_s_next": t * ratio}


def run_all(quick: bool = False, timeout: float = 900.0, log=None) -> Dict[str, Any]:
    """Every case (``quick``: the smaller sizes only)."""
    say = log or (lambda msg: None)
    records: List[Dict[str, Any]] = []

    def go(desc: str, case: str, **kw) -> Dict[str, Any]:
        say(f"  {desc}")
        rec = measure(case, timeout, **kw)
        rec["description"] = desc
        records.append(rec)
        return rec

    mean_sizes = (12, 14, 16) if quick else (12, 14, 16, 17, 18)
    mean_times = {}
    for L in mean_sizes:
        rec = go(f"mean, l, l' < {L} (engine only)", "mean", lags=L, table=False)
        if "cpu_s" in rec:
            mean_times[L] = rec["cpu_s"]
    for L in ((16,) if quick else (16, 20)):
        go(f"mean, l, l' < {L} (shipped table)", "mean", lags=L, table=True)
    for top in ((6, 7) if quick else (6, 7, 8)):
        go(f"exact variance, l, l' <= {top}", "variance", lags=top + 1, order=None)
    for L in ((16,) if quick else (16, 18, 20)):
        go(f"leading variance (order 1), l, l' < {L}", "variance", lags=L, order=1)
    go("load the shipped table", "table_load")
    words = {kind: go(f"word T^13 W^13, packed as {name}", "word", kind=kind)
             for kind, name in (("int", "one Python int (the engine)"), ("poly", "flint.fmpz_poly"),
                                ("fmpz", "flint.fmpz (Kronecker)"))}
    base = words["int"]
    comparison = {}
    for kind in ("poly", "fmpz"):
        rec = words[kind]
        if "cpu_s" in rec and "cpu_s" in base:
            comparison[kind] = {"time_ratio_to_int": rec["cpu_s"] / base["cpu_s"],
                                "same_coefficients": rec["coefficients"] == base["coefficients"]}
    return {"records": records, "mean_reach_10_minutes": reach(mean_times), "flint": comparison}


def render(result: Dict[str, Any], markdown: bool = False) -> str:
    rows = [("case", "wall s", "CPU s", "peak RSS MiB", "note")]
    for r in result["records"]:
        if "wall_s" in r:
            note = ""
            for target, limit in TARGETS.items():
                if r["description"] == target:
                    note = f"target < {limit:.0f} s (CPU): {'met' if r['cpu_s'] < limit else 'missed'}"
            rows.append((r["description"], f"{r['wall_s']:.2f}", f"{r['cpu_s']:.2f}",
                         f"{r['peak_rss_bytes'] / 2**20:.0f}", note))
        else:
            rows.append((r["description"], "-", "-", "-", "timed out" if r.get("timed_out") else r.get("error", "?")))
    lines = []
    if markdown:
        lines.append("| " + " | ".join(rows[0]) + " |")
        lines.append("|" + "---|" * len(rows[0]))
        lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    else:
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
    reach_ = result["mean_reach_10_minutes"]
    if reach_.get("lags") is not None:
        how = (f"extrapolated (x{reach_['ratio_per_lag']:.2f} per lag; about {reach_['estimated_s_at_lags']:.0f} s "
               f"there, {reach_['estimated_s_next']:.0f} s one lag more)" if reach_["extrapolated"] else "measured")
        lines.append(f"\nMean in 10 minutes (600 CPU s, engine only): l, l' < {reach_['lags']}, {how}")
    for kind, c in result["flint"].items():
        lines.append(f"flint {kind} / Python int on T^13 W^13: CPU time ratio {c['time_ratio_to_int']:.2f}"
                     f" (same coefficients: {c['same_coefficients']})")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks finite-width", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smaller sizes only (a few minutes)")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds one case may run (default 900)")
    p.add_argument("--json", metavar="OUT", help="write every number to this JSON file")
    p.add_argument("--markdown", action="store_true", help="markdown table")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child is not None:
        _child(args.child)
        return 0
    if args.timeout <= 0:
        print("python -m benchmarks finite-width: error: --timeout must be > 0", file=sys.stderr)
        return 2
    from .machine import machine_info

    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    started = time.time()
    result = run_all(args.quick, args.timeout, log)
    result["machine"] = machine_info()
    result["elapsed_s"] = time.time() - started
    try:
        import flint

        result["machine"]["python_flint"] = flint.__version__
    except ImportError:
        result["machine"]["python_flint"] = None
    if args.json:
        from verify.internal.jsonio import versioned

        tmp = f"{args.json}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(versioned(result), fh, indent=1, default=lambda o: None if isinstance(o, float)
                      and not math.isfinite(o) else str(o))
        os.replace(tmp, args.json)
    print(render(result, markdown=args.markdown))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
