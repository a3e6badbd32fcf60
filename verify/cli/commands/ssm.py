"""``python -m verify ssm``: lag kernels of diagonal linear recurrences (LRU, S4D).

* ``ssm weights``: the exact wide-limit lag kernel (T x T) of an LRU-style
  diagonal recurrence, by group and total (``theory.diagonal.lag_kernel``).
* ``ssm compare --out DIR``: dense RNN against diagonal initializations: lag
  weights, 1 % lags, effective ranks and kernel-regression fits (PNG + JSON), computed
  by :mod:`verify.experiments.ssm_compare` (one task per model; ``--workers``/``--dask`` run them on a
  process pool or a Dask cluster) and drawn by :mod:`verify.cli.figures.ssm`; this module only
  parses, checks, calls and prints.
"""
from __future__ import annotations

from mpmath import nstr

from theory.diagonal import (
    SCALINGS,
    DiagonalSpec,
    lag_kernel,
    to_strings,
)
from verify.cli import figures
from verify.cli.figures.ssm import write_figure
from verify.cli.options import add_executor_arguments, arg_type, executor_options
from verify.experiments.ssm_compare import CompareOptions, compare
from verify.internal import limits, output, validate
from verify.internal.errors import BadInput
from verify.internal.executors import open_executor
from verify.internal.jsonio import dumps, versioned, write_json

_POS = validate.positive_int


def _seed(text, flag):
    return validate.integer(text, flag, minimum=0)


def _sigma_d(text):
    return None if str(text).lower() in ("none", "off", "no") else text


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="ssm_command", metavar="SUBCOMMAND", required=True)
    w = sub.add_parser("weights", help="exact lag kernel of a diagonal recurrence (shares and total)",
                       description="Exact wide-limit lag kernel Theta(l, l') of an LRU-style diagonal recurrence.")
    w.add_argument("--r-min", required=True, help="smallest eigenvalue modulus (0 <= r_min < r_max)")
    w.add_argument("--r-max", required=True, help="largest eigenvalue modulus (<= 1)")
    w.add_argument("--max-phase", required=True,
                   help="phases uniform on [0, max_phase] radians; multiples of pi exactly as 'pi/10', '2*pi'")
    w.add_argument("--lags", type=arg_type(validate.lags, "--lags"), default=12, help="number of lags T (default 12)")
    w.add_argument("--tied-gamma", action="store_true", help="g = sqrt(1 - |lambda|^2) recomputed (no gamma parameter)")
    w.add_argument("--scaling", choices=SCALINGS, default="ntk",
                   help="ntk: C = (s_C/sqrt n) c~ (default); lru: LRU's own parametrization, limit of Theta_n/n")
    w.add_argument("--sigma-b2", default="1/2", help="s_B^2 = 1/(2H) in LRU (default 1/2, H = 1)")
    w.add_argument("--sigma-c", default="1", help="s_C (default 1)")
    w.add_argument("--sigma-d", default="1", help="s_D, or 'none' for no D (default 1)")
    for g in ("b", "c", "gamma", "nu", "theta", "d"):
        w.add_argument(f"--lr-{g}", default="1", help=f"learning-rate multiplier of {g} (0 freezes it; default 1)")
    w.add_argument("--dps", type=arg_type(validate.dps, "--dps"), default=30, help="decimal digits (default 30)")
    w.add_argument("--json", action="store_true", help="print one JSON object (decimal strings)")
    w.set_defaults(_ssm=run_weights)

    c = sub.add_parser("compare", help="memory of dense vs diagonal recurrences: figure and JSON summary",
                       description="Dense RNN vs LRU / S4D-Lin lag kernels: 1 %% lags, effective ranks, fits.")
    c.add_argument("--out", required=True, help="output folder (created if missing)")
    c.add_argument("--force", action="store_true", help="replace an existing report in --out")
    c.add_argument("--lags", type=arg_type(validate.lags, "--lags"), default=128,
                   help="T for the kernels and effective ranks (default 128)")
    c.add_argument("--train-lags", type=arg_type(validate.lags, "--train-lags"), default=64,
                   help="T of the kernel-regression example (default 64)")
    c.add_argument("--train-sequences", type=arg_type(_POS, "--train-sequences"), default=16,
                   help="training sequences (default 16)")
    c.add_argument("--max-lag", type=arg_type(_POS, "--max-lag"), default=100_000,
                   help="search range of the 1 %% lag (default 100000)")
    c.add_argument("--no-train", action="store_true", help="skip the kernel-regression example")
    c.add_argument("--dps", type=arg_type(validate.dps, "--dps"), default=20,
                   help="digits of the exact kernels (default 20)")
    c.add_argument("--seed", type=arg_type(_seed, "--seed"), default=0, help="seed of the training inputs (default 0)")
    add_executor_arguments(c)  # --workers N, --dask ADDRESS: where the models are computed (verify/cli/options.py)
    c.set_defaults(_ssm=run_compare)


def run(args) -> int:
    return int(args._ssm(args) or 0)


# --------------------------------------------------------------------------- weights
def spec_from_args(args) -> DiagonalSpec:
    spec = DiagonalSpec(
        r_min=args.r_min, r_max=args.r_max, max_phase=args.max_phase, scaling=args.scaling,
        tied_gamma=args.tied_gamma, sigma_b2=args.sigma_b2, sigma_c=args.sigma_c,
        sigma_d=_sigma_d(args.sigma_d), lr_b=args.lr_b, lr_c=args.lr_c, lr_gamma=args.lr_gamma,
        lr_nu=args.lr_nu, lr_theta=args.lr_theta, lr_d=args.lr_d,
    )
    check_phase(spec, args.max_phase)
    return spec


def exceeds_two_pi(spec: DiagonalSpec) -> bool:
    """Whether ``max_phase`` (radians, or a multiple of pi) is above ``2 pi``, decided exactly:
    interval arithmetic encloses ``2 pi`` at rising precision until the rational ``max_phase``
    (never equal to the irrational ``2 pi``) lies outside the enclosure."""
    if spec.phase_in_pi:
        return spec.max_phase > 2
    q = spec.max_phase
    from theory.precision import MAX_DPS, context

    digits = 30
    while True:
        iv = context(digits, interval=True)
        two_pi = 2 * iv.pi
        x = iv.mpf(q.numerator) / q.denominator
        if x.a > two_pi.b:
            return True
        if x.b < two_pi.a or digits >= MAX_DPS:
            return False
        digits = min(4 * digits, MAX_DPS)


def check_phase(spec: DiagonalSpec, text) -> None:
    """Refuse a maximum phase above ``2 pi``: phases live on the circle, and a uniform law on
    ``[0, Phi]`` with ``Phi > 2 pi`` is not LRU's initialization (it would wrap unevenly)."""
    if exceeds_two_pi(spec):
        raise BadInput(f"--max-phase {text}: the maximum phase must be at most 2*pi = 6.283185307... radians "
                       "(phases of eigenvalues lie on the circle; write multiples of pi exactly, e.g. 'pi/10', '2*pi')")


def compute_weights(args) -> dict:
    spec = spec_from_args(args)
    dps = validate.dps(args.dps)
    validate.lags(args.lags)
    limits.check_cost(limits.diagonal_kernel_cost(args.lags, dps), "--lags/--dps")
    K = lag_kernel(spec, args.lags, dps=dps)
    return {
        "spec": spec.to_dict(),
        "dps": dps,
        "lags": args.lags,
        "normalized_by_n": K.normalized_by_n,
        "theta": to_strings(K.total, dps),
        "shares": {g: to_strings(m, dps) for g, m in K.shares.items()},
    }


def run_weights(args) -> int:
    out = compute_weights(args)
    if args.json:
        print(dumps(versioned(out)))
        return 0
    s, T = out["spec"], out["lags"]
    phase = f"{s['max_phase']}*pi" if s["phase_in_pi"] else s["max_phase"]
    what = "lim Theta_n / n (readout-only)" if out["normalized_by_n"] else "lim Theta_n"
    print(f"Diagonal recurrence lag kernel ({what}): r in [{s['r_min']}, {s['r_max']}], max_phase = {phase}, "
          f"scaling {s['scaling']}, {'tied' if s['tied_gamma'] else 'free'} gamma, s_B^2 = {s['sigma_b2']}, "
          f"s_C = {s['sigma_c']}, s_D = {s['sigma_d']}  ({out['dps']} digits; table shows 10)")
    groups = list(out["shares"])
    short = lambda t: nstr_short(t, 10)
    print("Diagonal Theta(l, l):")
    header = f"{'lag':>5}  {'total':>17}  " + "  ".join(f"{g:>17}" for g in groups)
    print(header)
    print("-" * len(header))
    for l in range(T):
        print(f"{l:>5}  {short(out['theta'][l][l]):>17}  "
              + "  ".join(f"{short(out['shares'][g][l][l]):>17}" for g in groups))
    print("\nTotal Theta(l, l') (rows l, columns l'; not diagonal in the lag, use --json for every digit):")
    for l in range(T):
        print(" ".join(f"{nstr_short(v, 4):>11}" for v in out["theta"][l]))
    return 0


def nstr_short(text: str, digits: int) -> str:
    from theory.precision import context

    return nstr(context(max(digits + 5, 15)).mpf(text), digits)


# --------------------------------------------------------------------------- compare
COMPARE_FILES = ("ssm_compare.json", "ssm_compare.png")


def run_compare(args) -> int:
    options = CompareOptions(lags=args.lags, train_lags=None if args.no_train else args.train_lags,
                             train_sequences=args.train_sequences, max_lag=args.max_lag, dps=args.dps,
                             seed=args.seed)
    options.check()
    limits.check_cost(options.cost(), "--lags/--max-lag/--train-lags/--dps")
    figures.require("ssm compare (its figure ssm_compare.png)")
    where = executor_options(args)  # --workers/--dask, checked before the work
    with output.report_folder(args.out, COMPARE_FILES, force=args.force) as outputs:
        with open_executor(where) as executor:  # closed also on errors and KeyboardInterrupt
            result = compare(options, executor=executor)
        write_json(outputs.path("ssm_compare.json"), versioned({**result.summary, "executor": where.describe()}))
        write_figure(result, outputs.path("ssm_compare.png"))
    print(f"wrote {outputs.final('ssm_compare.png')} and {outputs.final('ssm_compare.json')}")
    teachers = result.teachers
    print(f"{'model':<34} {'1 % lag':>9} {'eff. rank':>10}"
          + "".join(f" {'err ' + ' '.join(t.split()[:2]):>22}" for t in teachers))
    for m in result.summary["models"]:
        lag1 = m["one_percent_lag"] if m["one_percent_lag"] is not None else f">{args.max_lag}"
        row = f"{m['name']:<34} {lag1!s:>9} {m['effective_rank']:>10.2f}"
        for t in teachers:
            row += f" {m['fits'][t]['relative_error']:>22.4f}"
        print(row)
    return 0
