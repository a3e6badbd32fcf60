"""verify.stats.validity and ``python -m verify validity``: exact maps of where the wide-limit lag Gram holds.

Every expected value here is recomputed from :mod:`theory.finite_width` (the exact Wick
engine) along a separate path, or from a closed form stated in the test; float
comparisons allow only the rounding of one rational to float64 (and one square root).
"""
from __future__ import annotations

import json
import math
import sys
from fractions import Fraction
from functools import lru_cache

import pytest

from theory import RNNSpec
from theory.finite_width import InvPoly, mean_lag_gram, variance_lag_gram
from verify.cli.main import main
from verify.stats.validity import (
    QUANTITIES,
    check_closed_forms,
    closed_form_square,
    collapse_spread,
    correction_trend,
    lag_measures,
    largest_lag,
    make_options,
    threshold_width,
    validity_report,
    window_threshold_width,
)

LAGS = 7
WIDTHS = (8, 32, 128, 1024, 4096)
SWS = ("1", "0.9", "0.5")
THR = Fraction(1, 100)
#: float64 rounding of an exact rational and of a square root: a few ulps.
REL = 1e-13


@pytest.fixture(scope="module")
def report():
    opts = make_options(lags=LAGS, widths=WIDTHS, sigma_ws=SWS, min_lag=3, exact_variance_lags=3)
    return validity_report(opts)


@lru_cache(maxsize=None)
def _exact(sw: str, lags: int = LAGS):
    """Mean (exact) and leading variance of the lag Gram, straight from theory.finite_width."""
    spec = RNNSpec(sigma_w=sw)
    return spec, mean_lag_gram(spec, lags), variance_lag_gram(spec, lags, order=1)


def _independent(sw: str, q: str, l: int, n: int) -> Fraction:
    """q(l, n) (bias) or q(l, n)^2 (others) from FiniteMoments.at and beta_l = (l+2) s_W^(2l)."""
    spec, mean, var = _exact(sw)
    s = spec.sigma_w
    beta = [(k + 2) * s ** (2 * k) for k in range(LAGS)]
    m = mean.at(n)
    if q == "bias":
        return abs(m[l][l] / beta[l] - 1)
    if q == "offdiag":
        return sum(m[l][k] ** 2 for k in range(l)) / beta[l] ** 2
    if q == "offdiag_sym":
        return sum(m[l][k] ** 2 / (beta[l] * beta[k]) for k in range(l))
    return var.total[l][l](n) / beta[l] ** 2


@pytest.mark.parametrize("sw", ["1", "0.9"])
@pytest.mark.parametrize("l,n", [(2, 8), (3, 128), (6, 8), (6, 4096), (5, 1024)])
def test_heat_map_values_are_the_exact_rationals(report, sw, l, n):
    key = str(Fraction(sw))
    j = WIDTHS.index(n)
    for q in QUANTITIES:
        exact = _independent(sw, q, l, n)
        want = float(exact) if q == "bias" else math.sqrt(exact)
        got = report["grids"][key][q][l][j]
        assert got == pytest.approx(want, rel=REL, abs=0), (q, l, n)


def test_beta_is_the_wide_limit(report):
    for sw in SWS:
        s = Fraction(sw)
        assert report["beta"][str(s)] == [float((l + 2) * s ** (2 * l)) for l in range(LAGS)]


def test_relative_bias_std_and_symmetric_mass_do_not_depend_on_sigma_w(report):
    assert report["sigma_w_independent"] == {"bias": True, "offdiag": False, "offdiag_sym": True, "std": True}


def test_c2_and_couplings_agree_with_the_engine():
    _, mean, var = _exact("1", 8)
    for l in range(8):
        assert mean.total[l][l].coeff(1) == 0
        c2 = (Fraction(l**5, 24) + Fraction(17 * l**4, 48) + Fraction(7 * l**3, 24) - Fraction(2 * l * l, 3)
              - Fraction(l, 3) + Fraction(5 * (1 - (-1) ** l), 32))
        assert mean.total[l][l].coeff(2) == c2
        # leading variance of a diagonal entry: (2/3)(l+1)(l+2)(2l+3)/n
        assert var.total[l][l] == InvPoly.of([0, Fraction(2 * (l + 1) * (l + 2) * (2 * l + 3), 3)])
        for k in range(l):
            want = (k + 1) * (k + 2) if (l - k) % 2 == 0 else 0
            assert mean.total[l][k].coeff(1) == want
    for sw in SWS:
        assert all(check_closed_forms(lag_measures(RNNSpec(sigma_w=sw), 8)).values())


def test_threshold_width_solves_the_level():
    # q^2 = 4/n^2 + 0: q = 2/n <= 1/100  <=>  n >= 200
    assert threshold_width(InvPoly.of([0, 0, 4]), THR) == pytest.approx(200, rel=1e-11)
    assert threshold_width(InvPoly.zero(), THR) is None
    assert threshold_width(InvPoly.of([0, Fraction(1, 10**6)]), THR) == 1.0
    with pytest.raises(ValueError):
        threshold_width(InvPoly.of([0, 1, -1]), THR)


def test_threshold_widths_cross_the_level_exactly(report):
    spec, mean, var = _exact("1")
    for q in QUANTITIES:
        for l, ns in enumerate(report["threshold_widths"]["1"][q]["exact"]):
            if ns is None:
                continue
            level = THR if q == "bias" else THR**2
            assert _independent("1", q, l, Fraction(ns)) <= level
            if ns > 1:
                assert _independent("1", q, l, Fraction(ns * (1 - 1e-9))) > level


@pytest.mark.parametrize("sw", SWS)
def test_rule_constants_are_tight(report, sw):
    """At n = c l^a every checked lag is within 1 %; at n = 0.8 c l^a some lag is not."""
    key = str(Fraction(sw))
    for rule in (r for r in report["rules"] if r["sigma_w"] == key):
        q, c, a = rule["quantity"], rule["constant"], rule["exponent"]
        lo, hi = rule["lag_range"]
        level = THR if q == "bias" else THR**2
        for factor, holds in ((1.0, True), (0.8, False)):
            ok = [_independent(sw, q, l, Fraction(factor * c * l**a)) <= level for l in range(lo, hi + 1)]
            assert all(ok) if holds else not all(ok), (q, factor, ok)
        l = rule["argmax_lag"]
        assert _independent(sw, q, l, Fraction(0.999 * c * l**a)) > level


def test_collapse_spread_finds_the_scaling_variable():
    widths = [2**k for k in range(3, 15)]
    # q(l, n) = (l^2/n)^2 for every lag (a straight line in log-log, so the linear
    # interpolation is exact): zero spread for a = 2 up to rounding, a positive one for a = 1
    values = {l: [(l * l / n) ** 2 for n in widths] for l in range(4, 12)}
    assert collapse_spread(values, widths, 2.0)["rms"] < 1e-12
    assert collapse_spread(values, widths, 1.0)["rms"] > 0.3
    assert collapse_spread({4: values[4]}, widths, 2.0) is None


def test_correction_trend_recovers_a_power_law():
    ratios = {l: 1 + 0.01 * (l / 10) ** 0.7 for l in (10, 11, 12, 13)}
    excess, p, top = correction_trend(ratios)
    assert top == 13 and excess == pytest.approx(0.01 * 1.3**0.7, rel=1e-12) and p == pytest.approx(0.7, rel=1e-9)
    assert correction_trend({10: 1.0, 11: 1.0}) is None  # no measurable correction
    assert correction_trend({10: 1.1}) is None


def test_collapse_near_the_level_picks_l2_bias_l15_couplings_l_std(report):
    c = report["collapse"]["1"]
    assert c["bias"]["near_threshold"]["band"] == [0.001, 0.1]
    assert c["bias"]["near_threshold"]["best_candidate"] == "l^2/n"
    assert c["offdiag_sym"]["near_threshold"]["best_candidate"] == "l^3/n^2"
    assert c["std"]["near_threshold"]["best_candidate"] == "l/n"
    for q in QUANTITIES:
        for part in ("near_threshold", "full_range"):
            assert c[q][part]["best_exponent"] is not None
    rule = {r["quantity"]: r for r in report["rules"] if r["sigma_w"] == "1"}
    assert (rule["bias"]["exponent"], rule["offdiag_sym"]["exponent"], rule["std"]["exponent"]) == (2, 1.5, 1)


def test_collapse_band_keeps_only_points_near_the_level():
    widths = [2**k for k in range(3, 17)]
    values = {l: [l / n for n in widths] for l in range(4, 10)}
    s = collapse_spread(values, widths, 1.0, band=(1e-3, 1e-1))
    assert s["rms"] < 1e-12 and s["points"] >= 3
    assert -3 - 1e-9 <= s["log10_x_range"][0] and s["log10_x_range"][1] <= -1 + 1e-9
    assert collapse_spread(values, widths, 1.0, band=(1e3, 1e4)) is None


def test_largest_lag_at_a_fixed_width(report):
    m = lag_measures(RNNSpec(sigma_w="1"), LAGS)
    for row in report["fixed_widths"]:
        if row["sigma_w"] != "1":
            continue
        q, n, L = row["quantity"], row["width"], row["largest_lag"]
        assert (L, row["source"]) == largest_lag(m, q, n, THR)
        level = THR if q == "bias" else THR**2
        below = [l for l in range(LAGS) if L is None or l <= L]
        assert all(_independent("1", q, l, n) <= level for l in below if L is not None)
        if L is None:
            assert _independent("1", q, 0, n) > level
        elif L + 1 < LAGS:
            assert _independent("1", q, L + 1, n) > level
        else:  # decided by the leading closed form
            k, p = closed_form_square(q, L + 1, Fraction(1))
            assert k > THR**2 * n**p


@pytest.mark.parametrize("q", ["offdiag", "offdiag_sym"])
@pytest.mark.parametrize("sw", ["1", "0.9"])
def test_window_width_is_the_worst_row_of_the_exact_leading_terms(q, sw):
    T = 7
    spec, mean, _ = _exact(sw, T)
    s = spec.sigma_w
    beta = [(k + 2) * s ** (2 * k) for k in range(T)]
    worst = Fraction(0)
    for l in range(T):
        # the 1/n^2 coefficient of the whole row's squared mass
        k2 = sum((mean.total[l][k].coeff(1) ** 2) / (beta[l] ** 2 if q == "offdiag" else beta[l] * beta[k])
                 for k in range(T) if k != l)
        worst = max(worst, k2)
    log10_n, _ = window_threshold_width(q, T, s, THR)
    assert log10_n == pytest.approx(math.log10(worst) / 2 + 2, abs=1e-12)


def test_std_exact_over_leading_tends_to_one(report):
    ratio = report["std_exact_over_leading"]["ratio"]["1"]
    assert all(abs(r[-1] - 1) < 1e-2 for r in ratio)  # n = 4096: the 1/n^2 terms are O(1/n) relative
    assert ratio[0] == pytest.approx([1.0] * len(WIDTHS), rel=1e-14)  # Var Theta[0,0] = 4/n exactly


# ----------------------------------------------------------------------------- the command
SMALL = ["validity", "--lags", "5", "--min-lag", "2", "--sigma-w", "1,0.9", "--widths", "8,64,512,4096",
         "--exact-variance-lags", "2"]


def test_command_json_keys(capsys):
    assert main(SMALL + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("version", "threshold", "lags", "widths", "sigma_w", "quantities", "beta", "grids",
                "sigma_w_independent", "closed_forms", "threshold_widths", "collapse", "rules",
                "sequence_lengths", "fixed_widths", "closed_form_curves", "std_exact_over_leading"):
        assert key in out, key
    assert set(out["grids"]["1"]) == set(QUANTITIES)
    assert len(out["grids"]["1"]["bias"]) == 5 and len(out["grids"]["1"]["bias"][0]) == 4
    assert {(r["T"], r["quantity"]) for r in out["sequence_lengths"]} == {(T, q) for T in (100, 1000)
                                                                          for q in QUANTITIES}
    assert {r["width"] for r in out["fixed_widths"]} == {1024, 4096}
    assert all({"statement", "constant", "exponent", "variable", "argmax_lag"} <= set(r) for r in out["rules"])


def test_command_json_is_strict_beyond_float64(capsys):
    """s_W = 1e-30: couplings 10^60 times beta_l and more; values beyond float64 become null, not Infinity."""
    argv = ["validity", "--lags", "4", "--min-lag", "2", "--sigma-w", "1e-30", "--widths", "8,1024",
            "--exact-variance-lags", "0", "--json"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    out = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    row = next(r for r in out["sequence_lengths"] if r["quantity"] == "offdiag" and r["T"] == 1000)
    assert row["width"] is None and row["log10_width"] > 300


def test_command_table(capsys):
    assert main(SMALL) == 0
    text = capsys.readouterr().out
    assert "Rules" in text and "n at T-1" in text and "Largest lag" in text


def test_command_writes_figures_and_report(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "rep"
    one = SMALL + ["--sigma-w", "1"]
    assert main(one + ["--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["collapse.png", "heatmaps.png", "report.json", "thresholds.png"]
    for name in names:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "report.json").read_text())["lags"] == 5
    capsys.readouterr()
    assert main(one + ["--out", str(out)]) == 2  # no overwrite without --force
    assert "--force" in capsys.readouterr().err
    assert main(one + ["--out", str(out), "--force"]) == 0


def test_command_without_matplotlib_refuses_before_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "rep"
    assert main(SMALL + ["--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "matplotlib" in err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--lags", "3"], "--lags"),
    (["--lags", "x"], "--lags"),
    (["--lags", "60"], "--lags"),
    (["--widths", "8"], "--widths"),
    (["--widths", "8,0"], "--widths"),
    (["--sigma-w", "0"], "--sigma-w"),
    (["--sigma-w", "1,1.0"], "--sigma-w"),
    (["--sigma-w", "-1"], "sigma_w"),
    (["--threshold", "1"], "--threshold"),
    (["--threshold", "abc"], "--threshold"),
    (["--threshold", "1e-7"], "--threshold"),
    (["--sequence-lengths", "2000000"], "--sequence-lengths"),
    (["--min-lag", "1"], "--min-lag"),
    (["--lags", "6", "--min-lag", "5"], "--min-lag"),
    (["--sequence-lengths", "1"], "--sequence-lengths"),
    (["--fixed-widths", "0"], "--fixed-widths"),
    (["--exact-variance-lags", "9"], "--exact-variance-lags"),
])
def test_bad_input_exits_2_with_one_line(capsys, argv, message):
    assert main(["validity"] + argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1 and message in err
    assert "Traceback" not in err
