"""``python -m verify gpu-check`` and its library, :mod:`verify.harness.gpu_check` (run here on the CPU).

The check must work from an installed copy, which has no ``tests/`` folder: its property
checks are library code (:func:`verify.harness.gpu_check.property_checks`), and the test suite is an
optional extra whose absence the report states.
"""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

from verify.cli.main import main
from verify.harness import gpu_check
from verify.internal.errors import BadInput


def test_property_checks_pass_and_are_recorded():
    res = gpu_check.property_checks("numpy", "cpu", time.perf_counter(), seed=5, min_cases=12)
    assert res["status"] == "passed" and res["cases"] == 12 and res["seed"] == 5 and not res["failures"]
    assert 0 < res["worst_ratio"] <= 1
    again = gpu_check.property_checks("numpy", "cpu", time.perf_counter(), seed=5, min_cases=12)
    assert again["worst_ratio"] == res["worst_ratio"]  # seeded: the same cases


def test_property_checks_catch_a_wrong_backend(monkeypatch):
    """Power: a lag Gram off by 1e-9 (relative) on the device side fails the 1e-12 identity."""
    pytest.importorskip("array_api_strict")
    import verify.engine.ntk as vn

    real = vn.lag_gram

    def skewed(rnn, spec, lags):
        g = real(rnn, spec, lags)
        if isinstance(rnn.W, np.ndarray):
            return g
        return vn.LagGram(g.total * (1 + 1e-9), g.shares, g.spec, g.n)

    monkeypatch.setattr(vn, "lag_gram", skewed)
    monkeypatch.setattr(gpu_check, "lag_gram", skewed)  # the name the check module calls
    res = gpu_check.property_checks("array-api-strict", "cpu", time.perf_counter(), seed=1, min_cases=3)
    assert res["status"] == "failed" and res["worst_ratio"] > 100 and "lag Gram" in res["failures"][0]


def test_without_a_test_suite_the_pytest_step_says_unavailable(tmp_path):
    opts = gpu_check.GPUCheckOptions(device="cpu")
    res = gpu_check.run_pytest(opts, time.perf_counter() + 10, tmp_path, files=["no_such_test_file.py"])
    assert res["status"] == "unavailable" and "library property checks ran instead" in res["reason"]
    assert not (tmp_path / "pytest.txt").exists()


def test_run_check_as_library_code(tmp_path):
    """The whole check without the command line and without the test suite (an installed copy)."""
    pytest.importorskip("torch")
    from theory.spec import RNNSpec

    opts = gpu_check.GPUCheckOptions(device="cpu", backend="torch", max_width=64, num_widths=3, seeds=2, lags=4,
                                     pytest=False, time_limit=120)
    rep = gpu_check.run_check(opts, RNNSpec(sigma_w="0.5"), tmp_path)
    assert rep["properties"]["status"] == "passed" and rep["properties"]["cases"] >= 10
    assert rep["checks"]["property_tests"]["passed"] and rep["pytest"]["status"] == "skipped"
    assert [t["width"] for t in rep["timings"]] == [16, 32, 64] and not rep["errors"]
    assert "Library property checks: passed" in gpu_check.markdown(rep)
    assert list(tmp_path.iterdir()) == []  # the library writes nothing but pytest.txt (not run here)


@pytest.mark.parametrize("field, value, message", [
    ("max_width", 4, "--max-width must be at least 8"),
    ("num_widths", 2, "--num-widths must be at least 3"),
    ("seeds", 1, "--seeds must be at least 2"),
    ("time_limit", 0, "--time-limit must be a number in (0, inf]"),
    ("num_widths", 7, "halves --max-width 64 below 4"),
])
def test_options_are_checked(field, value, message):
    kw = {"max_width": 64, field: value}
    with pytest.raises(BadInput, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        gpu_check.GPUCheckOptions(**kw).check()


def test_command_writes_the_report(tmp_path, capsys):
    pytest.importorskip("torch")
    out = tmp_path / "gc"
    rc = main(["gpu-check", "--device", "cpu", "--backend", "torch", "--max-width", "64", "--num-widths", "3",
               "--seeds", "2", "--lags", "4", "--sigma-w", "0.5", "--no-pytest", "--out", str(out)])
    rep = json.loads((out / "gpu_check.json").read_text())
    # every draw is seeded: the small sweep's verdict is deterministic ("consistent"), so all checks pass
    assert rc == 0 and rep["status"] == "passed" and all(c["passed"] for c in rep["checks"].values())
    assert rep["properties"]["status"] == "passed" and sorted(p.name for p in out.iterdir()) == [
        "gpu_check.json", "gpu_check.md"]
    assert "wrote" in capsys.readouterr().out
