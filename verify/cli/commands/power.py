"""``python -m verify power``: power study of the exact finite-width test.

Repeats the exact test (:mod:`verify.stats.exact`) on fresh draws and counts how
often it rejects the true theory (the false-failure rate), wrong theories and
wrong networks (:mod:`verify.stats.power`).  Prints a table; ``--json`` prints the
report; ``--out DIR`` writes ``power.json`` and ``power.png`` (:mod:`verify.cli.figures.power`).
"""
from __future__ import annotations

from verify.cli import figures
from verify.cli.figures.power import write_figure
from verify.cli.options import add_executor_arguments, add_spec_arguments, arg_type, executor_options, spec_from_args
from verify.engine.float64 import float64_spec
from verify.internal import limits, validate
from verify.internal.executors import open_executor
from verify.internal.jsonio import dumps, versioned, write_json
from verify.internal.output import prepare
from verify.stats.power import PowerConfig, power_study

NAMES = ("power.json", "power.png")


def add_arguments(p) -> None:
    add_spec_arguments(p, sigma_w="0.9", lags=16)
    g = p.add_argument_group("study")
    g.add_argument("--widths", type=arg_type(validate.int_list, "--widths"), default=(64, 128, 256),
                   help="comma-separated widths of each repetition (default 64,128,256)")
    g.add_argument("--seeds", type=arg_type(validate.positive_int, "--seeds"), default=256,
                   help="networks per width and repetition (default 256)")
    g.add_argument("--reps", type=arg_type(validate.positive_int, "--reps"), default=100,
                   help="repetitions of every perturbation (default 100)")
    g.add_argument("--alpha", type=arg_type(lambda v, f: validate.number(v, f, minimum=0, maximum=1, open_minimum=True,
                                                                          open_maximum=True), "--alpha"),
                   default=0.01, help="false-failure probability of the test (default 0.01)")
    g.add_argument("--base-seed", type=int, default=0, help="root of the seed sequences (default 0)")
    add_executor_arguments(g)  # --workers N, --dask ADDRESS: where the repetitions run (verify/internal/executors.py)
    o = p.add_argument_group("output")
    o.add_argument("--out", default=None, help="folder for power.json and power.png (default: write nothing)")
    o.add_argument("--force", action="store_true", help="replace an existing report in --out")
    o.add_argument("--json", action="store_true", help="print the report as one JSON object")


def _table(study) -> str:
    c = study.config
    lines = [
        f"power study: {c.repetitions} repetitions x {c.seeds} networks at widths "
        f"{', '.join(map(str, c.widths))}; {c.lags} lags; alpha = {c.alpha:g}",
        f"{'perturbation':34s} {'kind':8s} {'rejected':>9s} {'rate':>6s}  {'95 % interval':>15s}  predicted",
    ]
    for r in study.rows:
        lo, hi = r.interval()
        pred = "" if r.predicted is None else f">= {r.predicted:.2f}"
        lines.append(f"{r.name:34s} {r.kind:8s} {r.rejections:4d}/{r.repetitions:<4d} {r.rate:6.2f}  "
                     f"[{lo:.3f}, {hi:.3f}]  {pred}")
    md = study.min_detectable
    lines.append(f"min detectable at 99 % power (median over repetitions): uniform beta error "
                 f"{100 * md['uniform_beta']:.2f} %, single beta_l {100 * md['single_beta_best']:.2f} % (best lag)")
    lines.append(f"wall time {study.seconds:.0f} s")
    return "\n".join(lines)


def run(args) -> int:
    spec = spec_from_args(args)
    validate.lags(args.lags)
    validate.integer(args.seeds, "--seeds", minimum=2)
    float64_spec(spec, args.lags)
    reps = 3 * args.reps  # base, n_x = 2 and F-variance networks
    limits.check_cost(limits.sweep_cost(args.widths, args.seeds * reps, args.lags, n_x=2), "--widths, --seeds, --reps")
    where = executor_options(args)  # --workers/--dask, checked before the work
    outputs = None
    if args.out is not None:
        figures.require("the power figure (--out)")
        outputs = prepare(args.out, NAMES, force=args.force)
    try:
        cfg = PowerConfig(spec=spec, lags=args.lags, widths=tuple(args.widths), seeds=args.seeds,
                          repetitions=args.reps, alpha=args.alpha, base_seed=args.base_seed)
        with open_executor(where) as executor:  # closed also on errors and KeyboardInterrupt
            study = power_study(cfg, progress=not args.json, executor=executor)
        report = versioned({"command": "power", **study.to_dict(), "executor": where.describe()})
        if outputs is not None:
            write_json(outputs.path("power.json"), report)
            write_figure(study, outputs.path("power.png"))
            outputs.commit()
    except BaseException:
        if outputs is not None:
            outputs.discard()
        raise
    if args.json:
        print(dumps(report))
    else:
        print(_table(study))
    return 0
