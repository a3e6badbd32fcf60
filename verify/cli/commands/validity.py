"""``python -m verify validity``: where the wide-limit kernel is accurate (exact finite-width maps).

Heat maps over lag and width of the relative diagonal bias, the off-diagonal mass and the
relative standard deviation of the lag Gram, their collapse onto one variable, rules
``n >= c l^a`` with measured constants, and the widths long sequences need
(:mod:`verify.stats.validity`; the figures: :mod:`verify.cli.figures.validity`; docs/validity.md).
"""
from __future__ import annotations

from typing import Dict, Tuple

from verify.cli import figures
from verify.cli.figures.validity import FIGURES, write_figures
from verify.internal import output
from verify.internal.jsonio import dumps, versioned, write_json
from verify.stats.validity import CANDIDATES, QUANTITIES, make_options, validity_report

REPORT = "report.json"
FILES = (REPORT,) + FIGURES
DEFAULT_WIDTHS = ",".join(str(2**k) for k in range(3, 17))


def add_arguments(p) -> None:
    p.add_argument("--lags", default="16", help="lags l = 0 .. L-1 computed exactly (default 16)")
    p.add_argument("--widths", default=DEFAULT_WIDTHS, help=f"widths n of the maps (default {DEFAULT_WIDTHS})")
    p.add_argument("--sigma-w", default="0.5,0.9,1", help="scales s_W, comma-separated (default 0.5,0.9,1)")
    p.add_argument("--threshold", default="0.01", help="level of the rules (default 0.01, i.e. 1 %%)")
    p.add_argument("--min-lag", default="4", help="smallest lag of the collapse and the rules (default 4)")
    p.add_argument("--sequence-lengths", default="100,1000", help="sequence lengths T of the table (default 100,1000)")
    p.add_argument("--fixed-widths", default="1024,4096", help="widths of the largest-lag table (default 1024,4096)")
    p.add_argument("--exact-variance-lags", default="6",
                   help="lags whose exact variance is compared with its leading term (default 6, at most 7; 0 skips)")
    p.add_argument("--out", default=None, help="folder for report.json and the figures (needs matplotlib)")
    p.add_argument("--force", action="store_true", help="replace an existing report in --out")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the tables")


def run(args) -> int:
    opts = make_options(lags=args.lags, widths=args.widths, sigma_ws=args.sigma_w, threshold=args.threshold,
                        min_lag=args.min_lag, sequence_lengths=args.sequence_lengths,
                        fixed_widths=args.fixed_widths, exact_variance_lags=args.exact_variance_lags)
    if args.out is None:
        report = versioned(validity_report(opts))
    else:
        figures.require("validity --out (its figures)")
        with output.report_folder(args.out, FILES, force=args.force) as outputs:
            report = versioned(validity_report(opts))
            write_json(outputs.path(REPORT), report)
            write_figures(report, outputs.staging)
    if args.json:
        print(dumps(report))
    else:
        print_tables(report)
    if args.out is not None:
        print(f"wrote {outputs.final(REPORT)} and {', '.join(FIGURES)}")
    return 0


def _width(entry) -> str:
    if entry.get("log10_width") is None:
        return "-"
    if entry.get("width") is None or entry["width"] >= 1e9:
        return f"1e{entry['log10_width']:.1f}"
    return f"{entry['width']:.4g}"


def print_tables(report) -> None:
    thr = 100 * report["threshold"]
    print(f"Where the wide-limit kernel is accurate: metric ntk, conv1, exact means for lags 0..{report['lags'] - 1}, "
          f"level {thr:g} %")
    for q in QUANTITIES:
        print(f"  {q}: {report['quantities'][q]}")
    indep = ", ".join(q for q, v in report["sigma_w_independent"].items() if v)
    print(f"  exactly independent of s_W: {indep or 'none'}")
    agrees = all(all(v.values()) for v in report["closed_forms"]["agrees"].values())
    print(f"  closed forms agree with the exact leading terms: {'yes' if agrees else 'NO'} "
          f"({report['closed_forms']['status']})")
    first = report["collapse"][report["sigma_w"][0]]["bias"]
    lo, hi = first["near_threshold"]["band"]
    print(f"\nCollapse onto x = l^a/n: rms over x of the std of ln q across lags {first['lags']}, near the level "
          f"(mean q in [{lo:g}, {hi:g}]) | over the whole grid; best a from a scan of 0.5..3:")
    head = "".join(f"{name:>10}" for name in CANDIDATES)
    print(f"{'s_W':>6} {'quantity':<13}{head}{'best a':>8}  |{head}{'best a':>8}")
    for sw in report["sigma_w"]:
        for q in QUANTITIES:
            cells = []
            for part in ("near_threshold", "full_range"):
                c = report["collapse"][sw][q][part]
                vals = "".join(f"{(v['rms'] if v else float('nan')):>10.3f}" for v in c["candidates"].values())
                best = "-" if c["best_exponent"] is None else f"{c['best_exponent']:g}"
                cells.append(f"{vals}{best:>8}")
            print(f"{sw:>6} {q:<13}{cells[0]}  |{cells[1]}")
    print("\nRules (exact values; tight at the lag named; c(far): leading-order closed form n*/l^a at a far lag):")
    for r in report["rules"]:
        far = r["closed_form_constant"]
        cf = "-" if far["constant"] is None else f"{far['constant']:.4g}"
        print(f"  s_W = {r['sigma_w']:>5}: {r['statement']}  (tight at l = {r['argmax_lag']}, "
              f"local exponent {r['local_exponent']:.2f}; c({far['lag']}) = {cf})")
    print("\nWidth needed at lag T - 1 (n at T-1: exact, or the leading-order closed form; next order: heuristic "
          "trend of the exact/closed-form ratio; rule: c (T-1)^a read beyond its range; window: worst row of "
          "the T-lag window, leading order):")
    print(f"{'T':>6} {'s_W':>6} {'quantity':<13}{'n at T-1':>12}{'next order':>12}{'rule':>12}{'window':>12}  source")
    for row in report["sequence_lengths"]:
        win = _width(row["whole_window"]) if "whole_window" in row else ""
        nxt = _width(row["next_order_estimate"]) if "next_order_estimate" in row else ""
        print(f"{row['T']:>6} {row['sigma_w']:>6} {row['quantity']:<13}{_width(row):>12}{nxt:>12}"
              f"{_width(row['rule_extrapolated']):>12}{win:>12}  {row['source']}")
    print("\nLargest lag L with every l <= L within the level (exact below the computed lags; beyond, the "
          "closed form, and in brackets with the heuristic next-order factor):")
    print(f"{'n':>7} {'s_W':>6} " + "".join(f"{q:>16}" for q in QUANTITIES))
    rows: Dict[Tuple[int, str], Dict[str, str]] = {}
    for row in report["fixed_widths"]:
        text = "none" if row["largest_lag"] is None else str(row["largest_lag"])
        if row["source"] != "exact":
            text += "*"
        if row.get("largest_lag_next_order") is not None:
            text += f" ({row['largest_lag_next_order']})"
        rows.setdefault((row["width"], row["sigma_w"]), {})[row["quantity"]] = text
    for (n, sw), by_quantity in rows.items():
        print(f"{n:>7} {sw:>6} " + "".join(f"{by_quantity[q]:>16}" for q in QUANTITIES))
    print("  (* decided by the closed form: the first failing lag is beyond the exact lags)")
