"""``python -m verify reproduce``: outputs, JSON layout and error handling, on a tiny configuration."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from verify.cli import main as cli
from verify.cli.commands import reproduce
from verify.experiments.datasets import sunspots_monthly, sunspots_yearly

TINY = dict(widths=[16, 32], seeds={16: [0, 1], 32: [0]}, synth_sigmas=["0.5", "0.95"], rhos=[0.3, 0.9],
            synth_draws=2, real_sigmas=["0.8", "1"], real_draws=2, gd_sigmas=["0.8"], real_width=8,
            real_max_steps=50)


def test_reproduce_writes_figures_and_summary(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(reproduce, "QUICK", TINY)
    rc = cli.main(["reproduce", "--out", str(tmp_path / "out"), "--quick"])
    assert rc == 0
    out = tmp_path / "out"
    for name in ("training.png", "synthetic.png", "sunspots.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    summary = json.loads((out / "summary.json").read_text())
    tvt = summary["train_vs_theory"]
    assert [r["width"] for r in tvt] == [16, 32]
    assert len(tvt[0]["relative_distance_weighted"]) == 2
    for r in tvt:
        assert all(np.isfinite(r["relative_distance_weighted"])) and r["relative_distance_weighted_mean"] > 0
    assert set(summary["synthetic"]["test_error"]) == {"s_W=0.5", "s_W=0.95", "unweighted"}
    assert "total_s" in summary["timings"]
    assert "dist to weighted min-norm" in capsys.readouterr().out


def test_bad_out_is_one_line_exit_2(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    rc = cli.main(["reproduce", "--out", str(f / "sub")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error:") and err.count("\n") == 1


def test_vendored_series():
    """The vendored files are what statsmodels 0.15.0 ships (first/last values checked by hand)."""
    m = sunspots_monthly()
    assert m.shape == (3126,) and m[:3].tolist() == [58.0, 62.6, 70.0] and m[-3:].tolist() == [1.2, 2.9, 2.6]
    years, vals = sunspots_yearly()
    assert years[0] == 1700 and years[-1] == 2008 and vals[:3].tolist() == [5.0, 11.0, 16.0]


def test_reproduce_values_match_independent_facts(tmp_path, monkeypatch):
    """Values, not only structure, each against a fact known without the code under test."""
    from math import sqrt

    from theory.spec import RNNSpec
    from theory.weights import lag_weights

    monkeypatch.setattr(reproduce, "QUICK", dict(TINY, synth_draws=8))
    assert cli.main(["reproduce", "--out", str(tmp_path / "out"), "--quick"]) == 0
    s = json.loads((tmp_path / "out" / "summary.json").read_text())
    train, synth, real = s["training"], s["synthetic"], s["real_data"]

    # 1. The SCM is linear with the limit NTK: GD from L(0) converges to the beta-weighted interpolant.
    #    Each residual mode shrinks by (1 - eta lambda_i)^steps <= tol (plan_gd, eta <= 1/lambda_max), so
    #    in the B^-1 norm the distance is <= tol of the start; in the Euclidean norm at most
    #    tol * sqrt(beta_max / beta_min) (beta = (l + 2) 0.64^l, l < T, for s_W = 0.8).
    T, tol = train["setting"]["T"], train["setting"]["tol"]
    beta = [float(b) for b in lag_weights(RNNSpec(sigma_w=train["setting"]["spec"]["sigma_w"]), T, dps=20)]
    bound = tol * sqrt(max(beta) / min(beta)) + 1e-12
    for run in train["runs"]:
        assert run["steps"] < 20000  # plan_gd's cap not reached: the bound above applies
        assert run["scm_dist_weighted"] <= bound, (run["width"], run["seed"], run["scm_dist_weighted"], bound)
    # 2. RNN and SCM start from the same impulse response (scm_matching): equal initial losses.
    for curve in train["curves"].values():
        assert abs(curve["rnn"][0] - curve["scm"][0]) <= 1e-12 * curve["rnn"][0]
    # 3. Unweighted min-norm from L(0) = 0 with i.i.d. N(0, 1) inputs projects the unit-norm teacher on a
    #    uniformly random N-dimensional subspace of R^T: the error is Beta((T-N)/2, N/2), mean (T-N)/T = 2/3
    #    (T = 30, N = 10) for every teacher, sd 0.118; the mean of 8 draws is within 5 sd / sqrt(8) = 0.21
    #    except with probability 6e-7 per teacher (normal approximation; the draws are seeded).
    Ts, N = synth["setting"]["T"], synth["setting"]["n_train"]
    a, b = (Ts - N) / 2, N / 2
    sd = sqrt(a * b / ((a + b) ** 2 * (a + b + 1))) / sqrt(synth["setting"]["draws"])
    for err in synth["test_error"]["unweighted"]:
        assert abs(err - (Ts - N) / Ts) <= 5 * sd, err
    # 4. Mean squared error = bias^2 + variance, for every student (an identity of the decomposition).
    for st in real["students"].values():
        assert abs(st["bias2"] + st["variance"] - st["nmse"]) <= 1e-12 * st["nmse"]
    # 5. Persistence (predict the last observed value), recomputed here from the vendored series.
    z = sunspots_monthly()
    split = int(0.7 * len(z))
    zs = (z - z[:split].mean()) / z[:split].std()
    test = zs[split:]
    w = real["setting"]["window_months"]
    targets, last = test[w:], test[w - 1:-1]
    assert real["persistence_nmse"] == pytest.approx(np.mean((last - targets) ** 2) / np.var(targets), rel=1e-12)
