"""``python -m benchmarks``: one command for every benchmark of the toolkit.

Times the structured NTK (lag Gram + contraction), the reference BPTT NTK,
torch.func jacobian contraction and torch.func NTK-vector products, with the
Krylov sequences alone as the floor, for each ``n x T`` size (B = 4 sequences,
scalar input and output); then the exact side's cost.  Prints a table
(``--markdown``: the markdown of ``docs/benchmarks.md``); ``--json OUT`` writes
every number.  Thread counts are whatever the environment sets (nothing here
changes them).  ``python -m benchmarks finite-width`` times the exact
finite-width moments instead (:mod:`benchmarks.finite_width`); ``python -m benchmarks dask``
the throughput of sweep draws, serial against a local Dask cluster (:mod:`benchmarks.dask_bench`).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from typing import List, Optional, Tuple

from verify.internal.jsonio import versioned

from .machine import machine_info, mem_available_bytes
from .methods import ALIASES, METHODS

DEFAULT_SIZES = "256x16,256x64,1024x16,1024x32,1024x64,4096x16,4096x64"
QUICK_SIZES = "256x16,1024x32"


class UsageError(ValueError):
    """A bad command-line value."""


def parse_sizes(text: str) -> List[Tuple[int, int]]:
    """``"256x16,1024x32"`` -> ``[(256, 16), (1024, 32)]``."""
    out = []
    for item in text.split(","):
        item = item.strip().lower()
        try:
            n, T = (int(v) for v in item.split("x"))
        except ValueError:
            raise UsageError(f"--sizes: {item!r} is not of the form NxT (e.g. 1024x32)") from None
        if n < 1 or T < 1:
            raise UsageError(f"--sizes: width and length must be positive, got {item!r}")
        out.append((n, T))
    if not out:
        raise UsageError("--sizes is empty")
    return out


def _ints(text: str, flag: str) -> List[int]:
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        raise UsageError(f"{flag}: expected comma-separated positive integers, got {text!r}") from None
    if not vals or min(vals) < 1:
        raise UsageError(f"{flag}: expected comma-separated positive integers, got {text!r}")
    return vals


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help=f"sizes {QUICK_SIZES}, 3 repeats, 1,000 lags, kernel 4x32 (minutes, not tens of minutes)")
    p.add_argument("--sizes", help=f"comma-separated NxT (default {DEFAULT_SIZES})")
    p.add_argument("--repeats", type=int, help="timed runs per method and size (default 5; 3 with --quick)")
    p.add_argument("--methods", default=",".join(METHODS),
                   help=f"comma-separated subset of {','.join(METHODS)} (aliases: "
                        + ", ".join(f"{a} = {m}" for a, m in ALIASES.items()) + ")")
    p.add_argument("--max-seconds", type=float, default=120.0,
                   help="time budget of one run of one method (default 120)")
    p.add_argument("--max-memory-gb", type=float,
                   help="memory budget of one method (default 35%% of MemAvailable at start)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--no-ntk", action="store_true", help="only the exact side")
    p.add_argument("--no-exact", action="store_true", help="skip the exact side")
    p.add_argument("--exact-lags", help="lag counts for the lag weights (default 1000,10000; 1000 with --quick)")
    p.add_argument("--exact-dps", default="50,500", help="digits for the lag weights (default 50,500)")
    p.add_argument("--kernel-shape", help="BxT of the exact kernel benchmark (default 8x64; 4x32 with --quick)")
    p.add_argument("--kernel-dps", type=int, default=30, help="digits of the exact kernel (default 30)")
    p.add_argument("--json", metavar="OUT", help="write all numbers to this JSON file")
    p.add_argument("--markdown", action="store_true", help="print markdown tables (for docs/benchmarks.md)")
    p.add_argument("--profile", action="store_true",
                   help="also cProfile the structured method at each size (top functions by own time)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    from .exact import run_exact
    from .ntk_bench import ratios, run_ntk, targets
    from .report import render

    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["finite-width"]:  # exact finite-width moments: benchmarks/finite_width.py
        from .finite_width import main as finite_width_main

        return finite_width_main(argv[1:])
    if argv[:1] == ["dask"]:  # serial against a local Dask cluster: benchmarks/dask_bench.py
        from .dask_bench import main as dask_main

        return dask_main(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))
        methods = [ALIASES.get(m.strip(), m.strip()) for m in args.methods.split(",") if m.strip()]
        bad = [m for m in methods if m not in METHODS]
        if bad or not methods:
            raise UsageError(f"--methods: unknown {', '.join(bad) or '(none given)'}; choose from {', '.join(METHODS)}")
        if "structured" not in methods:
            methods.insert(0, "structured")  # the comparison point of every other method
        methods = [m for m in METHODS if m in methods]
        repeats = args.repeats if args.repeats is not None else (3 if args.quick else 5)
        if repeats < 1:
            raise UsageError(f"--repeats must be >= 1, got {repeats}")
        if args.max_seconds <= 0:
            raise UsageError(f"--max-seconds must be > 0, got {args.max_seconds}")
        avail = mem_available_bytes() or 4 * 2**30
        max_bytes = args.max_memory_gb * 2**30 if args.max_memory_gb is not None else 0.35 * avail
        if max_bytes <= 0:
            raise UsageError("--max-memory-gb must be > 0")
        lags = _ints(args.exact_lags or ("1000" if args.quick else "1000,10000"), "--exact-lags")
        dps = _ints(args.exact_dps, "--exact-dps")
        kshape = parse_sizes(args.kernel_shape or ("4x32" if args.quick else "8x64"))
        if len(kshape) != 1:
            raise UsageError("--kernel-shape takes one BxT")
        if args.kernel_dps < 1:
            raise UsageError(f"--kernel-dps must be >= 1, got {args.kernel_dps}")
    except UsageError as exc:
        print(f"python -m benchmarks: error: {exc}", file=sys.stderr)
        return 2

    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    started = time.time()
    result = {
        "command": "python -m benchmarks " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv)),
        "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started)),
        "machine": machine_info(),
        "settings": {"sizes": sizes, "methods": methods, "repeats": repeats, "max_seconds": args.max_seconds,
                     "max_memory_bytes": max_bytes, "memory_probe": not args.no_memory},
    }
    if not args.no_ntk:
        log("NTK methods")
        records = run_ntk(sizes, methods, repeats=repeats, max_seconds=args.max_seconds, max_bytes=max_bytes,
                          memory=not args.no_memory, log=log)
        result["ntk"] = records
        result["ratios"] = ratios(records)
        result["targets"] = targets(result["ratios"])
        if args.profile:
            from .ntk_bench import profile_structured

            result["profiles"] = {f"{n}x{T}": profile_structured(n, T) for n, T in sizes}
    if not args.no_exact:
        log("exact side")
        result["exact"] = run_exact(lags, dps, kshape[0], args.kernel_dps, repeats=min(repeats, 3), log=log)
    result["elapsed_s"] = time.time() - started
    if args.json:
        try:
            with open(args.json, "w") as fh:
                json.dump(versioned(result), fh, indent=1)
        except OSError as exc:
            print(f"python -m benchmarks: error: cannot write {args.json}: {exc.strerror}", file=sys.stderr)
            return 2
    print(render(result, markdown=args.markdown))
    return 0
