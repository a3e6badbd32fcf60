"""Where the wide-limit kernel is accurate: exact finite-width maps of the lag Gram.

For the metric "ntk", convention conv1 (no D, unit learning rates; any ``s_F``,
``s_C``, ``n_x``) every moment below is an exact polynomial in ``1/n`` with
rational coefficients (:mod:`theory.finite_width`).  For lag ``l`` and width
``n``, with ``beta_l`` the wide limit of ``E Theta_n[l, l]`` (its constant term):

    bias(l, n)        = |E Theta_n[l, l] / beta_l - 1|
    offdiag(l, n)     = sqrt(sum_(l' < l) E Theta_n[l, l']^2) / beta_l
    offdiag_sym(l, n) = sqrt(sum_(l' < l) E Theta_n[l, l']^2 / (beta_l beta_l'))
    std(l, n)         = sqrt(V_1(l) / n) / beta_l,

``V_1(l)/n`` the leading (``1/n``) term of ``Var Theta_n[l, l]``.  The off-diagonal
sums run over the shorter lags ``l' < l``: the whole off-diagonal row of the last lag
of a window of ``l + 1`` lags (interior rows of a longer window also couple to longer
lags; :func:`window_threshold_width` covers them at leading order).  Each quantity is
the square root of an exact :class:`~theory.finite_width.InvPoly` (:class:`LagMeasures`).

From these: heat maps over ``(l, n)``; the collapse of each quantity onto one
variable ``l^a / n`` (:func:`collapse_spread`); the threshold width ``n*(l)``
beyond which a quantity stays below a level (:func:`threshold_width`); rules
``n >= c l^a`` with measured constants (:func:`fit_rule`); and, through the
leading-order closed forms (:func:`closed_form_square`, checked against the exact
values by :func:`check_closed_forms`), the widths long sequences need.
The figures of the report are drawn by :mod:`verify.cli.figures.validity`.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from theory.finite_closed import ntk_coupling, ntk_diagonal_correction, ntk_variance
from theory.finite_width import InvPoly, covariance_entries, mean_lag_gram
from theory.precision import context
from theory.spec import RNNSpec, SpecError
from verify.internal import limits, validate
from verify.internal.errors import BadInput
from verify.internal.jsonio import jsonable

__all__ = [
    "QUANTITIES",
    "LABELS",
    "CANDIDATES",
    "ValidityOptions",
    "LagMeasures",
    "Rule",
    "make_options",
    "check_spec",
    "lag_measures",
    "threshold_width",
    "c2",
    "variance_coefficient",
    "closed_form_square",
    "closed_widths",
    "closed_threshold_width",
    "window_threshold_width",
    "check_closed_forms",
    "collapse_spread",
    "collapse_summary",
    "correction_trend",
    "best_exponent",
    "fit_rule",
    "largest_lag",
    "validity_report",
    "report_cost",
]

QUANTITIES = ("bias", "offdiag", "offdiag_sym", "std")
LABELS = {
    "bias": "relative diagonal bias |E Theta_n[l,l]/beta_l - 1|",
    "offdiag": "off-diagonal mass sqrt(sum_{l'<l} E Theta_n[l,l']^2)/beta_l",
    "offdiag_sym": "symmetric off-diagonal mass sqrt(sum_{l'<l} E Theta_n[l,l']^2/(beta_l beta_l'))",
    "std": "relative standard deviation sqrt(Var Theta_n[l,l])/beta_l (leading order, 1/n term of Var)",
}
SHORT = {"bias": "diagonal bias", "offdiag": "off-diagonal mass", "offdiag_sym": "symmetric off-diagonal mass",
         "std": "relative std (leading order)"}
#: Candidate collapse variables l^a / n: name -> a (l^3/n^2 = (l^1.5/n)^2 collapses exactly as l^1.5/n).
CANDIDATES = {"l/n": 1.0, "l^3/n^2": 1.5, "l^2/n": 2.0}
#: Exponents scanned for the best collapse.
EXPONENT_SCAN = tuple(round(0.5 + 0.01 * k, 2) for k in range(251))
COLLAPSE_POINTS = 41
#: Longest sequence length of the table (the closed forms are summed lag by lag).
MAX_SEQUENCE = 10**6
#: Largest lag the fixed-width scan visits.
SCAN_CAP = 100_000


# ----------------------------------------------------------------------------- options
@dataclass(frozen=True)
class ValidityOptions:
    """What :func:`validity_report` computes (build with :func:`make_options`, which checks it)."""

    lags: int = 16
    widths: Tuple[int, ...] = tuple(2**k for k in range(3, 17))
    sigma_ws: Tuple[Fraction, ...] = (Fraction(1, 2), Fraction(9, 10), Fraction(1))
    threshold: Fraction = Fraction(1, 100)
    min_lag: int = 4
    sequence_lengths: Tuple[int, ...] = (100, 1000)
    fixed_widths: Tuple[int, ...] = (1024, 4096)
    exact_variance_lags: int = 6


def _fraction(text, flag: str) -> Fraction:
    try:
        value = Fraction(str(text).strip())
    except (ValueError, ZeroDivisionError):
        raise BadInput(f"{flag}: expected a decimal number, got {text!r}") from None
    return value


def make_options(*, lags=16, widths=None, sigma_ws=("0.5", "0.9", "1"), threshold="0.01", min_lag=4,
                 sequence_lengths=(100, 1000), fixed_widths=(1024, 4096), exact_variance_lags=6) -> ValidityOptions:
    """Checked :class:`ValidityOptions`; any bad value raises :class:`BadInput` naming its flag."""
    lags = validate.integer(lags, "--lags", minimum=4)
    widths = tuple(sorted(validate.int_list(widths if widths is not None else ValidityOptions.widths, "--widths",
                                            at_least=2)))
    if isinstance(sigma_ws, str):
        sigma_ws = [s for s in sigma_ws.replace(" ", "").split(",") if s]
    if not sigma_ws:
        raise BadInput("--sigma-w: expected at least one scale")
    sws = []
    for s in sigma_ws:
        spec = RNNSpec(sigma_w=s)  # SpecError (exit 2) for a malformed or negative scale
        if spec.sigma_w <= 0:
            raise BadInput(f"--sigma-w must be > 0 (beta_l vanishes at s_W = 0), got {s}")
        sws.append(spec.sigma_w)
    if len(set(sws)) != len(sws):
        raise BadInput(f"--sigma-w: values must be distinct, got {', '.join(str(s) for s in sigma_ws)}")
    thr = _fraction(threshold, "--threshold")
    if not Fraction(1, 10**6) <= thr < 1:
        raise BadInput(f"--threshold must be in [1e-6, 1), got {threshold}")
    min_lag = validate.integer(min_lag, "--min-lag", minimum=2)
    if min_lag > lags - 2:
        raise BadInput(f"--min-lag must be at most --lags - 2 = {lags - 2} (the collapse needs two lags), "
                       f"got {min_lag}")
    seq = validate.int_list(sequence_lengths, "--sequence-lengths", minimum=2)
    if max(seq) > MAX_SEQUENCE:
        raise BadInput(f"--sequence-lengths must be at most {MAX_SEQUENCE} (the closed forms are summed "
                       f"lag by lag), got {max(seq)}")
    fixed = validate.int_list(fixed_widths, "--fixed-widths")
    evl = validate.integer(exact_variance_lags, "--exact-variance-lags", minimum=0, maximum=min(lags, 7))
    opts = ValidityOptions(lags, widths, tuple(sws), thr, min_lag, seq, fixed, evl)
    limits.check_cost(report_cost(opts), "--lags")
    return opts


def report_cost(opts: ValidityOptions) -> limits.Cost:
    """The cost of the report (:mod:`verify.internal.limits`, the one cost model): the exact mean lag
    Gram at ``opts.lags`` lags and the exact variance of its first ``opts.exact_variance_lags`` lags."""
    cost = limits.exact_mean_cost(opts.lags, "conv1", widths=len(opts.widths))
    if opts.exact_variance_lags:
        cost = cost + limits.exact_variance_cost(opts.exact_variance_lags, "conv1")
    return cost


# ----------------------------------------------------------------------------- exact measures
def check_spec(spec: RNNSpec) -> RNNSpec:
    """The specifications this module covers: metric ntk, conv1, no D, unit learning rates, ``s_W > 0``."""
    if spec.metric != "ntk" or spec.convention != "conv1" or spec.has_d:
        raise SpecError("validity maps cover the metric ntk, convention conv1, without D")
    if any(spec.lr(g) != 1 for g in "CFW"):
        raise SpecError("validity maps cover unit learning-rate multipliers only")
    if spec.sigma_w <= 0 or spec.sigma_f <= 0 or spec.sigma_c <= 0:
        raise SpecError("validity maps need s_W, s_F, s_C > 0 (beta_l > 0)")
    return spec


@dataclass(frozen=True)
class LagMeasures:
    """Exact squared measures per lag: ``squared[q][l]`` is ``q(l, n)^2`` as a polynomial in ``1/n``.

    ``beta[l]`` is the wide limit of ``E Theta_n[l, l]``; ``bias_signed[l]`` is
    ``E Theta_n[l, l] / beta_l - 1`` (so ``squared["bias"][l] = bias_signed[l]^2``).
    """

    spec: RNNSpec
    lags: int
    beta: Tuple[Fraction, ...]
    bias_signed: Tuple[InvPoly, ...]
    squared: Mapping[str, Tuple[InvPoly, ...]]

    def exact(self, q: str, l: int, n) -> Fraction:
        """``q(l, n)^2`` exactly (``q(l, n)`` itself for ``q = "bias"``, signed)."""
        return self.bias_signed[l](n) if q == "bias" else self.squared[q][l](n)

    def value(self, q: str, l: int, n) -> float:
        """``q(l, n)`` as a float (``inf`` beyond the float64 range)."""
        try:
            if q == "bias":
                return abs(float(self.bias_signed[l](n)))
            return math.sqrt(float(self.squared[q][l](n)))
        except OverflowError:
            return math.inf

    def grid(self, q: str, widths: Sequence[int]) -> List[List[float]]:
        """``q(l, n)`` for ``l < lags`` (rows) and ``n`` in ``widths`` (columns)."""
        return [[self.value(q, l, n) for n in widths] for l in range(self.lags)]


def lag_measures(spec: RNNSpec, lags: int) -> LagMeasures:
    """The four measures of lags ``0 .. lags-1`` from :func:`theory.finite_width.mean_lag_gram`
    and the leading term of :func:`theory.finite_width.covariance_entries`."""
    check_spec(spec)
    total = mean_lag_gram(spec, lags).total
    beta = tuple(total[l][l].coeff(0) for l in range(lags))
    bias, off, sym, std = [], [], [], []
    for l in range(lags):
        b = beta[l]
        bias.append((total[l][l] - InvPoly.of([b])).scale(1 / b))
        o, s = InvPoly.zero(), InvPoly.zero()
        for lp in range(l):
            sq = total[l][lp] * total[l][lp]
            o = o + sq
            s = s + sq.scale(1 / beta[lp])
        off.append(o.scale(1 / (b * b)))
        sym.append(s.scale(1 / b))
        var1 = covariance_entries(spec, (l, l), (l, l), order=1)
        std.append(var1.scale(1 / (b * b)))
    squared = {"bias": tuple(p * p for p in bias), "offdiag": tuple(off), "offdiag_sym": tuple(sym),
               "std": tuple(std)}
    return LagMeasures(spec, lags, beta, tuple(bias), squared)


def threshold_width(poly: InvPoly, threshold: Fraction, *, rel: float = 1e-12) -> Optional[float]:
    """``n*``: the smallest width with ``poly(n') <= threshold^2`` for every real ``n' >= n*``.

    ``poly`` is a squared measure: a polynomial in ``1/n`` with zero constant term and
    non-negative coefficients, hence decreasing in ``n``; ``n*`` solves
    ``poly(n*) = threshold^2`` (bisection in ``log n``, exact comparisons, relative
    precision ``rel``; the returned value satisfies ``poly(n*) <= threshold^2``).  ``None``
    when ``poly`` is zero (the measure vanishes at every width); ``1.0`` when it holds from
    ``n = 1``; ``inf`` when ``n*`` lies beyond ``1e300``.
    """
    if not poly.coeffs:
        return None
    if poly.coeff(0) != 0 or any(c < 0 for c in poly.coeffs):
        raise ValueError("threshold_width needs a polynomial in 1/n with zero constant term and "
                         "non-negative coefficients")
    level = Fraction(threshold) ** 2
    if poly(1) <= level:
        return 1.0
    lo, hi = 1.0, 2.0
    while poly(Fraction(hi)) > level:
        lo, hi = hi, hi * hi
        if hi > 1e300:
            return math.inf
    while hi / lo - 1 > rel:
        mid = math.sqrt(lo * hi)
        if poly(Fraction(mid)) > level:
            lo = mid
        else:
            hi = mid
    return hi


# ----------------------------------------------------------------------------- closed forms
def c2(l: int) -> Fraction:
    """The ``1/n^2`` coefficient of ``E Theta_n[l, l]`` at unit scales (its ``1/n`` coefficient is 0):

        c2(l) = l^5/24 + 17 l^4/48 + 7 l^3/24 - 2 l^2/3 - l/3 + 5 (1 - (-1)^l)/32

    (:func:`theory.finite_closed.ntk_diagonal_correction`; checked, not proven).
    """
    return ntk_diagonal_correction(l)


def variance_coefficient(l: int) -> Fraction:
    """``V_1(l) / beta_l^2 = (2/3)(l+1)(2l+3)/(l+2)``: ``n`` times the leading ``std(l, n)^2``
    (:func:`theory.finite_closed.ntk_variance` over ``(l+2)^2``)."""
    return ntk_variance(l) / (l + 2) ** 2


def _coupling(l: int, lp: int) -> Fraction:
    """The ``1/n`` coefficient of ``E Theta_n[l, l']``, ``l != l'``, at unit scales:
    ``(m+1)(m+2)`` with ``m = min(l, l')`` when ``l - l'`` is even, else 0
    (:func:`theory.finite_closed.ntk_coupling`; checked, not proven)."""
    return ntk_coupling(l, lp)


def closed_form_square(q: str, l: int, sigma_w: Fraction) -> Tuple[Fraction, int]:
    """Leading term ``K u^p`` (``u = 1/n``) of ``q(l, n)^2`` as ``(K, p)``, from the closed forms.

    With ``E Theta_n[l, l'] = s^(l+l') (coupling(l, l')/n + O(1/n^2))`` (``s = s_W``;
    the factor ``s_C^2 s_F^2 / n_x`` cancels) and ``beta_l = (l+2) s^(2l)``:

    * bias: ``(c2(l)/(l+2))^2 u^4``;
    * offdiag: ``sum_(l'<l) coupling^2 s^(2(l'-l)) / (l+2)^2 u^2``;
    * offdiag_sym: ``sum_(l'<l) coupling^2 / ((l+2)(l'+2)) u^2``;
    * std: ``variance_coefficient(l) u``.
    """
    s2 = Fraction(sigma_w) ** 2
    if q == "bias":
        return (c2(l) / (l + 2)) ** 2, 4
    if q == "offdiag":
        return sum((_coupling(l, lp) ** 2 * s2 ** (lp - l) for lp in range(l - 2, -1, -2)),
                   Fraction(0)) / (l + 2) ** 2, 2
    if q == "offdiag_sym":
        return sum((_coupling(l, lp) ** 2 / ((l + 2) * (lp + 2)) for lp in range(l - 2, -1, -2)),
                   Fraction(0)), 2
    if q == "std":
        return variance_coefficient(l), 1
    raise ValueError(f"unknown quantity {q!r}")


def _log10(x: Fraction) -> float:
    return math.log10(x.numerator) - math.log10(x.denominator)


def closed_widths(q: str, sigma_w: Fraction, threshold: Fraction) -> Iterator[Optional[float]]:
    """``log10 n*`` of the leading term alone (``K n^-p = threshold^2``) for ``l = 0, 1, 2, ...``.

    ``None`` where ``K = 0``.  The bias and the std are exact rationals per lag; the
    off-diagonal sums follow the recursions ``S(l) = s^-4 (S(l-2) + coupling(l, l-2)^2)``
    (offdiag) and ``S(l) = S(l-2) + coupling(l, l-2)^2 / l`` (offdiag_sym) in a 30-digit
    local mpmath context, one step per lag.
    """
    thr_log = _log10(Fraction(threshold))
    if q in ("bias", "std"):
        for l in itertools.count():
            k, p = closed_form_square(q, l, sigma_w)
            yield None if k == 0 else (_log10(k) - 2 * thr_log) / p
    if q not in ("offdiag", "offdiag_sym"):
        raise ValueError(f"unknown quantity {q!r}")
    ctx = context(30)
    sw = Fraction(sigma_w)
    s4 = (ctx.mpf(sw.numerator) / ctx.mpf(sw.denominator)) ** 4
    sums = [ctx.mpf(0), ctx.mpf(0)]
    for l in itertools.count():
        if l >= 2:
            a2 = ctx.mpf(int(_coupling(l, l - 2) ** 2))
            prev = sums[l % 2]
            sums[l % 2] = (prev + a2) / s4 if q == "offdiag" else prev + a2 / l
        k = sums[l % 2] / ((l + 2) ** 2 if q == "offdiag" else (l + 2)) if l >= 2 else ctx.mpf(0)
        yield None if k == 0 else float(ctx.log10(k)) / 2 - thr_log


def closed_threshold_width(q: str, l: int, sigma_w: Fraction, threshold: Fraction) -> Optional[float]:
    """``log10 n*`` at lag ``l`` from the leading term alone (:func:`closed_widths`; ``None`` if ``K = 0``)."""
    return next(itertools.islice(closed_widths(q, sigma_w, threshold), l, None))


def window_threshold_width(q: str, lags: int, sigma_w: Fraction, threshold: Fraction) -> Tuple[float, int]:
    """``(log10 n*, row)``: the width at which every row ``l < lags`` of a window of ``lags`` lags
    has its whole off-diagonal row (``l' < lags``, both sides) below ``threshold``, leading order.

    Row ``l`` adds to the shorter-lag couplings of :func:`closed_form_square` the longer ones:
    ``(l+1)^2 s^(2(l'-l))`` (offdiag) or ``(l+1)^2 (l+2) / (l'+2)`` (offdiag_sym) for
    ``l < l' < lags``, ``l' - l`` even.  Evaluated in a 30-digit local mpmath context.
    """
    if q not in ("offdiag", "offdiag_sym"):
        raise ValueError("window widths are defined for the off-diagonal measures")
    ctx = context(30)
    s2 = ctx.mpf(Fraction(sigma_w).numerator) / ctx.mpf(Fraction(sigma_w).denominator)
    s2 = s2 * s2
    lower = [ctx.mpf(0)] * lags  # sum_(l'<l) coupling^2 s^(2(l'-l)) (offdiag) or coupling^2/(l'+2) (sym)
    upper = [ctx.mpf(0)] * lags  # sum_(l<l'<lags) s^(2(l'-l)) (offdiag) or 1/(l'+2) (sym)
    for l in range(2, lags):
        a = _coupling(l, l - 2)
        a2 = ctx.mpf(int(a * a))
        lower[l] = (lower[l - 2] + a2) / (s2 * s2) if q == "offdiag" else lower[l - 2] + a2 / l
    for l in range(lags - 3, -1, -1):
        upper[l] = (upper[l + 2] + 1) * s2 * s2 if q == "offdiag" else upper[l + 2] + ctx.mpf(1) / (l + 4)
    best, row = ctx.mpf(0), 0
    for l in range(lags):
        if q == "offdiag":
            k = lower[l] / (l + 2) ** 2 + (l + 1) ** 2 * upper[l]
        else:
            k = lower[l] / (l + 2) + (l + 1) ** 2 * (l + 2) * upper[l]
        if k > best:
            best, row = k, l
    if best == 0:
        return -math.inf, 0
    return float(ctx.log10(best) / 2 - _log10(Fraction(threshold))), row


def check_closed_forms(m: LagMeasures) -> Dict[str, bool]:
    """Whether each closed form gives exactly the leading term of the exact squared measure, every lag.

    Also checks that the ``1/n`` term of the diagonal bias vanishes and that the
    ``1/n`` coefficients of all off-diagonal mean entries ``l, l' < lags`` follow
    the coupling pattern (``s^(l+l') s_C^2 s_F^2 / n_x`` times it).
    """
    sw = m.spec.sigma_w
    out = {}
    for q in QUANTITIES:
        ok = True
        for l in range(m.lags):
            k, p = closed_form_square(q, l, sw)
            poly = m.squared[q][l]
            ok &= all(poly.coeff(j) == 0 for j in range(p)) and poly.coeff(p) == k
        out[q] = bool(ok)
    total = mean_lag_gram(m.spec, m.lags).total
    scale = m.spec.sigma_c**2 * m.spec.sigma_f**2 / m.spec.n_x
    out["couplings"] = all(
        total[l][lp].coeff(0) == 0 and total[l][lp].coeff(1) == scale * sw ** (l + lp) * _coupling(l, lp)
        for l in range(m.lags) for lp in range(m.lags) if l != lp)
    return out


# ----------------------------------------------------------------------------- collapse and rules
def collapse_spread(values: Mapping[int, Sequence[float]], widths: Sequence[int], exponent: float,
                    points: int = COLLAPSE_POINTS,
                    band: Optional[Tuple[float, float]] = None) -> Optional[Dict[str, Any]]:
    """How well the curves ``l -> q(l, .)`` fall on one curve of ``x = l^a / n``.

    Each lag's curve ``ln q`` against ``ln x`` (sampled at ``widths``) is interpolated
    linearly at ``points`` values of ``ln x`` spread over the range every curve covers;
    at each the standard deviation of ``ln q`` across lags is taken.  With ``band =
    (lo, hi)`` the grid is ``4 points`` fine and only the values of ``x`` where the mean
    of ``ln q`` across lags lies in ``[ln lo, ln hi]`` count (the collapse near a level).
    Returns the root mean square (``rms``) and maximum (``max``) of the standard
    deviation over the points, their number and the covered range of ``log10 x``;
    ``None`` with fewer than two lags, no common range or fewer than 3 points in the band.
    """
    ln_n = np.log(np.asarray(widths, dtype=float))
    curves = []
    for l, vals in values.items():
        v = np.asarray(vals, dtype=float)
        if l < 1 or not np.all(np.isfinite(v)) or np.any(v <= 0):
            continue
        x = exponent * math.log(l) - ln_n
        order = np.argsort(x)
        curves.append((x[order], np.log(v)[order]))
    if len(curves) < 2:
        return None
    lo = max(c[0][0] for c in curves)
    hi = min(c[0][-1] for c in curves)
    if not hi > lo:
        return None
    xs = np.linspace(lo, hi, points if band is None else 4 * points)
    ys = np.array([np.interp(xs, x, y) for x, y in curves])
    if band is not None:
        mean = ys.mean(axis=0)
        keep = (mean >= math.log(band[0])) & (mean <= math.log(band[1]))
        if keep.sum() < 3:
            return None
        xs, ys = xs[keep], ys[:, keep]
    sd = ys.std(axis=0)
    return {"rms": float(np.sqrt(np.mean(sd**2))), "max": float(sd.max()), "points": int(len(xs)),
            "log10_x_range": [float(xs[0] / math.log(10)), float(xs[-1] / math.log(10))]}


def best_exponent(values: Mapping[int, Sequence[float]], widths: Sequence[int],
                  band: Optional[Tuple[float, float]] = None) -> Optional[float]:
    """The exponent ``a`` in :data:`EXPONENT_SCAN` with the smallest rms collapse spread."""
    best, arg = math.inf, None
    for a in EXPONENT_SCAN:
        s = collapse_spread(values, widths, a, band=band)
        if s is not None and s["rms"] < best:
            best, arg = s["rms"], a
    return arg


def collapse_summary(values: Mapping[int, Sequence[float]], widths: Sequence[int],
                     band: Optional[Tuple[float, float]] = None) -> Dict[str, Any]:
    """:func:`collapse_spread` of every candidate of :data:`CANDIDATES`, the best of them and the best exponent."""
    cand = {name: collapse_spread(values, widths, a, band=band) for name, a in CANDIDATES.items()}
    scored = [(v["rms"], name) for name, v in cand.items() if v is not None]
    return {"candidates": cand, "best_candidate": min(scored)[1] if scored else None,
            "best_exponent": best_exponent(values, widths, band=band)}


@dataclass(frozen=True)
class Rule:
    """``q(l, n) <= threshold`` for ``lag_range[0] <= l <= lag_range[1]`` whenever ``n >= constant * l^exponent``.

    ``constant = max_l n*(l) / l^exponent`` over the range (rounded up to the next
    float, so that ``constant * l^exponent >= n*(l)``), attained at ``argmax_lag``: at
    that lag the rule is tight.  ``local_exponent`` is the least-squares slope of
    ``ln n*`` against ``ln l`` over the top four lags of the range.
    """

    quantity: str
    sigma_w: Fraction
    variable: str
    exponent: float
    constant: float
    argmax_lag: int
    lag_range: Tuple[int, int]
    local_exponent: Optional[float]
    threshold: Fraction

    def statement(self) -> str:
        c = _ceil_sig(self.constant, 4)
        power = "l" if self.exponent == 1 else f"l^{self.exponent:g}"
        return (f"{SHORT[self.quantity]} <= {float(self.threshold):.2%} for {self.lag_range[0]} <= l <= "
                f"{self.lag_range[1]} when n >= {c:g} {power}")

    def to_dict(self) -> Dict[str, object]:
        return {"quantity": self.quantity, "sigma_w": str(self.sigma_w), "variable": self.variable,
                "exponent": self.exponent, "constant": self.constant,
                "constant_rounded_up": _ceil_sig(self.constant, 4),
                "argmax_lag": self.argmax_lag, "lag_range": list(self.lag_range),
                "local_exponent": self.local_exponent, "statement": self.statement()}


def _ceil_sig(x: float, digits: int) -> float:
    """``x`` rounded up to ``digits`` significant decimal digits."""
    if x <= 0 or not math.isfinite(x):
        return x
    e = math.floor(math.log10(x)) - digits + 1
    out = math.ceil(x / 10**e) * 10**e
    out = float(f"{out:.{digits}g}")
    while out < x:
        out = math.nextafter(out, math.inf)
    return out


def fit_rule(q: str, sigma_w: Fraction, nstar: Mapping[int, Optional[float]], lag_range: Tuple[int, int],
             variable: str, threshold: Fraction) -> Rule:
    """The tight constant ``c`` of ``n >= c l^a`` (``a = CANDIDATES[variable]``) over ``lag_range``."""
    a = CANDIDATES[variable]
    best, arg = -math.inf, lag_range[0]
    for l in range(lag_range[0], lag_range[1] + 1):
        ns = nstar.get(l)
        if ns is None:
            continue
        c = ns / l**a
        while c * l**a < ns:
            c = math.nextafter(c, math.inf)
        if c > best:
            best, arg = c, l
    top = [(l, v) for l in range(max(lag_range[0], lag_range[1] - 3), lag_range[1] + 1) if (v := nstar.get(l))]
    local = None
    if len(top) >= 2:
        local = float(np.polyfit(np.log([l for l, _ in top]), np.log([v for _, v in top]), 1)[0])
    return Rule(q, sigma_w, variable, a, best, arg, lag_range, local, threshold)


def largest_lag(m: LagMeasures, q: str, n: int, threshold: Fraction, cap: int = SCAN_CAP,
                trend: Optional[Tuple[float, float, int]] = None) -> Tuple[Optional[int], str]:
    """The largest lag ``L`` with ``q(l, n) <= threshold`` for every ``l <= L`` (``None``: not even ``l = 0``).

    Lags below ``m.lags`` use the exact values; beyond, ``n`` is compared with the
    leading closed form's ``n*`` (:func:`closed_widths`, in ``log10``), times the heuristic
    factor ``1 + excess (l/top)^p`` when ``trend`` (:func:`correction_trend`) is given.  The second
    item says which decided (``"exact"`` or ``"closed form"``); a scan reaching ``cap``
    returns ``cap`` with ``"closed form, scan cap"``.
    """
    level = Fraction(threshold) ** 2
    log_n = math.log10(n)
    closed = closed_widths(q, m.spec.sigma_w, threshold)
    for l in range(cap + 1):
        log_cf = next(closed)
        if l < m.lags:
            ok = m.squared[q][l](n) <= level
        else:
            factor = 1.0
            if trend is not None:
                excess, power, top = trend
                factor = 1 + excess * (l / top) ** power
            ok = log_cf is None or log_n >= log_cf + math.log10(factor)
        if not ok:
            return (l - 1 if l else None), ("exact" if l < m.lags else "closed form")
    return cap, "closed form, scan cap"


# ----------------------------------------------------------------------------- the report
def _spec(sigma_w: Fraction) -> RNNSpec:
    return RNNSpec(sigma_w=sigma_w)


def _width_entry(log10_n: Optional[float]) -> Dict[str, Any]:
    if log10_n is None:
        return {"width": None, "log10_width": None}
    w = 10.0**log10_n if log10_n < 300 else None
    return {"width": w, "log10_width": log10_n}


def correction_trend(ratios: Mapping[int, float]) -> Optional[Tuple[float, float, int]]:
    """Fit ``r(l) - 1 = A l^p`` to the exact-over-closed-form ratios of ``n*`` at the given lags.

    Returns ``(r_top - 1, p, top)`` (``top`` the largest lag), or ``None`` when some
    ``r - 1`` is below ``1e-9`` (no measurable correction: the closed form is exact
    there up to rounding) or fewer than two lags are given.  A heuristic: it says how
    the neglected higher orders grow, it does not bound them.
    """
    pts = sorted(ratios.items())
    if len(pts) < 2 or any(not math.isfinite(r) or r - 1 < 1e-9 for _, r in pts):
        return None
    p = float(np.polyfit(np.log([l for l, _ in pts]), np.log([r - 1 for _, r in pts]), 1)[0])
    return pts[-1][1] - 1, p, pts[-1][0]


def _at(values: Iterator[Optional[float]], lags: Sequence[int]) -> List[Optional[float]]:
    """The items of ``values`` at the increasing positions ``lags``."""
    out, want = [], iter(lags)
    target = next(want, None)
    for l, v in enumerate(values):
        if target is None:
            break
        if l == target:
            out.append(v)
            target = next(want, None)
    return out


def _ratio(exact: Optional[float], log10_closed: Optional[float]) -> Optional[float]:
    """``exact / 10^log10_closed`` (``None`` when either is missing)."""
    if exact is None or log10_closed is None:
        return None
    return exact / 10**log10_closed


def validity_report(opts: ValidityOptions, progress=None) -> Dict[str, Any]:
    """Everything the command prints and writes, as JSON-ready values (see docs/validity.md)."""
    thr = opts.threshold
    widths = list(opts.widths)
    lag_range = (opts.min_lag, opts.lags - 1)
    measures: Dict[Fraction, LagMeasures] = {}
    for sw in opts.sigma_ws:
        if progress:
            progress(f"exact moments, s_W = {sw}")
        measures[sw] = lag_measures(_spec(sw), opts.lags)
    key = {sw: str(sw) for sw in opts.sigma_ws}
    first = measures[opts.sigma_ws[0]]
    report: Dict[str, Any] = {
        "model": {"metric": "ntk", "convention": "conv1", "sigma_f": "1", "sigma_c": "1", "n_x": 1, "d": False,
                  "note": "all four measures are relative; s_F, s_C and n_x cancel from them"},
        "threshold": float(thr),
        "lags": opts.lags,
        "widths": widths,
        "min_lag": opts.min_lag,
        "sigma_w": [key[s] for s in opts.sigma_ws],
        "quantities": dict(LABELS),
        "beta": {key[sw]: [float(b) for b in m.beta] for sw, m in measures.items()},
        "grids": {key[sw]: {q: m.grid(q, widths) for q in QUANTITIES} for sw, m in measures.items()},
        "sigma_w_independent": {q: all(m.squared[q] == first.squared[q] for m in measures.values())
                                for q in QUANTITIES},
        "closed_forms": {
            "formulas": {
                "bias": "E Theta_n[l,l]/beta_l - 1 = c2(l)/((l+2) n^2) + O(n^-3), c2(l) = l^5/24 + 17 l^4/48 + "
                        "7 l^3/24 - 2 l^2/3 - l/3 + 5 (1 - (-1)^l)/32",
                "couplings": "E Theta_n[l,l'] = s_W^(l+l') (m+1)(m+2)/n + O(n^-2), m = min(l,l'), l - l' even "
                             "(0 for l - l' odd); beta_l = (l+2) s_W^(2l)",
                "std": "Var Theta_n[l,l] = (2/3)(l+1)(l+2)(2l+3) s_W^(4l)/n + O(n^-2)",
            },
            "status": f"found from and checked against the exact engine for l, l' < {opts.lags}; not proven",
            "agrees": {key[sw]: check_closed_forms(m) for sw, m in measures.items()},
        },
    }
    # threshold widths, exact, and the closed form's n* at the same lags
    nstar: Dict[Fraction, Dict[str, Dict[int, Optional[float]]]] = {}
    thresholds: Dict[str, object] = {}
    for sw, m in measures.items():
        nstar[sw] = {q: {l: threshold_width(m.squared[q][l], thr) for l in range(opts.lags)} for q in QUANTITIES}
        thresholds[key[sw]] = {q: {
            "exact": [nstar[sw][q][l] for l in range(opts.lags)],
            "closed_form": [_width_entry(closed_threshold_width(q, l, sw, thr))["width"] for l in range(opts.lags)],
        } for q in QUANTITIES}
    report["threshold_widths"] = thresholds
    # collapse, near the level (decides the rules' variables) and over the whole grid
    band = (float(thr) / 10, float(thr) * 10)
    collapse: Dict[str, object] = {}
    chosen: Dict[Tuple[Fraction, str], str] = {}
    for sw in opts.sigma_ws:
        per_q: Dict[str, Any] = {}
        for q in QUANTITIES:
            grid = report["grids"][key[sw]][q]
            vals = {l: grid[l] for l in range(opts.min_lag, opts.lags)}
            near = collapse_summary(vals, widths, band)
            full = collapse_summary(vals, widths)
            chosen[(sw, q)] = near["best_candidate"] or full["best_candidate"] or "l^2/n"
            per_q[q] = {"near_threshold": {**near, "band": list(band)}, "full_range": full,
                        "lags": list(lag_range)}
        collapse[key[sw]] = per_q
    report["collapse"] = collapse
    # rules
    rules = []
    rule_of: Dict[Tuple[Fraction, str], Rule] = {}
    for sw in opts.sigma_ws:
        for q in QUANTITIES:
            r = fit_rule(q, sw, nstar[sw][q], lag_range, chosen[(sw, q)], thr)
            rule_of[(sw, q)] = r
            d = r.to_dict()
            d["n_star_over_l_a"] = {str(l): nstar[sw][q][l] / l**r.exponent  # type: ignore[operator]
                                    for l in range(lag_range[0], lag_range[1] + 1) if nstar[sw][q][l]}
            far = max(opts.sequence_lengths) - 1
            log_cf = closed_threshold_width(q, far, sw, thr)
            d["closed_form_constant"] = {"lag": far, "constant": None if log_cf is None or log_cf > 300 else
                                         10 ** (log_cf - r.exponent * math.log10(far))}
            rules.append(d)
    report["rules"] = rules
    # closed-form accuracy at the top of the checked range
    top = opts.lags - 1
    report["closed_form_ratio_at_top_lag"] = {
        key[sw]: {q: _ratio(nstar[sw][q][top], closed_threshold_width(q, top, sw, thr)) for q in QUANTITIES}
        for sw in opts.sigma_ws}
    trend = {}
    for sw in opts.sigma_ws:
        for q in QUANTITIES:
            rs: Dict[int, float] = {}
            for l in range(max(opts.min_lag, opts.lags - 4), opts.lags):
                ratio = _ratio(nstar[sw][q][l], closed_threshold_width(q, l, sw, thr))
                if ratio is not None:
                    rs[l] = ratio
            trend[(sw, q)] = correction_trend(rs)
    # long sequences
    seq_rows = []
    for T in opts.sequence_lengths:
        for sw in opts.sigma_ws:
            for q in QUANTITIES:
                l = T - 1
                if l < opts.lags:
                    ns = nstar[sw][q][l]
                    entry = _width_entry(None if ns is None else math.log10(ns))
                    source = "exact"
                else:
                    log_cf = closed_threshold_width(q, l, sw, thr)
                    entry = _width_entry(log_cf)
                    source = "closed form (leading order in 1/n)"
                    tr = trend[(sw, q)]
                    if tr is not None and log_cf is not None:
                        excess, p, top_l = tr
                        factor = 1 + excess * (l / top_l) ** p
                        entry["next_order_estimate"] = {
                            **_width_entry(log_cf + math.log10(factor)), "factor": factor, "trend_exponent": p,
                            "note": f"heuristic: closed form times 1 + (r - 1), r = exact/closed-form n* fitted as "
                                    f"1 + A l^p over lags {max(opts.min_lag, opts.lags - 4)}..{top_l}"}
                r = rule_of[(sw, q)]
                rule_log = math.log10(r.constant) + r.exponent * math.log10(l) if l > 0 else None
                row: Dict[str, Any] = {"T": T, "lag": l, "sigma_w": key[sw], "quantity": q, **entry, "source": source,
                       "rule_extrapolated": _width_entry(rule_log)}
                if q in ("offdiag", "offdiag_sym"):
                    wlog, wrow = window_threshold_width(q, T, sw, thr)
                    row["whole_window"] = {**_width_entry(wlog), "worst_row": wrow,
                                           "source": "closed form (leading order in 1/n)"}
                seq_rows.append(row)
    report["sequence_lengths"] = seq_rows
    fixed_rows = []
    for n in opts.fixed_widths:
        for sw in opts.sigma_ws:
            for q in QUANTITIES:
                lag, source = largest_lag(measures[sw], q, n, thr)
                row = {"width": n, "sigma_w": key[sw], "quantity": q, "largest_lag": lag, "source": source}
                if source != "exact" and trend[(sw, q)] is not None:
                    row["largest_lag_next_order"] = largest_lag(measures[sw], q, n, thr, trend=trend[(sw, q)])[0]
                fixed_rows.append(row)
    report["fixed_widths"] = fixed_rows
    # closed-form curves for the figure (log-spaced lags up to the longest sequence)
    top_lag = max([opts.lags] + [T - 1 for T in opts.sequence_lengths])
    curve_lags = sorted({int(round(v)) for v in np.geomspace(1, top_lag, 60)} | {top_lag})
    report["closed_form_curves"] = {"lags": curve_lags, "log10_width": {
        key[sw]: {q: _at(closed_widths(q, sw, thr), curve_lags) for q in QUANTITIES}
        for sw in opts.sigma_ws}}
    # exact variance against its leading term
    if opts.exact_variance_lags:
        if progress:
            progress("exact variance of the first lags")
        ratios = {}
        for sw in opts.sigma_ws:
            m = measures[sw]
            rows = []
            for l in range(opts.exact_variance_lags):
                var = covariance_entries(m.spec, (l, l), (l, l))
                lead = m.squared["std"][l] * InvPoly.of([m.beta[l] ** 2])
                rows.append([math.sqrt(float(var(n) / lead(n))) for n in widths])
            ratios[key[sw]] = rows
        report["std_exact_over_leading"] = {"lags": list(range(opts.exact_variance_lags)), "ratio": ratios}
    return jsonable(report)

