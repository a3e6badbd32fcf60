"""``python -m verify reproduce``: outputs, JSON layout and error handling, on a tiny configuration."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from verify import cli  # noqa: E402
from verify.commands import reproduce  # noqa: E402
from verify.datasets import sunspots_monthly, sunspots_yearly  # noqa: E402

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
