"""Property-based fuzzing of the command line: ``verify.cli.main.main(argv)`` on generated argument vectors.

Hypothesis draws a command and, for its flags, valid and invalid values (numbers out of range,
text, empty strings, huge sizes, NaN, exponents of a million) and odd files (empty, /dev/null,
not an .npz, wrong keys, wrong shapes, NaN entries, a header claiming 10^6 x 10^6, a folder).
Each vector runs in-process, in a fresh temporary folder, and must:

* exit with 0, 1 or 2;
* print no traceback and never "internal error" (that would be a bug);
* print at most one error line (and, for exit 2, exactly one), and no numpy RuntimeWarning;
* leave the folder as it was when it fails with bad input (exit 2), and never leave a staging
  folder behind.

Valid runs are kept tiny (widths <= 32, lags <= 4, ...).  Commands that are slow by nature
(``reproduce``, ``ssm compare``, ``gpu-check``) and commands this file does not know are
exercised with at least one argument that must be refused before the work starts.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from hypothesis import event, given, settings
from hypothesis import strategies as st

from verify.cli import main as cli

# ----------------------------------------------------------------------------- values
BAD_NUMBERS = ["", "x", "-1", "0", "nan", "inf", "-inf", "1e1000000", "1" * 5000, "1e400", "--", "1/0", " "]
HUGE_INTS = ["1000000000", "100000000000000000000", "123456789012345678901234567890"]
GOOD_SCALES = ["0.9", "1", "0.5", "1.3", "0", "1e-3", "1/3", "2", "0.99999999999999999999999999999"]
BAD_SCALES = ["1e200", "1e155", "1e1000", "1e1000000", "-0.5", "nan", "inf", "x", "", "1" * 5000]


def ints(lo: int, hi: int):
    return st.integers(lo, hi).map(str)


def flag(valid, invalid=None):
    """(valid values, invalid values) of one flag; ``None`` for an on/off flag."""
    return (valid, invalid if invalid is not None else st.sampled_from(BAD_NUMBERS + HUGE_INTS))


ON = (None, None)
SPEC_FLAGS = {
    "--metric": flag(st.sampled_from(["ntk", "variance", "standard"]), st.just("bogus")),
    "--convention": flag(st.sampled_from(["conv1", "conv2"]), st.just("conv3")),
    "--sigma-w": flag(st.sampled_from(GOOD_SCALES), st.sampled_from(BAD_SCALES)),
    "--sigma-f": flag(st.sampled_from(GOOD_SCALES), st.sampled_from(BAD_SCALES)),
    "--sigma-c": flag(st.sampled_from(GOOD_SCALES), st.sampled_from(BAD_SCALES)),
    "--sigma-d": flag(st.sampled_from(GOOD_SCALES), st.sampled_from(BAD_SCALES)),
    "--n-x": flag(ints(1, 2)),
    "--n-y": flag(ints(1, 2)),
    "--lr-w": flag(st.sampled_from(["1", "0", "0.5", "2"]), st.sampled_from(["-1", "x", "1e300", "nan"])),
    "--lr-f": flag(st.sampled_from(["1", "0", "2"]), st.sampled_from(["-1", "nan"])),
    "--lr-c": flag(st.sampled_from(["1", "0", "3"]), st.sampled_from(["-3", ""])),
    "--lr-d": flag(st.sampled_from(["1", "0", "0.5"]), st.sampled_from(["x"])),
}
SWEEP_FLAGS = dict(SPEC_FLAGS, **{
    "--lags": flag(ints(1, 4)),
    "--widths": flag(st.lists(st.integers(4, 32), min_size=3, max_size=4, unique=True).map(
        lambda v: ",".join(map(str, v))), st.sampled_from(["16,16,32", "8,16", "0,8,16", "a,b", "", "8,16,1000000000",
                                                           "8,16,-4"])),
    "--seeds": flag(ints(2, 3)),
    "--base-seed": flag(ints(0, 2**40), st.sampled_from(["-1", "x", ""])),
    "--confidence": flag(st.sampled_from(["0.99", "0.9", "0.5"]), st.sampled_from(["1", "0.4", "x", "nan"])),
    "--slope-model": flag(st.sampled_from(["corrected", "plain"]), st.just("cubic")),
    "--bias-seeds": flag(st.sampled_from(["0", "0", "2"]), st.sampled_from(["1", "-1", "x", "100000000"])),
    "--bias-widths": flag(st.sampled_from(["8,16", "8"]), st.sampled_from(["0", "x", "8,1000000"])),
    "--workers": flag(st.just("1"), st.sampled_from(["0", "-1", "x", "100000"])),
    "--backend": flag(st.sampled_from(["numpy", "array-api-strict", "torch"]), st.sampled_from(["cupy", "jax"])),
    "--device": flag(st.just("cpu"), st.sampled_from(["cuda", "tpu"])),
    "--dtype": flag(st.sampled_from(["float64", "float32"]), st.just("float16")),
    "--draws": flag(st.sampled_from(["numpy", "native"]), st.just("gpu")),
    "--out": flag(st.sampled_from(["out", "new/deep/out", "adir"]), st.sampled_from(["rep", "afile", "afile/sub", ""])),
    "--no-figures": ON, "--force": ON, "--quiet": ON, "--json": ON,
})
WEIGHTS_FLAGS = dict(SPEC_FLAGS, **{
    "--lags": flag(ints(1, 30)),
    "--dps": flag(ints(5, 60), st.sampled_from(["4", "100001", "x", "-5", "5.5"])),
    "--horizon-fraction": flag(st.sampled_from(["0.01", "0.5", "1e-6", "1/3"]), st.sampled_from(["0", "1", "2", "x"])),
    "--interval": ON, "--json": ON,
})
NTK_FLAGS = dict(SPEC_FLAGS, **{
    "--weights": flag(st.just("good.npz"), st.sampled_from(
        ["empty.npz", "/dev/null", "text.npz", "keys.npz", "shape.npz", "nan.npz", "huge.npz", "adir", "missing.npz",
         "zero.npz", "big.npz", "vec.npz", ""])),
    "--lags": flag(ints(1, 6)),
    "--backend": flag(st.sampled_from(["numpy", "array-api-strict", "torch"]), st.just("cupy")),
    "--device": flag(st.just("cpu"), st.just("cuda")),
    "--dtype": flag(st.sampled_from(["float64", "float32"]), st.just("float16")),
    "--json": ON,
})
SSM_WEIGHTS_FLAGS = {
    "--r-min": flag(st.sampled_from(["0", "0.5"]), st.sampled_from(["1", "-0.1", "x"])),
    "--r-max": flag(st.sampled_from(["0.999", "1", "0.95"]), st.sampled_from(["0.5", "1.5", "nan"])),
    "--max-phase": flag(st.sampled_from(["pi/10", "2*pi", "1", "0.31416"]),
                        st.sampled_from(["7", "0", "-1", "tau", "2.01*pi"])),
    "--lags": flag(ints(1, 5)),
    "--tied-gamma": ON,
    "--scaling": flag(st.sampled_from(["ntk", "lru"]), st.just("xavier")),
    "--sigma-b2": flag(st.sampled_from(["1/2", "0.25"]), st.sampled_from(["-1", "x"])),
    "--sigma-c": flag(st.sampled_from(["1", "2"]), st.just("nan")),
    "--sigma-d": flag(st.sampled_from(["1", "none", "0.5"]), st.just("-2")),
    "--lr-theta": flag(st.sampled_from(["1", "0"]), st.just("x")),
    "--dps": flag(st.sampled_from(["15", "20"]), st.sampled_from(["4", "x"])),
    "--json": ON,
}
#: (flag, value) pairs refused before any work: at least one goes into every slow command's line.
REFUSED = {
    ("reproduce",): [("--out", ""), ("--out", "afile"), ("--out", "afile/sub"), ("--bogus", None),
                     ("--out", "rep_reproduce")],  # an existing report: refused because --force is dropped
    ("ssm", "compare"): [("--lags", "0"), ("--dps", "4"), ("--max-lag", "-1"), ("--train-lags", "x"),
                         ("--out", "afile"), ("--out", ""), ("--seed", "-1"), ("--max-lag", "10000000000"),
                         ("--train-sequences", "0"), ("--bogus", None)],
    ("gpu-check",): [("--max-width", "4"), ("--seeds", "1"), ("--num-widths", "2"), ("--time-limit", "0"),
                     ("--backend", "numpy"), ("--dtype", "float16"), ("--out", "afile"), ("--lags", "0"),
                     ("--device", "cuda"), ("--max-width", "10000000")],
}
SLOW_OTHER = {
    ("reproduce",): {"--out": flag(st.just("o"), st.sampled_from(["afile", ""])), "--quick": ON, "--force": ON},
    ("ssm", "compare"): {"--out": flag(st.just("o"), st.just("afile")), "--lags": flag(ints(1, 8)),
                         "--train-lags": flag(ints(2, 8)), "--train-sequences": flag(ints(1, 4)),
                         "--max-lag": flag(ints(1, 50)), "--no-train": ON,
                         "--dps": flag(st.just("15"), st.just("4")), "--seed": flag(st.just("0"), st.just("-1")),
                         "--force": ON},
    ("gpu-check",): dict(SPEC_FLAGS, **{"--out": flag(st.just("o"), st.just("afile")),
                                        "--device": flag(st.just("cpu"), st.just("cuda")),
                                        "--backend": flag(st.just("torch"), st.just("cupy")),
                                        "--max-width": flag(ints(8, 64)), "--num-widths": flag(ints(3, 4)),
                                        "--seeds": flag(ints(2, 3)), "--time-limit": flag(st.just("1")),
                                        "--no-pytest": ON, "--lags": flag(ints(1, 4))}),
}
FAST = {
    ("weights",): (WEIGHTS_FLAGS, ["--sigma-w"]),
    ("ntk",): (NTK_FLAGS, ["--weights", "--sigma-w"]),
    ("sweep",): (SWEEP_FLAGS, ["--widths", "--seeds", "--lags", "--bias-seeds"]),
    ("run",): (SWEEP_FLAGS, ["--widths", "--seeds", "--lags", "--bias-seeds", "--out"]),
    ("ssm", "weights"): (SSM_WEIGHTS_FLAGS, ["--r-min", "--r-max", "--max-phase"]),
}


def _known_commands():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices


def _generic_flags(subparser):
    """Strategies for the flags of a command this file does not know: choices, or numbers and text."""
    out = {}
    for action in subparser._actions:
        if not action.option_strings or action.option_strings[-1] in ("--help",):
            continue
        name = action.option_strings[-1]
        if action.nargs == 0:
            out[name] = ON
        elif action.choices:
            out[name] = flag(st.sampled_from(list(action.choices)), st.just("bogus"))
        else:
            out[name] = flag(st.sampled_from(["1", "3", "0.5", "16,32,64"]))
    return out


@st.composite
def argvs(draw):
    """A command and flags: in "valid" mode every value is valid (a tiny run that must succeed or give a
    verdict), otherwise each chosen flag is invalid with probability 1/2."""
    commands = _known_commands()
    known = sorted(FAST) + sorted(SLOW_OTHER)
    others = sorted((name,) for name in commands if name not in {k[0] for k in known})
    cmd = draw(st.sampled_from(known + others))
    valid_mode = cmd in FAST and draw(st.booleans())
    argv = list(cmd)
    if cmd in FAST:
        flags, required = FAST[cmd]
        chosen = set(required) | set(draw(st.lists(st.sampled_from(sorted(flags)), max_size=6)))
        if not valid_mode and draw(st.integers(0, 9)) == 0:  # sometimes a required flag is missing
            chosen -= {draw(st.sampled_from(required))}
    else:
        flags = SLOW_OTHER.get(cmd) or _generic_flags(commands[cmd[0]])
        chosen = set(draw(st.lists(st.sampled_from(sorted(flags)), max_size=5)))
    for name in sorted(chosen):
        valid, invalid = flags[name]
        if valid is None:
            argv.append(name)
            continue
        bad = not valid_mode and draw(st.booleans())
        argv += [name, draw(invalid if bad else valid)]
    if cmd in SLOW_OTHER:  # never the (minutes of) real work: one argument refused before it
        name, value = draw(st.sampled_from(REFUSED[cmd]))
        argv += [name] if value is None else [name, value]
        if value == "rep_reproduce":
            argv = [a for a in argv if a != "--force"]
    elif cmd not in FAST:
        argv.append("--fuzz-unknown-flag")  # a command this file does not know: parsing only
    if cmd in (("sweep",), ("run",)) and draw(st.integers(0, 4)):
        argv.append("--no-figures")  # figures cost about a second each run: drawn rarely
    if draw(st.integers(0, 19)) == 0:  # --no-limits only where every size is small (valid mode)
        extra = ["--debug", "-h"] + (["--no-limits"] if valid_mode else [])
        argv.insert(draw(st.integers(1, len(argv))), draw(st.sampled_from(extra)))
    return argv


# ----------------------------------------------------------------------------- files
def _npz_header_only(path: Path, shapes) -> None:
    import zipfile

    with zipfile.ZipFile(path, "w") as z:
        for key, shape in shapes.items():
            buf = io.BytesIO()
            np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
            z.writestr(f"{key}.npy", buf.getvalue())


def _files(root: Path) -> None:
    rng = np.random.default_rng(0)
    n = 6
    W, F, C = rng.standard_normal((n, n)) * 0.9 / np.sqrt(n), rng.standard_normal((n, 1)), \
        rng.standard_normal((1, n)) / np.sqrt(n)
    np.savez(root / "good.npz", W=W, F=F, C=C)
    np.savez(root / "big.npz", W=W * 1e300, F=F, C=C)
    np.savez(root / "keys.npz", A=W)
    np.savez(root / "shape.npz", W=W, F=np.ones((n + 1, 1)), C=C)
    np.savez(root / "nan.npz", W=W * np.nan, F=F, C=C)
    np.savez(root / "zero.npz", W=np.zeros((0, 0)), F=np.zeros((0, 1)), C=np.zeros((1, 0)))
    np.savez(root / "vec.npz", W=np.ones(n), F=F, C=C)
    _npz_header_only(root / "huge.npz", {"W": (10**6, 10**6), "F": (10**6, 1), "C": (1, 10**6)})
    (root / "empty.npz").write_bytes(b"")
    (root / "text.npz").write_text("W = [[1]]")
    (root / "afile").write_text("a file")
    (root / "adir").mkdir()
    for name, files in (("rep", ["report.json"]), ("rep_reproduce", ["summary.json"])):
        (root / name).mkdir()
        for f in files:
            (root / name / f).write_text("{}")


def _snapshot(root: Path):
    return {str(p.relative_to(root)): (p.is_dir(), p.stat().st_size if p.is_file() else 0, p.stat().st_mtime_ns)
            for p in root.rglob("*")}


# ----------------------------------------------------------------------------- the property
@settings(max_examples=300)
@given(argv=argvs())
def test_command_line_never_crashes(argv):
    old = os.getcwd()
    env = {k: os.environ.get(k) for k in ("RNN_VERIFY_PROGRESS", "RNN_VERIFY_DEBUG", "MPLBACKEND")}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _files(root)
        before = _snapshot(root)
        out, err = io.StringIO(), io.StringIO()
        os.environ.update(RNN_VERIFY_PROGRESS="0", MPLBACKEND="Agg")
        os.environ.pop("RNN_VERIFY_DEBUG", None)
        os.chdir(root)
        try:
            with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(out), \
                    contextlib.redirect_stderr(err):
                warnings.simplefilter("always", RuntimeWarning)
                rc = cli.main(list(argv))
        except Exception as exc:  # only --debug may let an internal error through: none is allowed
            raise AssertionError(f"{argv}: raised {type(exc).__name__}: {exc}") from exc
        finally:
            os.chdir(old)
            for k, v in env.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        text = err.getvalue()
        event(f"{' '.join(argv[:2] if argv[0] == 'ssm' else argv[:1])}: exit {rc}")
        if rc == 1:
            event(f"exit 1: {text.strip()[:60]}")
        lines = [ln for ln in text.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith(("error:", "internal error"))]
        after = _snapshot(root)
        assert rc in (0, 1, 2), (argv, rc, text)
        assert "Traceback" not in text and "internal error" not in text, (argv, text)
        assert len(errors) <= 1, (argv, text)
        if rc == 2:
            assert len(errors) == 1 and len(lines) <= 2, (argv, text)  # at most one warning line before it
            assert after == before, (argv, sorted(set(after) ^ set(before)))
        runtime = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
        assert not runtime, (argv, runtime)
        assert not [p for p in after if ".partial-" in p], (argv, sorted(after))
        plain = [a for a in argv if a not in cli.GLOBAL_FLAGS]
        if rc == 0 and "--out" in plain and plain[0] in ("run", "sweep") and "-h" not in plain:
            target = plain[plain.index("--out") + 1]
            assert (root / target / "report.json").is_file(), (argv, sorted(after))
