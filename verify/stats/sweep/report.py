"""The JSON report of a width sweep: :func:`report_dict` (strict JSON: :func:`verify.internal.jsonio.jsonable`)."""
from __future__ import annotations

from typing import Any, Dict

import numpy as np

from verify.internal.jsonio import jsonable
from verify.stats.sweep.stats import THEORY_EXPONENT, t_interval

__all__ = ["report_dict"]


def report_dict(result, timings: bool = True) -> Dict[str, Any]:
    """The report of a :class:`verify.stats.sweep.SweepResult` as a JSON-friendly dictionary (NaN -> None):
    verdict, slope, rules, fit, band, plan, every per-seed number, the bias table;
    ``timings=False`` leaves out wall times (the rest is a pure function of the inputs)."""
    fm, fh = result.frob_mean()
    gm, glo, ghi = result.frob_geomean()
    om, oh = t_interval(result.offdiag, result.confidence, axis=1)
    dm, dh = t_interval(result.diag_rel, result.confidence, axis=1)
    bt, bh = result.bias_table()
    exact = result.exact
    out = {
        "verdict": result.verdict,
        "p_value": None if exact is None else exact.p_value,
        "min_detectable": None if exact is None else exact.min_detectable,
        "exact_test": None if exact is None else exact.to_dict(),
        "predicted_error": {
            "description": ("sqrt(E ||Theta_n - Theta_inf||_F^2) / ||Theta_inf||_F per width from the exact mean and "
                            "the exact leading variance; rms: the measured root mean square over seeds"),
            "predicted": result.predicted_error,
            "rms": np.sqrt(np.mean(np.asarray(result.frob) ** 2, axis=1)),
        },
        "slope": result.slope.slope,
        "slope_interval": list(result.slope.interval),
        "theory_exponent": THEORY_EXPONENT,
        "confidence": result.confidence,
        "rules": [r.to_dict() for r in result.rules],
        "fit": result.slope.to_dict(),
        "band": result.band.to_dict(),
        "spec": dict(result.spec.to_dict()),
        "widths": list(result.widths),
        "seeds": list(result.seeds),
        "lags": result.lags,
        "base_seed": result.base_seed,
        "seed_sequences": result.seed_sequences,
        "backend": result.compute.to_dict(),
        "beta": result.beta,
        "frob": {"per_seed": result.frob, "mean": fm, "half_width": fh,
                 "geometric_mean": gm, "geometric_interval": np.stack([glo, ghi], axis=1),
                 "sqrt_n_times_mean": fm * np.sqrt(np.asarray(result.widths, dtype=np.float64))},
        "offdiag": {"per_seed": result.offdiag, "mean": om, "half_width": oh},
        "diag_rel": {"per_seed": result.diag_rel, "mean": dm, "half_width": dh},
        "diag_signed": {"per_seed": result.diag_signed},
        "bias": {
            "description": ("n * seed-mean relative signed diagonal error (Theta_n[l,l] - beta_l)/beta_l "
                            "per width (rows) and lag (columns), with n * its t half-width; "
                            "exact_n_times_mean: what the exact finite-width mean predicts (the diagonal "
                            "bias is O(1/n^2) for the metrics ntk and variance)"),
            "widths": list(result.bias_source()[0]), "seeds": result.bias_source()[1],
            "probe": result.has_probe,
            "probe_per_seed_diag_signed": result.bias_diag_signed,
            "n_times_mean": bt, "n_times_half_width": bh, "exact_n_times_mean": result.exact_bias_table(),
        },
    }
    if timings:
        out["timings"] = {"per_draw_seconds": result.seconds, "wall_seconds": result.wall_seconds}
    return jsonable(out)
