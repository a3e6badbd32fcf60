"""``python -m verify weights``: exact lag weights, group shares and series."""
from __future__ import annotations

from decimal import MAX_EMAX, MIN_EMIN, ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext

from mpmath import nstr
from mpmath.libmp import to_rational

from theory.precision import context
from theory.series import series
from theory.spec import SpecError, as_fraction
from theory.weights import lag_shares, lag_weights
from verify.cli.options import add_spec_arguments, arg_type, spec_from_args
from verify.internal import limits, validate
from verify.internal.errors import BadInput
from verify.internal.jsonio import dumps, versioned

GUARD_DPS = 10


def add_arguments(p) -> None:
    add_spec_arguments(p, sigma_w=None, lags=12)
    p.add_argument("--dps", type=arg_type(validate.dps, "--dps"), default=30, help="decimal digits (default 30)")
    p.add_argument("--horizon-fraction", default="0.01",
                   help="memory horizon: smallest L whose tail is <= this fraction of the total (default 0.01)")
    p.add_argument("--interval", action="store_true", help="also give rigorous interval enclosures")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")


def compute(args) -> dict:
    spec = spec_from_args(args)
    dps = validate.dps(args.dps)
    validate.lags(args.lags)
    cost = limits.exact_weights_cost(args.lags, dps + GUARD_DPS, len(spec.groups))
    if args.interval:
        cost = cost + limits.exact_weights_cost(args.lags, dps, 0)
    limits.check_cost(cost, "--lags/--dps")
    fraction = as_fraction(args.horizon_fraction, "--horizon-fraction")
    if not 0 < fraction < 1:
        raise BadInput(f"--horizon-fraction: fraction must be in (0, 1), got {args.horizon_fraction}")
    # Work GUARD_DPS digits above the request, so that each printed decimal is the
    # correctly rounded value (printing a dps-digit binary number to dps decimals
    # double-rounds: wrong last digit in about 2 % of values).
    beta = lag_weights(spec, args.lags, dps=dps, guard_digits=GUARD_DPS)
    shares = lag_shares(spec, args.lags, dps=dps, guard_digits=GUARD_DPS)
    out = {
        "spec": dict(spec.to_dict()),
        "dps": dps,
        "lags": args.lags,
        "beta": [nstr(b, dps, strip_zeros=False) for b in beta],
        "shares": {g: [nstr(v, dps, strip_zeros=False) for v in vals] for g, vals in shares.items()},
    }
    if args.interval:
        enc = lag_weights(spec, args.lags, dps=dps, interval=True)
        # endpoints rounded outward so that the printed interval still encloses beta_l
        out["beta_interval"] = [[directed_str(v._mpi_[0], dps, ROUND_FLOOR),
                                 directed_str(v._mpi_[1], dps, ROUND_CEILING)] for v in enc]
    try:  # the weights stand on their own: a series that does not exist is a note, not an error
        out["series"] = series(spec, fraction=fraction, dps=dps, guard_digits=GUARD_DPS).to_dict(dps)
    except SpecError as exc:
        out["series"] = None
        out["series_note"] = str(exc)
    return out


def directed_str(value, digits: int, rounding: str) -> str:
    """Exact value of the raw mpf tuple ``value`` rounded to ``digits`` significant decimals in direction
    ``rounding``."""
    num, den = to_rational(value)
    if not num:
        return "0"
    with localcontext() as dctx:
        dctx.prec, dctx.rounding = digits, rounding
        dctx.Emax, dctx.Emin = MAX_EMAX, MIN_EMIN
        return str(Decimal(num) / Decimal(den))


def run(args) -> int:
    out = compute(args)
    if args.json:
        print(dumps(versioned(out)))
        return 0
    spec = out["spec"]
    digits = min(args.dps, 20)
    print(f"Lag weights beta_l: metric {spec['metric']}, {spec['convention']}, s_W = {spec['sigma_w']}, "
          f"s_F = {spec['sigma_f']}, s_C = {spec['sigma_c']}, s_D = {spec['sigma_d']}, "
          f"n_x = {spec['n_x']}, n_y = {spec['n_y']}  ({args.dps} digits; table shows {digits})")
    groups = list(out["shares"])
    short = lambda s: nstr_str(s, digits)
    header = f"{'lag':>5}  {'beta_l':>{digits + 8}}  " + "  ".join(f"{'share ' + g:>{digits + 8}}" for g in groups)
    print(header)
    print("-" * len(header))
    for l in range(args.lags):
        row = f"{l:>5}  {short(out['beta'][l]):>{digits + 8}}  " + "  ".join(
            f"{short(out['shares'][g][l]):>{digits + 8}}" for g in groups)
        print(row)
    if "beta_interval" in out:
        print("\nInterval enclosures:")
        for l, (lo, hi) in enumerate(out["beta_interval"]):
            print(f"{l:>5}  [{short(lo)}, {short(hi)}]")
    if out["series"]:
        s = out["series"]
        print(f"\nSeries (closed form): total weight {short(s['total'])}, mean lag {short(s['mean_lag'])}, "
              f"peak lag {s['peak_lag']}, memory horizon {s['horizon']} "
              f"(tail <= {s['horizon_fraction']} of the total)")
    else:
        print(f"\nSeries: {out['series_note']}")
    return 0


def nstr_str(text: str, digits: int) -> str:
    """Shorten a decimal string to ``digits`` significant digits for display."""

    c = context(max(digits + 5, 15))
    return nstr(c.mpf(text), digits)
