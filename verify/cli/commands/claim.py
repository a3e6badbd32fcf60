"""``python -m verify claim --model MODULE:FUNCTION --kernel MODULE:FUNCTION --inputs X.npy [...]``.

Checks a claimed wide-width NTK against empirical NTKs of finite networks
(:mod:`verify.harness.claim`, ``docs/claim.md``).  ``MODULE`` is an importable module
(``verify.claims.elman``) or a file (``path/to/mine.py``).  ``model(width, seed)``
returns ``(params, apply)``; ``kernel(X, Xp)`` the claimed NTK
``(B, T, n_y, B', T', n_y)``.  Prints a table (or, with ``--json``, one object
with ``"verdict"``, the tests, ``"min_detectable"``, the rate and every draw's
seed and statistics).  ``--workers N`` / ``--dask ADDRESS`` run the draws on a process pool
or a Dask cluster (:mod:`verify.internal.executors`): the workers load ``--model`` themselves (a
remote cluster needs the module importable there, or the file at the same path), and the
report's numbers are the serial run's, bit for bit.
Exit status 0: consistent, 1: inconsistent, 2: bad input.
"""
from __future__ import annotations

from typing import Tuple

from verify.cli.commands.kernel import load_inputs
from verify.cli.options import add_executor_arguments, executor_options
from verify.harness.claim import (
    METHODS,
    ClaimError,
    ClaimOptions,
    check_claim,
    format_report,
    load_callable,
    model_reference,
)
from verify.internal.executors import open_executor
from verify.internal.jsonio import dumps, versioned


def _ints(text: str, flag: str) -> Tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in str(text).replace(" ", "").split(",") if v != "")
    except ValueError:
        raise ClaimError(f"{flag} must be comma-separated integers, got {text!r}") from None
    if not vals:
        raise ClaimError(f"{flag} must not be empty")
    return vals


def add_arguments(p) -> None:
    p.add_argument("--model", required=True, metavar="MODULE:FUNCTION", help="model(width, seed) -> (params, apply)")
    p.add_argument("--kernel", required=True, metavar="MODULE:FUNCTION", help="kernel(X, Xp) -> claimed NTK")
    p.add_argument("--inputs", required=True, metavar="X.npy", help="input sequences, shape (B, T, n_x)")
    p.add_argument("--widths", default="64,128,256,512", help="comma-separated widths (default 64,128,256,512)")
    p.add_argument("--seeds", default="16", help="draws per width: one integer >= 3, or one per width (default 16)")
    p.add_argument("--base-seed", type=int, default=0, help="base of every draw's seed (default 0)")
    p.add_argument("--alpha", type=float, default=0.01, help="false-failure probability of the verdict (default 0.01)")
    p.add_argument("--power", type=float, default=0.99,
                   help="detection probability behind min_detectable (default 0.99)")
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="NTK by jacobian contraction or NTK-vector products")
    p.add_argument("--max-jacobian-mib", type=int, default=1024,
                   help="auto: Jacobian contraction up to this many MiB of Jacobians (default 1024)")
    p.add_argument("--threads", type=int, default=None, help="torch threads during the check (default: torch's)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_executor_arguments(p)  # --workers N, --dask ADDRESS: where the draws run (verify/internal/executors.py)


def run(args) -> int:
    model = model_reference(args.model)  # checked (and loaded once) before any work; the workers load it themselves
    kernel = load_callable(args.kernel)
    X = load_inputs(args.inputs)
    widths = _ints(args.widths, "--widths")
    seeds = _ints(args.seeds, "--seeds")
    if args.max_jacobian_mib < 1:
        raise ClaimError(f"--max-jacobian-mib must be a positive integer, got {args.max_jacobian_mib}")
    options = ClaimOptions(
        widths=widths, seeds=seeds[0] if len(seeds) == 1 else seeds, base_seed=args.base_seed,
        alpha=args.alpha, power=args.power, method=args.method,
        max_jacobian_bytes=args.max_jacobian_mib << 20, threads=args.threads,
    )
    where = executor_options(args, spawn=True)  # --workers/--dask, checked first; torch needs spawned processes
    with open_executor(where) as executor:  # closed also on errors and KeyboardInterrupt
        report = check_claim(model, kernel, X, options, progress=not args.json, executor=executor)
    if args.json:
        out = report.to_dict()
        out = {"model": args.model, "kernel": args.kernel, "inputs": str(args.inputs), **out,
               "executor": where.describe()}
        print(dumps(versioned(out), indent=None))
    else:
        print(format_report(report))
    return 0 if report.verdict == "consistent" else 1

