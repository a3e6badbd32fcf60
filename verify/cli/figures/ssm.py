"""Figure of ``python -m verify ssm compare --out DIR`` (:mod:`verify.experiments.ssm_compare` computes it).

* ``ssm_compare.png``, top left: the lag weights, the diagonal ``Theta(l, l)`` of each model's
  wide-limit kernel normalized by its maximum, against ``l + 1`` on log-log axes (dense RNNs
  solid, diagonal recurrences dashed, S4D dotted), the 1 % level as a line and each model's
  1 % lag in the legend;
* top right: the kernel spectra, eigenvalues over the largest, with each model's entropy
  effective rank in the legend;
* bottom row (unless the regression example was skipped), one panel per teacher: the teacher's
  impulse response and the one learned by kernel regression with each model's kernel, with the
  relative error in the legend.

Drawn on :class:`matplotlib.figure.Figure` (no pyplot, no global state); matplotlib is imported
when drawing (:func:`verify.cli.figures.require` checks for it before the work).
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

import numpy as np

from verify.experiments.ssm_compare import Comparison

__all__ = ["write_figure"]


def write_figure(result: Comparison, path: Union[str, Path]) -> Path:
    """The four-panel figure (weights, spectra, fits) of a :class:`Comparison` as a PNG at ``path``."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    summary, curves, spectra, teachers = result.summary, result.curves, result.spectra, result.teachers
    nt = len(teachers)
    fig = Figure(figsize=(16, 11 if nt else 5.5))
    gs = fig.add_gridspec(2 if nt else 1, 6)
    styles = {"dense": "-", "diagonal": "--", "s4d": ":"}
    colors = colormaps["tab10"](np.linspace(0, 1, 10))
    ax = fig.add_subplot(gs[0, :3])
    for i, m in enumerate(summary["models"]):
        lags, w = curves[m["name"]]
        w = w / w.max()
        ok = w > 0
        lab = m["name"] + (f" (1 %: {m['one_percent_lag']})" if m["one_percent_lag"] is not None else " (1 %: never)")
        ax.loglog(lags[ok] + 1, w[ok], styles[m["family"]], color=colors[i % 10], label=lab)
    ax.axhline(0.01, color="k", lw=0.8, alpha=0.6)
    ax.set_ylim(1e-6, 2)
    ax.set_xlabel("lag l + 1")
    ax.set_ylabel("Theta(l, l) / max")
    ax.set_title("Lag weights: diagonal of the wide-limit kernel (normalized); line = 1 %")
    ax.legend(fontsize=7, loc="lower left")
    ax = fig.add_subplot(gs[0, 3:])
    for i, m in enumerate(summary["models"]):
        ev = spectra[m["name"]]
        ok = ev > 1e-18
        ax.semilogy(np.arange(ev.size)[ok] + 1, ev[ok], styles[m["family"]], color=colors[i % 10],
                    label=f"{m['name']}: eff. rank {m['effective_rank']:.1f}")
    ax.set_xlabel("eigenvalue index")
    ax.set_ylabel("eigenvalue / largest")
    ax.set_title(f"Kernel spectra, T = {summary['lags']} lags (effective rank in legend)")
    ax.set_ylim(1e-18, 2)
    ax.legend(fontsize=7, loc="lower left")
    for j, (tname, Lstar) in enumerate(teachers.items()):
        ax = fig.add_subplot(gs[1, 2 * j: 2 * j + 2])
        ax.plot(Lstar, "k-", lw=3, alpha=0.4, label="teacher")
        for i, m in enumerate(summary["models"]):
            f = m["fits"][tname]
            ax.plot(f["learned"], styles[m["family"]], color=colors[i % 10], lw=1,
                    label=f"{m['name']}: err {f['relative_error']:.2f}")
        lo, hi = float(np.min(Lstar)), float(np.max(Lstar))
        pad = 0.6 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("lag l")
        ax.set_ylabel("learned impulse response L_l")
        ax.set_title(f"Teacher: {tname}", fontsize=10)
        ax.legend(fontsize=6, loc="upper right")
    if nt:
        fig.text(0.5, 0.005, "Bottom: kernel regression with each limit kernel (= gradient descent in the kernel "
                 f"regime from L(0) = 0), final outputs of {summary.get('train_sequences')} Gaussian sequences of "
                 f"{summary.get('train_lags')} steps; err = ||L - L*|| / ||L*||", ha="center", fontsize=9)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    fig.savefig(path, dpi=110)
    return Path(path)
