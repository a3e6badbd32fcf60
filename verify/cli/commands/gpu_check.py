"""``python -m verify gpu-check --out DIR``: the prepared GPU verification script.

The check itself is library code (:mod:`verify.harness.gpu_check`, whose docstring lists the steps);
this command parses the flags, checks them and the size limits before the work, runs
:func:`verify.harness.gpu_check.run_check`, and writes ``DIR/gpu_check.json``, ``DIR/gpu_check.md``
and (when the property tests of a source checkout ran) ``DIR/pytest.txt`` through
:mod:`verify.internal.output`.

Exit status 0 when every check passed, 1 when one failed (the report says which), 2 for bad
input or a backend/device that is not there (one line).
"""
from __future__ import annotations

from verify.cli.options import add_spec_arguments, arg_type, spec_from_args
from verify.engine.backend import get_backend
from verify.engine.float64 import float64_spec
from verify.harness.gpu_check import GPUCheckOptions, markdown, run_check
from verify.internal import limits, output, validate
from verify.internal.jsonio import versioned, write_json

GPU_CHECK_FILES = ("gpu_check.json", "gpu_check.md", "pytest.txt")


def add_arguments(p) -> None:
    p.add_argument("--out", required=True, help="output folder for gpu_check.json, gpu_check.md, pytest.txt")
    p.add_argument("--force", action="store_true", help="replace an existing report in --out")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help="device (default cuda)")
    p.add_argument("--backend", choices=("torch", "cupy"), default="torch", help="array backend (default torch)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="sweep dtype (default float64)")
    p.add_argument("--draws", choices=("native", "numpy"), default="native",
                   help="where the sweep draws weights: native (on the device, default: no 8 GiB host draw "
                        "and copy at n = 32768) or numpy (the same networks as a CPU sweep)")
    p.add_argument("--max-width", type=arg_type(_at_least(8), "--max-width"), default=32768,
                   help="largest width (default 32768)")
    p.add_argument("--num-widths", type=arg_type(_at_least(3), "--num-widths"), default=7,
                   help="number of widths: max-width / 2^k, k = 0..num-widths-1 (default 7)")
    p.add_argument("--seeds", type=arg_type(_at_least(2), "--seeds"), default=3, help="seeds per width (default 3)")
    p.add_argument("--time-limit", type=arg_type(_positive_number, "--time-limit"), default=300.0,
                   help="seconds for the whole check (default 300)")
    p.add_argument("--pytest-k", default=None, help="only the property tests matching this pytest -k expression")
    p.add_argument("--no-pytest", action="store_true", help="skip the property tests")
    add_spec_arguments(p, sigma_w="0.9", lags=16)


def _at_least(minimum: int):
    return lambda text, flag: validate.integer(text, flag, minimum=minimum)


def _positive_number(text, flag):
    return validate.number(text, flag, minimum=0, open_minimum=True)


def run(args) -> int:
    options = GPUCheckOptions(device=args.device, backend=args.backend, dtype=args.dtype, draws=args.draws,
                              max_width=args.max_width, num_widths=args.num_widths, seeds=args.seeds,
                              time_limit=args.time_limit, pytest=not args.no_pytest, pytest_k=args.pytest_k,
                              lags=args.lags)
    options.check()
    spec = spec_from_args(args)
    float64_spec(spec, args.lags, width=min(options.widths))
    limits.check_sweep(options.widths, args.seeds + 1, args.lags, spec.n_x, spec.n_y,
                         itemsize=4 if args.dtype == "float32" else 8)  # the sweep plus one timed draw per width
    get_backend(args.backend, args.device, args.dtype, draws=args.draws)  # BackendError: one line, exit 2
    with output.report_folder(args.out, GPU_CHECK_FILES, force=args.force) as outputs:
        report = run_check(options, spec, outputs.staging)
        write_json(outputs.path("gpu_check.json"), versioned(report))
        outputs.path("gpu_check.md").write_text(markdown(report))
    print(markdown(report))
    print(f"wrote {outputs.final('gpu_check.json')} and gpu_check.md"
          + (", pytest.txt" if (outputs.final("pytest.txt")).exists() else ""))
    return 0 if report["status"] == "passed" else 1
