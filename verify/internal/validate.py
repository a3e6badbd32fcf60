"""One place for the checks of command-line arguments and inputs.

Every check raises :class:`verify.internal.errors.BadInput` with one line that names the
flag, the value and what was expected; commands call these before any work.  The size
limits (memory and time a request may take) live in :mod:`verify.internal.limits`.
"""
from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from theory.precision import MAX_DPS, MIN_DPS
from verify.internal.errors import BadInput

__all__ = [
    "integer",
    "positive_int",
    "lags",
    "int_list",
    "dps",
    "number",
    "path_text",
]


def integer(value, flag: str, *, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    """An integer (not a bool; numpy integers and integer strings accepted) within the bounds."""
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise BadInput(f"{flag}: expected an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise BadInput(f"{flag}: expected an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        what = "a positive integer" if minimum == 1 else f"at least {minimum}"
        raise BadInput(f"{flag} must be {what}, got {value}")
    if maximum is not None and value > maximum:
        raise BadInput(f"{flag} must be at most {maximum}, got {value}")
    return value


def positive_int(value, flag: str) -> int:
    """A positive integer (a count, a width, a dimension)."""
    return integer(value, flag, minimum=1)


def lags(value, flag: str = "--lags") -> int:
    """A number of lags: a positive integer (its size is checked with the cost of the request)."""
    return integer(value, flag, minimum=1)


def int_list(values, flag: str, *, minimum: int = 1, distinct: bool = True, at_least: int = 1) -> Tuple[int, ...]:
    """Integers from a comma-separated text or a sequence, each ``>= minimum``, distinct if asked."""
    if isinstance(values, str):
        parts = [v for v in values.replace(" ", "").split(",") if v != ""]
        try:
            values = [int(v) for v in parts]
        except ValueError:
            raise BadInput(f"{flag}: expected comma-separated integers, got {values!r}") from None
    try:
        out = tuple(integer(v, flag, minimum=minimum) for v in values)
    except TypeError:
        raise BadInput(f"{flag}: expected integers, got {values!r}") from None
    if len(out) < at_least:
        raise BadInput(f"{flag}: expected at least {at_least} integer(s), got {len(out)}")
    if distinct and len(set(out)) != len(out):
        raise BadInput(f"{flag}: values must be distinct, got {list(out)}")
    return out


def dps(value, flag: str = "--dps") -> int:
    """Decimal digits requested by the user, between ``theory.precision.MIN_DPS`` and ``MAX_DPS``.

    Checked before any guard digits are added: ``--dps 100000`` (the maximum) is valid.
    """
    v = integer(value, flag)
    if not MIN_DPS <= v <= MAX_DPS:
        raise BadInput(f"{flag}: dps must be between {MIN_DPS} and {MAX_DPS}, got {v}")
    return v


def number(value, flag: str, *, minimum: Optional[float] = None, maximum: Optional[float] = None,
           open_minimum: bool = False, open_maximum: bool = False) -> float:
    """A finite float within ``[minimum, maximum]`` (ends excluded when ``open_*``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{flag}: expected a number, got {value!r}") from None
    lo = "(" if open_minimum else "["
    hi = ")" if open_maximum else "]"
    rng = f"{lo}{'-inf' if minimum is None else f'{minimum:g}'}, {'inf' if maximum is None else f'{maximum:g}'}{hi}"
    bad = not math.isfinite(v)
    if minimum is not None and (v < minimum or (open_minimum and v == minimum)):
        bad = True
    if maximum is not None and (v > maximum or (open_maximum and v == maximum)):
        bad = True
    if bad:
        raise BadInput(f"{flag} must be a number in {rng}, got {value}")
    return v


def path_text(value, flag: str) -> str:
    """A non-empty path (``""`` would silently mean the current folder)."""
    text = "" if value is None else str(value)
    if not text.strip():
        raise BadInput(f"{flag}: expected a path, got an empty string")
    if "\x00" in text:
        raise BadInput(f"{flag}: a path cannot contain a NUL character")
    return text
