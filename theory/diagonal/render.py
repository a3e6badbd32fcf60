"""Decimal text of the exact side's mpmath matrices (lag kernels), for JSON and the terminal."""
from __future__ import annotations

from typing import Any, List, Sequence

import mpmath

__all__ = ["to_strings"]


def to_strings(mat: Sequence[Sequence[Any]], digits: int) -> List[List[str]]:
    """Decimal strings of a matrix (list of lists) of mpmath numbers, ``digits`` significant digits
    with trailing zeros kept.

    >>> to_strings([[mpmath.mpf(1) / 3, mpmath.mpf(2)]], 4)
    [['0.3333', '2.000']]
    """
    return [[mpmath.nstr(v, digits, strip_zeros=False) for v in row] for row in mat]
