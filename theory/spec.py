"""The network specification that flows through the whole toolkit.

A :class:`RNNSpec` fixes everything the closed form depends on: dimensions, the
initialization scales, the gradient metric, the indexing convention and the
per-group learning-rate multipliers.  Widths and seeds are *not* part of it:
they belong to a finite-width draw (``verify``).

Scales are stored as exact rationals (:class:`fractions.Fraction`): ``"0.9"``
means 9/10 exactly, a float means its exact binary value.  The exact side
evaluates them at any precision, the finite-width side rounds them to float64.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING, Mapping, Optional, Union

__all__ = ["RNNSpec", "SpecError", "Scalar", "METRICS", "CONVENTIONS", "GROUPS", "MAX_SCALE_DIGITS", "as_fraction",
           "fraction_text", "replace_fields", "to_float64"]

METRICS = ("ntk", "variance", "standard")
CONVENTIONS = ("conv1", "conv2")
GROUPS = ("C", "F", "W", "D")

Scalar = Union[int, float, str, Fraction, Decimal]


class SpecError(ValueError):
    """A field of a specification (or an argument that refers to one) is invalid."""


#: A scale is an exact rational p/q with p, q < 10^MAX_SCALE_DIGITS: at most 1000 significant
#: digits, between 10^-1000 and 10^1000.  Beyond that, the exact powers s^(2l) and their
#: conversions cost time quadratic in the digits (10^1000000 takes minutes per operation),
#: and no float64 computation could use the value (float64 ends at 1.8e308).
MAX_SCALE_DIGITS = 1000
_SCALE_BOUND = 10**MAX_SCALE_DIGITS
_EXPONENT = re.compile(r"[eE]\s*([+-]?\d+)\s*$")


def _check_magnitude(frac: Fraction, name: str, shown: object) -> Fraction:
    if frac.numerator >= _SCALE_BOUND or frac.denominator >= _SCALE_BOUND:
        text = str(shown)
        text = text if len(text) <= 40 else text[:37] + "..."
        raise SpecError(f"{name} = {text} is out of range: a value must be an exact rational p/q with "
                        f"p, q < 10^{MAX_SCALE_DIGITS} (at most {MAX_SCALE_DIGITS} digits, "
                        f"between 10^-{MAX_SCALE_DIGITS} and 10^{MAX_SCALE_DIGITS})")
    return frac


def _check_text(text: str, name: str) -> None:
    """Refuse texts whose parsing alone would be absurd (before ``Fraction`` computes 10^exponent)."""
    if len(text) > 4 * MAX_SCALE_DIGITS + 64:
        raise SpecError(f"{name}: a number of {len(text)} characters is out of range "
                        f"(at most {MAX_SCALE_DIGITS} digits)")
    m = _EXPONENT.search(text)
    if m and abs(int(m.group(1))) > 2 * MAX_SCALE_DIGITS:
        raise SpecError(f"{name} = {text if len(text) <= 40 else text[:37] + '...'} is out of range: "
                        f"the exponent must be within +-{MAX_SCALE_DIGITS} (values between 10^-{MAX_SCALE_DIGITS} "
                        f"and 10^{MAX_SCALE_DIGITS})")


def as_fraction(value: Scalar, name: str, *, allow_zero: bool = True) -> Fraction:
    """Convert ``value`` to an exact non-negative rational, or raise :class:`SpecError`.

    Values must be finite and within :data:`MAX_SCALE_DIGITS` (see there).

    >>> as_fraction("0.9", "sigma_w")
    Fraction(9, 10)
    >>> as_fraction(-1, "sigma_f")
    Traceback (most recent call last):
    ...
    theory.spec.SpecError: sigma_f must be >= 0, got -1
    """
    if isinstance(value, bool):
        raise SpecError(f"{name} must be a number, got {value!r}")
    try:
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(f"{name} must be finite, got {value!r}")
        if isinstance(value, str):
            text = value.strip()
            if text.lower() in {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity"}:
                raise SpecError(f"{name} must be finite, got {value!r}")
            _check_text(text, name)
            frac = Fraction(text)
        elif isinstance(value, Decimal):
            if not value.is_finite():
                raise SpecError(f"{name} must be finite, got {value!r}")
            frac = Fraction(value)
        elif isinstance(value, (int, float, Fraction)):
            frac = Fraction(value)
        else:
            # numpy scalars and the like
            as_float = float(value)
            if not math.isfinite(as_float):
                raise SpecError(f"{name} must be finite, got {value!r}")
            frac = Fraction(as_float)
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        if isinstance(exc, SpecError):
            raise
        raise SpecError(f"{name} must be a number, got {value!r}") from None
    _check_magnitude(frac, name, value)
    if frac < 0:
        raise SpecError(f"{name} must be >= 0, got {value}")
    if not allow_zero and frac == 0:
        raise SpecError(f"{name} must be > 0, got {value}")
    return frac


def to_float64(value: Fraction, what: str) -> float:
    """``value`` rounded to float64, or :class:`SpecError` naming ``what`` when it overflows.

    >>> to_float64(Fraction(9, 10), "s_W")
    0.9
    """
    try:
        out = float(value)
    except OverflowError:
        out = math.inf
    if not math.isfinite(out):
        raise SpecError(f"{what} does not fit in float64 (max 1.8e308)")
    return out


@dataclass(frozen=True)
class RNNSpec:
    """Specification of a linear RNN and of the gradient descent that trains it.

    Model (``conv1``): ``h_t = W h_{t-1} + F x_t``, ``y_t = C h_t + D x_t``;
    (``conv2``): ``h_{t+1} = W h_t + F x_t``, ``y_t = C h_t + D x_t``.
    Initialization: ``W_ij ~ N(0, s_W^2/n)``, ``F_ij ~ N(0, s_F^2/n_x)``,
    ``C_ij ~ N(0, s_C^2/n)``, ``D_ij ~ N(0, s_D^2/n_x)``; ``sigma_d=None`` means
    the model has no feed-through term D.

    ``metric`` selects the variables gradient descent moves (``"ntk"``,
    ``"variance"`` or ``"standard"``, see docs/theory.md, section "Initialization and
    metrics");
    ``lr_*`` multiply each group's share of the NTK (0 freezes the group).
    """

    sigma_w: Fraction
    sigma_f: Fraction = Fraction(1)
    sigma_c: Fraction = Fraction(1)
    sigma_d: Optional[Fraction] = None
    n_x: int = 1
    n_y: int = 1
    metric: str = "ntk"
    convention: str = "conv1"
    lr_w: Fraction = Fraction(1)
    lr_f: Fraction = Fraction(1)
    lr_c: Fraction = Fraction(1)
    lr_d: Fraction = Fraction(1)

    if TYPE_CHECKING:  # what the constructor accepts; __post_init__ stores every scale as a Fraction

        def __init__(
            self,
            sigma_w: Scalar,
            sigma_f: Scalar = ...,
            sigma_c: Scalar = ...,
            sigma_d: Optional[Scalar] = ...,
            n_x: int = ...,
            n_y: int = ...,
            metric: str = ...,
            convention: str = ...,
            lr_w: Scalar = ...,
            lr_f: Scalar = ...,
            lr_c: Scalar = ...,
            lr_d: Scalar = ...,
        ) -> None: ...

    def __post_init__(self) -> None:
        for name in ("sigma_w", "sigma_f", "sigma_c", "lr_w", "lr_f", "lr_c", "lr_d"):
            object.__setattr__(self, name, as_fraction(getattr(self, name), name))
        if self.sigma_d is not None:
            object.__setattr__(self, "sigma_d", as_fraction(self.sigma_d, "sigma_d"))
        for name in ("n_x", "n_y"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
                raise SpecError(f"{name} must be a positive integer, got {value!r}")
            value = int(value)
            if value < 1:
                raise SpecError(f"{name} must be a positive integer, got {value}")
            object.__setattr__(self, name, value)
        if self.metric not in METRICS:
            raise SpecError(f"metric must be one of {', '.join(METRICS)}; got {self.metric!r}")
        if self.convention not in CONVENTIONS:
            raise SpecError(
                f"convention must be one of {', '.join(CONVENTIONS)}; got {self.convention!r}"
            )

    # ------------------------------------------------------------------ helpers
    @property
    def has_d(self) -> bool:
        """Whether the model has a feed-through term D."""
        return self.sigma_d is not None

    @property
    def groups(self) -> tuple:
        """Parameter groups present in the model (D only when ``sigma_d`` is set)."""
        return GROUPS if self.has_d else GROUPS[:3]

    def lr(self, group: str) -> Fraction:
        """Learning-rate multiplier of ``group`` ("C", "F", "W" or "D")."""
        return getattr(self, "lr_" + group.lower())

    def sigma(self, group: str) -> Fraction:
        """Initialization scale of ``group``; 0 for an absent D."""
        value = getattr(self, "sigma_" + group.lower())
        return Fraction(0) if value is None else value

    def float64(self, name: str) -> float:
        """Field ``name`` (e.g. ``"sigma_w"``, ``"lr_c"``) rounded to float64; a clear error on overflow."""
        value = getattr(self, name)
        value = Fraction(0) if value is None else value
        return to_float64(value, f"{name} = {short_text(value)}")

    def replace(self, **changes) -> "RNNSpec":
        """A copy with some fields changed (validated again)."""
        return replace_fields(self, changes)

    def to_dict(self) -> Mapping[str, object]:
        """JSON-friendly description (scales as decimal strings when exact, else p/q)."""

        def show(v):
            if isinstance(v, Fraction):
                return fraction_text(v)
            return v

        return {f.name: show(getattr(self, f.name)) for f in fields(self)}


def replace_fields(obj, changes: Mapping[str, object]):
    """A copy of the frozen dataclass ``obj`` with ``changes`` applied, validated again by its constructor."""
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    unknown = set(changes) - set(values)
    if unknown:
        raise SpecError(f"unknown field(s) {', '.join(sorted(unknown))}")
    values.update(changes)
    return type(obj)(**values)


def short_text(v: Fraction, digits: int = 6) -> str:
    """A readable text for a rational: its exact decimal if short, else ``digits`` significant digits
    in scientific notation (``1e+400``, ``3.33333e-1``)."""
    text = fraction_text(v)
    if len(text) <= 24:
        return text
    from decimal import localcontext

    with localcontext() as dctx:
        dctx.prec = digits
        dctx.Emax, dctx.Emin = 10**9, -(10**9)
        return str((Decimal(v.numerator) / Decimal(v.denominator)).normalize()).replace("E", "e")


def fraction_text(v: Fraction) -> str:
    """Shortest exact text for a rational: a terminating decimal if one exists, else p/q."""
    den = v.denominator
    twos = fives = 0
    while den % 2 == 0:
        den //= 2
        twos += 1
    while den % 5 == 0:
        den //= 5
        fives += 1
    if den != 1:
        return f"{v.numerator}/{v.denominator}"
    digits = max(twos, fives)
    text = str(Decimal(v.numerator) / Decimal(v.denominator)) if digits < 28 else None
    if text is None or Fraction(Decimal(text)) != v:
        from decimal import localcontext

        with localcontext() as dctx:
            dctx.prec = len(str(v.numerator)) + digits + 5
            text = str(Decimal(v.numerator) / Decimal(v.denominator))
    return text
