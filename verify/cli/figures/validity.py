"""Figures of ``python -m verify validity --out DIR`` (:mod:`verify.stats.validity` computes the report).

* ``heatmaps.png``: one row per ``s_W``, one column per measure (bias, off-diagonal mass,
  symmetric off-diagonal mass, relative std): ``log10`` of the measure over lag and ``log2 n``,
  the level (e.g. 1 %) as a white contour; blank cells are exactly zero;
* ``collapse.png``: at ``s_W = 1`` (else the first ``s_W``), each measure against each candidate
  variable ``l^a / n`` on log-log axes, one curve per lag, the spread of the collapse in the titles;
* ``thresholds.png``: the width ``n*(l)`` beyond which each measure stays below the level: exact
  points, leading-order closed-form lines, the rules ``n >= c l^a``, grey verticals at ``T - 1``.

Drawn on :class:`matplotlib.figure.Figure` (no pyplot, no global state); matplotlib is imported
when drawing (:func:`verify.cli.figures.require` checks for it before the work).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, List, Mapping, Union

import numpy as np

from verify.stats.validity import CANDIDATES, QUANTITIES, SHORT

if TYPE_CHECKING:
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

__all__ = ["FIGURES", "write_figures"]

#: The files :func:`write_figures` writes, in order.
FIGURES = ("heatmaps.png", "collapse.png", "thresholds.png")
#: Top of the threshold figure (log10 width).
Y_MAX_LOG10 = 12


def write_figures(report: Mapping[str, Any], folder: Union[str, Path]) -> List[Path]:
    """Write :data:`FIGURES` into ``folder`` from a :func:`~verify.stats.validity.validity_report`
    (its JSON form); return their paths.  Needs matplotlib."""
    from matplotlib.figure import Figure

    folder = Path(folder)
    widths = np.asarray(report["widths"], dtype=float)
    lags = int(report["lags"])
    sws = list(report["sigma_w"])
    thr = float(report["threshold"])
    grids = report["grids"]
    paths = []

    # heat maps: rows s_W, columns quantities
    fig = Figure(figsize=(4.4 * len(QUANTITIES), 3.4 * len(sws)))
    axes = fig.subplots(len(sws), len(QUANTITIES), squeeze=False)
    fig.subplots_adjust(left=0.04, right=0.98, bottom=0.6 / (3.4 * len(sws)), top=1 - 0.4 / (3.4 * len(sws)),
                        wspace=0.35, hspace=0.45)
    lw = np.log2(widths)
    for i, sw in enumerate(sws):
        for j, q in enumerate(QUANTITIES):
            ax = axes[i][j]
            z = np.minimum(_array(grids[sw][q]), 1e300)
            with np.errstate(divide="ignore"):
                lz = np.where(z > 0, np.log10(np.where(z > 0, z, 1.0)), np.nan)
            im = ax.pcolormesh(lw, np.arange(lags), lz, shading="nearest", cmap="viridis", vmin=-8, vmax=2)
            if np.nanmin(lz) < math.log10(thr) < np.nanmax(lz):
                ax.contour(lw, np.arange(lags), np.nan_to_num(lz, nan=-99.0), levels=[math.log10(thr)],
                           colors="w", linewidths=1.2, linestyles="solid")
            ax.set_title(f"{SHORT[q]}, s_W = {sw} (blank: exactly 0)", fontsize=9)
            ax.set_xlabel("log2 width n")
            ax.set_ylabel("lag l")
            ax.yaxis.get_major_locator().set_params(integer=True)
            ax.xaxis.get_major_locator().set_params(integer=True)
            fig.colorbar(im, ax=ax, label=f"log10 (white: {100 * thr:g} %)")
    paths.append(_save(fig, folder / FIGURES[0]))

    # collapse: quantities x candidate variables, s_W = 1 if present
    sw = "1" if "1" in sws else sws[0]
    fig = Figure(figsize=(4.4 * len(CANDIDATES), 3.4 * len(QUANTITIES)))
    axes = fig.subplots(len(QUANTITIES), len(CANDIDATES), squeeze=False)
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.05, top=0.94, wspace=0.25, hspace=0.4)
    cmap = _cmap()
    min_lag = int(report["min_lag"])
    for i, q in enumerate(QUANTITIES):
        z = _array(grids[sw][q])
        info = report["collapse"][sw][q]
        for j, (name, a) in enumerate(CANDIDATES.items()):
            ax = axes[i][j]
            for l in range(1, lags):
                ok = (z[l] > 0) & np.isfinite(z[l])
                x = l**a / widths
                big = l >= min_lag
                ax.loglog(x[ok], z[l][ok], "o-" if big else ".:", ms=3 if big else 2, lw=0.8,
                          color=cmap(l / max(lags - 1, 1)), alpha=1.0 if big else 0.35,
                          label=f"l = {l}" if (j == 0 and i == 0 and l in (1, min_lag, lags - 1)) else None)
            ax.axhline(thr, color="k", lw=0.6, ls="--")
            s_near = info["near_threshold"]["candidates"][name]
            s_full = info["full_range"]["candidates"][name]
            near = "n/a" if s_near is None else f"{s_near['rms']:.3f}"
            full = "n/a" if s_full is None else f"{s_full['rms']:.3f}"
            mark = " (best)" if name == info["near_threshold"]["best_candidate"] else ""
            ax.set_title(f"{SHORT[q]} vs {name}: spread {near} near the level{mark}, {full} overall", fontsize=7)
            ax.set_xlabel(name)
        axes[i][0].set_ylabel(q)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"collapse, s_W = {sw}; spread = rms over x of the std of ln q across l >= {min_lag} "
                 f"(near the level: mean q within a factor 10 of {100 * thr:g} %)", fontsize=9)
    paths.append(_save(fig, folder / FIGURES[1]))

    # thresholds: n*(l) exact (points), closed form (lines), rules, sequence lengths
    fig = Figure(figsize=(4.4 * len(QUANTITIES), 3.9))
    axes = fig.subplots(1, len(QUANTITIES), squeeze=False)[0]
    fig.subplots_adjust(left=0.05, right=0.98, bottom=0.14, top=0.85, wspace=0.3)
    curves = report["closed_form_curves"]
    rules = {(r["sigma_w"], r["quantity"]): r for r in report["rules"]}
    Ts = sorted({row["T"] for row in report["sequence_lengths"]})
    indep = report["sigma_w_independent"]
    for j, q in enumerate(QUANTITIES):
        ax = axes[j]
        clipped = False
        for k, sw in enumerate(sws[:1] if indep[q] else sws):
            color = f"C{k}"
            who = "every s_W" if indep[q] else f"s_W = {sw}"
            ex = report["threshold_widths"][sw][q]["exact"]
            ls = [l for l in range(lags) if ex[l] and l >= 1]
            ax.loglog(ls, [ex[l] for l in ls], "o", ms=3.5, color=color, label=f"exact, {who}")
            cl = [(l, v) for l, v in zip(curves["lags"], curves["log10_width"][sw][q])
                  if v is not None]
            clipped |= any(v > Y_MAX_LOG10 for _, v in cl)
            cl = [(l, v) for l, v in cl if v <= Y_MAX_LOG10]
            ax.loglog([l for l, _ in cl], [10.0**v for _, v in cl], "-", lw=0.9, color=color)
            r = rules[(sw, q)]
            if r["constant"] is not None:
                rl = np.arange(r["lag_range"][0], r["lag_range"][1] + 1)
                ax.loglog(rl, r["constant"] * rl ** r["exponent"], "--", lw=2.5, color=color, alpha=0.5,
                          label=f"rule n >= {r['constant_rounded_up']:g} l^{r['exponent']:g}")
        for T in Ts:
            ax.axvline(T - 1, color="0.6", lw=0.6)
        if clipped:
            ax.set_ylim(top=10.0**Y_MAX_LOG10)
        ax.set_title(f"{SHORT[q]} <= {100 * thr:g} %: width n*(l)", fontsize=9)
        ax.set_xlabel("lag l (grey: T - 1)")
        ax.set_ylabel("n*")
        ax.legend(fontsize=6)
    fig.suptitle("points: exact; lines: leading-order closed form (extrapolated); dashed: rule n >= c l^a "
                 f"(clipped at 1e{Y_MAX_LOG10})", fontsize=9)
    paths.append(_save(fig, folder / FIGURES[2]))
    return paths


def _array(rows) -> np.ndarray:
    """A float array from JSON rows (``None``, a value beyond float64, becomes ``inf``)."""
    return np.array([[math.inf if v is None else v for v in row] for row in rows], dtype=float)


def _cmap() -> Colormap:
    from matplotlib import colormaps

    return colormaps["plasma"]


def _save(fig: Figure, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    return path
