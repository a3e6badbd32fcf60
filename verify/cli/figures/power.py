"""Figure of ``python -m verify power --out DIR`` (:mod:`verify.stats.power` runs the study).

* ``power.png``: one horizontal bar per perturbation (grey: none, i.e. the true theory, whose
  rate is the false-failure rate; blue: a wrong theory; orange: a wrong network), the rejection
  rate over the repetitions with its 95 % Clopper-Pearson interval, a black tick at the power
  predicted from the run's seed variances, and a dashed red line at ``alpha``.

Drawn on :class:`matplotlib.figure.Figure` (no pyplot, no global state); matplotlib is imported
when drawing (:func:`verify.cli.figures.require` checks for it before the work).
"""
from __future__ import annotations

from pathlib import Path
from typing import Union

from verify.stats.power import PowerStudy

__all__ = ["write_figure"]


def write_figure(study: PowerStudy, path: Union[str, Path]) -> Path:
    """Draw the rejection rates of ``study`` as a PNG at ``path``; return ``path``."""
    from matplotlib.figure import Figure

    rows = study.rows
    fig = Figure(figsize=(8, 0.45 * len(rows) + 1.5))
    ax = fig.add_subplot()
    ys = range(len(rows))
    rates = [r.rate for r in rows]
    los = [r.rate - r.interval()[0] for r in rows]
    his = [r.interval()[1] - r.rate for r in rows]
    colors = ["tab:gray" if r.kind == "none" else ("tab:orange" if r.kind == "network" else "tab:blue") for r in rows]
    ax.barh(list(ys), rates, xerr=[los, his], color=colors, alpha=0.8)
    for y, r in zip(ys, rows):
        if r.predicted is not None:
            ax.plot([r.predicted], [y], "k|", markersize=14)
    ax.axvline(study.config.alpha, color="red", lw=1, ls="--", label=f"alpha = {study.config.alpha:g}")
    ax.set_yticks(list(ys))
    ax.set_yticklabels([r.name for r in rows])
    ax.invert_yaxis()
    ax.set_xlim(0, 1.02)
    ax.set_xlabel("rejection rate (95 % Clopper-Pearson); black tick: predicted power")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return Path(path)
