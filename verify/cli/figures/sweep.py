"""Figures of ``python -m verify run`` and ``sweep`` with ``--out DIR`` (:mod:`verify.stats.sweep` computes them).

* ``beta.png``: the closed-form ``beta_l / n_x`` against the seed-mean empirical
  diagonal ``Theta_n[l, l]`` with t error bars, at the largest and smallest widths;
* ``rate.png``: relative Frobenius error against width on log-log axes: per-seed
  points, seed means with t error bars, the measured root mean square beside the
  exact predicted one (from the exact finite-width mean and leading variance: a
  prediction, not a fit), the fitted law (information), the ``n^-1/2`` reference
  line and the prediction band at the largest width;
* ``bias.png``: ``n`` times the seed-mean relative signed diagonal error per lag,
  one curve per width, with the exact finite-width values
  ``n (E Theta_n[l, l] / beta_l - 1)`` as dashed lines in the same colours.

Drawn on :class:`matplotlib.figure.Figure` (no pyplot, no global state); matplotlib is imported
when drawing (the command asks :func:`verify.cli.figures.available` before the work; without
matplotlib, a warning and no figures).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Union

import numpy as np

from theory.finite_width import mean_lag_gram
from verify.stats.sweep import SweepResult, t_interval
from verify.stats.sweep.result import predicted_error

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["write_figures"]


def write_figures(result: SweepResult, out_dir: Union[str, Path]) -> List[Path]:
    """Write ``beta.png``, ``rate.png`` and ``bias.png`` of ``result`` into ``out_dir``; return their paths
    (none, after a warning, without matplotlib)."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.ticker import NullFormatter
    except ImportError:
        print("warning: matplotlib is not installed; no figures written (pip install 'rnn-implicit-bias[plot]')",
              file=sys.stderr)
        return []

    out_dir = Path(out_dir)
    paths = []
    pct = f"{100 * result.confidence:g}%"
    sd = result.spec.to_dict()
    title = f"metric {sd['metric']}, {sd['convention']}, s_W = {sd['sigma_w']}, {len(result.seeds)} seeds/width"
    nx = result.spec.n_x
    lags = np.arange(result.lags)

    # beta_l: closed form vs empirical diagonal
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    ref = result.beta / nx
    ax.plot(lags, ref, "k-", lw=1.5, label=r"closed form $\beta_l / n_x$ (theory)")
    series = [(result.widths[-1], result.diag_signed[-1], len(result.seeds))]
    if result.has_probe:
        assert result.bias_diag_signed is not None  # a probe has its own draws
        series.append((result.bias_widths[0], result.bias_diag_signed[0], len(result.bias_seeds)))
    else:
        series.append((result.widths[0], result.diag_signed[0], len(result.seeds)))
    for off, (n, dsig) in zip((0.0, 0.15), [(a, b) for a, b, _ in series]):
        emp = dsig + ref[None, :]
        m, h = t_interval(emp, result.confidence, axis=0)
        ax.errorbar(lags + off, m, yerr=h, fmt="o" if off == 0 else "s", ms=4, capsize=3,
                    label=f"empirical mean, n = {n}, {emp.shape[0]} seeds ({pct} t interval)")
    ax.set_xlabel("lag l")
    ax.set_ylabel(r"$\Theta_n[l, l]$")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "beta.png"))

    # error vs width
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    w = np.asarray(result.widths, dtype=float)
    for k, n in enumerate(w):
        ax.plot(np.full(result.frob.shape[1], n), result.frob[k], ".", color="0.7", ms=4,
                label="per seed" if k == 0 else None)
    fm, fh = result.frob_mean()
    ax.errorbar(w, fm, yerr=fh, fmt="o", color="C0", capsize=3, label=f"seed mean ({pct} t interval)")
    grid = np.geomspace(w.min(), w.max(), 100)
    f = result.slope
    if f.model == "corrected" and f.correction is not None:
        fit = np.exp(f.intercept + f.slope * np.log(grid) + f.correction / grid)
        ax.plot(grid, fit, "C1-", label=f"fit $e^{{a}} n^{{p}} e^{{c/n}}$, p = {f.slope:.3f} "
                f"[{f.interval[0]:.3f}, {f.interval[1]:.3f}]")
    else:
        ax.plot(grid, np.exp(f.intercept + f.slope * np.log(grid)), "C1-",
                label=f"fit $n^{{p}}$, p = {f.slope:.3f} [{f.interval[0]:.3f}, {f.interval[1]:.3f}]")
    if result.predicted_error is not None:
        rms = np.sqrt(np.mean(result.frob ** 2, axis=1))
        ax.plot(w, rms, "D", color="C2", ms=5, label="measured RMS over seeds")
        curve = predicted_error(result.plan, [int(round(g)) for g in grid], result.beta)
        assert curve is not None  # predicted_error is None only where result.predicted_error is
        ax.plot(grid, curve, "C2-", lw=1.5, label="exact predicted RMS (exact mean, leading variance)")
    b = result.band
    ax.plot(grid, b.observed * np.sqrt(b.width / grid), "k--", lw=1, label=r"$\propto n^{-1/2}$ (theory)")
    ax.errorbar([b.width * 1.06], [b.predicted], yerr=[[b.predicted - b.lower], [b.upper - b.predicted]],
                fmt="_", color="C3", capsize=4, label=f"{pct} band at n = {b.width} (from the other widths)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(w)
    ax.set_xticklabels([str(int(n)) for n in w])
    ax.set_xlabel("width n")
    ax.set_ylabel(r"$\|\Theta_n - \Theta_\infty\|_F / \|\Theta_\infty\|_F$")
    ax.set_title(f"{title}; verdict: {result.verdict}", fontsize=9)
    ax.legend(fontsize=7)
    paths.append(_save(fig, out_dir / "rate.png"))

    # bias per lag
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    bt, bh = result.bias_table()
    bw, bs = result.bias_source()
    K = len(bw)
    mean = mean_lag_gram(result.spec, result.lags)
    for k, n in enumerate(bw):
        eb = ax.errorbar(lags + 0.08 * (k - (K - 1) / 2), bt[k], yerr=bh[k], fmt="o", ms=3, capsize=2,
                         alpha=0.8, label=f"n = {n}")
        exact = [float(n * (mean.total[l][l](n) / mean.total[l][l].coeff(0) - 1)) if mean.total[l][l].coeff(0)
                 else np.nan for l in range(result.lags)]
        ax.plot(lags, exact, "--", color=eb[0].get_color(), lw=1,
                label="exact finite-width mean" if k == 0 else None)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("lag l")
    ax.set_ylabel(r"$n\,(\bar\Theta_n[l,l] - \beta_l)/\beta_l$")
    ax.set_title(f"bias of the mean ({pct} t intervals, {bs} seeds per width); {title}", fontsize=9)
    ax.legend(fontsize=7, ncol=2)
    paths.append(_save(fig, out_dir / "bias.png"))
    return paths


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
