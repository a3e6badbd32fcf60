"""The specification of a diagonal recurrence: eigenvalue law, scales, scaling, learning rates.

Model (scalar input and output, conv1 indexing; docs/theory.md, section
"Diagonal recurrences (LRU, S4D)")::

    h_(j,t) = lambda_j h_(j,t-1) + g_j B_j x_t,     y_t = sum_j Re(C_j h_(j,t)) + D x_t
    lambda_j = exp(-exp(nu_j) + i exp(theta_j)),     g_j = exp(gamma_j)
    L_l = sum_j Re(C_j g_j B_j lambda_j^l) + D [l = 0]

Initialization (LRU, Orvieto et al. 2023, appendix code): ``s = |lambda|^2 ~
U[r_min^2, r_max^2]``, phase ``phi ~ U[0, max_phase]``, ``B_re, B_im ~ N(0,
s_B^2)`` (LRU: ``s_B^2 = 1/(2H)``), ``C_re, C_im ~ N(0, s_C^2/n)``, ``D ~ N(0,
s_D^2)``, ``g = sqrt(1 - |lambda|^2)``.  :class:`DiagonalSpec` holds these
numbers as exact rationals (a phase such as ``"pi/10"`` as an exact multiple of
pi, :func:`parse_phase`), the scaling (``"ntk"`` or ``"lru"``), whether
``gamma`` is tied to ``lambda``, and the per-group learning-rate multipliers of
the trainable groups :data:`DIAGONAL_GROUPS`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from fractions import Fraction
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Tuple

from theory.precision import Context, exact
from theory.spec import Scalar, SpecError, as_fraction, fraction_text, replace_fields

__all__ = ["DIAGONAL_GROUPS", "SCALINGS", "DiagonalSpec", "parse_phase", "check_lag_list"]

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
            out[f.name] = fraction_text(v) if isinstance(v, Fraction) else v
        return out


def check_lag_list(lag_list: Iterable[int]) -> List[int]:
    """The lags of ``lag_list`` as a list, checked: non-negative integers (any size)."""
    lags = list(lag_list)
    for l in lags:
        if isinstance(l, bool) or not isinstance(l, int) or l < 0:
            raise SpecError(f"lags must be non-negative integers, got {l!r}")
    return lags
