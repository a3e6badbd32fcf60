"""Command line of the finite-width side: the main job (``run``), ``sweep`` and ``ntk``.

Exit codes: 0 consistent, 1 inconsistent, 2 bad input (one line on stderr, no traceback).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from theory.spec import RNNSpec
from verify.cli.main import main
from verify.engine.npz import load_rnn, save_rnn
from verify.engine.ntk import empirical_ntk, lag_gram, limit_lag_gram
from verify.engine.rnn import init_rnn

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--widths", "16,32,64", "--seeds", "3", "--lags", "4", "--bias-seeds", "0"]


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


# ------------------------------------------------------------------ run / sweep
def test_run_writes_report_and_exit_code_follows_verdict(tmp_path, capsys):
    rc, out, err = _run(["run", *FAST, "--out", str(tmp_path), "--no-figures"], capsys)
    rep = json.loads((tmp_path / "report.json").read_text())
    # Every draw is seeded, so the verdict is deterministic: "consistent", as the theorem predicts
    # (over base seeds its decisive rule fails with probability <= 1 - confidence = 1 %).
    assert rep["verdict"] == "consistent" and rc == 0
    assert isinstance(rep["slope"], float) and rep["slope"] == rep["fit"]["slope"]
    for key in ("spec", "widths", "seeds", "frob", "band", "rules", "bias", "timings", "versions", "seed_sequences"):
        assert key in rep, key
    assert rep["widths"] == [16, 32, 64] and rep["lags"] == 4 and rep["figures"] == []
    assert "Verdict:" in out and "Rules:" in out and "Bias" in out
    assert not list(tmp_path.glob("*.png"))


def test_sweep_json_equals_library_sweep(capsys):
    from verify.stats.sweep import SweepPlan, sweep

    rc, out, _ = _run(["sweep", *FAST, "--json", "--base-seed", "4", "--confidence", "0.9"], capsys)
    rep = json.loads(out)
    lib = sweep(SweepPlan(RNNSpec(sigma_w="0.9"), (16, 32, 64), 3, 4, base_seed=4, confidence=0.9), progress=False)
    assert lib.verdict == "consistent" and rc == 0  # deterministic (seeded), as in the test above
    assert rep["frob"]["per_seed"] == lib.to_dict()["frob"]["per_seed"]
    assert rep["slope"] == lib.slope.slope and rep["confidence"] == 0.9


def test_exit_code_1_when_inconsistent(tmp_path, capsys, monkeypatch):
    """The CLI maps an inconsistent verdict to status 1: sweep replaced by one whose errors fall like n^-1."""
    import verify.cli.commands.sweep as sweep_command
    import verify.stats.sweep as vs

    def fake_sweep(plan, **kw):
        plan = vs.SweepPlan(plan.spec, plan.widths, 4, plan.lags)
        rng = np.random.default_rng(0)
        w = np.asarray(plan.widths, dtype=float)[:, None]
        E = w ** -1.0 * np.exp(0.1 * rng.standard_normal((len(plan.widths), 4)))
        z = np.zeros((len(plan.widths), 4, plan.lags))
        return vs.summarize(plan, vs.SweepDraws(plan.widths, plan.seeds, E, z, z, E), np.ones(plan.lags))

    monkeypatch.setattr(sweep_command, "sweep", fake_sweep)
    rc, out, _ = _run(["run", "--widths", "64,128,256,512", "--lags", "3", "--out", str(tmp_path), "--no-figures",
                       "--quiet"], capsys)
    assert rc == 1 and out.startswith("verdict: inconsistent")
    assert json.loads((tmp_path / "report.json").read_text())["verdict"] == "inconsistent"


def test_exit_code_1_when_the_networks_are_not_what_the_spec_says(monkeypatch, capsys):
    """Power through the real computation: draws made with s_W 1.2 times the specified one (1.08 instead
    of 0.9) are found inconsistent (exit 1).  Measured: the decisive exact test's p-value is 2e-5 at
    these sizes (alpha = 0.01); with the right s_W it is 0.87 and the exit status is 0."""
    import verify.stats.sweep.draws as draws

    real = draws.init_rnn
    argv = ["sweep", "--widths", "32,64,128", "--seeds", "4", "--lags", "4", "--bias-seeds", "0", "--quiet"]
    rc, out, _ = _run(argv, capsys)
    assert rc == 0 and out.startswith("verdict: consistent")
    monkeypatch.setattr(draws, "init_rnn", lambda spec, n, seed=0, backend=None, **kw: real(
        spec.replace(sigma_w=spec.sigma_w * Fraction(6, 5)), n, seed, backend, **kw))
    rc, out, _ = _run(argv, capsys)
    assert rc == 1 and out.startswith("verdict: inconsistent")


def test_figures_written(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    rc, out, _ = _run(["sweep", *FAST, "--out", str(tmp_path), "--quiet", "--bias-seeds", "4"], capsys)
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert names == ["beta.png", "bias.png", "rate.png"]
    assert all((tmp_path / n).stat().st_size > 5000 for n in names)
    assert json.loads((tmp_path / "report.json").read_text())["bias"]["probe"] is True


def test_figures_skipped_with_warning_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # import fails
    rc, out, err = _run(["sweep", *FAST, "--out", str(tmp_path), "--quiet"], capsys)
    assert rc == 0 and "matplotlib is not installed" in err
    assert not list(tmp_path.glob("*.png")) and (tmp_path / "report.json").exists()


def test_main_job_is_the_default_command(tmp_path):
    """``python -m verify`` with only options runs the main job (subprocess: the real entry point)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-m", "verify", *FAST, "--out", str(tmp_path), "--no-figures", "--quiet"],
                       cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
    rep = json.loads((tmp_path / "report.json").read_text())
    assert p.returncode == 0 and rep["verdict"] == "consistent", p.stderr
    assert rep["command"] == "python -m verify run" and "Traceback" not in p.stderr


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["run", "--widths", "abc"], "comma-separated integers"),
        (["run", "--widths", "16,16,32", "--out", "-"], "distinct"),
        (["run", "--widths", "16,32"], "at least 3 widths"),
        (["run", "--seeds", "0"], "positive integer"),
        (["run", "--workers", "0"], "positive integer"),
        (["sweep", "--confidence", "1.5"], "[0.5, 1)"),
        (["sweep", "--backend", "nope"], "invalid choice"),
        (["sweep", "--sigma-w", "-1"], "sigma_w must be >= 0"),
        (["sweep", "--lags", "0", *FAST[:4]], "lags"),
        (["sweep", "--bias-seeds", "1", *FAST[:4]], "bias_seeds"),
        (["ntk", "--weights", "/nonexistent/net.npz", "--sigma-w", "0.9"], "no such file"),
        (["ntk", "--sigma-w", "0.9"], "--weights"),
    ],
)
def test_bad_arguments_exit_2_one_line(argv, fragment, capsys, tmp_path):
    rc, out, err = _run(argv, capsys)
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("error:") and fragment in err, err


def test_unwritable_out_fails_before_the_work(tmp_path, capsys):
    target = tmp_path / "a_file"
    target.write_text("")
    rc, out, err = _run(["run", "--widths", "16,32,64", "--seeds", "2", "--out", str(target)], capsys)
    assert rc == 2 and "exists and is not a folder" in err and out == ""


def test_bad_arguments_via_subprocess_no_traceback(tmp_path):
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip archive")
    for argv in (["ntk", "--weights", str(bad), "--sigma-w", "0.9"], ["--widths", "x"]):
        p = subprocess.run([sys.executable, "-m", "verify", *argv], cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr


# ------------------------------------------------------------------ ntk
@pytest.fixture
def net(tmp_path):
    spec = RNNSpec(sigma_w="0.8", sigma_f="1.5", sigma_c="0.7")
    path = tmp_path / "net.npz"
    save_rnn(init_rnn(spec, 40, 12), path)
    return spec, path


def test_ntk_json_round_trip(net, capsys):
    spec, path = net
    rc, out, _ = _run(["ntk", "--weights", str(path), "--sigma-w", "0.8", "--sigma-f", "1.5", "--sigma-c", "0.7",
                       "--lags", "5", "--json"], capsys)
    assert rc == 0
    rep = json.loads(out)
    gram = np.array(rep["theta"])
    assert gram.shape == (5, 5) and rep["n"] == 40
    rnn = load_rnn(path)
    direct = np.asarray(lag_gram(rnn, spec, 5).total).reshape(5, 5)
    np.testing.assert_array_equal(gram, direct)  # JSON floats round-trip exactly
    limit = limit_lag_gram(spec, 5).reshape(5, 5)
    np.testing.assert_array_equal(np.array(rep["limit"]), limit)
    assert rep["relative_error"] == pytest.approx(np.linalg.norm(direct - limit) / np.linalg.norm(limit), rel=1e-14)
    # independent path: backpropagation through time on a unit impulse, K[t, t'] = Theta[t, t']
    X = np.zeros((1, 5, 1))
    X[0, 0, 0] = 1.0
    K = np.asarray(empirical_ntk(rnn, spec, X, method="bptt")).reshape(5, 5)
    np.testing.assert_allclose(gram, K, rtol=1e-10, atol=1e-12 * np.abs(K).max())


def test_ntk_full_nesting_and_dims_from_file(tmp_path, capsys):
    spec = RNNSpec(sigma_w="0.6", n_x=2, n_y=3, sigma_d="0.5", metric="variance", convention="conv2")
    path = tmp_path / "net.npz"
    save_rnn(init_rnn(spec, 24, 1), path)
    args = ["ntk", "--weights", str(path), "--sigma-w", "0.6", "--sigma-d", "0.5", "--metric", "variance",
            "--convention", "conv2", "--lags", "3"]
    rc, out, _ = _run(args + ["--json"], capsys)
    rep = json.loads(out)
    gram = np.array(rep["theta"])
    assert rc == 0 and gram.shape == (3, 3, 2, 3, 3, 2)
    np.testing.assert_array_equal(gram, np.asarray(lag_gram(load_rnn(path), spec, 3).total))
    assert rep["spec"]["n_x"] == 2 and rep["spec"]["n_y"] == 3
    rc, out, _ = _run(args, capsys)  # table form
    assert rc == 0 and "mean diagonal entry per lag" in out
    rc, _, err = _run(args + ["--n-y", "2"], capsys)
    assert rc == 2 and "--n-y 2 does not match" in err
    no_d = [a for a in args if a not in ("--sigma-d", "0.5")]  # D in the file but no --sigma-d
    rc, _, err = _run(no_d, capsys)
    assert rc == 2 and err.count("\n") == 1 and "sigma_d" in err


def test_ntk_table(net, capsys):
    spec, path = net
    rc, out, _ = _run(["ntk", "--weights", str(path), "--sigma-w", "0.8", "--lags", "3"], capsys)
    assert rc == 0 and "Theta_n[l, l']" in out and "relative Frobenius error" in out


# ------------------------------------------------------------------ float64 range: clear errors, right field
def test_ntk_overflowing_weights_is_a_clear_error(tmp_path, capsys):
    """Weights near 1e300 used to give an all-NaN lag Gram, exit 0 and a literal "None" line."""
    spec = RNNSpec(sigma_w="0.9")
    path = tmp_path / "big.npz"
    rnn = init_rnn(spec, 8, 0)
    save_rnn(rnn.__class__(rnn.W * 1e300, rnn.F, rnn.C), path)
    rc, out, err = _run(["ntk", "--weights", str(path), "--sigma-w", "0.9", "--lags", "4"], capsys)
    assert rc == 2 and out == "" and err.count("\n") == 1  # no RuntimeWarning lines either
    assert "the lag Gram overflows float64" in err and "share is not finite from lag" in err


def test_ntk_large_finite_entries_keep_exact_relative_errors(net, tmp_path, capsys):
    """C and s_C multiplied by 2^260: Theta and its limit scale by 2^520 exactly, so every relative
    error is bit-identical (the squares inside the norms would overflow without the exact rescaling)."""
    spec, path = net
    big = tmp_path / "big.npz"
    rnn = load_rnn(path)
    save_rnn(rnn.__class__(rnn.W, rnn.F, rnn.C * 2.0**260), big)
    base = ["--sigma-w", "0.8", "--sigma-f", "1.5", "--lags", "5", "--json"]
    rc, out, _ = _run(["ntk", "--weights", str(path), "--sigma-c", "0.7", *base], capsys)
    ref = json.loads(out)
    rc2, out2, err2 = _run(["ntk", "--weights", str(big), "--sigma-c", str(Fraction("0.7") * 2**260), *base], capsys)
    got = json.loads(out2)
    assert rc == rc2 == 0, err2
    assert got["relative_error"] == ref["relative_error"]
    assert got["offdiag_relative_mass"] == ref["offdiag_relative_mass"]
    assert np.array_equal(np.array(got["diag_signed_error"]), np.array(ref["diag_signed_error"]) * 2.0**520)


@pytest.mark.parametrize("command", ["sweep", "ntk"])
@pytest.mark.parametrize("flags, blamed", [
    (["--sigma-f", "1e200"], "--sigma-f 1e+200"),
    (["--sigma-c", "1e100", "--sigma-f", "1e100"], "--sigma-c 1e+100, --sigma-f 1e+100"),
    (["--sigma-d", "1e155"], "--sigma-d 1e+155"),
    (["--sigma-w", "40", "--lags", "300"], "--sigma-w 40 with --lags 300"),
    (["--sigma-w", "1e400"], "--sigma-w"),
])
def test_overflow_messages_name_the_field(command, flags, blamed, tmp_path, capsys):
    """The overflow messages used to blame s_W (sweep) or print "(34, 'Numerical result out of range')" (ntk)."""
    if command == "ntk":
        path = tmp_path / "net.npz"
        save_rnn(init_rnn(RNNSpec(sigma_w="0.9", sigma_d="1"), 8, 0), path)
        argv = ["ntk", "--weights", str(path), "--sigma-w", "0.9", "--sigma-d", "1", "--lags", "3", *flags]
    else:
        argv = ["sweep", *FAST, *flags]
    rc, out, err = _run(argv, capsys)
    assert rc == 2 and err.count("\n") == 1, err
    assert err.split(": ", 1)[1].startswith(blamed), err
    assert "34" not in err and ("sigma_w" not in err or "--sigma-w" in blamed)


def test_finite_side_refuses_weights_whose_squares_overflow(capsys):
    rc, out, err = _run(["sweep", *FAST, "--lr-c", "1e300"], capsys)
    assert rc == 2 and err.startswith("error: --lr-c 1e+300: the closed-form lag weight beta_0") and "square" in err
