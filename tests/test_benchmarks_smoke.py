"""Smoke tests of ``python -m benchmarks``: end to end at tiny sizes (no timing assertions)."""
from __future__ import annotations

import importlib.util
import json
import os

import pytest

from benchmarks.cli import main, parse_sizes
from benchmarks.methods import METHODS
from benchmarks.ntk_bench import _probe, run_ntk

HAVE_TORCH = importlib.util.find_spec("torch") is not None

# Every method computes the same float64 NTK; entries are sums of O(T n) products of
# O(1) numbers, so the methods differ by rounding only: ~T n eps ~ 1e-13 relative at
# most for the tiny sizes here (measured: <= 1e-15).  1e-12 leaves room for a different
# summation order and still catches any wrong scale, sign or missing group (O(1) errors).
AGREE = 1e-12


def test_end_to_end_tiny(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["--sizes", "12x3", "--repeats", "1", "--no-memory", "--exact-lags", "10",
               "--exact-dps", "15", "--kernel-shape", "2x3", "--json", str(out), "--markdown", "--profile", "--quiet"])
    assert rc == 0
    text = capsys.readouterr().out
    assert "| n | T | method |" in text and "### Exact side (mpmath)" in text and "### Targets" in text
    assert "cProfile of the structured method at n x T = 12x3" in text and "verify/engine/ntk.py" in text
    data = json.loads(out.read_text())
    recs = data["ntk"]
    assert {(r["n"], r["T"]) for r in recs} == {(12, 3)}
    assert {r["method"] for r in recs} == set(METHODS)
    for r in recs:
        if METHODS[r["method"]].torch and not HAVE_TORCH:
            assert r["status"] == "skipped" and "torch" in r["reason"]
            continue
        assert r["status"] == "ok", r
        assert r["repeats"] == 1 and r["median_s"] > 0
        if r["method"] not in ("structured", "krylov"):
            assert r["max_rel_diff_vs_structured"] < AGREE, r
    # the targets' sizes were not run: they must say so, not pass
    assert all(t["met"] is None for t in data["targets"])
    assert len(data["exact"]) == 3 and all(e["median_s"] > 0 for e in data["exact"])
    assert data["machine"]["cores_logical"] >= 1 and "blas" in data["machine"]


def test_memory_probe_sees_the_gradients():
    # reference BPTT holds the W-gradients of every output: 8 B T n^2 bytes (n_y = 1)
    n, T, B = 64, 4, 4
    rec = _probe("bptt", n, T, B, max_bytes=2**30, timeout=120, use_tracemalloc=True)
    assert rec["ok"], rec
    assert rec["tracemalloc_peak_bytes"] >= 8 * B * T * n * n
    assert rec["rss_peak_bytes"] >= 0 and rec["seconds"] > 0


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="the memory limit needs Linux /proc (VmData)")
def test_probe_reports_an_over_budget_run():
    # 8 B T n^2 = 32 MiB of gradients against a 4 MiB budget: must fail cleanly, not be killed
    rec = _probe("bptt", 256, 16, 4, max_bytes=4 * 2**20, timeout=120, use_tracemalloc=False)
    assert not rec["ok"] and "over the memory budget" in rec["error"]


def test_skips_over_the_memory_budget():
    recs = run_ntk([(32, 4)], ["structured", "bptt"], repeats=1, max_bytes=1000, memory=False,
                   log=lambda m: None)
    by = {r["method"]: r for r in recs}
    assert by["structured"]["status"] == "ok"
    assert by["bptt"]["status"] == "skipped" and "memory budget" in by["bptt"]["reason"]


def test_skips_on_extrapolated_time():
    recs = run_ntk([(8, 2), (256, 32)], ["structured", "bptt"], repeats=1, max_seconds=1e-3,
                   memory=False, log=lambda m: None)
    big = [r for r in recs if r["n"] == 256 and r["method"] == "bptt"][0]
    assert big["status"] == "skipped" and "estimated" in big["reason"]


def test_skips_larger_sizes_after_a_time_kill(monkeypatch):
    import benchmarks.ntk_bench as nb

    calls = []

    def fake_probe(method, n, T, *args, **kwargs):
        calls.append((method, n, T))
        if method == "bptt":
            return {"ok": False, "error": "memory probe killed after 1 s (over the time budget)"}
        return {"ok": True, "seconds": 0.001, "rss_peak_bytes": 0}

    monkeypatch.setattr(nb, "_probe", fake_probe)
    recs = nb.run_ntk([(8, 2), (16, 2)], ["structured", "bptt"], repeats=1, log=lambda m: None)
    by = {(r["n"], r["method"]): r for r in recs}
    assert "killed" in by[(8, "bptt")]["reason"]
    assert "already over the time budget at n=8, T=2" in by[(16, "bptt")]["reason"]
    assert ("bptt", 16, 2) not in calls and by[(16, "structured")]["status"] == "ok"


def test_methods_are_the_entry_points_methods(capsys):
    """Every method of verify.engine.ntk.empirical_ntk is benchmarked (after the Krylov floor), through it; the
    names the benchmark used before are still accepted on the command line."""
    from verify.engine.ntk import NTK_METHODS

    assert tuple(METHODS) == ("krylov", *NTK_METHODS)
    assert all(METHODS[m].run.keywords == {"method": m} for m in NTK_METHODS)
    assert main(["--sizes", "6x2", "--repeats", "1", "--no-memory", "--no-exact", "--quiet",
                 "--methods", "reference"]) == 0
    assert " bptt " in capsys.readouterr().out
    from benchmarks.methods import ALIASES

    assert ALIASES == {"reference": "bptt", "ntk_vp": "products", "ntvp": "products"}
    assert set(ALIASES.values()) <= set(METHODS)


def test_parse_sizes():
    assert parse_sizes("256x16, 1024X32") == [(256, 16), (1024, 32)]


@pytest.mark.parametrize("argv", [["--sizes", "12"], ["--sizes", "0x4"], ["--methods", "nope"],
                                  ["--repeats", "0"], ["--exact-lags", "a"]])
def test_bad_arguments_exit_2(argv, capsys):
    assert main(argv + ["--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("python -m benchmarks: error:")


@pytest.mark.parametrize("metric", ["ntk", "variance", "standard"])
@pytest.mark.parametrize("convention", ["conv1", "conv2"])
def test_autodiff_baselines_agree_with_the_lag_gram(metric, convention):
    # the benchmark's torch.func baselines compute the same kernel as verify.engine.ntk, with D,
    # unequal learning rates, a frozen group, n_x = n_y = 2 and two different batches
    pytest.importorskip("torch")
    import numpy as np

    from theory.spec import RNNSpec
    from verify.engine.ntk import empirical_ntk
    from verify.engine.rnn import init_rnn

    spec = RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c="0.7", sigma_d="0.5", n_x=2, n_y=2, metric=metric,
                   convention=convention, lr_w="0.5", lr_c=2, lr_f=0)
    rnn = init_rnn(spec, 10, seed=3)
    rng = np.random.default_rng(4)
    X, Xp = rng.standard_normal((2, 4, 2)), rng.standard_normal((3, 5, 2))
    want = empirical_ntk(rnn, spec, X, Xp)
    for got in (empirical_ntk(rnn, spec, X, Xp, method="jacobian"), empirical_ntk(rnn, spec, X, Xp, method="products"),
                empirical_ntk(rnn, spec, X, Xp, method="products", chunk=7)):
        assert got.shape == (2, 4, 2, 3, 5, 2)
        assert np.max(np.abs(got - want)) <= AGREE * np.max(np.abs(want))
