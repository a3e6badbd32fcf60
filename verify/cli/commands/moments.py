"""``python -m verify moments``: the exact mean (and variance) of the lag Gram at finite width.

Every entry of the mean of the empirical lag Gram ``Theta_n`` is an exact
polynomial in ``1/n`` (:mod:`theory.finite_width`):

    E Theta_n[l, a, i, l', b, j] = delta_ab delta_ij  mean[l][l'](n),
    mean[l][l'](n) = sum_k c_k n^-k   (rational c_k),

for every output pair ``(a, b)`` and input pair ``(i, j)``, so one ``L x L`` grid
covers every entry.  The constant term of ``mean[l][l]`` is ``beta_l / n_x`` (the
wide limit, ``python -m verify weights``); ``mean[l][l']`` vanishes when ``l + l'``
is odd.  The mean does not depend on ``n_y`` and scales as ``1/n_x``, except the
F and D shares of the metric "standard", which are ``O(1/n)`` with no ``1/n_x``.
``--variance`` adds ``variance[l][l'] = Var Theta_n[l, a, i, l', a, i]`` in the
same layout (the ``(a, i) = (b, j)`` entries), exact, or truncated to
``n^-K`` with ``--order K`` (``--order 1``: the leading ``1/n`` coefficient, by a
planar factorization, fast for any number of lags).

Outputs: a table of leading terms (default), one JSON object (``--json``), and
with ``--out DIR`` the files ``moments.json`` and ``moments_bias.png``
(``n (E Theta_n[l, l] / (beta_l / n_x) - 1)`` against ``l`` for several ``n``,
overlaid with the bias probe of a ``report.json`` given by ``--probe``; drawn by
:mod:`verify.cli.figures.moments`).
"""
from __future__ import annotations

import json
import math
from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import List, Optional, Sequence

from theory.finite_width import InvPoly, mean_lag_gram, variance_lag_gram
from theory.spec import RNNSpec
from verify.cli import figures
from verify.cli.figures.moments import write_figure
from verify.cli.options import add_spec_arguments, arg_type, spec_from_args
from verify.internal import limits, validate
from verify.internal.errors import BadInput, LimitExceeded
from verify.internal.jsonio import dumps, versioned, write_json
from verify.internal.output import report_folder

JSON_NAME = "moments.json"
FIGURE_NAME = "moments_bias.png"
DEFAULT_LAGS = 8
DEFAULT_DPS = 20
#: Requests estimated above this many seconds are refused (``--no-limits`` runs them anyway).
MAX_SECONDS = 180.0
#: Largest lag count whose exact variance is offered (its estimate is about a minute, conv1).
MAX_EXACT_VARIANCE_LAGS = 9

DESCRIPTION = {
    "mean": ("mean[l][l'] lists the exact coefficients c_k (strings) of E Theta_n[l,a,i,l',b,j] = "
             "delta_ab delta_ij sum_k c_k n^-k; the constant term of mean[l][l] is beta_l / n_x"),
    "shares": "the same per parameter group (C, F, W, and D when the model has one); they add up to mean",
    "n_x": ("the mean does not depend on n_y and scales as 1/n_x, except the F and D shares of the metric "
            "'standard' (O(1/n), no 1/n_x)"),
    "variance": ("variance[l][l'] lists the coefficients of Var Theta_n[l,a,i,l',a,i] (the (a, i) = (b, j) entries), "
                 "exact when variance_order is null, else truncated after n^-variance_order"),
    "at": "mean_at and variance_at: the polynomials at n = width, correctly rounded to dps significant digits",
}


def add_arguments(p) -> None:
    add_spec_arguments(p, sigma_w="0.9", lags=DEFAULT_LAGS)
    g = p.add_argument_group("moments")
    g.add_argument("--variance", action="store_true",
                   help=f"also the variance of each entry (exact up to {MAX_EXACT_VARIANCE_LAGS} lags; "
                        "more with --order 1)")
    g.add_argument("--order", type=arg_type(validate.positive_int, "--order"), default=None,
                   help="with --variance: keep the terms up to n^-K only (1: the leading coefficient, fast)")
    g.add_argument("--width", type=arg_type(validate.positive_int, "--width"), default=None,
                   help="also evaluate at this width n (decimal strings)")
    g.add_argument("--dps", type=arg_type(validate.dps, "--dps"), default=DEFAULT_DPS,
                   help=f"significant digits of the values at --width (default {DEFAULT_DPS})")
    o = p.add_argument_group("output")
    o.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    o.add_argument("--out", default=None,
                   help=f"folder for {JSON_NAME} and the figure {FIGURE_NAME} (needs matplotlib)")
    o.add_argument("--probe", default=None,
                   help="report.json of the main job (python -m verify --out DIR): overlay its bias probe")
    o.add_argument("--force", action="store_true", help="replace existing files in --out")


# ----------------------------------------------------------------------------- cost
def request_cost(spec: RNNSpec, lags: int, variance: bool, order: Optional[int]) -> limits.Cost:
    """The estimated cost of the request (:mod:`verify.internal.limits`, the one cost model): the exact
    mean, plus the leading variance (``--order 1``) or the exact variance (``--variance``)."""
    cost = limits.exact_mean_cost(lags, spec.convention)
    if variance:
        cost = cost + (limits.leading_variance_cost(lags, spec.convention) if order is not None and order <= 1
                       else limits.exact_variance_cost(lags, spec.convention))
    return cost


def check_request(spec: RNNSpec, lags: int, variance: bool, order: Optional[int]) -> None:
    """Refuse (one line naming the flags, exit 2) what would take more than :data:`MAX_SECONDS` or more
    memory than the limit: the exact engine is single-threaded pure Python, and a request that
    needs hours is almost always a mistaken ``--lags``."""
    if order is not None and not variance:
        raise BadInput("--order applies to --variance (the mean is always exact)")
    if limits.limits_off():
        return
    cost = request_cost(spec, lags, variance, order)
    what = f"--lags {lags}" + (" --variance" if variance else "") + (f" --order {order}" if order is not None else "")
    if variance and order is None and lags > MAX_EXACT_VARIANCE_LAGS and cost.seconds > MAX_SECONDS:
        raise LimitExceeded(
            f"{what}: the exact variance is offered up to --lags {MAX_EXACT_VARIANCE_LAGS} (estimated "
            f"{limits.fmt_seconds(cost.seconds)} here); give --order 1 for its leading 1/n coefficient, or --no-limits")
    if cost.seconds > MAX_SECONDS:
        hint = " or --order 1" if variance and (order is None or order > 1) else ""
        raise LimitExceeded(f"{what}: {cost.what} would take an estimated {limits.fmt_seconds(cost.seconds)} (the "
                            f"limit of this command is {MAX_SECONDS:.0f} s); use fewer --lags{hint}, or --no-limits")
    limits.check_cost(cost, what)


# ----------------------------------------------------------------------------- values
def decimal_text(value: Fraction, digits: int) -> str:
    """``value`` correctly rounded (half to even) to ``digits`` significant decimal digits."""
    if value == 0:
        return "0"
    with localcontext() as ctx:
        ctx.prec, ctx.rounding = digits, ROUND_HALF_EVEN
        ctx.Emax, ctx.Emin = MAX_EMAX, MIN_EMIN
        return str(Decimal(value.numerator) / Decimal(value.denominator))


def _grid_strings(grid) -> List[List[List[str]]]:
    return [[p.strings() for p in row] for row in grid]


def _grid_at(grid, n: int, digits: int) -> List[List[str]]:
    return [[decimal_text(p(n), digits) for p in row] for row in grid]


def moments_report(spec: RNNSpec, lags: int, *, variance: bool = False, order: Optional[int] = None,
                   width: Optional[int] = None, dps: int = DEFAULT_DPS) -> dict:
    """Mean (and variance) of the lag Gram as exact coefficient strings, optionally evaluated at ``width``."""
    mean = mean_lag_gram(spec, lags)
    out: dict = {"spec": dict(spec.to_dict()), "lags": lags, "description": DESCRIPTION,
                 "mean": _grid_strings(mean.total),
                 "shares": {g: _grid_strings(grid) for g, grid in mean.shares.items()}}
    var = variance_lag_gram(spec, lags, order) if variance else None
    if var is not None:
        out["variance"] = _grid_strings(var.total)
        out["variance_order"] = order
    if width is not None:
        out["width"], out["dps"] = width, dps
        out["mean_at"] = _grid_at(mean.total, width, dps)
        if var is not None:
            out["variance_at"] = _grid_at(var.total, width, dps)
    return out


def _poly(strings: Sequence[str]) -> InvPoly:
    return InvPoly.of(Fraction(c) for c in strings)


# ----------------------------------------------------------------------------- table
def _coef_text(c: Fraction) -> str:
    """Short integers exactly, anything else to 6 significant digits."""
    text = str(abs(c))
    return text if c.denominator == 1 and len(text) <= 10 else decimal_text(abs(c), 6)


def leading_terms(p: InvPoly, terms: int = 3) -> str:
    """The first ``terms`` non-zero terms of ``p``, then ``+ O(n^-k)`` if more follow."""
    nz = [(k, c) for k, c in enumerate(p.coeffs) if c]
    if not nz:
        return "0"
    parts = []
    for k, c in nz[:terms]:
        num = _coef_text(c)
        if k:
            num = (f"({num})" if "/" in num else num) + ("/n" if k == 1 else f"/n^{k}")
        parts.append(("- " if c < 0 else "+ ") + num)
    if len(nz) > terms:
        parts.append(f"+ O(n^-{nz[terms][0]})")
    text = " ".join(parts)
    return text[2:] if text.startswith("+ ") else "-" + text[2:]


def relative_correction(p: InvPoly, n: int) -> Optional[Fraction]:
    """``p(n) / p(inf) - 1`` (``None`` when the constant term is 0)."""
    c0 = p.coeff(0)
    return None if c0 == 0 else p(n) / c0 - 1


def format_report(out: dict) -> str:
    sd, L = out["spec"], out["lags"]
    mean = [[_poly(c) for c in row] for row in out["mean"]]
    n = out.get("width")
    lines = [f"Exact mean of the finite-width lag Gram: metric {sd['metric']}, {sd['convention']}, "
             f"s_W = {sd['sigma_w']}, s_F = {sd['sigma_f']}, s_C = {sd['sigma_c']}, s_D = {sd['sigma_d']}, "
             f"n_x = {sd['n_x']}, n_y = {sd['n_y']}, {L} lags",
             "E Theta_n[l,a,i,l',b,j] = delta_ab delta_ij m(l,l'), m = exact polynomial in 1/n "
             "(first three non-zero terms, 6 digits; --json gives the exact coefficients)", ""]
    head = f"{'lag':>4}  {'m(l,l)  (constant term: beta_l / n_x)':<60}"
    if n is not None:
        head += f"  {'m(l,l)/m_inf - 1 at n=' + str(n):>24}  {'n x that':>10}"
    lines += [head, "-" * len(head)]
    for l in range(L):
        p = mean[l][l]
        row = f"{l:>4}  {leading_terms(p):<60}"
        if n is not None:
            rel = relative_correction(p, n)
            row += (f"  {'-':>24}  {'-':>10}" if rel is None else
                    f"  {decimal_text(rel, 6):>24}  {decimal_text(rel * n, 5):>10}")
        lines.append(row)
    if L > 2:
        lines += ["", "First off-diagonal couplings m(l, l-2) (m(l, l-1) = 0: entries with l + l' odd vanish):"]
        for l in range(2, L):
            lines.append(f"{l:>4}  {leading_terms(mean[l][l - 2])}")
    if "variance" in out:
        order = out["variance_order"]
        what = "exact" if order is None else f"up to n^-{order}"
        lines += ["", f"Variance Var Theta_n[l,a,i,l,a,i] ({what}):"]
        var = [[_poly(c) for c in row] for row in out["variance"]]
        for l in range(L):
            row = f"{l:>4}  {leading_terms(var[l][l]):<60}"
            if n is not None:
                m_at, v_at = mean[l][l](n), var[l][l](n)
                if m_at and v_at >= 0:
                    row += f"  sd/mean at n={n}: {math.sqrt(v_at) / abs(float(m_at)):.4g}"
            lines.append(row)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- probe
def read_probe(path: str, spec: RNNSpec) -> dict:
    """The bias table of a sweep ``report.json`` (``bias``: widths, n_times_mean, n_times_half_width)."""
    text = validate.path_text(path, "--probe")
    try:
        rep = json.loads(Path(text).read_text())
    except OSError as exc:
        raise BadInput(f"--probe {text}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, UnicodeDecodeError):
        raise BadInput(f"--probe {text}: not a JSON file") from None
    bias = rep.get("bias") if isinstance(rep, dict) else None
    if not isinstance(bias, dict) or not all(k in bias for k in ("widths", "n_times_mean", "n_times_half_width")):
        raise BadInput(f"--probe {text}: no bias table (expected the report.json of python -m verify --out DIR)")
    theirs, ours = rep.get("spec"), dict(spec.to_dict())
    if theirs != ours:
        diff = [k for k in ours if not isinstance(theirs, dict) or theirs.get(k) != ours[k]]
        shown = ", ".join(f"{k} {theirs.get(k) if isinstance(theirs, dict) else None} there, {ours[k]} here"
                          for k in diff[:3])
        raise BadInput(f"--probe {text}: the report is for another network ({shown}); give the same spec flags")
    return {"widths": [int(w) for w in bias["widths"]], "seeds": bias.get("seeds"),
            "n_times_mean": bias["n_times_mean"], "n_times_half_width": bias["n_times_half_width"]}


# ----------------------------------------------------------------------------- run
def run(args) -> int:
    spec = spec_from_args(args)
    lags = validate.lags(args.lags)
    check_request(spec, lags, args.variance, args.order)
    if args.probe is not None and args.out is None:
        raise BadInput("--probe needs --out (the probe is drawn in the figure)")
    probe = read_probe(args.probe, spec) if args.probe is not None else None
    if args.out is not None:
        figures.require(f"--out (the figure {FIGURE_NAME})")
        with report_folder(args.out, [JSON_NAME, FIGURE_NAME], force=args.force) as outputs:
            out = versioned(moments_report(spec, lags, variance=args.variance, order=args.order,
                                           width=args.width, dps=args.dps))
            write_json(outputs.path(JSON_NAME), out)
            write_figure(out, outputs.path(FIGURE_NAME), probe)
        written = [str(outputs.final(n)) for n in (JSON_NAME, FIGURE_NAME)]
    else:
        out = versioned(moments_report(spec, lags, variance=args.variance, order=args.order,
                                       width=args.width, dps=args.dps))
        written = []
    if args.json:
        print(dumps(out))
    else:
        print(format_report(out))
        if written:
            print("\nwrote " + " and ".join(written))
    return 0
