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
overlaid with the bias probe of a ``report.json`` given by ``--probe``).
"""
from __future__ import annotations

import json
import math
from decimal import MAX_EMAX, MIN_EMIN, ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from theory.finite_width import InvPoly, mean_lag_gram, variance_lag_gram
from theory.spec import RNNSpec

from verify.internal import validate
from verify.cli.main import add_spec_arguments, arg_type, spec_from_args
from verify.internal.errors import BadInput, LimitExceeded, require
from verify.internal.jsonio import dumps, versioned, write_json

JSON_NAME = "moments.json"
FIGURE_NAME = "moments_bias.png"
FIGURE_WIDTHS = (64, 256, 1024, 4096)
DEFAULT_LAGS = 8
DEFAULT_DPS = 20
#: Requests estimated above this many seconds are refused (``--no-limits`` runs them anyway).
MAX_SECONDS = 180.0
#: Largest lag count whose exact variance is offered (its estimate is about a minute, conv1).
MAX_EXACT_VARIANCE_LAGS = 9

# Cost model, measured on a 2-core development machine (docs/benchmarks.md, section
# "Exact finite-width moments"); ``top`` is the largest Markov index the request needs
# (conv1: lags - 1; conv2: lags - 2).  Beyond the measured sizes each model grows
# geometrically with the measured ratio per index; the estimates err high.
MEAN_BUILD_SECONDS = 240.0  # every mean with m, m' < 20 from a cold engine (CPU seconds)
MEAN_BUILD_GIB = 2.0
MEAN_GROWTH_SECONDS = 2.6  # per Markov index
MEAN_GROWTH_MEMORY = 1.8
EXACT_VARIANCE_SECONDS = {6: 1.3, 7: 9.4, 8: 65.0}
EXACT_VARIANCE_GROWTH = 7.0
LEADING_VARIANCE_SECONDS = {15: 4.1, 17: 9.0, 19: 16.6}
LEADING_VARIANCE_GROWTH = 1.5

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
    o.add_argument("--out", default=None, help=f"folder for {JSON_NAME} and the figure {FIGURE_NAME} (needs matplotlib)")
    o.add_argument("--probe", default=None,
                   help="report.json of the main job (python -m verify --out DIR): overlay its bias probe")
    o.add_argument("--force", action="store_true", help="replace existing files in --out")


# ----------------------------------------------------------------------------- cost
def top_index(spec: RNNSpec, lags: int) -> int:
    """Largest Markov index of ``lags`` lags (-1: none, only D)."""
    return lags - 1 if spec.convention == "conv1" else lags - 2


def _geometric(measured: Dict[int, float], growth: float, top: int) -> float:
    """Seconds at index ``top``: the next measured size up, geometric beyond the measured range."""
    hi, lo = max(measured), min(measured)
    if top > hi:
        return measured[hi] * growth ** (top - hi)
    if top < lo:
        return measured[lo] * growth ** (top - lo)
    return measured[min(k for k in measured if k >= top)]


def estimate(spec: RNNSpec, lags: int, variance: bool, order: Optional[int]) -> Tuple[float, float, str, str]:
    """Estimated seconds and GiB of the request, the flags that drive it, and where the time goes."""
    from theory.tables import load_table

    top = top_index(spec, lags)
    parts: List[Tuple[str, float]] = []
    gib, what = 0.0, f"--lags {lags}"
    table = load_table().max_index
    if top >= table:  # means beyond the shipped table: a cold engine up to index top
        steps = top + 1 - 20
        parts.append((f"the mean beyond the shipped table (Markov indices >= {table})",
                      MEAN_BUILD_SECONDS * MEAN_GROWTH_SECONDS ** steps))
        gib += MEAN_BUILD_GIB * MEAN_GROWTH_MEMORY ** steps
    if variance:
        if order is not None and order <= 1:
            parts.append(("the leading variance", _geometric(LEADING_VARIANCE_SECONDS, LEADING_VARIANCE_GROWTH, top)))
            what += f" --variance --order {order}"
        else:
            parts.append(("the exact variance", _geometric(EXACT_VARIANCE_SECONDS, EXACT_VARIANCE_GROWTH, top)))
            what += " --variance" + (f" --order {order}" if order is not None else "")
    seconds = sum(s for _, s in parts)
    where = ", ".join(f"{label} {_fmt_seconds(s)}" for label, s in parts if s >= 1)
    return seconds, gib, what, where


def check_request(spec: RNNSpec, lags: int, variance: bool, order: Optional[int]) -> None:
    """Refuse (one line naming the flags) what would take more than a few minutes or too much memory."""
    if order is not None and not variance:
        raise BadInput("--order applies to --variance (the mean is always exact)")
    if validate._limits_off():
        return
    seconds, gib, what, where = estimate(spec, lags, variance, order)
    if variance and order is None and lags > MAX_EXACT_VARIANCE_LAGS and seconds > MAX_SECONDS:
        raise LimitExceeded(
            f"{what}: the exact variance is offered up to --lags {MAX_EXACT_VARIANCE_LAGS} (estimated "
            f"{_fmt_seconds(seconds)} here: {where}); give --order 1 for its leading 1/n coefficient, or --no-limits")
    if seconds > MAX_SECONDS:
        hint = " or --order 1" if variance and (order is None or order > 1) else ""
        raise LimitExceeded(f"{what}: estimated {_fmt_seconds(seconds)} ({where}; the limit is "
                            f"{MAX_SECONDS:.0f} s); use fewer --lags{hint}, or --no-limits")
    limit = validate.memory_limit() / 2**30
    if gib > limit:
        raise LimitExceeded(f"{what}: estimated {gib:.3g} GiB of memory (more than the limit {limit:.3g} GiB); "
                            "use fewer --lags, or --no-limits")


def _fmt_seconds(s: float) -> str:
    if s >= 3600:
        return f"{s / 3600:.3g} hours"
    if s >= 60:
        return f"{s / 60:.3g} minutes"
    return f"{s:.2g} s"


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


# ----------------------------------------------------------------------------- probe and figure
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


def bias_curve(p: InvPoly, n: int) -> float:
    """``n (p(n) / p(inf) - 1)`` as a float (NaN when the constant term is 0)."""
    rel = relative_correction(p, n)
    return math.nan if rel is None else float(rel * n)


def draw_figure(out: dict, path: Path, probe: Optional[dict]) -> None:
    """``n (E Theta_n[l,l] / (beta_l / n_x) - 1)`` against ``l`` per width, the ``n -> inf`` limit, probe points."""
    from matplotlib.figure import Figure

    L = out["lags"]
    diag = [_poly(out["mean"][l][l]) for l in range(L)]
    widths = sorted(set(FIGURE_WIDTHS) | set(probe["widths"] if probe else ()))
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot(1, 1, 1)
    lags = list(range(L))
    colors = {}
    for n in widths:
        (line,) = ax.plot(lags, [bias_curve(p, n) for p in diag], "-", lw=1.4, label=f"exact, n = {n}")
        colors[n] = line.get_color()
    limit = [math.nan if p.coeff(0) == 0 else float(p.coeff(1) / p.coeff(0)) for p in diag]
    ax.plot(lags, limit, "k--", lw=1.0, label="exact, n -> inf (c_1 / c_0)")
    if probe:
        for k, n in enumerate(probe["widths"]):
            ys = probe["n_times_mean"][k][:L]
            hs = probe["n_times_half_width"][k][:L]
            shift = 0.08 * (k - (len(probe["widths"]) - 1) / 2)  # side by side, not on top of each other
            xs = [l + shift for l in range(len(ys))]
            ax.errorbar(xs, [math.nan if v is None else v for v in ys],
                        yerr=[math.nan if v is None else v for v in hs], fmt="o", ms=3.5, capsize=2,
                        color=colors[n], label=f"probe, n = {n}" + (f" ({probe['seeds']} seeds)" if probe["seeds"] else ""))
    sd = out["spec"]
    ax.set_xlabel("lag l")
    ax.set_ylabel("n (E Theta_n[l,l] / (beta_l / n_x) - 1)")
    ax.set_title(f"Finite-width bias of the lag Gram diagonal (exact mean): metric {sd['metric']}, {sd['convention']}, "
                 f"s_W = {sd['sigma_w']}", fontsize=10)
    ax.axhline(0.0, color="0.7", lw=0.6)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    with open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=120)


# ----------------------------------------------------------------------------- run
def run(args) -> int:
    spec = spec_from_args(args)
    lags = validate.lags(args.lags)
    check_request(spec, lags, args.variance, args.order)
    if args.probe is not None and args.out is None:
        raise BadInput("--probe needs --out (the probe is drawn in the figure)")
    probe = read_probe(args.probe, spec) if args.probe is not None else None
    if args.out is not None:
        require("matplotlib", f"--out (the figure {FIGURE_NAME})", "plot")
        from verify.internal.output import report_folder

        with report_folder(args.out, [JSON_NAME, FIGURE_NAME], force=args.force) as outputs:
            out = versioned(moments_report(spec, lags, variance=args.variance, order=args.order,
                                           width=args.width, dps=args.dps))
            write_json(outputs.path(JSON_NAME), out)
            draw_figure(out, outputs.path(FIGURE_NAME), probe)
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
