"""Polynomials in ``1/n`` with exact rational coefficients: the moments of the finite-width lag Gram.

Every moment of the lag Gram at width ``n`` (:mod:`theory.finite_width`) is an
exact polynomial ``p(n) = sum_(k=0)^K c_k n^-k`` with rational ``c_k``.
:class:`InvPoly` stores ``(c_0, ..., c_K)`` with trailing zero coefficients
dropped (the zero polynomial is ``()``, of degree ``-1``); sums, differences,
products, scaling by ``factor * n^-shift`` and truncation to ``n^-order`` are
exact, and ``p(n)`` evaluates exactly (a :class:`~fractions.Fraction`).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, List, Optional, Tuple, Union

__all__ = ["InvPoly"]


@dataclass(frozen=True)
class InvPoly:
    """``sum_k coeffs[k] n^-k`` with exact rational coefficients.

    >>> p = InvPoly.of([4, 0, 6])
    >>> str(p)
    '4 + 6/n^2'
    >>> p(2)
    Fraction(11, 2)
    """

    coeffs: Tuple[Fraction, ...]

    @staticmethod
    def of(values: Iterable[Union[int, Fraction, str]]) -> "InvPoly":
        out = [Fraction(v) for v in values]
        while out and out[-1] == 0:
            out.pop()
        return InvPoly(tuple(out))

    @staticmethod
    def zero() -> "InvPoly":
        return InvPoly(())

    def coeff(self, k: int) -> Fraction:
        """Coefficient of ``n^-k`` (0 beyond the stored ones)."""
        return self.coeffs[k] if 0 <= k < len(self.coeffs) else Fraction(0)

    @property
    def degree(self) -> int:
        """Highest power of ``1/n`` with a non-zero coefficient (-1 for zero)."""
        return len(self.coeffs) - 1

    def __add__(self, other: "InvPoly") -> "InvPoly":
        size = max(len(self.coeffs), len(other.coeffs))
        return InvPoly.of(self.coeff(k) + other.coeff(k) for k in range(size))

    def __sub__(self, other: "InvPoly") -> "InvPoly":
        return self + other.scale(-1)

    def __mul__(self, other: "InvPoly") -> "InvPoly":
        if not self.coeffs or not other.coeffs:
            return InvPoly.zero()
        out = [Fraction(0)] * (len(self.coeffs) + len(other.coeffs) - 1)
        for i, a in enumerate(self.coeffs):
            if a:
                for j, b in enumerate(other.coeffs):
                    out[i + j] += a * b
        return InvPoly.of(out)

    def scale(self, factor: Union[int, Fraction], shift: int = 0) -> "InvPoly":
        """``factor * n^-shift * self`` (``shift >= 0``)."""
        if shift < 0:
            raise ValueError("shift must be >= 0")
        return InvPoly.of([Fraction(0)] * shift + [factor * c for c in self.coeffs])

    def truncate(self, order: Optional[int]) -> "InvPoly":
        """Keep the coefficients of ``n^0 .. n^-order`` (all for ``None``)."""
        return self if order is None else InvPoly.of(self.coeffs[: order + 1])

    def __call__(self, n: Union[int, Fraction]) -> Fraction:
        """Exact value at width ``n``."""
        inv = 1 / Fraction(n)
        total = Fraction(0)
        for c in reversed(self.coeffs):
            total = total * inv + c
        return total

    def strings(self) -> List[str]:
        """Coefficients as exact strings (``"3/2"``, ``"-7"``), for JSON."""
        return [str(c) for c in self.coeffs]

    def __str__(self) -> str:
        if not self.coeffs:
            return "0"
        parts = []
        for k, c in enumerate(self.coeffs):
            if not c:
                continue
            mag = abs(c)
            num = str(mag)
            if k == 0:
                term = num
            else:
                power = "n" if k == 1 else f"n^{k}"
                term = f"{num}/{power}" if mag.denominator == 1 else f"({num})/{power}"
            parts.append(("- " if c < 0 else "+ ") + term)
        text = " ".join(parts)
        return text[2:] if text.startswith("+ ") else "-" + text[2:]
