"""``python -m verify moments``: exact finite-width moments of the lag Gram on the command line.

Expected values come from outside the engine: hand computations for ``s_W = s_F = s_C = 1``
(metric ntk, conv1; E Theta_n[2,2] = 4 + 6/n^2, E Theta_n[2,0] = 2/n, E Theta_n[3,1] =
6/n + 3/n^2, and Theta_n[0,0] = (|f|^2 + |c|^2)/n with f, c ~ N(0, I_n): mean 2, variance
(2n + 2n)/n^2 = 4/n), the ``weights`` command (mpmath closed form of beta_l), and an
independent rounding of the exact rationals in integer arithmetic.
"""
from __future__ import annotations

import json
import math
import sys
from decimal import Decimal
from fractions import Fraction

import pytest

from theory.spec import RNNSpec
from verify.cli.main import main

S1 = ["--sigma-w", "1", "--sigma-f", "1", "--sigma-c", "1"]


def _run(argv, capsys):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _json(argv, capsys):
    rc, out, err = _run(["moments", *argv, "--json"], capsys)
    assert rc == 0, err
    return json.loads(out)


def _poly(strings):
    return [Fraction(c) for c in strings]


def _value(strings, n):
    return sum((Fraction(c) / Fraction(n) ** k for k, c in enumerate(strings)), Fraction(0))


# ------------------------------------------------------------------ structure and values
def test_json_structure_and_known_entries(capsys):
    rep = _json([*S1, "--lags", "4"], capsys)
    assert {"version", "spec", "lags", "mean", "shares", "description"} <= set(rep)
    assert rep["lags"] == 4 and rep["spec"]["sigma_w"] == "1"
    assert sorted(rep["shares"]) == ["C", "F", "W"]  # no D in this model
    mean = rep["mean"]
    assert len(mean) == 4 and all(len(row) == 4 for row in mean)
    assert all(isinstance(c, str) for row in mean for cell in row for c in cell)
    assert _poly(mean[2][2]) == [4, 0, 6]
    assert _poly(mean[2][0]) == [0, 2] and _poly(mean[0][2]) == [0, 2]
    assert _poly(mean[3][1]) == [0, 6, 3]
    assert _poly(mean[0][0]) == [2] and _poly(mean[1][1]) == [3]
    for l in range(4):
        for lp in range(4):
            if (l + lp) % 2:
                assert mean[l][lp] == []
            # the shares add up to the total
            parts = [_poly(rep["shares"][g][l][lp]) for g in rep["shares"]]
            size = max([len(p) for p in parts] + [len(mean[l][lp])])
            padded = [p + [Fraction(0)] * (size - len(p)) for p in parts]
            total = _poly(mean[l][lp])
            assert [sum(col) for col in zip(*padded)] == total + [Fraction(0)] * (size - len(total))
    assert "variance" not in rep and "mean_at" not in rep


SPECS = [
    ["--sigma-w", "0.9", "--sigma-f", "1.3", "--sigma-c", "0.7"],
    ["--sigma-w", "1.1", "--sigma-f", "0.8", "--sigma-c", "1.2", "--n-x", "3", "--n-y", "2"],
    ["--sigma-w", "0.7", "--convention", "conv2", "--sigma-d", "0.5", "--metric", "variance", "--n-x", "2"],
]


@pytest.mark.parametrize("spec", SPECS)
def test_constant_term_is_beta_over_nx(spec, capsys):
    lags = 6
    rep = _json([*spec, "--lags", str(lags)], capsys)
    rc, out, err = _run(["weights", *spec, "--lags", str(lags), "--dps", "40", "--json"], capsys)
    assert rc == 0, err
    beta = json.loads(out)["beta"]
    nx = rep["spec"]["n_x"]
    for l in range(lags):
        c = rep["mean"][l][l]
        c0 = Fraction(c[0]) if c else Fraction(0)
        target = Fraction(Decimal(beta[l])) / nx
        # weights prints 40 significant digits: relative rounding error <= 10^-39
        assert abs(c0 - target) <= abs(target) * Fraction(1, 10**38), (l, c0, target)


def test_mean_does_not_depend_on_ny_and_scales_as_one_over_nx(capsys):
    base = _json(["--lags", "5"], capsys)
    wide = _json(["--lags", "5", "--n-x", "4", "--n-y", "3"], capsys)
    for l in range(5):
        for lp in range(5):
            assert [x / 4 for x in _poly(base["mean"][l][lp])] == _poly(wide["mean"][l][lp])


def _round_sig(value: Fraction, digits: int) -> Fraction:
    """``value`` rounded half-to-even to ``digits`` significant digits, in integer arithmetic."""
    if value == 0:
        return Fraction(0)
    a = abs(value)
    e = 0  # find e with 10^(digits-1) <= a * 10^-e < 10^digits
    while a / Fraction(10) ** e >= 10**digits:
        e += 1
    while a / Fraction(10) ** e < 10 ** (digits - 1):
        e -= 1
    q = round(a / Fraction(10) ** e)  # Fraction.__round__: half to even
    return (1 if value > 0 else -1) * q * Fraction(10) ** e


@pytest.mark.parametrize("width,dps", [(7, 15), (1000, 25), (1, 5)])
def test_width_values_are_the_exact_rationals_rounded(width, dps, capsys):
    rep = _json(["--sigma-w", "0.9", "--sigma-f", "1.3", "--lags", "5", "--variance", "--width", str(width),
                 "--dps", str(dps)], capsys)
    assert rep["width"] == width and rep["dps"] == dps
    for key, at in (("mean", "mean_at"), ("variance", "variance_at")):
        for l in range(5):
            for lp in range(5):
                exact = _value(rep[key][l][lp], width)
                assert Fraction(Decimal(rep[at][l][lp])) == _round_sig(exact, dps), (key, l, lp)


def test_variance_known_values_and_leading_order(capsys):
    rep = _json([*S1, "--lags", "4", "--variance"], capsys)
    assert rep["variance_order"] is None
    assert _poly(rep["variance"][0][0]) == [0, 4]  # Var (|f|^2 + |c|^2)/n = 4/n
    lead = _json([*S1, "--lags", "4", "--variance", "--order", "1"], capsys)
    assert lead["variance_order"] == 1
    for l in range(4):
        for lp in range(4):
            exact = _poly(rep["variance"][l][lp])
            assert (exact[:1] or [0])[0] == 0  # no fluctuation in the wide limit
            assert _poly(lead["variance"][l][lp]) == [c for c in exact[:2]] or (
                exact[:2] == [0, 0] and lead["variance"][l][lp] == [])


def test_table_view(capsys):
    rc, out, err = _run(["moments", *S1, "--lags", "5", "--width", "100", "--variance"], capsys)
    assert rc == 0, err
    assert "4 + 6/n^2" in out and "6/n + 3/n^2" in out
    # relative correction of lag 2 at n = 100: (6/100^2)/4 = 0.00015
    row2 = next(line for line in out.splitlines() if line.strip().startswith("2  4 + 6/n^2"))
    assert "0.00015" in row2
    assert "Variance" in out and "4/n" in out


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("argv,needle", [
    (["--lags", "0"], "--lags"),
    (["--lags", "x"], "--lags"),
    (["--width", "0"], "--width"),
    (["--dps", "2"], "--dps"),
    (["--order", "1"], "--order applies to --variance"),
    (["--lags", "12", "--variance"], "--order 1"),
    (["--lags", "60"], "--lags 60"),
    (["--sigma-w", "abc"], "sigma"),
    (["--probe", "nothing.json"], "--probe needs --out"),
])
def test_bad_input_exit_2(argv, needle, capsys):
    rc, out, err = _run(["moments", *argv], capsys)
    assert rc == 2
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _fake_report(path, spec: RNNSpec, widths=(16, 32), lags=4):
    bias = {"widths": list(widths), "seeds": 8,
            "n_times_mean": [[0.5 * l for l in range(lags)] for _ in widths],
            "n_times_half_width": [[0.3] * lags for _ in widths]}
    path.write_text(json.dumps({"spec": dict(spec.to_dict()), "bias": bias}))
    return path


def test_probe_errors(tmp_path, capsys):
    other = _fake_report(tmp_path / "r.json", RNNSpec(sigma_w="0.9", n_x=2))
    rc, _, err = _run(["moments", "--lags", "4", "--out", str(tmp_path / "o"), "--probe", str(other)], capsys)
    assert rc == 2 and "n_x 2 there, 1 here" in err
    (tmp_path / "bad.json").write_text("{not json")
    rc, _, err = _run(["moments", "--out", str(tmp_path / "o"), "--probe", str(tmp_path / "bad.json")], capsys)
    assert rc == 2 and "not a JSON file" in err
    (tmp_path / "nobias.json").write_text("{}")
    rc, _, err = _run(["moments", "--out", str(tmp_path / "o"), "--probe", str(tmp_path / "nobias.json")], capsys)
    assert rc == 2 and "no bias table" in err
    rc, _, err = _run(["moments", "--out", str(tmp_path / "o"), "--probe", str(tmp_path / "missing.json")], capsys)
    assert rc == 2 and "cannot read" in err
    assert not (tmp_path / "o").exists()  # nothing written on bad input


# ------------------------------------------------------------------ figure and files
def test_figure_and_json_written_refuse_overwrite(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "m"
    rc, text, err = _run(["moments", "--lags", "6", "--width", "64", "--out", str(out)], capsys)
    assert rc == 0, err
    png = (out / "moments_bias.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    rep = json.loads((out / "moments.json").read_text())
    assert rep["lags"] == 6 and "mean_at" in rep and "version" in rep
    assert "wrote" in text
    rc, _, err = _run(["moments", "--lags", "6", "--out", str(out)], capsys)
    assert rc == 2 and "--force" in err
    rc, _, err = _run(["moments", "--lags", "3", "--out", str(out), "--force"], capsys)
    assert rc == 0, err
    assert json.loads((out / "moments.json").read_text())["lags"] == 3
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_figure_with_a_real_probe(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run_dir = tmp_path / "run"
    rc, _, err = _run(["run", "--widths", "16,32,64", "--seeds", "3", "--lags", "4", "--bias-seeds", "4",
                       "--out", str(run_dir), "--no-figures", "--quiet"], capsys)
    assert rc == 0, err  # seeded draws the exact test accepts (false-failure probability <= 1 %)
    rc, _, err = _run(["moments", "--lags", "5", "--out", str(tmp_path / "m"),
                       "--probe", str(run_dir / "report.json")], capsys)
    assert rc == 0, err
    assert (tmp_path / "m" / "moments_bias.png").stat().st_size > 5000


def test_missing_matplotlib_is_refused_before_work(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rc, _, err = _run(["moments", "--lags", "4", "--out", str(tmp_path / "m")], capsys)
    assert rc == 2 and "matplotlib" in err
    assert not (tmp_path / "m").exists()


def test_bias_curve_limit_matches_first_coefficient(capsys):
    from verify.cli.commands.moments import _poly as poly
    from verify.cli.figures.moments import bias_curve

    rep = _json(["--lags", "6"], capsys)
    for l in range(6):
        p = poly(rep["mean"][l][l])
        c0, c1 = p.coeff(0), p.coeff(1)
        # n (p(n)/c0 - 1) -> c1/c0 as n -> inf, at rate 1/n
        assert math.isclose(bias_curve(p, 10**9), float(c1 / c0), rel_tol=1e-6, abs_tol=1e-6)
