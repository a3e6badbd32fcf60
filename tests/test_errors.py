"""The error hierarchy and exit statuses of ``python -m verify`` (docs/errors.md).

Declared bad input exits 2 with one line; everything else a command raises is an internal
error: exit 1, one line that says it is a bug and how to see the traceback.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

from theory.spec import SpecError
from verify.cli import main as cli
from verify.engine.backend import BackendError
from verify.internal import limits, validate
from verify.internal.errors import (
    BadInput,
    LimitExceeded,
    MissingDependency,
    OutOfRange,
    OutputExists,
    UsageError,
    debug_enabled,
    require,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def raising_command(monkeypatch):
    """Register a command ``boom`` whose run raises the exception given by ``--kind``."""
    mod = types.ModuleType("verify_test_boom")
    kinds = {
        "bad": BadInput("--x: bad value"), "spec": SpecError("sigma_w must be >= 0, got -1"),
        "usage": UsageError("python -m verify boom: unrecognized arguments"),
        "limit": LimitExceeded("--lags: too much"), "missing": MissingDependency("needs matplotlib"),
        "range": OutOfRange("beta_3 overflows float64"), "exists": OutputExists("--out d: report.json exists"),
        "backend": BackendError("device cuda is not available to torch"),
        "value": ValueError("a library bug"), "overflow": OverflowError("(34, 'Numerical result out of range')"),
        "import": ImportError("No module named 'nothing'"), "zero": ZeroDivisionError("float division by zero"),
        "runtime": RuntimeError("line one\nline two"), "key": KeyError("W"), "memory": MemoryError(),
        "os": PermissionError(13, "Permission denied", "/x/report.json"),
    }

    def add_arguments(p):
        p.add_argument("--kind", required=True)

    def run(args):
        raise kinds[args.kind]

    mod.add_arguments, mod.run = add_arguments, run
    monkeypatch.setitem(sys.modules, "verify_test_boom", mod)
    monkeypatch.setitem(cli.COMMANDS, "boom", ("verify_test_boom", "raises"))
    monkeypatch.delenv("RNN_VERIFY_DEBUG", raising=False)
    return kinds


BAD = ["bad", "spec", "usage", "limit", "missing", "range", "exists", "backend"]
INTERNAL = ["value", "overflow", "import", "zero", "runtime", "key", "memory"]


@pytest.mark.parametrize("kind", BAD)
def test_declared_bad_input_exits_2_with_one_line(raising_command, kind, capsys):
    assert cli.main(["boom", "--kind", kind]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1
    assert "internal error" not in err and "Traceback" not in err


@pytest.mark.parametrize("kind", INTERNAL)
def test_anything_else_is_an_internal_error_exit_1(raising_command, kind, capsys):
    assert cli.main(["boom", "--kind", kind]) == 1
    err = capsys.readouterr().err
    assert err.startswith("internal error (a bug): " + type(raising_command[kind]).__name__)
    assert err.count("\n") == 1 and "--debug" in err and "RNN_VERIFY_DEBUG=1" in err
    assert "Traceback" not in err


def test_operating_system_error_is_exit_1_one_line(raising_command, capsys):
    assert cli.main(["boom", "--kind", "os"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Permission denied" in err and err.count("\n") == 1


@pytest.mark.parametrize("how", ["flag", "flag-first", "env"])
def test_debug_shows_the_traceback(raising_command, how, monkeypatch):
    argv = ["boom", "--kind", "value"]
    if how == "flag":
        argv.append("--debug")
    elif how == "flag-first":
        argv.insert(0, "--debug")
    else:
        monkeypatch.setenv("RNN_VERIFY_DEBUG", "1")
    with pytest.raises(ValueError, match="a library bug"):
        cli.main(argv)
    # bad input stays one line even with --debug
    assert cli.main(["boom", "--kind", "bad", "--debug"]) == 2


def test_debug_env_values(monkeypatch):
    for value, want in (("1", True), ("yes", True), ("0", False), ("", False), ("false", False)):
        monkeypatch.setenv("RNN_VERIFY_DEBUG", value)
        assert debug_enabled() is want


def test_internal_error_through_the_real_entry_point():
    """A subprocess: exit 1 and one line; with --debug the traceback (and still exit 1)."""
    code = ("import sys, types; from verify.cli import main as cli\n"
            "m = types.ModuleType('boom'); m.add_arguments = lambda p: None\n"
            "def run(a): raise ZeroDivisionError('float division by zero')\n"
            "m.run = run; sys.modules['boom'] = m; cli.COMMANDS['boom'] = ('boom', 'x')\n"
            "sys.exit(cli.main(sys.argv[1:]))\n")
    env = {k: v for k, v in os.environ.items() if k != "RNN_VERIFY_DEBUG"}
    p = subprocess.run([sys.executable, "-c", code, "boom"], cwd=ROOT, capture_output=True, text=True, env=env,
                       timeout=60)
    assert p.returncode == 1 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr
    assert p.stderr.startswith("internal error (a bug): ZeroDivisionError: float division by zero")
    p = subprocess.run([sys.executable, "-c", code, "boom", "--debug"], cwd=ROOT, capture_output=True, text=True,
                       env=env, timeout=60)
    assert p.returncode == 1 and "Traceback" in p.stderr and "ZeroDivisionError" in p.stderr


def test_help_exits_0(capsys):
    assert cli.main(["--help"]) == 0
    assert cli.main(["weights", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--debug" in out and "--no-limits" in out


def test_global_flags_anywhere_on_the_line(capsys):
    assert cli.main(["weights", "--sigma-w", "0.5", "--lags", "2", "--debug", "--no-limits", "--json"]) == 0
    assert '"beta"' in capsys.readouterr().out


def test_hierarchy():
    """BadInput is a SpecError (so the exact side's handlers catch it) and a ValueError."""
    for cls in (UsageError, LimitExceeded, MissingDependency, OutOfRange, OutputExists):
        assert issubclass(cls, BadInput)
    assert issubclass(BadInput, SpecError) and issubclass(BadInput, ValueError)


def test_require_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependency, match=r"figures needs matplotlib.*\[plot\]"):
        require("matplotlib", "figures", "plot")
    assert require("json", "x", "y").dumps(1) == "1"


# ----------------------------------------------------------------------------- validate
@pytest.mark.parametrize("call, message", [
    (lambda: validate.lags(0), "--lags must be a positive integer, got 0"),
    (lambda: validate.lags(True), "--lags: expected an integer"),
    (lambda: validate.lags("x"), "--lags: expected an integer, got 'x'"),
    (lambda: validate.lags(2.0), "--lags: expected an integer"),
    (lambda: validate.int_list("1,x", "--widths"), "comma-separated integers"),
    (lambda: validate.int_list("16,16", "--widths"), "--widths: values must be distinct"),
    (lambda: validate.int_list("", "--widths"), "at least 1"),
    (lambda: validate.int_list("0,4", "--widths"), "--widths must be a positive integer, got 0"),
    (lambda: validate.dps(4), "--dps: dps must be between 5 and 100000, got 4"),
    (lambda: validate.dps(100_001), "dps must be between 5 and 100000"),
    (lambda: validate.number("nan", "--time-limit", minimum=0, open_minimum=True), "--time-limit must be a number"),
    (lambda: validate.number("0", "--time-limit", minimum=0, open_minimum=True), "(0, inf]"),
    (lambda: validate.path_text("", "--out"), "--out: expected a path, got an empty string"),
    (lambda: validate.path_text("  ", "--out"), "empty string"),
    (lambda: validate.integer(-1, "--seed", minimum=0), "--seed must be at least 0, got -1"),
])
def test_validate_messages(call, message):
    with pytest.raises(BadInput) as info:
        call()
    assert message in str(info.value) and "\n" not in str(info.value)


def test_validate_accepts():
    import numpy as np

    assert validate.lags(np.int64(3)) == 3 and validate.lags("12") == 12
    assert validate.int_list("16, 32,64", "--widths") == (16, 32, 64)
    assert validate.int_list([4, 4], "--x", distinct=False) == (4, 4)
    assert validate.dps(100_000) == 100_000 and validate.dps(5) == 5
    assert validate.number("0.99", "--confidence", minimum=0.5, maximum=1, open_maximum=True) == 0.99


# ----------------------------------------------------------------------------- inputs that crashed
def _npz_with_headers(path, shapes, dtype="<f8"):
    """An .npz whose members are bare .npy headers claiming ``shapes`` (no data behind them)."""
    import io
    import zipfile

    import numpy as np

    with zipfile.ZipFile(path, "w") as z:
        for key, shape in shapes.items():
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
            z.writestr(f"{key}.npy", buf.getvalue())
    return path


def _bad_weights(tmp_path):
    import numpy as np

    out = {}
    out["dev-null"] = "/dev/null"
    out["folder"] = str(tmp_path)
    (tmp_path / "empty.npz").write_bytes(b"")
    out["empty"] = str(tmp_path / "empty.npz")
    (tmp_path / "text.npz").write_text("W = [[1]]")
    out["text"] = str(tmp_path / "text.npz")
    np.savez(tmp_path / "zero.npz", W=np.zeros((0, 0)), F=np.zeros((0, 1)), C=np.zeros((1, 0)))
    out["width-0"] = str(tmp_path / "zero.npz")
    np.savez(tmp_path / "nx0.npz", W=np.eye(2), F=np.zeros((2, 0)), C=np.ones((1, 2)))
    out["n_x-0"] = str(tmp_path / "nx0.npz")
    out["huge-header"] = str(_npz_with_headers(tmp_path / "huge.npz", {"W": (10**6, 10**6), "F": (10**6, 1),
                                                                       "C": (1, 10**6)}))
    out["short-data"] = str(_npz_with_headers(tmp_path / "short.npz", {"W": (3, 3), "F": (3, 1), "C": (1, 3)}))
    np.savez(tmp_path / "obj.npz", W=np.array([[object()]], dtype=object), F=np.ones((1, 1)), C=np.ones((1, 1)))
    out["pickle"] = str(tmp_path / "obj.npz")
    np.savez(tmp_path / "vec.npz", W=np.ones(3), F=np.ones((3, 1)), C=np.ones((1, 3)))
    out["1-D"] = str(tmp_path / "vec.npz")
    np.savez(tmp_path / "str.npz", W=np.array([["a"]]), F=np.ones((1, 1)), C=np.ones((1, 1)))
    out["strings"] = str(tmp_path / "str.npz")
    np.savez(tmp_path / "keys.npz", A=np.eye(2))
    out["keys"] = str(tmp_path / "keys.npz")
    np.savez(tmp_path / "nan.npz", W=np.full((2, 2), np.nan), F=np.ones((2, 1)), C=np.ones((1, 2)))
    out["nan"] = str(tmp_path / "nan.npz")
    return out


WEIGHT_MESSAGES = {
    "dev-null": "not a regular file", "folder": "is a folder", "empty": "the file is empty",
    "text": "not an .npz file", "width-0": "width n is 0", "n_x-0": "n_x is 0",
    "huge-header": "would need about 14.6 TiB of memory", "short-data": "not a readable .npz file",
    "pickle": "holds Python objects", "1-D": "must be a matrix (2-D)", "strings": "must be real-valued",
    "keys": "missing array(s) W, F, C", "nan": "non-finite",
}


@pytest.mark.parametrize("kind", sorted(WEIGHT_MESSAGES))
def test_ntk_bad_weights_files_exit_2_with_one_line(kind, tmp_path, capsys):
    path = _bad_weights(tmp_path)[kind]
    assert cli.main(["ntk", "--weights", path, "--sigma-w", "0.9", "--lags", "3"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("error: --weights")
    assert WEIGHT_MESSAGES[kind] in err, err


def test_huge_header_is_refused_before_any_allocation(tmp_path, monkeypatch, capsys):
    """The header's 10^6 x 10^6 claim is refused by the size check, without reading an array."""
    import numpy as np

    path = _bad_weights(tmp_path)["huge-header"]
    monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load called before the size check"))
    assert cli.main(["ntk", "--weights", path, "--sigma-w", "0.9", "--lags", "3"]) == 2
    assert "RNN_VERIFY_MAX_MEMORY_GIB" in capsys.readouterr().err


def test_ntk_bad_weights_through_the_real_entry_point(tmp_path):
    for path in ("/dev/null", _bad_weights(tmp_path)["width-0"]):
        p = subprocess.run([sys.executable, "-m", "verify", "ntk", "--weights", path, "--sigma-w", "0.9"],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr


@pytest.mark.parametrize("command", [
    ["ssm", "compare", "--lags", "4", "--train-lags", "3", "--train-sequences", "1", "--max-lag", "8"],
    ["gpu-check", "--device", "cpu", "--backend", "torch", "--max-width", "16", "--num-widths", "3",
     "--seeds", "2", "--lags", "2", "--no-pytest"],
])
@pytest.mark.parametrize("where, message", [
    ("file", "exists and is not a folder"),
    ("under-file", "cannot create the folder"),
    ("empty", "expected a path, got an empty string"),
])
def test_out_that_cannot_be_a_folder_exits_2_before_the_work(command, where, message, tmp_path, capsys,
                                                              monkeypatch):
    if command[0] == "gpu-check":
        pytest.importorskip("torch")
    (tmp_path / "a_file").write_text("keep me")
    out = {"file": str(tmp_path / "a_file"), "under-file": str(tmp_path / "a_file" / "sub"), "empty": ""}[where]
    monkeypatch.chdir(tmp_path)
    assert cli.main(command + ["--out", out]) == 2
    o, err = capsys.readouterr()
    assert o == "" and err.count("\n") == 1 and message in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing created, nothing changed
    assert (tmp_path / "a_file").read_text() == "keep me"


# ----------------------------------------------------------------------------- size limits
HUGE = [
    (["weights", "--sigma-w", "0.9", "--lags", "1000000000"], "--lags/--dps", "memory"),
    (["weights", "--sigma-w", "0.9", "--lags", "20000000", "--dps", "30"], "--lags/--dps", "memory"),
    (["ssm", "weights", "--r-min", "0", "--r-max", "1", "--max-phase", "1", "--lags", "100000"], "--lags/--dps",
     "memory"),
    (["ssm", "compare", "--out", "o", "--max-lag", "10000000000"], "--max-lag", "memory"),
    (["ssm", "compare", "--out", "o", "--train-lags", "100000"], "--train-lags", "memory"),
    (["sweep", "--widths", "16,32,64", "--lags", "1000000000"], "--lags", "memory"),
    (["sweep", "--widths", "16,32,100000000"], "--widths", "memory"),
    (["run", "--widths", "16,32,64", "--seeds", "1000000000"], "--seeds", "memory"),
    (["sweep", "--widths", "16,32,64", "--bias-widths", "16,1000000"], "--bias-widths", "memory"),
    (["sweep", "--widths", "16,32,64", "--bias-seeds", "100000000"], "--bias-seeds", "memory"),
    (["sweep", "--widths", "16,32,64", "--workers", "100000"], "--workers", "memory"),
    (["sweep", "--widths", "16,32,64", "--lags", "5000"], "--lags", "take an estimated"),
    (["gpu-check", "--out", "o", "--device", "cpu", "--max-width", "10000000"], "--widths", "memory"),
]


@pytest.mark.parametrize("argv, flag, what", HUGE)
def test_huge_sizes_are_refused_up_front(argv, flag, what, tmp_path, capsys, monkeypatch):
    """Each refusal names the flag and says how to raise the limit; nothing is created; it is fast."""
    import time

    if argv[0] == "gpu-check":
        pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RNN_VERIFY_MAX_MEMORY_GIB", raising=False)
    monkeypatch.delenv("RNN_VERIFY_NO_LIMITS", raising=False)
    t0 = time.perf_counter()
    assert cli.main(argv) == 2
    assert time.perf_counter() - t0 < 10  # MemoryError used to come after seconds of work
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag in err.split(":")[1] and what in err, err
    assert "--no-limits" in err and ("RNN_VERIFY_MAX_MEMORY_GIB" in err or "RNN_VERIFY_MAX_SECONDS" in err)
    assert list(tmp_path.iterdir()) == []


def test_limits_come_from_the_environment_and_can_be_switched_off(capsys, monkeypatch):
    argv = ["weights", "--sigma-w", "0.9", "--lags", "200", "--json"]
    monkeypatch.setenv("RNN_VERIFY_MAX_MEMORY_GIB", "1e-6")  # about 1 KB: too little for 200 weights
    assert cli.main(argv) == 2
    assert "more than the limit 1074 bytes (RNN_VERIFY_MAX_MEMORY_GIB)" in capsys.readouterr().err  # 1e-6 * 2^30
    assert cli.main(argv + ["--no-limits"]) == 0
    capsys.readouterr()
    monkeypatch.setenv("RNN_VERIFY_NO_LIMITS", "1")
    assert cli.main(argv) == 0
    capsys.readouterr()
    monkeypatch.delenv("RNN_VERIFY_NO_LIMITS")
    monkeypatch.delenv("RNN_VERIFY_MAX_MEMORY_GIB")
    monkeypatch.setenv("RNN_VERIFY_MAX_SECONDS", "1e-9")
    assert cli.main(argv) == 2
    assert "RNN_VERIFY_MAX_SECONDS" in capsys.readouterr().err
    monkeypatch.setenv("RNN_VERIFY_MAX_SECONDS", "soon")
    assert cli.main(argv) == 2
    assert "RNN_VERIFY_MAX_SECONDS='soon': expected a positive number" in capsys.readouterr().err


def test_no_limits_flag_is_scoped_to_one_call():
    with limits.limits_disabled():
        limits.check_cost(limits.Cost(1e30, 1e30, "x"), "--x")
    with pytest.raises(LimitExceeded):
        limits.check_cost(limits.Cost(1e30, 0.0, "x"), "--x")


def test_memory_estimate_bounds_the_measured_peak():
    """The lag-Gram memory model is an upper bound of what numpy really allocates (tracemalloc sees
    numpy's buffers), and not a vacuous one (within a factor 10)."""
    import tracemalloc

    from theory.spec import RNNSpec
    from verify.engine.ntk import lag_gram
    from verify.engine.rnn import init_rnn

    for n, lags, nx, ny in ((384, 8, 1, 1), (96, 40, 2, 3)):
        spec = RNNSpec(sigma_w="0.9", n_x=nx, n_y=ny)
        lag_gram(init_rnn(spec, 8, 0), spec, 2)  # imports and caches outside the measurement
        tracemalloc.start()
        try:
            lag_gram(init_rnn(spec, n, 0), spec, lags)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        est = limits.lag_gram_cost(n, lags, nx, ny).bytes
        assert peak / 10 <= est and peak <= 4 * est, (n, lags, peak, est)


def test_scale_exponents_are_bounded_on_the_exact_side(capsys):
    """Scales are exact rationals with at most 1000 digits: 1e1000000 used to hang inside mpmath."""
    import time

    from theory.spec import MAX_SCALE_DIGITS, RNNSpec, as_fraction

    t0 = time.perf_counter()
    for text in ("1e1000000", "1e-5000", "1" * 5000, "1e1000", "1/" + "3" * 1001):
        with pytest.raises(SpecError, match="out of range"):
            as_fraction(text, "sigma_w")
    for text in ("1e999", "1e-999", "0." + "9" * 999):
        assert as_fraction(text, "sigma_w") > 0
    from fractions import Fraction

    with pytest.raises(SpecError, match="out of range"):
        RNNSpec(sigma_w=Fraction(10**MAX_SCALE_DIGITS, 3))
    assert time.perf_counter() - t0 < 2
    assert cli.main(["weights", "--sigma-w", "1e1000000"]) == 2
    assert "sigma_w = 1e1000000 is out of range" in capsys.readouterr().err
    # the largest allowed scales still run, exactly, in a second
    assert cli.main(["weights", "--sigma-w", "1e999", "--sigma-f", "1e-999", "--lags", "50", "--json"]) == 0
    assert capsys.readouterr().out.count("e+") > 10


# ----------------------------------------------------------------------------- output rules
FAST_SWEEP = ["--widths", "16,32,64", "--seeds", "2", "--lags", "3", "--bias-seeds", "0", "--no-figures", "--quiet"]


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_existing_report_is_not_replaced_without_force(tmp_path, capsys):
    out = tmp_path / "rep"
    assert cli.main(["run", *FAST_SWEEP, "--out", str(out)]) == 0
    first = (out / "report.json").read_bytes()
    (out / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert cli.main(["run", *FAST_SWEEP, "--base-seed", "7", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "report.json exists" in err and "--force" in err
    assert (out / "report.json").read_bytes() == first
    assert cli.main(["run", *FAST_SWEEP, "--base-seed", "7", "--out", str(out), "--force"]) == 0
    assert (out / "report.json").read_bytes() != first  # replaced, atomically
    assert json.loads((out / "report.json").read_text())["base_seed"] == 7
    assert (out / "notes.txt").read_text() == "mine"  # other files are left alone
    assert _tree(out) == ["notes.txt", "report.json"]  # no staging folder left behind


def test_a_new_report_folder_appears_in_one_step(tmp_path, capsys):
    """A new --out (with missing parents) is created by renaming the staged folder: mode 0o777 & ~umask."""
    out = tmp_path / "a" / "b" / "rep"
    assert cli.main(["sweep", *FAST_SWEEP, "--out", str(out)]) == 0
    assert _tree(tmp_path) == ["a", "a/b", "a/b/rep", "a/b/rep/report.json"]
    mask = os.umask(0)
    os.umask(mask)
    assert (out.stat().st_mode & 0o777) == (0o777 & ~mask)


@pytest.mark.parametrize("command", ["run", "reproduce", "ssm"])
def test_failure_during_the_work_leaves_nothing(command, tmp_path, capsys, monkeypatch):
    """The work raises after the output was prepared: exit 1, and neither a partial file nor an empty folder."""
    import verify.cli.commands.sweep as sweep_command
    import verify.experiments.implicit_bias as ex

    def boom(*a, **k):
        raise RuntimeError("simulated failure in the middle of the work")

    if command == "run":
        monkeypatch.setattr(sweep_command, "sweep", boom)
        argv = ["run", *FAST_SWEEP]
    elif command == "reproduce":
        pytest.importorskip("matplotlib")
        monkeypatch.setattr(ex, "synthetic", boom)  # after the training experiment has run
        from verify.cli.commands import reproduce

        monkeypatch.setattr(reproduce, "QUICK", dict(reproduce.QUICK, widths=[8], seeds={8: [0]}))
        argv = ["reproduce", "--quick"]
    else:
        pytest.importorskip("matplotlib")
        import verify.cli.commands.ssm as ssm_command

        monkeypatch.setattr(ssm_command, "write_figure", boom)  # after ssm_compare.json was written
        argv = ["ssm", "compare", "--lags", "4", "--train-lags", "3", "--train-sequences", "1", "--max-lag", "8"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "old.txt").write_text("x")
    for out in ("new/rep", "keep"):
        assert cli.main(argv + ["--out", out]) == 1
        assert "internal error (a bug): RuntimeError: simulated failure" in capsys.readouterr().err
        assert _tree(tmp_path) == ["keep", "keep/old.txt"]


def test_missing_matplotlib_is_found_before_the_work(tmp_path, capsys, monkeypatch):
    import verify.experiments.implicit_bias as ex

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setattr(ex, "training_vs_theory", lambda *a, **k: pytest.fail("work started"))
    monkeypatch.chdir(tmp_path)
    assert cli.main(["reproduce", "--out", "r", "--quick"]) == 2
    assert cli.main(["ssm", "compare", "--out", "c"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("needs matplotlib" in e and "[plot]" in e for e in err)
    assert list(tmp_path.iterdir()) == []


def test_figures_warning_comes_before_the_work(tmp_path, capsys, monkeypatch):
    """run/sweep draw figures optionally: without matplotlib one warning, printed before any draw."""
    import verify.cli.commands.sweep as sweep_command

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    seen = []
    real = sweep_command.sweep

    def spy(*a, **k):
        seen.append(capsys.readouterr().err)
        return real(*a, **k)

    monkeypatch.setattr(sweep_command, "sweep", spy)
    rc = cli.main(["sweep", "--widths", "16,32,64", "--seeds", "2", "--lags", "3", "--bias-seeds", "0", "--quiet",
                   "--out", str(tmp_path / "o")])
    assert rc == 0 and "matplotlib is not installed" in seen[0]
    assert _tree(tmp_path / "o") == ["report.json"]


def test_reproduce_empty_out_is_refused(tmp_path, capsys, monkeypatch):
    """--out "" used to write into the current folder."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["reproduce", "--out", ""]) == 2
    assert "--out: expected a path, got an empty string" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_outputs_unit(tmp_path):
    from verify.internal import output

    o = output.prepare(tmp_path / "x", ("a.txt", "b.txt"))
    assert o.staging.parent == tmp_path and o.staging.name.startswith(".x.partial-")
    o.path("a.txt").write_text("A")
    with pytest.raises(ValueError):
        o.path("c.txt")
    assert o.commit() == [tmp_path / "x" / "a.txt"] and _tree(tmp_path) == ["x", "x/a.txt"]
    with pytest.raises(OutputExists):
        output.prepare(tmp_path / "x", ("a.txt",))
    (tmp_path / "x" / "b.txt").write_text("stale")
    with output.report_folder(tmp_path / "x", ("a.txt", "b.txt"), force=True) as o:
        o.path("a.txt").write_text("A2")
        assert o.staging.parent == tmp_path / "x"
    assert _tree(tmp_path) == ["x", "x/a.txt"]  # the stale b.txt of the replaced report is gone
    with pytest.raises(KeyError):
        with output.report_folder(tmp_path / "y", ("a.txt",)) as o:
            o.path("a.txt").write_text("never")
            raise KeyError("boom")
    assert _tree(tmp_path) == ["x", "x/a.txt"] and (tmp_path / "x" / "a.txt").read_text() == "A2"
    from verify.internal.jsonio import write_json

    assert write_json(tmp_path / "n.json", {"a": float("nan"), "b": [1.5, float("inf")]}).read_text() == \
        '{\n "a": null,\n "b": [\n  1.5,\n  null\n ]\n}\n'


def test_zero_dimension_networks_are_refused_where_they_are_made():
    """n = 0 used to reach group_scales' division by n (ZeroDivisionError)."""
    import numpy as np

    from verify.engine.rnn import LinearRNN

    for W, F, C in ((np.zeros((0, 0)), np.zeros((0, 1)), np.zeros((1, 0))),
                    (np.eye(2), np.zeros((2, 0)), np.ones((1, 2))),
                    (np.eye(2), np.ones((2, 1)), np.zeros((0, 2)))):
        with pytest.raises(SpecError, match="every dimension must be at least 1"):
            LinearRNN(W, F, C)


def test_library_argument_errors_are_bad_input():
    """verify.experiments.train and verify.engine.diagonal report bad arguments as BadInput (still ValueErrors)."""
    import numpy as np

    from verify.engine.diagonal import bonferroni_threshold, effective_rank
    from verify.experiments.train import relative_distance

    for call in (lambda: bonferroni_threshold(0), lambda: effective_rank(np.ones((2, 3))),
                 lambda: relative_distance(np.ones(3), np.ones(3), np.ones(3))):
        with pytest.raises(BadInput):
            call()


@pytest.mark.parametrize("argv", [
    ["claim", "--model", "verify.claims.elman:relu_model", "--kernel", "verify.claims.elman:relu_kernel",
     "--inputs", "X.npy"],
    ["ssm", "compare", "--out", "o"],
    ["power"],
])
def test_too_many_workers_is_refused_before_any_process_starts(argv, tmp_path, capsys, monkeypatch):
    """A process pool of 100000 interpreters is refused with one line (at most 4 per core, at least 8)."""
    import numpy as np

    from verify.internal.executors import max_local_workers

    monkeypatch.chdir(tmp_path)
    np.save("X.npy", np.ones((1, 2, 1)))
    assert cli.main(argv + ["--workers", "100000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"at most {max_local_workers()} here" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["X.npy"]
    assert max_local_workers() >= 8


def test_moments_with_absurd_lags_is_one_line(capsys):
    """``moments --lags 100000`` used to end in an internal OverflowError; the estimate is now finite."""
    assert cli.main(["moments", "--lags", "100000"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--lags 100000" in err and "internal error" not in err, err


def test_one_cost_model_for_the_exact_means(monkeypatch, capsys):
    """run/sweep, validity and moments ask the same model for the same exact means: at 24 lags they all
    refuse with the same memory estimate (they disagreed by 190x: 0.55, 102 and 21 GiB)."""
    from verify.internal import limits

    monkeypatch.setenv(limits.MEMORY_ENV, "24")
    monkeypatch.setenv(limits.SECONDS_ENV, str(10**9))
    estimates = []
    for argv in (["sweep", "--lags", "24", "--widths", "64", "--seeds", "2", "--bias-seeds", "0"],
                 ["validity", "--lags", "24", "--exact-variance-lags", "0"],
                 ["moments", "--lags", "24"]):
        monkeypatch.setattr("verify.cli.commands.moments.MAX_SECONDS", 1e12)
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        match = re.search(r"about ([\d.]+) GiB", err)
        assert match, err
        estimates.append(float(match.group(1)))
    mean = limits.exact_mean_cost(24).bytes / limits.GIB
    assert all(abs(e - mean) / mean < 0.05 for e in estimates), (estimates, mean)
