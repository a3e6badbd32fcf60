"""The implicit bias in action: the three experiments behind ``python -m verify reproduce``.

1. :func:`training_vs_theory`: wide linear RNNs trained by full-batch GD (``verify.experiments.train``)
   against the SCM trained by the same GD and against the beta-weighted / unweighted
   minimum-norm impulse responses (``theory.bias``), per width.
2. :func:`synthetic`: teachers with impulse responses ``rho^l`` and a pure delay, students =
   the wide-limit predictor (weighted min-norm interpolant) for several ``s_W`` and the
   unweighted convolution; test error against teacher memory.
3. :func:`real_data`: next-step prediction of monthly sunspot numbers from a window,
   kernel predictor over ``s_W`` with a bias-variance decomposition over draws of the
   training windows, plus GD-trained RNN and SCM at one width.

Every draw is seeded; results are plain dicts of floats and lists (JSON-ready).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from theory.bias import design_matrix, unweighted_min_norm, weighted_min_norm
from theory.spec import RNNSpec
from verify.engine.rnn import forward, impulse_response, init_rnn
from verify.engine.scm import scm_forward, scm_from_spec
from verify.experiments.datasets import sunspots_monthly
from verify.experiments.train import plan_gd, relative_distance, scm_matching, train_rnn, train_scm
from verify.internal.progress import progress

__all__ = ["training_vs_theory", "synthetic", "real_data", "TRAIN_SETTING"]

# The training setting of docs/theory.md, section 'Training in the kernel regime'.
TRAIN_SETTING: Dict[str, Any] = dict(sigma_w="0.8", T=10, n_train=6, n_test=500, rho=0.9, data_seed=1)


def _teacher_targets(X: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """Outputs at the last time of the convolution with ``teacher`` (lags 0..T-1): shape (B, 1)."""
    return (design_matrix(X, len(teacher)) @ teacher)[:, None]


def training_vs_theory(widths: Sequence[int], seeds, *, sigma_w: str = TRAIN_SETTING["sigma_w"],
                       T: int = TRAIN_SETTING["T"], n_train: int = TRAIN_SETTING["n_train"],
                       n_test: int = TRAIN_SETTING["n_test"], rho: float = TRAIN_SETTING["rho"],
                       data_seed: int = TRAIN_SETTING["data_seed"], tol: float = 1e-6) -> Dict:
    """Per width and seed: train RNN and SCM by the same GD, compare with the min-norm solutions.

    Data: ``n_train`` input sequences ``x ~ N(0, 1)`` of length ``T`` (n_x = n_y = 1), one label
    per sequence (the last output) from the teacher ``L*_l = rho^l``; ``n_test`` fresh sequences.
    Metric "ntk", conv1, no D, s_F = s_C = 1.  Network seeds: ``seeds`` (a list, or a dict
    width -> list); the data seed is fixed.
    """
    seeds_of = (lambda n: list(seeds[n])) if isinstance(seeds, dict) else (lambda n: list(seeds))
    spec = RNNSpec(sigma_w=sigma_w)
    rng = np.random.default_rng(data_seed)
    X = rng.standard_normal((n_train, T, 1))
    Xte = rng.standard_normal((n_test, T, 1))
    teacher = float(rho) ** np.arange(T)
    y = _teacher_targets(X, teacher)
    Phi, Phi_te = design_matrix(X, T), design_matrix(Xte, T)
    rows: List[Dict] = []
    curves: Dict[int, Dict[str, list]] = {}
    jobs = [(n, s) for n in widths for s in seeds_of(n)]
    for n, seed in progress(jobs, total=len(jobs), desc="train RNN vs theory"):
        rnn = init_rnn(spec, n, seed=seed)
        plan = plan_gd(spec, X, rnn=rnn, tol=tol)
        res = train_rnn(rnn, spec, X, y, eta=plan.eta, steps=plan.steps, show_progress=False)
        scm0 = scm_matching(rnn, spec, scm_from_spec(spec, T))
        res_scm = train_scm(scm0, X, y, eta=plan.eta, steps=plan.steps)
        L0 = np.asarray(impulse_response(rnn, T))
        L = np.asarray(impulse_response(res.model, T))
        Lw = weighted_min_norm(spec, Phi, y, L0=L0).to_float()
        Lu = unweighted_min_norm(Phi, y, L0=L0).to_float()
        f_rnn = np.asarray(forward(res.model, Xte))[:, -1, 0]
        f_scm = np.asarray(scm_forward(res_scm.model, Xte))[:, -1, 0]
        y_te = Phi_te @ teacher
        loss_gap = float(np.max(np.abs(res.losses - res_scm.losses)) / res.losses[0])
        rows.append(dict(
            width=n, seed=seed, steps=plan.steps, eta=plan.eta,
            final_loss=float(res.losses[-1]), initial_loss=float(res.losses[0]),
            dist_weighted=relative_distance(L, Lw, L0),
            dist_unweighted=relative_distance(L, Lu, L0),
            dist_weighted_vs_unweighted=relative_distance(Lu, Lw, L0),
            scm_dist_weighted=relative_distance(res_scm.model.impulse_response, Lw, L0),
            loss_curve_gap=loss_gap,
            test_gap=float(np.sqrt(np.mean((f_rnn - f_scm) ** 2) / np.mean(f_scm**2))),
            test_nmse_rnn=float(np.mean((f_rnn - y_te) ** 2) / np.mean(y_te**2)),
            test_nmse_scm=float(np.mean((f_scm - y_te) ** 2) / np.mean(y_te**2)),
        ))
        if seed == seeds_of(n)[0]:
            curves[n] = dict(rnn=res.losses.tolist(), scm=res_scm.losses.tolist(),
                             L=L[:, 0, 0].tolist(), L0=L0[:, 0, 0].tolist(),
                             L_weighted=Lw[:, 0, 0].tolist(), L_unweighted=Lu[:, 0, 0].tolist())
    summary = []
    for n in widths:
        sel = [r for r in rows if r["width"] == n]
        agg: Dict[str, Any] = {"width": n, "seeds": len(sel)}
        for key in ("dist_weighted", "dist_unweighted", "loss_curve_gap", "test_gap", "final_loss"):
            v = np.array([r[key] for r in sel])
            agg[key + "_mean"] = float(v.mean())
            agg[key + "_max"] = float(v.max())
            agg[key] = v.tolist()
        summary.append(agg)
    setting = dict(spec=dict(spec.to_dict()), T=T, n_train=n_train, n_test=n_test, teacher=f"rho^l, rho={rho}",
                   fitted_outputs="last time step", data_seed=data_seed, tol=tol,
                   step_size="eta = 1/lambda_max(NTK on fitted outputs)")
    return dict(setting=setting, per_width=summary, runs=rows, curves=curves, teacher=teacher.tolist())


def synthetic(sigmas: Sequence[str], rhos: Sequence[float], *, T: int = 30, n_train: int = 10, delay: int = 12,
              draws: int = 20, dps: int = 20, seed: int = 7) -> Dict:
    """Test error of the wide-limit students (weighted min-norm interpolants, ``L0 = 0``) per teacher.

    Teachers: ``L*_l = rho^l`` (normalized to unit norm over lags 0..T-1) and a pure delay
    ``L*_l = [l = delay]``.  Inputs i.i.d. N(0, 1), so the exact test error at the last output is
    ``||L_hat - L*||^2`` (lags 0..T-1); reported relative to ``||L*||^2 = 1``, averaged over
    ``draws`` draws of the ``n_train`` training sequences.
    """
    teachers = {f"rho={r:g}": np.asarray([float(r) ** l for l in range(T)]) for r in rhos}
    delay_t = np.zeros(T)
    delay_t[delay] = 1.0
    teachers[f"delay {delay}"] = delay_t
    names = list(teachers)
    Lstar = np.stack([t / np.linalg.norm(t) for t in teachers.values()], axis=1)  # (T, k)
    students = [("s_W=" + s, s) for s in sigmas] + [("unweighted", None)]
    err = {name: np.zeros((draws, len(names))) for name, _ in students}
    rng = np.random.default_rng(seed)
    for d in progress(range(draws), total=draws, desc="synthetic teachers"):
        X = rng.standard_normal((n_train, T, 1))
        Phi = design_matrix(X, T)
        Y = Phi @ Lstar  # (n_train, k): every teacher solved at once (one column each)
        for name, sw in students:
            if sw is None:
                sol = unweighted_min_norm(Phi, Y, dps=dps)
            else:
                sol = weighted_min_norm(RNNSpec(sigma_w=sw), Phi, Y, dps=dps)
            Lhat = sol.to_float()[:, :, 0]  # (T, k)
            err[name][d] = np.sum((Lhat - Lstar) ** 2, axis=0)
    return dict(
        setting=dict(T=T, n_train=n_train, draws=draws, seed=seed, metric="ntk", convention="conv1",
                     error="||L_hat - L*||^2 / ||L*||^2 = expected test MSE at the last output / teacher power"),
        teachers=names, rhos=[float(r) for r in rhos], delay=delay,
        test_error={name: e.mean(axis=0).tolist() for name, e in err.items()},
        test_error_sem={name: (e.std(axis=0, ddof=1) / np.sqrt(draws)).tolist() for name, e in err.items()},
    )


def _windows(seg: np.ndarray, p: int, h: int):
    """Inputs ``seg[i-p:i]`` and targets ``seg[i+h-1]`` for every admissible ``i``."""
    idx = np.arange(p, len(seg) - h + 1)
    return np.stack([seg[i - p: i] for i in idx])[:, :, None], seg[idx + h - 1]


def real_data(sigmas: Sequence[str], *, window: int = 24, horizon: int = 1, n_train: int = 12, draws: int = 10,
              width: int = 256, gd_sigmas: Optional[Sequence[str]] = None, max_steps: int = 3000,
              dps: int = 20, seed: int = 11) -> Dict:
    """Monthly sunspots: predict ``z[i + horizon - 1]`` from the window ``z[i-window : i]``.

    Chronological split 70/30; standardized with the training part's mean and std; NMSE =
    test MSE / test variance.  Training sets: ``n_train`` windows drawn at random from the training
    part (``draws`` seeded draws).  Students: wide-limit predictor (min-norm interpolant, ``L0 = 0``)
    for each ``s_W`` and unweighted.  Bias^2 = NMSE of the draw-averaged prediction; variance = mean
    squared spread of the draws' predictions around it (both / test variance; they add up to the
    mean NMSE).  For ``gd_sigmas`` (first draw): an RNN of width ``width`` and the SCM from its
    initialization, trained by the same GD (``max_steps`` cap), and the kernel predictor with the
    same ``L(0)``.
    """
    z = sunspots_monthly()
    split = int(0.7 * len(z))
    mu, sd = z[:split].mean(), z[:split].std()
    zs = (z - mu) / sd
    Xtr_all, ytr_all = _windows(zs[:split], window, horizon)
    Xte, yte = _windows(zs[split:], window, horizon)
    Pte = design_matrix(Xte, window)
    var = float(np.var(yte))
    students = [("s_W=" + s, s) for s in sigmas] + [("unweighted", None)]
    preds = {name: np.zeros((draws, len(yte))) for name, _ in students}
    rng = np.random.default_rng(seed)
    selections = [rng.choice(len(ytr_all), n_train, replace=False) for _ in range(draws)]
    for d in progress(range(draws), total=draws, desc="sunspots: kernel predictors"):
        Phi = design_matrix(Xtr_all[selections[d]], window)
        y = ytr_all[selections[d]][:, None]
        for name, sw in students:
            sol = unweighted_min_norm(Phi, y, dps=dps) if sw is None else weighted_min_norm(
                RNNSpec(sigma_w=sw), Phi, y, dps=dps)
            preds[name][d] = Pte @ sol.to_float()[:, 0, 0]
    persistence = float(np.mean((Xte[:, -1, 0] - yte) ** 2) / var)  # predict the last observed value
    out = {}
    for name, P in preds.items():
        mean_pred = P.mean(axis=0)
        out[name] = dict(
            nmse=float(np.mean((P - yte) ** 2) / var),
            bias2=float(np.mean((mean_pred - yte) ** 2) / var),
            variance=float(np.mean((P - mean_pred) ** 2) / var),
        )
    gd = []
    for sw in progress(list(gd_sigmas or []), desc="sunspots: GD-trained RNN and SCM"):
        spec = RNNSpec(sigma_w=sw)
        X, y = Xtr_all[selections[0]], ytr_all[selections[0]][:, None]
        rnn = init_rnn(spec, width, seed=seed)
        plan = plan_gd(spec, X, rnn=rnn, tol=1e-6, max_steps=max_steps)
        res = train_rnn(rnn, spec, X, y, eta=plan.eta, steps=plan.steps, show_progress=False)
        res_scm = train_scm(scm_matching(rnn, spec, scm_from_spec(spec, window)), X, y, eta=plan.eta,
                            steps=plan.steps)
        L0 = np.asarray(impulse_response(rnn, window))
        Lk = weighted_min_norm(spec, design_matrix(X, window), y, L0=L0, dps=dps).to_float()[:, 0, 0]
        f_rnn = np.asarray(forward(res.model, Xte))[:, -1, 0]
        f_scm = np.asarray(scm_forward(res_scm.model, Xte))[:, -1, 0]
        gd.append(dict(
            sigma_w=sw, width=width, steps=plan.steps, converged=bool(plan.steps < max_steps),
            final_train_loss=float(res.losses[-1]), initial_train_loss=float(res.losses[0]),
            nmse_rnn=float(np.mean((f_rnn - yte) ** 2) / var),
            nmse_scm=float(np.mean((f_scm - yte) ** 2) / var),
            nmse_kernel=float(np.mean((Pte @ Lk - yte) ** 2) / var),
            rnn_vs_scm=float(np.sqrt(np.mean((f_rnn - f_scm) ** 2) / np.mean(f_scm**2))),
        ))
    return dict(
        setting=dict(series="monthly sunspot numbers 1749-2009 (statsmodels 0.15.0, NOAA NGDC)",
                     window_months=window, horizon_months=horizon, n_train_windows=n_train, draws=draws,
                     split="chronological 70/30", test_windows=len(yte), seed=seed),
        students=out, gd=gd, persistence_nmse=persistence,
    )
