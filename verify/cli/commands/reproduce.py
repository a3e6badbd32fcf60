"""``python -m verify reproduce --out DIR [--quick]``: the implicit bias in action.

Runs the three experiments of :mod:`verify.experiments.implicit_bias` and writes into DIR:
``training.png``, ``synthetic.png``, ``sunspots.png`` and ``summary.json`` (its key
``"train_vs_theory"`` lists, per width, the relative distance of the trained RNN's
impulse response to the weighted minimum-norm solution).  The figures are drawn by
:mod:`verify.cli.figures.reproduce`.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict

from verify.cli import figures
from verify.cli.figures import reproduce as plots
from verify.experiments import implicit_bias as ex
from verify.internal import output
from verify.internal.jsonio import versioned, write_json

FULL: Dict[str, Any] = dict(
    widths=[64, 128, 256, 512, 1024, 2048],
    seeds={64: range(8), 128: range(8), 256: range(8), 512: range(8), 1024: range(4), 2048: range(3)},
    synth_sigmas=["0.5", "0.7", "0.8", "0.9", "0.95", "1"], rhos=[0.3, 0.5, 0.7, 0.8, 0.9, 0.95],
    synth_draws=40, real_sigmas=["0.3", "0.5", "0.7", "0.8", "0.9", "0.95", "1"], real_draws=20,
    gd_sigmas=["0.5", "0.8", "0.95"], real_width=256, real_max_steps=3000)
QUICK: Dict[str, Any] = dict(
    widths=[64, 256, 1024], seeds={64: range(4), 256: range(4), 1024: range(2)},
    synth_sigmas=["0.5", "0.8", "0.95", "1"], rhos=[0.3, 0.6, 0.8, 0.9, 0.95],
    synth_draws=10, real_sigmas=["0.5", "0.7", "0.8", "0.9", "0.95", "1"], real_draws=6,
    gd_sigmas=["0.8"], real_width=256, real_max_steps=3000)


FILES = ("summary.json", "training.png", "synthetic.png", "sunspots.png")


def add_arguments(p) -> None:
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--quick", action="store_true", help="smaller sweep (under 3 minutes on 2 cores)")
    p.add_argument("--force", action="store_true", help="replace an existing report in --out")


def run(args) -> int:
    figures.require("reproduce (its figures)")  # before minutes of work, not after
    with output.report_folder(args.out, FILES, force=args.force) as outputs:
        summary, train = _run_into(args, outputs.staging)
    timings = summary["timings"]
    print(f"reproduce ({summary['mode']}): {timings['total_s']:.0f} s; wrote {outputs.final('summary.json')}, "
          "training.png, synthetic.png, sunspots.png")
    print(f"{'width':>6} {'seeds':>5} {'dist to weighted min-norm':>26} {'dist to unweighted':>19} "
          f"{'RNN-SCM test gap':>17}")
    for r in train["per_width"]:
        print(f"{r['width']:>6} {r['seeds']:>5} {r['dist_weighted_mean']:>15.4f} (max {r['dist_weighted_max']:.4f})"
              f" {r['dist_unweighted_mean']:>19.4f} {r['test_gap_mean']:>17.4f}")
    return 0


def _run_into(args, out: Path):
    """The three experiments; every file written into ``out`` (the staging folder)."""
    cfg = QUICK if args.quick else FULL
    t0 = time.perf_counter()
    timings = {}
    t = time.perf_counter()
    train = ex.training_vs_theory(cfg["widths"], cfg["seeds"])
    timings["training_vs_theory_s"] = time.perf_counter() - t
    t = time.perf_counter()
    synth = ex.synthetic(cfg["synth_sigmas"], cfg["rhos"], draws=cfg["synth_draws"])
    timings["synthetic_s"] = time.perf_counter() - t
    t = time.perf_counter()
    real = ex.real_data(cfg["real_sigmas"], draws=cfg["real_draws"], gd_sigmas=cfg["gd_sigmas"],
                        width=cfg["real_width"], max_steps=cfg["real_max_steps"])
    timings["real_data_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    train_vs_theory = [
        dict(width=r["width"], relative_distance_weighted=r["dist_weighted"],
             relative_distance_weighted_mean=r["dist_weighted_mean"],
             relative_distance_unweighted=r["dist_unweighted"],
             relative_distance_unweighted_mean=r["dist_unweighted_mean"],
             rnn_vs_scm_test_gap=r["test_gap"], rnn_vs_scm_loss_curve_gap=r["loss_curve_gap"])
        for r in train["per_width"]
    ]
    summary = dict(
        mode="quick" if args.quick else "full",
        distance="||L_rnn - L_ref|| / ||L_ref - L(0)|| over lags 0..T-1 (L(0): the network's initial response)",
        train_vs_theory=train_vs_theory,
        training=train, synthetic=synth, real_data=real, timings=timings,
    )
    write_json(out / "summary.json", versioned(summary))
    plots.training_figure(train, out / "training.png")
    plots.synthetic_figure(synth, out / "synthetic.png")
    plots.real_figure(real, out / "sunspots.png")
    return summary, train
