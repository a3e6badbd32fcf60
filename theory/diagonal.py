"""Wide-limit lag kernels of diagonal complex linear recurrences (LRU, S4D), exactly.

Model (scalar input and output, conv1 indexing; docs/theory.md, section
"Diagonal recurrences (LRU, S4D)")::

    h_(j,t) = lambda_j h_(j,t-1) + g_j B_j x_t,     y_t = sum_j Re(C_j h_(j,t)) + D x_t
    lambda_j = exp(-exp(nu_j) + i exp(theta_j)),     g_j = exp(gamma_j)
    L_l = sum_j Re(C_j g_j B_j lambda_j^l) + D [l = 0]

Initialization (LRU, Orvieto et al. 2023, appendix code): ``s = |lambda|^2 ~
U[r_min^2, r_max^2]``, phase ``phi ~ U[0, max_phase]``, ``B_re, B_im ~ N(0,
s_B^2)`` (LRU: ``s_B^2 = 1/(2H)``), ``C_re, C_im ~ N(0, s_C^2/n)``, ``D ~ N(0,
s_D^2)``, ``g = sqrt(1 - |lambda|^2)``.

Gradient metric "ntk": ``C = (s_C/sqrt n) c~``, ``B = s_B b~``, ``D = s_D D~``;
``nu, theta, gamma`` are trained as they are.  With ``kappa = 2 s_B^2 s_C^2``,
``k = l + l'``, ``m = l - l'``, ``a = -ln r`` the limit lag kernel is the sum of
the shares (each times its learning-rate multiplier)::

    K0(l, l')   = E[(1 - r^2) r^k cos(m phi)] = P0(k) c0(m)
    B = C = gamma = kappa K0
    nu          = kappa l l' E[a^2 (1 - r^2) r^k cos(m phi)]   = kappa l l' P2(k) c0(m)
    theta       = kappa l l' E[phi^2 (1 - r^2) r^k cos(m phi)] = kappa l l' P0(k) c2(m)
    D           = s_D^2 at (0, 0)

Tied gamma (``g`` recomputed from ``lambda``): no gamma share, and the nu share
is ``kappa c0(m) E[a^2 (1 - r^2) r^k (rho - l)(rho - l')]``, ``rho = r^2/(1 - r^2)``.

Scaling "lru" (LRU's own parametrization, GD on C, B, ... themselves with one
learning rate): the C share is ``n`` times the others, and
``Theta_n / n -> lr_C 2 s_B^2 K0`` (readout-only kernel = NNGP covariance of
the initial response); the other shares of ``Theta_n / n`` vanish like ``1/n``.

Every public function works in a local context (:func:`theory.precision.context`)
and returns numbers accurate to the requested digits (closed forms: guard
bits adapted to the measured cancellation; quadrature: guarded precision and
its error estimate checked).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple

from theory.precision import Context, UnstableSolve, check_dps, context, exact, guarded, until_stable
from theory.spec import Scalar, SpecError, _fraction_text, as_fraction, replace_fields

__all__ = [
    "DiagonalSpec",
    "DIAGONAL_GROUPS",
    "SCALINGS",
    "parse_phase",
    "P0",
    "P2",
    "P2_shifted",
    "c0",
    "c2",
    "tied_nu_integral",
    "DiagonalKernel",
    "lag_kernel",
    "lag_kernel_diagonal",
    "S4D_KINDS",
    "s4d_spectrum",
    "s4d_c_share",
    "s4d_c_share_diagonal",
    "implicit_bias_solution",
    "to_strings",
]

DIAGONAL_GROUPS = ("B", "C", "gamma", "nu", "theta", "D")
SCALINGS = ("ntk", "lru")

_PHASE_RE = re.compile(r"^\s*(?:(?P<num>[0-9.eE+-]+)\s*\*?\s*)?pi\s*(?:/\s*(?P<den>[0-9.eE+-]+))?\s*$")


def parse_phase(value) -> Tuple[Fraction, bool]:
    """``(q, in_pi)`` with the phase equal to ``q`` (radians) or ``q pi`` when ``in_pi``.

    Accepts numbers and the texts ``"pi"``, ``"2pi"``, ``"2*pi"``, ``"pi/10"``,
    ``"3*pi/4"`` so that multiples of pi stay exact.

    >>> parse_phase("pi/10")
    (Fraction(1, 10), True)
    >>> parse_phase("0.31416")
    (Fraction(3927, 12500), False)
    """
    if isinstance(value, str):
        match = _PHASE_RE.match(value.lower())
        if match:
            num = as_fraction(match.group("num") or 1, "max_phase")
            den = as_fraction(match.group("den") or 1, "max_phase", allow_zero=False)
            return num / den, True
    return as_fraction(value, "max_phase"), False


@dataclass(frozen=True)
class DiagonalSpec:
    """Eigenvalue law, scales, scaling and learning rates of a diagonal recurrence.

    ``r_min, r_max``: ring ``0 <= r_min < r_max <= 1`` (``|lambda|^2`` uniform on
    ``[r_min^2, r_max^2]``); ``max_phase > 0``: phase uniform on ``[0, max_phase]``
    (radians, or ``max_phase * pi`` when ``phase_in_pi``; strings such as
    ``"pi/10"`` are parsed by :func:`parse_phase`).  ``scaling``: ``"ntk"`` or
    ``"lru"``.  ``tied_gamma``: ``g = sqrt(1 - |lambda|^2)`` recomputed (no gamma
    parameter).  ``sigma_b2 = s_B^2`` (LRU: ``1/(2H)``, default 1/2 for ``H = 1``),
    ``sigma_c``, ``sigma_d`` (``None``: no D).  ``lr_*``: per-group multipliers
    (0 freezes a group).  All numbers are stored as exact rationals.
    """

    r_min: Fraction
    r_max: Fraction
    max_phase: Fraction
    phase_in_pi: bool = False
    scaling: str = "ntk"
    tied_gamma: bool = False
    sigma_b2: Fraction = Fraction(1, 2)
    sigma_c: Fraction = Fraction(1)
    sigma_d: Optional[Fraction] = Fraction(1)
    lr_b: Fraction = Fraction(1)
    lr_c: Fraction = Fraction(1)
    lr_gamma: Fraction = Fraction(1)
    lr_nu: Fraction = Fraction(1)
    lr_theta: Fraction = Fraction(1)
    lr_d: Fraction = Fraction(1)

    if TYPE_CHECKING:  # what the constructor accepts; __post_init__ stores every number as a Fraction

        def __init__(
            self,
            r_min: Scalar,
            r_max: Scalar,
            max_phase: Scalar,
            phase_in_pi: bool = ...,
            scaling: str = ...,
            tied_gamma: bool = ...,
            sigma_b2: Scalar = ...,
            sigma_c: Scalar = ...,
            sigma_d: Optional[Scalar] = ...,
            lr_b: Scalar = ...,
            lr_c: Scalar = ...,
            lr_gamma: Scalar = ...,
            lr_nu: Scalar = ...,
            lr_theta: Scalar = ...,
            lr_d: Scalar = ...,
        ) -> None: ...

    def __post_init__(self) -> None:
        for name in ("r_min", "r_max", "sigma_b2", "sigma_c", "lr_b", "lr_c", "lr_gamma", "lr_nu",
                     "lr_theta", "lr_d"):
            object.__setattr__(self, name, as_fraction(getattr(self, name), name))
        if self.sigma_d is not None:
            object.__setattr__(self, "sigma_d", as_fraction(self.sigma_d, "sigma_d"))
        if isinstance(self.max_phase, str):
            q, in_pi = parse_phase(self.max_phase)
            object.__setattr__(self, "max_phase", q)
            object.__setattr__(self, "phase_in_pi", bool(in_pi or self.phase_in_pi))
        else:
            object.__setattr__(self, "max_phase", as_fraction(self.max_phase, "max_phase"))
        if not isinstance(self.phase_in_pi, bool) or not isinstance(self.tied_gamma, bool):
            raise SpecError("phase_in_pi and tied_gamma must be booleans")
        if not self.r_min < self.r_max:
            raise SpecError(f"need r_min < r_max, got r_min = {self.r_min}, r_max = {self.r_max}")
        if self.r_max > 1:
            raise SpecError(f"r_max must be <= 1 (a stable recurrence), got {self.r_max}")
        if self.max_phase <= 0:
            raise SpecError(f"max_phase must be > 0, got {self.max_phase}")
        if self.scaling not in SCALINGS:
            raise SpecError(f"scaling must be one of {', '.join(SCALINGS)}; got {self.scaling!r}")

    # ------------------------------------------------------------------ helpers
    @property
    def s0(self) -> Fraction:
        """``r_min^2``."""
        return self.r_min**2

    @property
    def s1(self) -> Fraction:
        """``r_max^2``."""
        return self.r_max**2

    @property
    def kappa(self) -> Fraction:
        """``2 s_B^2 s_C^2``."""
        return 2 * self.sigma_b2 * self.sigma_c**2

    @property
    def groups(self) -> Tuple[str, ...]:
        """Trainable groups present: no gamma when tied, no D without D."""
        return tuple(g for g in DIAGONAL_GROUPS
                     if not (g == "gamma" and self.tied_gamma) and not (g == "D" and self.sigma_d is None))

    def lr(self, group: str) -> Fraction:
        return getattr(self, "lr_" + group.lower())

    def max_phase_value(self, ctx: Context):
        """``max_phase`` in radians in ``ctx``."""
        q = exact(ctx, self.max_phase)
        return q * ctx.pi if self.phase_in_pi else q

    def max_phase_float(self) -> float:
        return float(self.max_phase) * (math.pi if self.phase_in_pi else 1.0)

    def replace(self, **changes) -> "DiagonalSpec":
        """A copy with some fields changed (validated again)."""
        return replace_fields(self, changes)

    def to_dict(self) -> Dict[str, object]:
        out: Dict[str, object] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = _fraction_text(v) if isinstance(v, Fraction) else v
        return out


# --------------------------------------------------------------------------- cancellation control
_MAX_EXTRA = 4  # at most this many times the working precision in guard bits


def _stable(ctx: Context, terms: Callable[[], Tuple[Any, Any]]):
    """Evaluate ``terms() -> (value, scale)`` with guard bits covering the cancellation.

    ``scale`` bounds the magnitude of the terms that were added; the bits lost
    are ``log2(scale/|value|)``.  The guard grows until it exceeds the loss by
    20 bits, or reaches ``_MAX_EXTRA`` times the precision (then ``value`` is
    still accurate to ``2^-prec`` relative to ``scale``: an exact zero such as
    ``sin(pi)`` is returned as a tiny number).
    """
    prec = ctx.prec
    guard = 24
    while True:
        with guarded(ctx, guard):
            value, scale = terms()
        if value == 0 or scale == 0:
            lost = 0 if scale == 0 else math.inf
        else:
            lost = max(0.0, float(ctx.log(abs(scale) / abs(value), 2)))
        if lost + 20 <= guard or guard >= _MAX_EXTRA * prec:
            return +value
        guard = min(int(lost) + 40, _MAX_EXTRA * prec) if lost != math.inf else _MAX_EXTRA * prec


def _check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise SpecError(f"k = l + l' must be a non-negative integer, got {k!r}")
    return k


def _check_m(m) -> int:
    if isinstance(m, bool) or not isinstance(m, int):
        raise SpecError(f"m = l - l' must be an integer, got {m!r}")
    return abs(m)


# --------------------------------------------------------------------------- closed forms
def P0(spec: DiagonalSpec, k: int, ctx: Context):
    """``P0(k) = E[(1 - s) s^p]``, ``p = k/2``, ``s = r^2 ~ U[s0, s1]``:

        P0(k) = [F(s1) - F(s0)] / (s1 - s0),  F(s) = s^(p+1)/(p+1) - s^(p+2)/(p+2).
    """
    k = _check_k(k)

    def terms():
        p = ctx.mpf(k) / 2
        s0, s1 = exact(ctx, spec.s0), exact(ctx, spec.s1)

        def F(s):
            a, b = s ** (p + 1) / (p + 1), s ** (p + 2) / (p + 2)
            return a - b, max(abs(a), abs(b))

        f1, m1 = F(s1)
        f0, m0 = F(s0)
        d = s1 - s0
        return (f1 - f0) / d, max(m1, m0) / d

    return _stable(ctx, terms)


def _J(ctx: Context, q, s):
    """``J_q(s) = s^(q+1) [ln^2 s/(q+1) - 2 ln s/(q+1)^2 + 2/(q+1)^3]`` (an antiderivative
    of ``s^q ln^2 s``), ``J_q(0) = 0``; returns (value, magnitude of its terms)."""
    if s == 0:
        return ctx.mpf(0), ctx.mpf(0)
    L = ctx.log(s)
    q1 = q + 1
    t = [L * L / q1, -2 * L / q1**2, 2 / q1**3]
    sq = s**q1
    return sq * (t[0] + t[1] + t[2]), sq * max(abs(x) for x in t)


def P2(spec: DiagonalSpec, k: int, ctx: Context):
    """``P2(k) = E[a^2 (1 - s) s^p]``, ``a = -ln r = -ln(s)/2``, ``p = k/2``:

        P2(k) = [G(s1) - G(s0)] / (4 (s1 - s0)),  G = J_p - J_(p+1),
        J_q(s) = s^(q+1) [ln^2 s/(q+1) - 2 ln s/(q+1)^2 + 2/(q+1)^3],  J_q(0) = 0.
    """
    k = _check_k(k)

    def terms():
        p = ctx.mpf(k) / 2
        s0, s1 = exact(ctx, spec.s0), exact(ctx, spec.s1)
        vals, mags = [], []
        for s in (s1, s0):
            a, ma = _J(ctx, p, s)
            b, mb = _J(ctx, p + 1, s)
            vals.append(a - b)
            mags.append(max(ma, mb))
        d = 4 * (s1 - s0)
        return (vals[0] - vals[1]) / d, max(mags) / d

    return _stable(ctx, terms)


def P2_shifted(spec: DiagonalSpec, k: int, ctx: Context):
    """``E[a^2 s^(p+1)] = [J_(p+1)(s1) - J_(p+1)(s0)] / (4 (s1 - s0))`` (tied-gamma helper)."""
    k = _check_k(k)

    def terms():
        p = ctx.mpf(k) / 2
        s0, s1 = exact(ctx, spec.s0), exact(ctx, spec.s1)
        a, ma = _J(ctx, p + 1, s1)
        b, mb = _J(ctx, p + 1, s0)
        d = 4 * (s1 - s0)
        return (a - b) / d, max(ma, mb) / d

    return _stable(ctx, terms)


def _sin_cos(spec: DiagonalSpec, m: int, ctx: Context):
    """``sin(m Phi), cos(m Phi)``; exact zeros/ones when ``m Phi`` is a multiple of pi/2."""
    if spec.phase_in_pi:
        x = m * spec.max_phase  # exact rational multiple of pi
        if (2 * x).denominator == 1:
            return ctx.sinpi(int(2 * x) * ctx.mpf(0.5)), ctx.cospi(int(2 * x) * ctx.mpf(0.5))
        xm = exact(ctx, x)
        return ctx.sinpi(xm), ctx.cospi(xm)
    xm = m * exact(ctx, spec.max_phase)
    return ctx.sin(xm), ctx.cos(xm)


def c0(spec: DiagonalSpec, m: int, ctx: Context):
    """``c0(m) = E[cos(m phi)] = sin(m Phi)/(m Phi)``, ``c0(0) = 1``, ``phi ~ U[0, Phi]``."""
    m = _check_m(m)
    if m == 0:
        return ctx.mpf(1)
    with guarded(ctx, 10):
        s, _ = _sin_cos(spec, m, ctx)
        v = s / (m * spec.max_phase_value(ctx))
    return +v


def c2(spec: DiagonalSpec, m: int, ctx: Context):
    """``c2(m) = E[phi^2 cos(m phi)]``, ``phi ~ U[0, Phi]``:

        c2(m) = Phi sin(m Phi)/m + 2 cos(m Phi)/m^2 - 2 sin(m Phi)/(Phi m^3),  c2(0) = Phi^2/3.
    """
    m = _check_m(m)
    if m == 0:
        with guarded(ctx, 10):
            P = spec.max_phase_value(ctx)
            v = P * P / 3
        return +v

    def terms():
        P = spec.max_phase_value(ctx)
        s, c = _sin_cos(spec, m, ctx)
        t = [P * s / m, 2 * c / m**2, -2 * s / (P * m**3)]
        # magnitudes of the terms without the oscillating factors bound the loss
        scale = max(P / m, ctx.mpf(2) / m**2, 2 / (P * m**3))
        return t[0] + t[1] + t[2], scale

    return _stable(ctx, terms)


def _quad_checked(ctx: Context, f, points, what: str):
    """``ctx.quad`` to relative accuracy: mpmath's tanh-sinh stops on an *absolute* error
    estimate, so the integrand is first rescaled by a rough value of the integral; the
    final error estimate must be below ``2^-(prec-8)`` relative (else ArithmeticError)."""
    rough = ctx.quad(f, points)
    scale = abs(rough) if rough != 0 else ctx.mpf(1)
    g = lambda s: f(s) / scale
    tol = ctx.ldexp(1, -ctx.prec + 8)
    for degree in (10, 14):
        value, err = ctx.quad(g, points, error=True, maxdegree=degree)
        if err <= abs(value) * tol + ctx.ldexp(1, -2 * ctx.prec):
            return value * scale
    raise ArithmeticError(f"quadrature of {what} did not converge (relative error estimate {ctx.nstr(err, 3)})")


def tied_nu_integral(spec: DiagonalSpec, k: int, ctx: Context):
    """``I1(k) = E[a^2 s^(p+2)/(1 - s)] = (1/(s1 - s0)) int_s0^s1 (ln^2 s / 4) s^(p+2)/(1 - s) ds``

    by mpmath quadrature (tanh-sinh, error estimate checked; the integrand is
    bounded: ``ln^2 s/(1 - s) -> 0`` at ``s = 1``).  With it the tied-gamma nu
    share is ``kappa c0(m) [I1(k) - k E[a^2 s^(p+1)] + l l' P2(k)]``, which is
    ``E[a^2 (1 - s) s^p (rho - l)(rho - l')]``, ``rho = s/(1 - s)``, expanded.
    """
    k = _check_k(k)
    with guarded(ctx, 20):
        p = ctx.mpf(k) / 2
        s0, s1 = exact(ctx, spec.s0), exact(ctx, spec.s1)

        def f(s):
            if s == 1:
                return ctx.mpf(0)
            L = ctx.log(s)
            return L * L / 4 * s ** (p + 2) / (1 - s)

        mid = (s0 + s1) / 2
        v = _quad_checked(ctx, f, [s0, mid, s1], "the tied-gamma nu integral") / (s1 - s0)
    return +v


# --------------------------------------------------------------------------- kernels
@dataclass(frozen=True)
class DiagonalKernel:
    """Limit lag kernel: ``total`` and per-group ``shares`` as lists of lists (T x T)
    of mpmath numbers; ``normalized_by_n`` is True for the "lru" scaling
    (the object is ``lim Theta_n / n``)."""

    total: List[List[Any]]
    shares: Dict[str, List[List[Any]]]
    spec: DiagonalSpec
    lags: int
    dps: int
    normalized_by_n: bool


def _check_lags(lags) -> int:
    if isinstance(lags, bool) or not isinstance(lags, int) or lags < 1:
        raise SpecError(f"lags must be a positive integer, got {lags!r}")
    return lags


def _tables(spec: DiagonalSpec, lags: int, ctx: Context, need: Sequence[str]):
    ks = range(2 * lags - 1)
    ms = range(lags)
    t: Dict[str, List] = {}
    t["P0"] = [P0(spec, k, ctx) for k in ks]
    t["c0"] = [c0(spec, m, ctx) for m in ms]
    if "nu" in need:
        if spec.tied_gamma:
            t["I1"] = [tied_nu_integral(spec, k, ctx) for k in ks]
            t["Q"] = [P2_shifted(spec, k, ctx) for k in ks]
        t["P2"] = [P2(spec, k, ctx) for k in ks]
    if "theta" in need:
        t["c2"] = [c2(spec, m, ctx) for m in ms]
    return t


def _share_entry(group: str, spec: DiagonalSpec, t, l: int, lp: int, kappa, sd2, ctx):
    k, m = l + lp, abs(l - lp)
    if group in ("B", "C", "gamma"):
        return kappa * t["P0"][k] * t["c0"][m]
    if group == "nu":
        if spec.tied_gamma:
            return kappa * t["c0"][m] * (t["I1"][k] - k * t["Q"][k] + l * lp * t["P2"][k])
        return kappa * (l * lp) * t["P2"][k] * t["c0"][m]
    if group == "theta":
        return kappa * (l * lp) * t["P0"][k] * t["c2"][m]
    if group == "D":
        return sd2 if (l == 0 and lp == 0) else ctx.mpf(0)
    raise SpecError(f"unknown group {group!r}")


def _readout_coefficient(spec: DiagonalSpec, ctx: Context):
    """``lr_C 2 s_B^2``: ``lim Theta_n / n = lr_C 2 s_B^2 K0`` under the "lru" scaling."""
    return exact(ctx, spec.lr("C")) * 2 * exact(ctx, spec.sigma_b2)


def lag_kernel(spec: DiagonalSpec, lags: int, *, dps: int = 30) -> DiagonalKernel:
    """Limit lag kernel ``Theta(l, l')``, ``l, l' = 0..lags-1``, as shares and total.

    Scaling "ntk": shares as in the module docstring, times ``lr_g``.
    Scaling "lru": ``lim Theta_n/n``: C share ``lr_C 2 s_B^2 K0``, all others 0.

    >>> K = lag_kernel(DiagonalSpec(r_min=0, r_max=1, max_phase="pi"), 2, dps=15)
    >>> [[str(v) for v in row] for row in K.shares["C"]]
    [['0.5', '0.0'], ['0.0', '0.166666666666667']]
    """
    lags = _check_lags(lags)
    ctx = context(check_dps(dps))
    groups = spec.groups
    with guarded(ctx, 10):
        t = _tables(spec, lags, ctx, groups if spec.scaling == "ntk" else ())
        zero = ctx.mpf(0)
        shares: Dict[str, List[List[Any]]] = {}
        for g in groups:
            lr = exact(ctx, spec.lr(g))
            if spec.scaling == "lru":
                if g == "C":
                    c = _readout_coefficient(spec, ctx)
                    mat = [[c * t["P0"][l + lp] * t["c0"][abs(l - lp)] for lp in range(lags)] for l in range(lags)]
                else:
                    mat = [[zero] * lags for _ in range(lags)]
            else:
                kappa = exact(ctx, spec.kappa) * lr
                sd2 = exact(ctx, (spec.sigma_d or 0) ** 2) * lr
                mat = [[None] * lags for _ in range(lags)]
                for l in range(lags):
                    for lp in range(l, lags):
                        mat[l][lp] = mat[lp][l] = _share_entry(g, spec, t, l, lp, kappa, sd2, ctx)
            shares[g] = mat
        total = [[sum((shares[g][l][lp] for g in groups), zero) for lp in range(lags)] for l in range(lags)]
    rnd = lambda mat: [[+v for v in row] for row in mat]
    return DiagonalKernel(rnd(total), {g: rnd(v) for g, v in shares.items()}, spec, lags, dps,
                          spec.scaling == "lru")


def lag_kernel_diagonal(spec: DiagonalSpec, lag_list: Sequence[int], *, dps: int = 20) -> List:
    """Diagonal ``Theta(l, l)`` (total over trained groups) at the given lags (any size),
    by the same closed forms as :func:`lag_kernel` (``m = 0``: ``c0 = 1``, ``c2 = Phi^2/3``)."""
    ctx = context(check_dps(dps))
    out = []
    with guarded(ctx, 10):
        c0v, c2v = ctx.mpf(1), c2(spec, 0, ctx)
        t: Dict[str, Any] = {"c0": [c0v], "c2": [c2v]}
        for l in lag_list:
            if isinstance(l, bool) or not isinstance(l, int) or l < 0:
                raise SpecError(f"lags must be non-negative integers, got {l!r}")
            k = 2 * l
            tt = dict(t)
            tt["P0"] = {k: P0(spec, k, ctx)}
            if spec.scaling == "lru":
                v = _readout_coefficient(spec, ctx) * tt["P0"][k]
                out.append(+v)
                continue
            if "nu" in spec.groups:
                tt["P2"] = {k: P2(spec, k, ctx)}
                if spec.tied_gamma:
                    tt["I1"] = {k: tied_nu_integral(spec, k, ctx)}
                    tt["Q"] = {k: P2_shifted(spec, k, ctx)}
            total = ctx.mpf(0)
            for g in spec.groups:
                lr = exact(ctx, spec.lr(g))
                kappa = exact(ctx, spec.kappa) * lr
                sd2 = exact(ctx, (spec.sigma_d or 0) ** 2) * lr
                total += _share_entry(g, spec, tt, l, l, kappa, sd2, ctx)
            out.append(+total)
    return out


# --------------------------------------------------------------------------- S4D
S4D_KINDS = ("lin", "inv", "real")


def s4d_spectrum(kind: str, state_size: int, ctx: Context) -> List:
    """Continuous-time eigenvalues ``A_n`` of S4D (Gu, Gupta, Goel, Re, NeurIPS 2022,
    "On the Parameterization and Initialization of Diagonal State Space Models"), as the
    S4 repository builds them (state-spaces/s4, ``src/models/sequence/kernels/dplr.py``,
    read for this work), ``N = state_size``, modes ``n = 0..N/2-1`` (one of each conjugate
    pair; the output takes ``2 Re``):

    * ``lin``:  ``A_n = -1/2 + i pi n``
    * ``inv``:  ``A_n = -1/2 + i (N/pi) (N/(2n+1) - 1)``
    * ``real``: ``A_n = -(n + 1)``  (the code keeps N/2 real modes; the paper writes diag(-1..-N))

    The repository stores the conjugates (negative imaginary parts); the kernels here depend
    only on ``|lambda|`` and ``cos(m arg lambda)``, which are the same.
    """
    if kind not in S4D_KINDS:
        raise SpecError(f"S4D kind must be one of {', '.join(S4D_KINDS)}; got {kind!r}")
    if isinstance(state_size, bool) or not isinstance(state_size, int) or state_size < 2 or state_size % 2:
        raise SpecError(f"state_size must be an even integer >= 2, got {state_size!r}")
    N = state_size
    half = ctx.mpf(-1) / 2
    if kind == "lin":
        return [ctx.mpc(half, ctx.pi * n) for n in range(N // 2)]
    if kind == "inv":
        return [ctx.mpc(half, N / ctx.pi * (ctx.mpf(N) / (2 * n + 1) - 1)) for n in range(N // 2)]
    return [ctx.mpc(-(n + 1), 0) for n in range(N // 2)]


def s4d_c_share(kind: str, lags: int, *, state_size: int = 64, dt="0.01", sigma_c2="2",
                dps: int = 30) -> List[List[object]]:
    """C-share lag kernel (= NNGP covariance of the initial response) of an S4D layer
    with deterministic spectrum :func:`s4d_spectrum`, zero-order hold:

        lambda_n = exp(dt A_n),  b_n = (lambda_n - 1)/A_n  (B = 1),
        L_l = sum_n Re(C_n b_n lambda_n^l),  C_n = s_C c~_n, c~ complex with Re, Im ~ N(0, 1)
        Theta_C(l, l') = s_C^2 sum_n Re(b_n lambda_n^l conj(b_n lambda_n^l'))
                       = s_C^2 sum_n |b_n|^2 |lambda_n|^(l+l') cos((l - l') arg lambda_n)

    ``s_C^2 = 2`` reproduces S4D's ``C ~ CN(0, 1)`` with its ``2 Re(...)`` output.
    Not normalized by the number of modes (S4D does not scale C with N).  For
    ``lin``/``inv`` the diagonal is exactly geometric, ``beta_l = beta_0 e^(-dt l)``.
    """
    lags = _check_lags(lags)
    ctx = context(check_dps(dps))
    sc2 = as_fraction(sigma_c2, "sigma_c2")
    with guarded(ctx, 20):
        modes = _s4d_modes(kind, state_size, dt, ctx)
        out: List[List[Any]] = [[None] * lags for _ in range(lags)]
        scv = exact(ctx, sc2)
        for l in range(lags):
            for lp in range(l, lags):
                k, m = l + lp, l - lp
                v = sum((b2 * r**k * ctx.cos(m * ph) for b2, r, ph in modes), ctx.mpf(0))
                out[l][lp] = out[lp][l] = scv * v
    return [[+v for v in row] for row in out]


def _s4d_modes(kind: str, state_size: int, dt, ctx: Context):
    """``(|b_n|^2, |lambda_n|, arg lambda_n)`` per mode, zero-order hold (see :func:`s4d_c_share`)."""
    dtv = exact(ctx, as_fraction(dt, "dt", allow_zero=False))
    modes = []
    for A in s4d_spectrum(kind, state_size, ctx):
        lam = ctx.exp(dtv * A)
        b = ctx.expm1(dtv * A) / A
        modes.append((abs(b) ** 2, abs(lam), ctx.arg(lam)))
    return modes


def s4d_c_share_diagonal(kind: str, lag_list: Sequence[int], *, state_size: int = 64, dt="0.01",
                         sigma_c2="2", dps: int = 20) -> List:
    """Diagonal of :func:`s4d_c_share` at the given lags: ``s_C^2 sum_n |b_n|^2 |lambda_n|^(2l)``."""
    ctx = context(check_dps(dps))
    sc2 = as_fraction(sigma_c2, "sigma_c2")
    out = []
    with guarded(ctx, 20):
        modes = _s4d_modes(kind, state_size, dt, ctx)
        scv = exact(ctx, sc2)
        for l in lag_list:
            if isinstance(l, bool) or not isinstance(l, int) or l < 0:
                raise SpecError(f"lags must be non-negative integers, got {l!r}")
            out.append(scv * sum((b2 * r ** (2 * l) for b2, r, _ in modes), ctx.mpf(0)))
    return [+v for v in out]


# --------------------------------------------------------------------------- implicit bias
def implicit_bias_solution(kernel, X, y, L0=None, *, dps: int = 30):
    """Gradient-descent limit of a linear model with lag kernel ``kernel`` = ``Theta`` (T x T):

        L_inf = argmin_L (L - L0)^T Theta^-1 (L - L0)  subject to  X L = y
              = L0 + Theta X^T (X Theta X^T)^-1 (y - X L0),

    the form valid for singular ``Theta`` too (GD moves ``L`` only inside the
    range of ``Theta``).  ``X`` (N x T) maps the impulse response to the fitted
    outputs (rows: lagged inputs), ``y`` (N), ``L0`` (T, default 0).  Entries may
    be mpmath numbers, decimal strings, Fractions or floats (taken exactly).
    Returns a list of ``T`` mpmath numbers.  Raises ``ValueError`` if
    ``X Theta X^T`` is singular at the working precision.
    """
    dps = check_dps(dps)

    def num(ctx, v):
        if isinstance(v, Fraction):
            return exact(ctx, v)
        if isinstance(v, str):
            return ctx.mpf(v)
        if isinstance(v, (int, float)):
            return ctx.mpf(v)  # exact binary value (the working precision exceeds 53 bits)
        return ctx.mpf(v)

    T = len(kernel)
    if any(len(row) != T for row in kernel):
        raise ValueError("the lag kernel must be a square T x T array")
    N = len(X)
    if N < 1 or any(len(row) != T for row in X):
        raise ValueError(f"X must be N x T with T = {T}")
    if len(y) != N:
        raise ValueError(f"y must have N = {N} entries, got {len(y)}")
    if L0 is not None and len(L0) != T:
        raise ValueError(f"L0 must have T = {T} entries")
    # Inputs are taken as exact numbers (mpmath numbers at their own precision, rounded to the
    # working precision); the solve is repeated at rising working precision until two solves
    # agree to dps + 2 digits entry by entry, entries below 10^-(dps + 2) times the largest
    # correction held to that absolute level (theory.precision.until_stable).
    def solve(wp):
        ctx = context(wp)
        K = ctx.matrix([[num(ctx, v) for v in row] for row in kernel])
        Xm = ctx.matrix([[num(ctx, v) for v in row] for row in X])
        yv = ctx.matrix([num(ctx, v) for v in y])
        l0 = ctx.matrix([num(ctx, v) for v in L0]) if L0 is not None else ctx.matrix(T, 1)
        KXt = K * Xm.T
        G = Xm * KXt
        try:
            alpha = ctx.lu_solve(G, yv - Xm * l0)
        except ZeroDivisionError:
            raise ValueError("X Theta X^T is singular: the data cannot be fitted in the kernel's range") from None
        dL = KXt * alpha
        return [l0[i] for i in range(T)], [dL[i] for i in range(T)]

    try:
        (l0v, dL), _ = until_stable(solve, dps + 20, agree_digits=dps + 2, floor_digits=dps + 2,
                                    max_dps=dps + 5000, values=lambda res: res[1])
    except UnstableSolve:
        raise ValueError("the Theta^-1-metric solve did not stabilize: X Theta X^T is (numerically) singular") from None
    return [+(a + b) for a, b in zip(l0v, dL)]


def to_strings(mat, digits: int) -> List[List[str]]:
    """Decimal strings of a matrix (list of lists) of mpmath numbers."""
    import mpmath

    return [[mpmath.nstr(v, digits, strip_zeros=False) for v in row] for row in mat]
