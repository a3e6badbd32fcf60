"""Figure of ``python -m verify moments --out DIR`` (:mod:`verify.cli.commands.moments` computes the report).

* ``moments_bias.png``: the exact finite-width bias of the lag Gram's diagonal,
  ``n (E Theta_n[l, l] / (beta_l / n_x) - 1)`` against the lag ``l``, one line per width
  (:data:`FIGURE_WIDTHS` and the probe's widths), the ``n -> inf`` limit ``c_1 / c_0`` dashed,
  and, with ``--probe``, the bias probe of a sweep's ``report.json`` (seed means with their
  intervals) as points in the colour of their width.

Drawn on :class:`matplotlib.figure.Figure` (no pyplot, no global state); matplotlib is imported
when drawing (:func:`verify.cli.figures.require` checks for it before the work).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from theory.finite_width import InvPoly

__all__ = ["FIGURE_WIDTHS", "bias_curve", "write_figure"]

#: Widths drawn as exact lines (besides the probe's).
FIGURE_WIDTHS = (64, 256, 1024, 4096)


def bias_curve(p: InvPoly, n: int) -> float:
    """``n (p(n) / p(inf) - 1)`` as a float (NaN when the constant term is 0)."""
    c0 = p.coeff(0)
    return math.nan if c0 == 0 else float((p(n) / c0 - 1) * n)


def write_figure(out: Mapping[str, Any], path: Union[str, Path], probe: Optional[Mapping[str, Any]]) -> Path:
    """``n (E Theta_n[l,l] / (beta_l / n_x) - 1)`` against ``l`` per width, the ``n -> inf`` limit and the
    probe's points, from a ``moments`` report ``out`` (its ``mean`` coefficient strings), as a PNG at ``path``."""
    from matplotlib.figure import Figure

    L = out["lags"]
    diag = [InvPoly.of(out["mean"][l][l]) for l in range(L)]
    widths = sorted(set(FIGURE_WIDTHS) | set(probe["widths"] if probe else ()))
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot(1, 1, 1)
    lags = list(range(L))
    colors: Dict[int, Any] = {}
    for n in widths:
        (line,) = ax.plot(lags, [bias_curve(p, n) for p in diag], "-", lw=1.4, label=f"exact, n = {n}")
        colors[n] = line.get_color()
    limit = [math.nan if p.coeff(0) == 0 else float(p.coeff(1) / p.coeff(0)) for p in diag]
    ax.plot(lags, limit, "k--", lw=1.0, label="exact, n -> inf (c_1 / c_0)")
    if probe:
        for k, n in enumerate(probe["widths"]):
            ys = probe["n_times_mean"][k][:L]
            hs = probe["n_times_half_width"][k][:L]
            shift = 0.08 * (k - (len(probe["widths"]) - 1) / 2)  # side by side, not on top of each other
            xs = [l + shift for l in range(len(ys))]
            seeds = f" ({probe['seeds']} seeds)" if probe["seeds"] else ""
            ax.errorbar(xs, [math.nan if v is None else v for v in ys],
                        yerr=[math.nan if v is None else v for v in hs], fmt="o", ms=3.5, capsize=2,
                        color=colors[n], label=f"probe, n = {n}{seeds}")
    sd = out["spec"]
    ax.set_xlabel("lag l")
    ax.set_ylabel("n (E Theta_n[l,l] / (beta_l / n_x) - 1)")
    ax.set_title(f"Finite-width bias of the lag Gram diagonal (exact mean): metric {sd['metric']}, {sd['convention']}, "
                 f"s_W = {sd['sigma_w']}", fontsize=10)
    ax.axhline(0.0, color="0.7", lw=0.6)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=120)
    return Path(path)
