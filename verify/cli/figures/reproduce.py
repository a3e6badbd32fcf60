"""Figures of ``python -m verify reproduce --out DIR`` (:mod:`verify.experiments.implicit_bias` runs the experiments).

* ``training.png``: linear RNNs trained by full-batch gradient descent against the theory:
  (a) training loss of the RNN (solid) and of the SCM from the same ``L(0)`` (dashed) per width;
  (b) relative distance of the trained impulse response to the beta-weighted and to the
  unweighted minimum-norm solutions, and the RNN-SCM test-prediction gap, against width
  (log-log, seeds as dots, an ``n^-1/2`` reference); (c) impulse responses at the largest width:
  teacher, both minimum-norm solutions, the trained RNN and its initialization;
* ``synthetic.png``: wide-limit students (beta-weighted minimum-norm interpolants, one per
  ``s_W``, and the unweighted one): test error against the teacher's memory ``rho``, and on a
  pure-delay teacher (bars, with standard errors);
* ``sunspots.png``: monthly sunspots: bias^2 + variance of the held-out error of each kernel
  predictor against persistence, and, for the first training draw, the trained RNN against the
  SCM and the kernel predictor.

Drawn on :class:`matplotlib.figure.Figure` (no pyplot, no global state); matplotlib is imported
when drawing (:func:`verify.cli.figures.require` checks for it before the work).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Mapping, Union

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["training_figure", "synthetic_figure", "real_figure"]


def training_figure(train: Mapping[str, Any], path: Union[str, Path]) -> Path:
    """``training.png`` from the result of :func:`verify.experiments.implicit_bias.training_vs_theory`."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(17, 4.8))
    ax = fig.subplots(1, 3)
    s = train["setting"]
    widths = [r["width"] for r in train["per_width"]]
    cmap = colormaps["viridis"]
    # (a) loss curves
    for k, n in enumerate(widths):
        c = train["curves"][n] if n in train["curves"] else train["curves"][str(n)]
        col = cmap(k / max(len(widths) - 1, 1))
        ax[0].semilogy(c["rnn"], color=col, label=f"RNN n={n}")
        ax[0].semilogy(c["scm"], color=col, ls="--", lw=1)
    ax[0].set_xlabel("gradient-descent step")
    ax[0].set_ylabel("training loss  0.5 * sum of squared errors")
    ax[0].set_title("Training loss: RNN (solid) vs SCM from the same L(0) (dashed)")
    ax[0].legend(fontsize=8)
    # (b) distances vs width
    dw = [r["dist_weighted_mean"] for r in train["per_width"]]
    du = [r["dist_unweighted_mean"] for r in train["per_width"]]
    tg = [r["test_gap_mean"] for r in train["per_width"]]
    for r in train["per_width"]:
        ax[1].scatter([r["width"]] * len(r["dist_weighted"]), r["dist_weighted"], color="C0", s=10, alpha=0.5)
        ax[1].scatter([r["width"]] * len(r["dist_unweighted"]), r["dist_unweighted"], color="C3", s=10, alpha=0.5)
    ax[1].loglog(widths, dw, "o-", color="C0", label="to the beta-weighted min-norm solution (mean)")
    ax[1].loglog(widths, du, "s-", color="C3", label="to the unweighted min-norm solution (mean)")
    ax[1].loglog(widths, tg, "^--", color="C2", label="RNN vs SCM test-prediction gap (relative RMS)")
    ref = dw[0] * np.sqrt(widths[0] / np.array(widths, dtype=float))
    ax[1].loglog(widths, ref, ":", color="gray", label="n^(-1/2) reference")
    ax[1].axhline(0.1, color="k", lw=0.7, ls="-.", label="0.1")
    ax[1].set_xlabel("width n (hidden units)")
    ax[1].set_ylabel("relative distance of the trained impulse response")
    ax[1].set_title("Trained RNN vs theory (dots: seeds)")
    ax[1].legend(fontsize=7)
    # (c) impulse responses at the largest width
    n = widths[-1]
    c = train["curves"][n] if n in train["curves"] else train["curves"][str(n)]
    lags = np.arange(len(c["L"]))
    ax[2].plot(lags, train["teacher"], "k-", lw=2, label="teacher rho^l (generated the labels)")
    ax[2].plot(lags, c["L_weighted"], "o-", color="C0", label="beta-weighted min-norm (theory)")
    ax[2].plot(lags, c["L_unweighted"], "s--", color="C3", label="unweighted min-norm")
    ax[2].plot(lags, c["L"], "x", color="C1", ms=9, mew=2, label=f"trained RNN, n={n}")
    ax[2].plot(lags, c["L0"], ":", color="gray", label="RNN at initialization L(0)")
    ax[2].set_xlabel("lag l (time steps)")
    ax[2].set_ylabel("impulse response L_l")
    ax[2].set_title("Impulse responses after training")
    ax[2].legend(fontsize=8)
    sp = s["spec"]
    fig.suptitle(f"Linear RNN trained by full-batch GD, metric {sp['metric']}, s_W = {sp['sigma_w']}, T = {s['T']}, "
                 f"{s['n_train']} training sequences (label: last output)", fontsize=11)
    return _save(fig, path)


def synthetic_figure(synth: Mapping[str, Any], path: Union[str, Path]) -> Path:
    """``synthetic.png`` from the result of :func:`verify.experiments.implicit_bias.synthetic`."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 4.8))
    ax = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[2, 1]))
    rhos = synth["rhos"]
    k = len(rhos)
    names = list(synth["test_error"])
    cmap = colormaps["plasma"]
    for j, name in enumerate(names):
        e = np.array(synth["test_error"][name])
        se = np.array(synth["test_error_sem"][name])
        kw: Dict[str, Any]
        if name == "unweighted":
            kw = dict(color="k", ls="--", marker="s", label="unweighted convolution (no bias)")
        else:
            kw = dict(color=cmap(j / max(len(names) - 1, 1)), marker="o",
                      label=name.replace("s_W=", "RNN limit, s_W = "))
        ax[0].errorbar(rhos, e[:k], yerr=se[:k], capsize=2, **kw)
    ax[0].set_xlabel("teacher memory: decay rate rho of its impulse response rho^l")
    ax[0].set_ylabel("test error / teacher power (MSE at last output)")
    ax[0].set_yscale("log")
    ax[0].set_title("Short-memory bias: error grows with teacher memory, less for s_W near 1")
    ax[0].legend(fontsize=8)
    x = np.arange(len(names))
    delay = [synth["test_error"][nm][k] for nm in names]
    delay_se = [synth["test_error_sem"][nm][k] for nm in names]
    ax[1].bar(x, delay, yerr=delay_se, color=["k" if nm == "unweighted" else cmap(j / max(len(names) - 1, 1))
                                    for j, nm in enumerate(names)], capsize=3)
    ax[1].set_xticks(x)
    ax[1].set_xticklabels([nm.replace("s_W=", "s_W\n") for nm in names], fontsize=8)
    ax[1].set_ylabel("test error / teacher power")
    ax[1].set_title(f"Pure-delay teacher (delay {synth['delay']} steps)")
    s = synth["setting"]
    fig.suptitle(f"Wide-limit students (beta-weighted min-norm interpolants) on {s['n_train']} sequences of length "
                 f"{s['T']}, mean of {s['draws']} draws (bars: standard error)", fontsize=11)
    return _save(fig, path)


def real_figure(real: Mapping[str, Any], path: Union[str, Path]) -> Path:
    """``sunspots.png`` from the result of :func:`verify.experiments.implicit_bias.real_data`."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 4.8))
    ax = fig.subplots(1, 2)
    names = list(real["students"])
    x = np.arange(len(names))
    b = np.array([real["students"][n]["bias2"] for n in names])
    v = np.array([real["students"][n]["variance"] for n in names])
    ax[0].bar(x, b, color="C0", label="bias^2 (error of the draw-averaged predictor)")
    ax[0].bar(x, v, bottom=b, color="C1", label="variance (spread over training draws)")
    ax[0].set_xticks(x)
    ax[0].set_xticklabels([n.replace("s_W=", "s_W\n") for n in names], fontsize=8)
    ax[0].axhline(real["persistence_nmse"], color="k", ls="--", lw=1, label="persistence (repeat the last value)")
    ax[0].set_ylabel("held-out NMSE (MSE / variance of the test series)")
    ax[0].set_title("Kernel predictor of the infinitely wide RNN")
    ax[0].legend(fontsize=8)
    gd = real["gd"]
    if gd:
        xs = np.arange(len(gd))
        wdt = 0.25
        ax[1].bar(xs - wdt, [g["nmse_rnn"] for g in gd], wdt, label=f"linear RNN, width {gd[0]['width']}, GD")
        ax[1].bar(xs, [g["nmse_scm"] for g in gd], wdt, label="SCM from the same L(0), same GD")
        ax[1].bar(xs + wdt, [g["nmse_kernel"] for g in gd], wdt, label="kernel predictor (GD to convergence)")
        ax[1].set_xticks(xs)
        ax[1].set_xticklabels([f"s_W = {g['sigma_w']}\n{g['steps']} steps" for g in gd], fontsize=8)
        ax[1].set_ylabel("held-out NMSE")
        ax[1].set_title("Training-set draw 1: RNN vs SCM vs kernel predictor")
        ax[1].legend(fontsize=8)
    s = real["setting"]
    fig.suptitle(f"Monthly sunspots: predict {s['horizon_months']} month(s) ahead from {s['window_months']} months; "
                 f"{s['n_train_windows']} training windows, {s['draws']} draws, {s['test_windows']} test windows "
                 "(last 30 %)", fontsize=11)
    return _save(fig, path)


def _save(fig: Figure, path: Union[str, Path]) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return Path(path)
