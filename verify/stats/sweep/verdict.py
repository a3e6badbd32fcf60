"""The verdict of a width sweep: the exact finite-width test decides; the rate rules inform.

The decisive rule is ``exact``: the seed means of the lag Gram at every width
against their exact finite-width means (:func:`verify.stats.exact.exact_test`,
false-failure probability ``1 - confidence``).  The rules on the error's decay
(``rate``, ``decay``, ``band``) are evaluated and reported as information: they
cannot tell a correct closed form from one a few percent off, the exact test can.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple

from verify.stats.sweep.stats import THEORY_EXPONENT, SweepStatistics

__all__ = ["RULES", "Rule", "Verdict", "verdict", "exact_rule"]

#: The verdict's rules (name -> statement); each is evaluated by :func:`verdict`.
RULES = {
    "exact": ("the seed means of the lag Gram equal its exact finite-width means at every width "
              "(per-entry and uniform-contrast tests combined across widths)"),
    "rate": "the confidence interval of the fitted exponent p contains -1/2",
    "decay": "the confidence interval of p lies below 0 (the error does decrease with width)",
    "band": ("the geometric seed mean of the error at the largest width lies in the prediction band "
             "of the law e ~ n^-1/2 (1 + c/n) fitted on the other widths"),
}


@dataclass(frozen=True)
class Rule:
    """One rule of the verdict: its ``name``, the ``statement``, whether it ``passed``, the numbers,
    and whether it is ``decisive`` (informational rules are reported but do not decide)."""

    name: str
    statement: str
    passed: bool
    detail: str
    decisive: bool = True

    def to_dict(self) -> Dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Verdict:
    """The evaluated rules; :attr:`label` is ``"consistent"`` exactly when every decisive rule passed."""

    rules: Tuple[Rule, ...]

    @property
    def label(self) -> str:
        return "consistent" if all(r.passed for r in self.rules if r.decisive) else "inconsistent"


def exact_rule(test) -> Rule:
    """The decisive rule from a :class:`verify.stats.exact.ExactTest`."""
    md = test.min_detectable
    detail = (f"p = {test.p_value:.3g} (alpha = {test.alpha:g}); uniform-contrast z = {test.z_uniform:+.2f} "
              f"(critical {test.critical['uniform']:.2f}); max |z| over {len(test.entries)} entries "
              f"{float(abs(test.z_entries).max()) if test.z_entries.size else 0.0:.2f} "
              f"(critical {test.critical['entry']:.2f}); detects a uniform beta error of "
              f"{100 * md['uniform_beta']:.2g} % and a single beta_l error of "
              f"{100 * md['single_beta']['best']:.2g} % (lag {md['single_beta']['best_lag']}) with probability "
              f"{md['power']:g}")
    if test.deterministic_failures:
        detail += "; " + test.deterministic_failures[0]
    return Rule("exact", RULES["exact"], test.consistent, detail)


def verdict(stats: SweepStatistics, exact=None) -> Verdict:
    """Evaluate :data:`RULES` on ``stats`` (and on ``exact``, a :class:`verify.stats.exact.ExactTest`).

    With ``exact`` the ``exact`` rule decides (false-failure probability at most its
    ``alpha``, by construction and as measured) and the three rate rules below are
    informational; without it (draws that kept no lag Grams) the rate rules decide.

    ``rate``: ``-1/2`` in the slope interval; ``decay``: the interval's upper end
    ``< 0``; ``band``: the geometric seed mean at the largest width inside the
    prediction band.  Each of ``rate`` and ``band`` fails with probability
    ``1 - confidence`` when the theorem holds (t intervals under the models
    stated in :func:`verify.stats.sweep.stats.fit_slope` and
    :func:`verify.stats.sweep.stats.prediction_band`); ``decay`` with about
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
    informational = exact is not None
    rate_rules = (
        Rule("rate", RULES["rate"], bool(lo <= THEORY_EXPONENT <= hi),
             f"p = {fit.slope:.4f}, {pct} interval [{lo:.4f}, {hi:.4f}] ({fit.model} model)", not informational),
        Rule("decay", RULES["decay"], bool(hi < 0),
             f"upper end {hi:.4f}" + ("" if hi < 0 or (hi - lo) / 2 < 0.5 else
                                      f" (interval half-width {(hi - lo) / 2:.2f}: too little power; "
                                      "add seeds or a wider range of widths)"), not informational),
        Rule("band", RULES["band"], band.contains,
             f"geometric mean {band.observed:.4g} at n = {band.width}, {pct} band "
             f"[{band.lower:.4g}, {band.upper:.4g}]", not informational),
    )
    return Verdict(((exact_rule(exact),) if informational else ()) + rate_rules)
