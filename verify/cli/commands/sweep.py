"""``python -m verify sweep``: widths x seeds sweep of the empirical lag Gram, every knob exposed.

Exit status: 0 when the verdict is "consistent", 1 when "inconsistent", 2 on bad
input.  ``--json`` prints the report as one JSON object; ``--out DIR`` writes
``report.json`` and PNG figures there.  The shared machinery here also drives
the default job (:mod:`verify.cli.commands.run`).
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Optional, Tuple

import numpy as np

from theory.spec import RNNSpec
from verify.cli.figures import available as figures_available
from verify.cli.figures.sweep import write_figures
from verify.cli.options import add_executor_arguments, add_spec_arguments, arg_type, executor_options, spec_from_args
from verify.engine.backend import BACKENDS, DEVICES, DRAWS, ComputeOptions
from verify.engine.float64 import float64_spec
from verify.internal import limits, validate
from verify.internal.executors import open_executor
from verify.internal.jsonio import dumps, versioned, write_json
from verify.internal.output import SWEEP_FILES, prepare
from verify.stats.sweep import SLOPE_MODELS, SweepPlan, sweep, t_interval

DEFAULT_WIDTHS = (128, 256, 512, 1024, 2048, 4096)
DEFAULT_SEEDS = 8
DEFAULT_BIAS_SEEDS = 512


def _confidence(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0.5, 1), got {text!r}") from None
    if not 0.5 <= v < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0.5, 1), got {text}")
    return v


def add_sweep_arguments(p, *, out_default: Optional[str]) -> None:
    """Options shared by ``run`` and ``sweep`` (spec, widths, seeds, backend, statistics, output)."""
    add_spec_arguments(p, sigma_w="0.9", lags=16)
    g = p.add_argument_group("sweep")
    g.add_argument("--widths", type=arg_type(validate.int_list, "--widths"), default=DEFAULT_WIDTHS,
                   help="comma-separated widths (default " + ",".join(map(str, DEFAULT_WIDTHS)) + ")")
    g.add_argument("--seeds", type=arg_type(validate.positive_int, "--seeds"), default=DEFAULT_SEEDS,
                   help=f"seeds per width: 0..S-1 (default {DEFAULT_SEEDS})")
    g.add_argument("--base-seed", type=int, default=0,
                   help="root of the seed sequences: draw (n, s) uses SeedSequence([base, n, s]) (default 0)")
    g.add_argument("--confidence", type=_confidence, default=0.99,
                   help="level of every interval and band (default 0.99)")
    g.add_argument("--slope-model", choices=SLOPE_MODELS, default="corrected",
                   help="corrected: log e = a + p log n + c/n (default); plain: log e = a + p log n")
    g.add_argument("--bias-seeds", type=int, default=DEFAULT_BIAS_SEEDS,
                   help=("seeds 0..B-1 of the bias probe at --bias-widths (the finite-width bias is resolved only "
                         f"with many seeds; 0 = use the sweep's own draws; default {DEFAULT_BIAS_SEEDS})"))
    g.add_argument("--bias-widths", type=arg_type(validate.int_list, "--bias-widths"), default=None,
                   help="widths of the bias probe (default: the three smallest widths)")
    add_executor_arguments(g)  # --workers N, --dask ADDRESS (verify/internal/executors.py)
    b = p.add_argument_group("backend")
    b.add_argument("--backend", choices=BACKENDS, default="numpy", help="array backend (default numpy)")
    b.add_argument("--device", choices=DEVICES, default="cpu", help="device (default cpu)")
    b.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="dtype (default float64)")
    b.add_argument("--draws", choices=DRAWS, default="numpy",
                   help="where weights are drawn: numpy (backend-independent networks, default) or native")
    o = p.add_argument_group("output")
    o.add_argument("--out", default=out_default,
                   help=("folder for report.json and figures" +
                         (f" (default {out_default})" if out_default else " (default: write nothing)")))
    o.add_argument("--no-figures", action="store_true", help="do not draw PNG figures")
    o.add_argument("--force", action="store_true", help="replace an existing report in --out (docs/errors.md)")
    o.add_argument("--quiet", action="store_true", help="no table or progress bar; one summary line")


def versions(backend: str) -> dict:
    """Versions of the interpreter and the libraries a report depends on."""
    import mpmath
    import scipy

    out = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
           "mpmath": mpmath.__version__, "platform": platform.platform(), "cpus": os.cpu_count()}
    try:
        out["matplotlib"] = metadata.version("matplotlib")  # read, not imported (figures only in verify.cli.figures)
    except metadata.PackageNotFoundError:
        out["matplotlib"] = None
    mod = {"torch": "torch", "cupy": "cupy", "array-api-strict": "array_api_strict"}.get(backend)
    if mod:
        try:
            out[backend] = __import__(mod).__version__
        except (ImportError, AttributeError):
            out[backend] = None
    return out


def execute(args, *, command: str) -> int:
    """Run the sweep described by ``args``, print, write ``--out``; exit status from the verdict."""
    spec = spec_from_args(args)
    check_request(args, spec)  # float64 range and size limits, before anything is drawn (docs/errors.md)
    _note_exact_cost(spec, args.lags, quiet=args.quiet or getattr(args, "json", False))
    plan = SweepPlan(spec, args.widths, args.seeds, args.lags, base_seed=args.base_seed,
                     bias_seeds=args.bias_seeds, bias_widths=args.bias_widths, confidence=args.confidence,
                     slope_model=args.slope_model)
    compute = ComputeOptions(args.backend, args.device, args.dtype, args.draws)
    where = executor_options(args, device=args.device)  # --workers/--dask, checked before the work
    # checked before the work; files are staged and moved into place at the end (verify/internal/output.py)
    outputs = None if args.out is None else prepare(args.out, SWEEP_FILES, force=args.force)
    args.no_figures = args.no_figures or (outputs is not None and not figures_available())
    t0 = time.perf_counter()
    with open_executor(where) as executor:  # closes the pool or the Dask client and cluster, also on errors
        result = sweep(plan, compute=compute, executor=executor,
                       progress=not (args.quiet or getattr(args, "json", False)))
    report = versioned(result.to_dict())
    report["command"] = "python -m verify " + command
    report["workers"] = args.workers
    report["executor"] = where.describe()
    report["versions"] = versions(args.backend)
    figures = []
    if outputs is not None:
        if not args.no_figures:
            figures = [str(outputs.final(f.name)) for f in write_figures(result, outputs.staging)]
        report["figures"] = figures
        report["timings"]["total_seconds"] = time.perf_counter() - t0
        write_json(outputs.staging / "report.json", report)
        outputs.commit()
    else:
        report["timings"]["total_seconds"] = time.perf_counter() - t0
    if getattr(args, "json", False):
        print(dumps(report))
    elif args.quiet:
        print(summary_line(result))
    else:
        print(format_result(result))
        if args.out:
            print(f"\nwrote {Path(args.out) / 'report.json'}" + (f" and {len(figures)} figure(s)" if figures else ""))
        print(f"total time {report['timings']['total_seconds']:.1f} s")
    return 0 if result.verdict == "consistent" else 1


def check_request(args, spec: RNNSpec) -> limits.Cost:
    """The checks ``run`` and ``sweep`` make before drawing anything (``args`` from
    :func:`add_sweep_arguments`): the float64 range of the specification
    (:func:`verify.engine.float64.float64_spec`), the size limits of the draws
    (:func:`verify.internal.limits.check_sweep`) and of the exact test's means
    (:func:`verify.internal.limits.exact_test_cost`)."""
    widths = tuple(int(n) for n in args.widths)
    bias_seeds = max(int(args.bias_seeds), 0)
    bias_widths: Tuple[int, ...] = ()
    if bias_seeds:
        bias_widths = tuple(sorted(widths)[:3]) if args.bias_widths is None else tuple(args.bias_widths)
    if widths and int(args.lags) >= 1:
        float64_spec(spec, int(args.lags), width=max(min(widths), 1))  # names the field that overflows
    cost = limits.check_sweep(widths, max(int(args.seeds), 0), int(args.lags), spec.n_x, spec.n_y,
                              bias_widths=bias_widths, bias_seeds=bias_seeds, workers=max(int(args.workers), 1),
                              itemsize=4 if getattr(args, "dtype", "float64") == "float32" else 8)
    if int(args.lags) >= 1:  # the exact test's means: cheap from the shipped table, costly beyond it
        limits.check_cost(limits.exact_test_cost(int(args.lags), spec.convention,
                                                 widths=len(set(widths) | set(bias_widths))), "--lags")
    return cost


def _note_exact_cost(spec: RNNSpec, lags: int, *, quiet: bool) -> None:
    """One line on standard error when the exact means lie beyond the shipped table (slow)."""
    if limits.markov_top(lags, spec.convention) >= limits.TABLE_INDEX and not quiet:
        est = limits.exact_test_cost(lags, spec.convention).seconds
        print(f"note: the exact finite-width means for {lags} lags lie beyond the shipped table (Markov indices "
              f"below {limits.TABLE_INDEX}) and are computed first: about {limits.fmt_seconds(est)}", file=sys.stderr)


def summary_line(result) -> str:
    lo, hi = result.slope.interval
    b = result.band
    exact = ""
    if result.exact is not None:
        md = result.exact.min_detectable
        exact = (f"exact test p = {result.exact.p_value:.3g}, detects a uniform beta error of "
                 f"{100 * md['uniform_beta']:.2g} % (power {md['power']:g}); ")
    return (f"verdict: {result.verdict}; {exact}slope {result.slope.slope:.3f} [{lo:.3f}, {hi:.3f}] "
            f"({100 * result.confidence:g}%); error at n={b.width}: {b.observed:.4g} "
            f"(band [{b.lower:.4g}, {b.upper:.4g}])")


def format_result(result) -> str:
    """Readable tables: errors per width, fitted exponent, band, bias per lag, rules, verdict."""
    spec = result.spec
    pct = f"{100 * result.confidence:g}%"
    lines = []
    sd = spec.to_dict()
    lines.append(f"Empirical lag Gram vs closed form: metric {sd['metric']}, {sd['convention']}, "
                 f"s_W = {sd['sigma_w']}, s_F = {sd['sigma_f']}, s_C = {sd['sigma_c']}, s_D = {sd['sigma_d']}, "
                 f"n_x = {sd['n_x']}, n_y = {sd['n_y']}, {result.lags} lags, {len(result.seeds)} seeds/width, "
                 f"backend {result.compute.backend}/{result.compute.device}/{result.compute.dtype}")
    lines.append("")
    fm, fh = result.frob_mean()
    gm, glo, ghi = result.frob_geomean()
    om, oh = t_interval(result.offdiag, result.confidence, axis=1)
    rms = np.sqrt(np.mean(result.frob ** 2, axis=1))
    pred = result.predicted_error
    head = (f"{'width':>6}  {'rel. Frobenius error (mean +- ' + pct + ')':>34}  {'geo. mean':>9}  "
            f"{'sqrt(n)*mean':>12}  {'RMS':>8}  {'exact RMS':>9}  {'off-diag mass':>13}  {'s/draw':>7}")
    lines += [head, "-" * len(head)]
    for k, n in enumerate(result.widths):
        secs = np.nanmean(result.seconds[k]) if result.seconds is not None else float("nan")
        exact_rms = f"{pred[k]:>9.5f}" if pred is not None else f"{'-':>9}"
        lines.append(f"{n:>6}  {fm[k]:>22.5f} +- {fh[k]:<8.5f}  {gm[k]:>9.5f}  {fm[k] * np.sqrt(n):>12.3f}  "
                     f"{rms[k]:>8.5f}  {exact_rms}  {om[k]:>13.5f}  {secs:>7.3f}")
    if pred is not None:
        lines.append("  exact RMS: sqrt(E ||Theta_n - Theta_inf||_F^2) / ||Theta_inf||_F from the exact mean and the "
                     "exact leading (1/n) variance: a prediction, not a fit;\n  its 1/n^2 variance terms, left out, "
                     "matter below n ~ L^2 (docs/theory.md, section 'The error law, predicted')")
    f = result.slope
    lines.append("")
    lines.append(f"Exponent p of e ~ n^p (theory -1/2), OLS on per-seed log errors, {pct} t intervals:")
    if f.corrected_slope is not None:
        tag = "  <- used" if f.model == "corrected" else ""
        lines.append(f"  corrected  log e = a + p log n + c/n: p = {f.corrected_slope:.4f} "
                     f"[{f.corrected_interval[0]:.4f}, {f.corrected_interval[1]:.4f}], "
                     f"c = {f.correction:.3g} [{f.correction_interval[0]:.3g}, {f.correction_interval[1]:.3g}]{tag}")
    tag = "  <- used" if f.model == "plain" else ""
    lines.append(f"  plain      log e = a + p log n:       p = {f.plain_slope:.4f} "
                 f"[{f.plain_interval[0]:.4f}, {f.plain_interval[1]:.4f}]{tag}")
    b = result.band
    lines.append("")
    lines.append(f"At n = {b.width}: geometric seed mean {b.observed:.5f}, {pct} band from the other widths "
                 f"[{b.lower:.5f}, {b.upper:.5f}] (centre {b.predicted:.5f}); arithmetic mean "
                 f"{b.arithmetic_mean:.5f} [{b.arithmetic_interval[0]:.5f}, {b.arithmetic_interval[1]:.5f}]")
    bt, bh = result.bias_table()
    lines.append("")
    bw, bs = result.bias_source()
    src = f"bias probe, {bs} seeds per width" if result.has_probe else f"the sweep's {bs} seeds per width"
    lines.append(f"Bias ({src}): n * seed-mean (Theta_n[l,l] - beta_l)/beta_l +- n * {pct} half-width;")
    lines.append("  [in brackets: the exact finite-width mean's value, n (E Theta_n[l,l]/beta_l - 1); the diagonal "
                 "bias is O(1/n^2) for the metrics ntk and variance]; information, not a rule")
    ex = result.exact_bias_table()
    hdr = f"{'lag':>4}  {'beta_l':>9}  " + "  ".join(f"{'n=' + str(n):>23}" for n in bw)
    lines += [hdr, "-" * len(hdr)]
    for l in range(result.lags):
        cells = "  ".join(_pm(bt[k, l], bh[k, l]) + f" [{ex[k, l]:>6.1f}]" for k in range(len(bw)))
        lines.append(f"{l:>4}  {result.beta[l]:>9.4g}  {cells}")
    if result.exact is not None:
        lines.append("")
        lines += format_exact(result.exact)
    lines.append("")
    lines.append("Rules: (decisive rules decide the verdict; the others are information)")
    for r in result.rules:
        tag = "" if r.decisive else " (information)"
        lines.append(f"  [{'pass' if r.passed else 'FAIL'}] {r.name}{tag}: {r.statement}: {r.detail}")
    level = (1 - result.confidence) if result.exact is not None else 2 * (1 - result.confidence)
    lines.append(f"Verdict: {result.verdict} (false-failure probability <= {level:.2g} when the theorem holds)")
    if result.exact is not None:
        md = result.exact.min_detectable
        sb = md["single_beta"]
        lines.append(f"Power: this run detects, with probability {md['power']:g}, a uniform error in beta of "
                     f"{100 * md['uniform_beta']:.2g} % and an error in a single beta_l of {100 * sb['best']:.2g} % "
                     f"(lag {sb['best_lag']}; {100 * sb['worst']:.2g} % at the least sensitive lag)")
    return "\n".join(lines)


def format_exact(test) -> list:
    """The exact test per width: draws, uniform-contrast z, largest |z| over entries."""
    lines = [f"Exact test: seed means of the lag Gram against the exact finite-width means "
             f"(alpha = {test.alpha:g}; docs/theory.md, section 'Finite width: exact moments of the lag Gram')"]
    head = f"{'width':>6}  {'draws':>6}  {'z uniform':>9}  {'max |z| entry':>13}"
    lines += [head, "-" * len(head)]
    for k, (n, S) in enumerate(zip(test.widths, test.seeds)):
        zmax = float(np.max(np.abs(test.z_entries_widths[k]))) if test.z_entries_widths.size else 0.0
        lines.append(f"{n:>6}  {S:>6}  {test.z_uniform_widths[k]:>+9.2f}  {zmax:>13.2f}")
    zmax = float(np.max(np.abs(test.z_entries))) if test.z_entries.size else 0.0
    lines.append(f"{'all':>6}  {sum(test.seeds):>6}  {test.z_uniform:>+9.2f}  {zmax:>13.2f}   "
                 f"(critical {test.critical['uniform']:.2f} and {test.critical['entry']:.2f}; p = {test.p_value:.3g})")
    return lines


def _pm(m: float, h: float) -> str:
    if not np.isfinite(m):
        return f"{'-':>14}"
    return f"{m:>7.1f}+-{h:<5.0f}" if np.isfinite(h) else f"{m:>14.1f}"


def add_arguments(p) -> None:
    add_sweep_arguments(p, out_default=None)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")


def run(args) -> int:
    return execute(args, command="sweep")
