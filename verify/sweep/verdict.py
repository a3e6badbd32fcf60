"""The verdict of a width sweep: three rules on its statistics, all must hold.

Self-contained on purpose: :func:`verdict` reads only a
:class:`verify.sweep.stats.SweepStatistics` and returns a :class:`Verdict`, so
another rule (an exact finite-width test, say) replaces this module alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

from .stats import THEORY_EXPONENT, SweepStatistics

__all__ = ["RULES", "Rule", "Verdict", "verdict"]

#: The verdict's rules (name -> statement); each is evaluated by :func:`verdict`.
RULES = {
    "rate": "the confidence interval of the fitted exponent p contains -1/2",
    "decay": "the confidence interval of p lies below 0 (the error does decrease with width)",
    "band": ("the geometric seed mean of the error at the largest width lies in the prediction band "
             "of the law e ~ n^-1/2 (1 + c/n) fitted on the other widths"),
}


@dataclass(frozen=True)
class Rule:
    """One rule of the verdict: its ``name``, the ``statement``, whether it ``passed`` and the numbers."""

    name: str
    statement: str
    passed: bool
    detail: str

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Verdict:
    """The evaluated rules; :attr:`label` is ``"consistent"`` exactly when every rule passed."""

    rules: Tuple[Rule, ...]

    @property
    def label(self) -> str:
        return "consistent" if all(r.passed for r in self.rules) else "inconsistent"


def verdict(stats: SweepStatistics) -> Verdict:
    """Evaluate :data:`RULES` on ``stats``.

    ``rate``: ``-1/2`` in the slope interval; ``decay``: the interval's upper end
    ``< 0``; ``band``: the geometric seed mean at the largest width inside the
    prediction band.  Each of ``rate`` and ``band`` fails with probability
    ``1 - confidence`` when the theorem holds (t intervals under the models
    stated in :func:`verify.sweep.stats.fit_slope` and
    :func:`verify.sweep.stats.prediction_band`); ``decay`` with about
    ``P(t > 1/(2 se) - t_q)``, negligible when the slope's standard error ``se``
    is well below ``1/(4 t_q)`` (~0.09 at 99 %; the default job has ~0.08, its
    upper end sits near -0.26).  A sweep with too few seeds or too narrow a
    range of widths fails ``decay`` for lack of power: "inconsistent" then means
    "not verified" (the rule's detail says so).  Union bound for a powered
    sweep: false-failure probability ``<= 2(1 - confidence)``.
    """
    fit, band = stats.slope, stats.band
    lo, hi = fit.interval
    pct = f"{100 * stats.confidence:g}%"
    return Verdict((
        Rule("rate", RULES["rate"], bool(lo <= THEORY_EXPONENT <= hi),
             f"p = {fit.slope:.4f}, {pct} interval [{lo:.4f}, {hi:.4f}] ({fit.model} model)"),
        Rule("decay", RULES["decay"], bool(hi < 0),
             f"upper end {hi:.4f}" + ("" if hi < 0 or (hi - lo) / 2 < 0.5 else
                                      f" (interval half-width {(hi - lo) / 2:.2f}: too little power; "
                                      "add seeds or a wider range of widths)")),
        Rule("band", RULES["band"], band.contains,
             f"geometric mean {band.observed:.4g} at n = {band.width}, {pct} band "
             f"[{band.lower:.4g}, {band.upper:.4g}]"),
    ))
