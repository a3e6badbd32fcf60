"""``python -m verify weights``: table, JSON (digits, rounding, shares, series), bad arguments."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from helpers import frac
from hypothesis import given
from hypothesis import strategies as st

from theory.series import memory_horizon, peak_lag, tail_weight, total_weight
from theory.spec import CONVENTIONS, METRICS, RNNSpec
from theory.weights import lag_shares, lag_weights
from verify.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
BASE = ["weights", "--sigma-w", "0.9", "--sigma-f", "1.3", "--sigma-c", "0.7"]


def run_json(capsys, argv):
    assert main(argv + ["--json"]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    return json.loads(out.out)


def significant_digits(text: str) -> int:
    mantissa = text.lstrip("-").split("e")[0].replace(".", "")
    return len(mantissa.lstrip("0"))


def last_place(text: str) -> Fraction:
    """Value of one unit in the last printed digit of a decimal string."""
    d = Decimal(text)
    return Fraction(Decimal(1).scaleb(d.as_tuple().exponent))


def assert_correctly_rounded(text: str, exact: Fraction, digits: int):
    """text is exact rounded to ``digits`` significant digits (half a unit in the last place;
    the reference ``exact`` is itself within 10^-(2 digits) relative, added to the allowance)."""
    if exact == 0:
        assert Decimal(text) == 0
        return
    assert significant_digits(text) == digits, text
    err = abs(Fraction(Decimal(text)) - exact)
    assert err <= last_place(text) / 2 + abs(exact) / 10 ** (2 * digits), (text, exact)


# ---------------------------------------------------------------- JSON
@st.composite
def cli_cases(draw):
    sw = draw(st.integers(1, 1400).map(lambda k: Fraction(k, 1000)))
    args = {
        "--sigma-w": str(Decimal(sw.numerator) / sw.denominator),
        "--sigma-f": draw(st.sampled_from(["1", "1.3", "0.25", "2"])),
        "--sigma-c": draw(st.sampled_from(["1", "0.7", "1.5"])),
        "--metric": draw(st.sampled_from(METRICS)),
        "--convention": draw(st.sampled_from(CONVENTIONS)),
        "--lags": str(draw(st.integers(1, 25))),
        "--dps": str(draw(st.integers(5, 60))),
        "--lr-w": draw(st.sampled_from(["1", "0", "0.5"])),
    }
    if draw(st.booleans()):
        args["--sigma-d"] = draw(st.sampled_from(["0.5", "1", "0.01"]))
    return args


def spec_of(args: dict) -> RNNSpec:
    return RNNSpec(
        sigma_w=args["--sigma-w"], sigma_f=args["--sigma-f"], sigma_c=args["--sigma-c"],
        sigma_d=args.get("--sigma-d"), metric=args["--metric"], convention=args["--convention"],
        lr_w=args["--lr-w"],
    )


@given(cli_cases())
def test_json_beta_digits_and_values(case):
    import io
    from contextlib import redirect_stdout

    argv = ["weights"] + [x for kv in case.items() for x in kv] + ["--json"]
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(argv) == 0
    out = json.loads(buf.getvalue())
    dps, lags = int(case["--dps"]), int(case["--lags"])
    spec = spec_of(case)
    assert out["dps"] == dps and out["lags"] == lags and out["spec"] == dict(spec.to_dict())
    ref = lag_weights(spec, lags, dps=2 * dps + 10)
    assert len(out["beta"]) == lags
    for text, r in zip(out["beta"], ref):
        assert_correctly_rounded(text, frac(r), dps)
    ref_sh = lag_shares(spec, lags, dps=2 * dps + 10)
    assert set(out["shares"]) == set(spec.groups)
    for g, vals in out["shares"].items():
        for text, r in zip(vals, ref_sh[g]):
            assert_correctly_rounded(text, frac(r), dps)
    if spec.sigma_w < 1 and total_weight(spec, dps=15) > 0:
        s = out["series"]
        assert_correctly_rounded(s["total"], frac(total_weight(spec, dps=2 * dps + 10)), dps)
        assert s["peak_lag"] == peak_lag(spec) and s["horizon"] == memory_horizon(spec, "0.01")
    elif spec.sigma_w >= 1:
        assert out["series"] is None and "sigma_w < 1" in out["series_note"]


def test_json_interval_endpoints_enclose(capsys):
    out = run_json(capsys, BASE + ["--sigma-d", "0.5", "--lags", "30", "--dps", "12", "--interval"])
    ref = lag_weights(RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c="0.7", sigma_d="0.5"), 30, dps=60)
    for (lo, hi), r in zip(out["beta_interval"], ref):
        assert Fraction(Decimal(lo)) <= frac(r) <= Fraction(Decimal(hi))
        assert significant_digits(lo) <= 12 and significant_digits(hi) <= 12
        assert Fraction(Decimal(hi)) - Fraction(Decimal(lo)) <= frac(r) * Fraction(4, 10**11)


def test_json_example_from_the_issue(capsys):
    """ntk, conv1, no D: beta_l = (l + 2) s_C^2 s_F^2 s_W^(2l) -- the documented example, by hand for l = 0, 1."""
    out = run_json(capsys, BASE + ["--lags", "12", "--dps", "40"])
    assert out["beta"][0] == "1.6562" + "0" * 35  # 2 * 0.49 * 1.69 = 1.6562, 40 digits
    assert Fraction(Decimal(out["beta"][0])) == Fraction(16562, 10000)
    assert Fraction(Decimal(out["beta"][1])) == 3 * Fraction(49, 100) * Fraction(169, 100) * Fraction(81, 100)
    assert len(out["beta"]) == 12 and out["series"]["peak_lag"] == 3


# ---------------------------------------------------------------- table
def test_table_output(capsys):
    assert main(BASE + ["--sigma-d", "0.5", "--lags", "5", "--dps", "25", "--interval"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("Lag weights beta_l: metric ntk, conv1, s_W = 0.9")
    header = lines[1].split()
    assert header[:2] == ["lag", "beta_l"] and header.count("share") == 4
    rows = [ln.split() for ln in lines[3:8]]
    assert [int(r[0]) for r in rows] == list(range(5))
    beta = lag_weights(RNNSpec(sigma_w="0.9", sigma_f="1.3", sigma_c="0.7", sigma_d="0.5"), 5, dps=40)
    for r, b in zip(rows, beta):
        assert abs(Fraction(Decimal(r[1])) - frac(b)) <= frac(b) / 10**19  # table shows 20 digits
    assert "Interval enclosures:" in out
    assert "Series (closed form): total weight" in out and "memory horizon" in out


def test_table_for_exploding_weights_notes_the_series(capsys):
    assert main(["weights", "--sigma-w", "1.1", "--lags", "4"]) == 0
    out = capsys.readouterr().out
    assert "Series: closed-form series need sigma_w < 1" in out


# ---------------------------------------------------------------- bad arguments
BAD = [
    (["--sigma-w", "nan"], "sigma_w must be finite"),
    (["--sigma-w", "-0.5"], "sigma_w must be >= 0"),
    (["--sigma-w", "0.9", "--sigma-f", "inf"], "sigma_f must be finite"),
    (["--sigma-w", "0.9", "--sigma-c", "x"], "sigma_c must be a number"),
    (["--sigma-w", "0.9", "--sigma-d", "-1"], "sigma_d must be >= 0"),
    (["--sigma-w", "0.9", "--lr-w", "-1"], "lr_w must be >= 0"),
    (["--sigma-w", "0.9", "--lags", "0"], "lags must be a positive integer"),
    (["--sigma-w", "0.9", "--lags", "-3"], "lags must be a positive integer"),
    (["--sigma-w", "0.9", "--lags", "2.5"], "--lags: expected an integer"),
    (["--sigma-w", "0.9", "--metric", "bogus"], "invalid choice"),
    (["--sigma-w", "0.9", "--convention", "conv3"], "invalid choice"),
    (["--sigma-w", "0.9", "--dps", "4"], "dps must be between"),
    (["--sigma-w", "0.9", "--dps", "100001"], "dps must be between"),
    (["--sigma-w", "0.9", "--n-x", "0"], "--n-x must be a positive integer"),
    (["--sigma-w", "0.9", "--horizon-fraction", "2"], "fraction must be in (0, 1)"),
    (["--lags", "3"], "required: --sigma-w"),
]


@pytest.mark.parametrize("args, fragment", BAD)
def test_bad_arguments_exit_2_with_one_line(capsys, args, fragment):
    assert main(["weights"] + args) == 2
    out = capsys.readouterr()
    assert out.out == ""
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert lines[0].startswith("error: ") and fragment in lines[0], lines[0]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_subprocess_good_and_bad():
    good = subprocess.run([sys.executable, "-m", "verify"] + BASE + ["--lags", "3", "--dps", "20", "--json"],
                          capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=120)
    assert good.returncode == 0, good.stderr
    beta = json.loads(good.stdout)["beta"]
    assert [significant_digits(b) for b in beta] == [20, 20, 20]
    bad = subprocess.run([sys.executable, "-m", "verify", "weights", "--sigma-w", "nan"],
                         capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=120)
    assert bad.returncode == 2
    assert bad.stdout == ""
    assert bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr
    assert "sigma_w must be finite" in bad.stderr


# ---------------------------------------------------------------- what used to be wrong or missing
def test_dps_maximum_is_accepted_and_correctly_rounded():
    """--dps 100000 (the documented maximum) used to be refused: guard digits were added before the check."""
    p = subprocess.run([sys.executable, "-m", "verify", "weights", "--sigma-w", "0.9", "--lags", "2", "--dps",
                        "100000", "--json"], capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=300)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    # beta_1 = 3 * 0.81 = 2.43 exactly: 100000 significant digits, all of them right
    assert out["dps"] == 100000 and out["beta"][1] == "2.43" + "0" * 99997
    assert out["series"]["horizon"] == memory_horizon(RNNSpec(sigma_w="0.9"), "0.01")


def test_weights_print_even_when_the_horizon_is_astronomical(capsys):
    """s_W = 1 - 10^-29 (valid): the weights are printed, and the horizon is computed exactly."""
    sw = "0.99999999999999999999999999999"
    out = run_json(capsys, ["weights", "--sigma-w", sw, "--lags", "3", "--dps", "20"])
    assert len(out["beta"]) == 3 and out["series"] is not None
    spec = RNNSpec(sigma_w=sw)
    L = out["series"]["horizon"]
    assert L > 2**62  # where the search used to give up
    total = frac(total_weight(spec, dps=60))
    assert frac(tail_weight(spec, L, dps=60)) <= total / 100 < frac(tail_weight(spec, L - 1, dps=60))


def test_weights_print_when_every_group_is_frozen(capsys):
    """No series exists (all weights zero): the weights (zeros) are still printed, with a note."""
    assert main(["weights", "--sigma-w", "0.9", "--lr-w", "0", "--lr-f", "0", "--lr-c", "0", "--lags", "2"]) == 0
    out = capsys.readouterr().out
    assert "Series: all lag weights are zero" in out and out.count("\n") > 4


@pytest.mark.parametrize("sw", ["0.5", "0.9", "0.999", "0.99999999", "0.9999999999999"])
@pytest.mark.parametrize("convention", ["conv1", "conv2"])
def test_memory_horizon_is_exact_far_out(sw, convention):
    """The horizon search keeps r^(2^k) and bisects on bits: tail(L) <= eps total < tail(L - 1) at 60 digits."""
    spec = RNNSpec(sigma_w=sw, sigma_d="0.5", convention=convention)
    L = memory_horizon(spec, "0.01", dps=30)
    total = frac(total_weight(spec, dps=60))
    assert frac(tail_weight(spec, L, dps=60)) <= total / 100 < frac(tail_weight(spec, L - 1, dps=60))
