"""``python -m verify check DIR [spec flags] [--lags L] [--alpha A] [--json]``: test your own networks.

Every ``*.npz`` network in ``DIR`` (``W (n, n)``, ``F (n, n_x)``, ``C (n_y, n)``,
optional ``D (n_y, n_x)``; at least 2 per width) is tested against the exact
finite-width mean of the lag Gram under the specification of the flags
(:mod:`verify.harness.check`, docs/check.md).  ``n_x`` and ``n_y`` come from the files
unless given.  Exit status: 0 consistent, 1 inconsistent, 2 bad input.
"""
from __future__ import annotations

from verify.cli.options import add_executor_arguments, add_spec_arguments, arg_type, executor_options, spec_from_args
from verify.harness.check import DEFAULT_LAGS, CheckResult, check_files, common_dims, scan_folder
from verify.internal import validate
from verify.internal.errors import EXIT_INCONSISTENT, EXIT_OK, BadInput
from verify.internal.executors import open_executor
from verify.internal.jsonio import dumps, versioned
from verify.stats.exact import DEFAULT_ALPHA


def _alpha(text: str, flag: str) -> float:
    return validate.number(text, flag, minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True)


def add_arguments(p) -> None:
    p.add_argument("folder", metavar="DIR", help="folder of networks saved as .npz (W, F, C and optional D)")
    add_spec_arguments(p, sigma_w="0.9", lags=DEFAULT_LAGS)
    p.set_defaults(n_x=None, n_y=None)  # taken from the files unless given
    p.add_argument("--alpha", type=arg_type(_alpha, "--alpha"), default=DEFAULT_ALPHA,
                   help=f"false-failure probability of the test (default {DEFAULT_ALPHA})")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_executor_arguments(p)  # --workers N, --dask ADDRESS: where the lag Grams are computed


def compute(args) -> CheckResult:
    """Scan ``DIR``, settle ``n_x``/``n_y`` from the files, and run the test."""
    files = scan_folder(args.folder, "DIR")
    n_x, n_y, _ = common_dims(files)
    for flag, name, have in (("--n-x", "n_x", n_x), ("--n-y", "n_y", n_y)):
        given = getattr(args, name)
        if given is not None and given != have:
            raise BadInput(f"{flag} {given} does not match the networks in {args.folder} ({name} = {have})")
        setattr(args, name, have)
    spec = spec_from_args(args)
    where = executor_options(args)  # --workers/--dask, checked before the work
    with open_executor(where) as executor:  # closed also on errors and KeyboardInterrupt
        return check_files(files, spec, lags=args.lags, alpha=args.alpha, folder=str(args.folder), executor=executor)


def _pct(x) -> str:
    return "never (no randomness)" if x is None or x == float("inf") else f"{100 * x:.3g} %"


def print_table(res: CheckResult) -> None:
    t, s = res.test, res.spec
    count = sum(len(v) for v in res.files.values())
    d = "no D" if not s.has_d else f"s_D = {s.to_dict()['sigma_d']}"
    sd = s.to_dict()
    print(f"Exact finite-width test of {count} networks in {res.folder}: metric {s.metric}, {s.convention}, "
          f"s_W = {sd['sigma_w']}, s_F = {sd['sigma_f']}, s_C = {sd['sigma_c']}, {d}; n_x = {s.n_x}, "
          f"n_y = {s.n_y}; {res.lags} lags; alpha = {res.alpha:g}")
    print(f"\n{'width':>8}  {'networks':>8}  {'z uniform':>10}  {'max |z| entry':>13}")
    for k, n in enumerate(t.widths):
        print(f"{n:>8}  {len(res.files[n]):>8}  {t.z_uniform_widths[k]:>10.3f}  {res.max_abs_z_by_width()[k]:>13.3f}")
    zmax = float(abs(t.z_entries).max()) if t.z_entries.size else 0.0
    print(f"{'combined':>8}  {count:>8}  {t.z_uniform:>10.3f}  {zmax:>13.3f}")
    print(f"{'critical':>8}  {'':>8}  {t.critical['uniform']:>10.3f}  {t.critical['entry']:>13.3f}"
          f"   (alpha/2 each; entries Bonferroni)")
    for line in t.deterministic_failures:
        print(f"deterministic entry off: {line}")
    for line in res.warnings:
        print(f"warning: {line}")
    rel = ">" if t.consistent else "<="
    print(f"\nverdict: {t.verdict} (p = {t.p_value:.4g} {rel} alpha = {res.alpha:g})")
    md = t.min_detectable
    single = md["single_beta"]
    per_lag = [v for v in single["per_lag"] if v != float("inf")]
    worst_lag = single["per_lag"].index(max(per_lag)) if per_lag else None
    print(f"power {100 * md['power']:g} %: a uniform error of beta of {_pct(md['uniform_beta'])} or more is detected; "
          f"an error at a single lag of {_pct(single['best'])} (lag {single['best_lag']}) to "
          f"{_pct(single['worst'])} (lag {worst_lag})")
    for note in t.notes:
        print(f"note: {note}")


def run(args) -> int:
    res = compute(args)
    if args.json:
        print(dumps(versioned(res.to_dict()), indent=None))
    else:
        print_table(res)
    return EXIT_OK if res.consistent else EXIT_INCONSISTENT
