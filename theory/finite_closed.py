"""Closed forms in the lag for the leading finite-width corrections of the lag Gram.

The exact engine (:mod:`theory.finite_width`) gives every coefficient at every
lag it reaches; these formulas give the leading ones at *every* lag.  They are
exact rational interpolations of the engine's values, confirmed on every
further lag the engine reaches (``tests/test_finite_closed.py`` checks each one
for ``l <= 15``): checked, not proven.  Notation of :mod:`theory.finite_width`
(spec-free ``theta_g``, ``W~`` with ``N(0, 1/n)`` entries); ``e_l = 1 - (-1)^l``.

* diagonal means have no ``1/n`` term; their ``1/n^2`` coefficients are
  ``E theta_C(l, l)``, ``E theta_F(l, l)``: ``l^4/24 + l^3/3 - l^2/6 - l/3 + e_l/16``;
  ``E theta_W(l, l)``: ``l^5/24 + 13 l^4/48 - 3 l^3/8 - l^2/3 + l/3 + e_l/32``;
* couplings, ``l > l'`` with ``l - l'`` even: the ``1/n`` coefficient of
  ``E theta_C(l, l')`` and ``E theta_F(l, l')`` is ``l' + 1``, that of
  ``E theta_W(l, l')`` is ``l' (l' + 1)``;
* leading variances: ``n Var theta_C(l, l) -> 2 (l + 1)`` (also ``theta_F``) and
  ``n Var theta_W(l, l) -> 2 l (l + 1)(2 l + 1) / 3``.

For metric ntk, conv1, ``n_x = n_y = 1`` and unit scales these add up to
:func:`ntk_diagonal_correction`, :func:`ntk_coupling` and :func:`ntk_variance`.
"""
from __future__ import annotations

from fractions import Fraction

__all__ = [
    "diag_correction",
    "coupling",
    "lead_variance",
    "ntk_diagonal_correction",
    "ntk_coupling",
    "ntk_variance",
]


def _lag(l: int, name: str = "l") -> int:
    if isinstance(l, bool) or not isinstance(l, int) or l < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {l!r}")
    return l


def diag_correction(group: str, l: int) -> Fraction:
    """The ``1/n^2`` coefficient of ``E theta_group(l, l)`` (group C, F or W).

    >>> diag_correction("C", 2), diag_correction("W", 2)
    (Fraction(2, 1), Fraction(2, 1))
    """
    l = _lag(l)
    e = Fraction(1 - (-1) ** l)
    if group in ("C", "F"):
        return Fraction(l**4, 24) + Fraction(l**3, 3) - Fraction(l**2, 6) - Fraction(l, 3) + e / 16
    if group == "W":
        return (Fraction(l**5, 24) + Fraction(13 * l**4, 48) - Fraction(3 * l**3, 8) - Fraction(l**2, 3)
                + Fraction(l, 3) + e / 32)
    raise ValueError(f"group must be C, F or W, got {group!r}")


def coupling(group: str, l: int, lp: int) -> Fraction:
    """The ``1/n`` coefficient of ``E theta_group(l, l')`` for ``l != l'`` (0 when ``l - l'`` is odd).

    >>> coupling("C", 3, 1), coupling("W", 3, 1)
    (Fraction(2, 1), Fraction(2, 1))
    """
    l, lp = _lag(l), _lag(lp, "l'")
    if l == lp:
        raise ValueError("coupling is for l != l' (the diagonal has no 1/n term)")
    if (l - lp) % 2:
        return Fraction(0)
    low = min(l, lp)
    if group in ("C", "F"):
        return Fraction(low + 1)
    if group == "W":
        return Fraction(low * (low + 1))
    raise ValueError(f"group must be C, F or W, got {group!r}")


def lead_variance(group: str, l: int) -> Fraction:
    """``lim n Var theta_group(l, l)``.

    >>> lead_variance("C", 0), lead_variance("W", 2)
    (Fraction(2, 1), Fraction(20, 1))
    """
    l = _lag(l)
    if group in ("C", "F"):
        return Fraction(2 * (l + 1))
    if group == "W":
        return Fraction(2 * l * (l + 1) * (2 * l + 1), 3)
    raise ValueError(f"group must be C, F or W, got {group!r}")


def ntk_diagonal_correction(l: int) -> Fraction:
    """``1/n^2`` coefficient of ``E Theta_n[l, l]`` (ntk, conv1, unit scales): C + F + W.

    >>> ntk_diagonal_correction(2), ntk_diagonal_correction(3)
    (Fraction(6, 1), Fraction(40, 1))
    """
    return 2 * diag_correction("C", l) + diag_correction("W", l)


def ntk_coupling(l: int, lp: int) -> Fraction:
    """``1/n`` coefficient of ``E Theta_n[l, l']``, ``l != l'`` (ntk, conv1, unit scales): ``(l'+1)(l'+2)``
    for the smaller lag ``l'`` when ``l - l'`` is even.

    >>> ntk_coupling(2, 0), ntk_coupling(3, 1)
    (Fraction(2, 1), Fraction(6, 1))
    """
    return 2 * coupling("C", l, lp) + coupling("W", l, lp)


def ntk_variance(l: int) -> Fraction:
    """``lim n Var Theta_n[l, l]`` (ntk, conv1, unit scales): ``2 (l+1)(l+2)(2l+3)/3``.

    Not the sum of the groups' variances: the C and W shares are correlated (their
    leading covariance is ``l (l + 1)``, found by the engine like the rest).

    >>> ntk_variance(0), ntk_variance(6)
    (Fraction(4, 1), Fraction(560, 1))
    """
    l = _lag(l)
    return Fraction(2 * (l + 1) * (l + 2) * (2 * l + 3), 3)
