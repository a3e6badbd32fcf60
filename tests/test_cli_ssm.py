"""Command line ``python -m verify ssm weights|compare``."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from theory.diagonal import DiagonalSpec, lag_kernel
from theory.precision import context
from verify.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_weights_json_is_the_exact_kernel(capsys):
    out = _json(capsys, ["ssm", "weights", "--r-min", "0.9", "--r-max", "0.999", "--max-phase", "0.31416",
                         "--lags", "5", "--dps", "25", "--json"])
    T = 5
    assert len(out["theta"]) == T and all(len(row) == T for row in out["theta"])
    assert set(out["shares"]) == {"B", "C", "gamma", "nu", "theta", "D"}
    # defaults stated by the issue: ntk metric, all groups trained, s_B^2 = 1/2, s_C = s_D = 1
    spec = DiagonalSpec(r_min="0.9", r_max="0.999", max_phase="0.31416")
    assert out["spec"]["sigma_b2"] == "0.5" and out["spec"]["scaling"] == "ntk"
    K = lag_kernel(spec, T, dps=25)
    ctx = context(25)
    for l in range(T):
        for lp in range(T):
            assert abs(ctx.mpf(out["theta"][l][lp]) - K.total[l][lp]) <= ctx.mpf(10) ** -24 * abs(K.total[l][lp])
            s = sum(ctx.mpf(out["shares"][g][l][lp]) for g in out["shares"])
            assert abs(s - K.total[l][lp]) <= ctx.mpf(10) ** -23
    assert ctx.mpf(out["shares"]["D"][0][0]) == 1


def test_weights_options(capsys):
    out = _json(capsys, ["ssm", "weights", "--r-min", "0", "--r-max", "1", "--max-phase", "pi/10", "--lags", "3",
                         "--tied-gamma", "--sigma-d", "none", "--dps", "15", "--json"])
    assert set(out["shares"]) == {"B", "C", "nu", "theta"} and out["spec"]["phase_in_pi"] is True
    out = _json(capsys, ["ssm", "weights", "--r-min", "0", "--r-max", "1", "--max-phase", "1", "--lags", "3",
                         "--scaling", "lru", "--json"])
    assert out["normalized_by_n"] is True
    assert all(float(v) == 0 for g in out["shares"] if g != "C" for row in out["shares"][g] for v in row)
    assert main(["ssm", "weights", "--r-min", "0.5", "--r-max", "0.9", "--max-phase", "1", "--lags", "3"]) == 0
    text = capsys.readouterr().out
    assert "Diagonal Theta(l, l)" in text and "theta" in text


@pytest.mark.parametrize("argv, message", [
    (["--r-min", "0.9", "--r-max", "0.9", "--max-phase", "1"], "r_min < r_max"),
    (["--r-min", "0.1", "--r-max", "1.5", "--max-phase", "1"], "r_max must be <= 1"),
    (["--r-min", "0.1", "--r-max", "0.5", "--max-phase", "0"], "max_phase must be > 0"),
    (["--r-min", "x", "--r-max", "0.5", "--max-phase", "1"], "r_min must be a number"),
    (["--r-min", "0.1", "--r-max", "0.5", "--max-phase", "1", "--lags", "0"], "lags"),
    (["--r-min", "0.1", "--r-max", "0.5", "--max-phase", "1", "--dps", "2"], "dps"),
    (["--r-min", "0.1", "--r-max", "0.5", "--max-phase", "1", "--scaling", "xavier"], "scaling"),
    (["--r-max", "0.5", "--max-phase", "1"], "required"),
])
def test_weights_bad_input_exits_2_with_one_line(capsys, argv, message):
    assert main(["ssm", "weights"] + argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_ssm_without_subcommand_is_a_usage_error(capsys):
    assert main(["ssm"]) == 2
    assert "required" in capsys.readouterr().err


def test_compare_small_run_writes_png_and_json(tmp_path):
    """A reduced run (few lags, short 1 % search) through the real entry point."""
    out = tmp_path / "cmp"
    proc = subprocess.run(
        [sys.executable, "-m", "verify", "ssm", "compare", "--out", str(out), "--lags", "12", "--train-lags", "10",
         "--train-sequences", "4", "--max-lag", "400", "--dps", "15"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"},
    )
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "ssm_compare.json").read_text())
    assert (out / "ssm_compare.png").stat().st_size > 10_000
    byname = {m["name"]: m for m in summary["models"]}
    assert byname["dense RNN s_W=0.9"]["one_percent_lag"] == 35  # (l+2) 0.81^l: 37*0.81^35 < 0.01*2.657 < 36*0.81^34
    assert byname["LRU r[0,1] ph 6.28, readout"]["one_percent_lag"] == 13  # 1/((l+1)(l+2)) <= 0.005 first at l = 13
    assert byname["LRU r[0,1] ph 6.28, all (ntk)"]["one_percent_lag"] is None
    assert byname["S4D-Lin N=64 dt=0.01 readout"]["one_percent_lag"] is None  # 461 > 400 searched
    for m in summary["models"]:
        assert 1 <= m["effective_rank"] <= 12
        for f in m["fits"].values():
            assert len(f["learned"]) == 10


def test_compare_bad_input(tmp_path, capsys):
    assert main(["ssm", "compare", "--out", str(tmp_path), "--train-sequences", "64", "--train-lags", "64"]) == 2
    assert "train-sequences" in capsys.readouterr().err


@pytest.mark.parametrize("phase, ok", [
    ("2*pi", True), ("pi/10", True), ("6.2831853", True), ("6.28318530717958647692528676655900576839", True),
    ("7", False), ("6.2831854", False), ("2.01*pi", False), ("4*pi", False),
    ("6.28318530717958647692528676655900576840", False),  # 2 pi = 6.28318530717958647692528676655900576839433...
])
def test_phase_above_two_pi_is_refused(phase, ok, capsys):
    """Phases live on the circle: a maximum phase above 2 pi is refused (it was accepted silently)."""
    rc = main(["ssm", "weights", "--r-min", "0.1", "--r-max", "0.5", "--max-phase", phase, "--lags", "2", "--json"])
    err = capsys.readouterr().err
    assert rc == (0 if ok else 2), err
    if not ok:
        assert err.count("\n") == 1 and "at most 2*pi" in err


def test_compare_is_library_code_that_writes_nothing(tmp_path, monkeypatch):
    """verify.experiments.ssm_compare computes; the command only writes. 1 % lags by hand: dense s_W = 0.8,
    beta_l / beta_0 = (l + 2) 0.64^l / 2 first <= 0.01 at l = 16 (18 * 0.64^16 / 2 = 0.0071,
    17 * 0.64^15 / 2 = 0.0107)."""
    from verify.experiments.ssm_compare import CompareOptions, compare
    from verify.internal.errors import BadInput

    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadInput, match="--train-sequences must be smaller"):
        compare(CompareOptions(train_lags=8, train_sequences=8))
    res = compare(CompareOptions(lags=6, train_lags=None, max_lag=60, dps=15, progress=False))
    assert list(tmp_path.iterdir()) == []
    lag = {m["name"]: m["one_percent_lag"] for m in res.summary["models"]}
    assert lag["dense RNN s_W=0.8"] == 16 and res.teachers == {} and "fits" not in res.summary["models"][0]
    assert 18 * 0.64**16 / 2 <= 0.01 < 17 * 0.64**15 / 2


def test_compare_on_a_thread_pool_equals_serial():
    """One task per model: the comparison's numbers do not depend on where the tasks run."""
    from concurrent.futures import ThreadPoolExecutor

    from verify.experiments.ssm_compare import CompareOptions, compare

    opts = CompareOptions(lags=6, train_lags=5, train_sequences=2, max_lag=60, dps=15, progress=False)
    ref = compare(opts)
    with ThreadPoolExecutor(3) as pool:
        got = compare(opts, executor=pool)
    assert got.summary == ref.summary
    assert all(np.array_equal(got.spectra[k], ref.spectra[k]) for k in ref.spectra)
