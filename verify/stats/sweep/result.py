"""The result of a width sweep: plan, draws, statistics and verdict in one frozen object.

:func:`summarize` builds it from numpy draws (a pure function; :func:`verify.stats.sweep.sweep`
calls it); :class:`SweepResult` reads it back in the forms the tables, figures and
the JSON report need.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple

import numpy as np

from theory.finite_width import mean_lag_gram, variance_lag_gram
from theory.spec import RNNSpec, SpecError
from verify.engine.backend import ComputeOptions
from verify.stats.exact import DETERMINISTIC_RTOL, FLOAT32_RTOL, exact_test, predict
from verify.stats.sweep.draws import SweepDraws
from verify.stats.sweep.plan import SweepPlan
from verify.stats.sweep.report import report_dict
from verify.stats.sweep.stats import Band, SlopeFit, SweepStatistics, error_statistics, t_interval
from verify.stats.sweep.verdict import Rule, Verdict, verdict

__all__ = ["SweepResult", "summarize"]


@dataclass(frozen=True, eq=False)
class SweepResult:
    """Everything a sweep measured and concluded: the ``plan``, where it was computed
    (``compute``), the closed-form ``beta`` (L,), the numpy ``draws`` (widths ascending),
    their ``statistics`` and the ``outcome`` of the rules.

    The attributes below (``widths``, ``frob``, ``slope``, ``rules``, ``verdict``, ...)
    read these parts.
    """

    plan: SweepPlan
    compute: ComputeOptions
    beta: np.ndarray
    draws: SweepDraws
    statistics: SweepStatistics
    outcome: Verdict
    exact: Optional[Any] = None  # verify.stats.exact.ExactTest of the draws' lag Grams
    predicted_error: Optional[np.ndarray] = None  # predicted RMS relative Frobenius error per width

    # ------------------------------------------------------------ plan
    @property
    def spec(self) -> RNNSpec:
        return self.plan.spec

    @property
    def lags(self) -> int:
        return self.plan.lags

    @property
    def base_seed(self) -> int:
        return self.plan.base_seed

    @property
    def confidence(self) -> float:
        return self.plan.confidence

    # ------------------------------------------------------------ draws
    @property
    def widths(self) -> Tuple[int, ...]:
        return self.draws.widths

    @property
    def seeds(self) -> Tuple[int, ...]:
        return self.draws.seeds

    @property
    def frob(self) -> np.ndarray:
        """Relative Frobenius errors (K, S)."""
        return self.draws.frob

    @property
    def diag_rel(self) -> np.ndarray:
        """Relative errors of the lag-diagonal blocks (K, S, L)."""
        return self.draws.diag_rel

    @property
    def diag_signed(self) -> np.ndarray:
        """Mean diagonal entry minus ``beta_l / n_x`` (K, S, L)."""
        return self.draws.diag_signed

    @property
    def offdiag(self) -> np.ndarray:
        """Off-diagonal mass over ``||Theta_inf||_F`` (K, S)."""
        return self.draws.offdiag

    @property
    def seconds(self) -> Optional[np.ndarray]:
        """Wall time of each draw (K, S)."""
        return self.draws.seconds

    @property
    def wall_seconds(self) -> float:
        return self.draws.wall_seconds

    @property
    def bias_widths(self) -> Tuple[int, ...]:
        return () if self.draws.probe is None else self.draws.probe.widths

    @property
    def bias_seeds(self) -> Tuple[int, ...]:
        return () if self.draws.probe is None else self.draws.probe.seeds

    @property
    def bias_diag_signed(self) -> Optional[np.ndarray]:
        return None if self.draws.probe is None else self.draws.probe.diag_signed

    # ------------------------------------------------------------ statistics and verdict
    @property
    def slope(self) -> SlopeFit:
        return self.statistics.slope

    @property
    def band(self) -> Band:
        return self.statistics.band

    @property
    def rules(self) -> Tuple[Rule, ...]:
        return self.outcome.rules

    @property
    def verdict(self) -> str:
        """``"consistent"`` exactly when every rule passed, else ``"inconsistent"``."""
        return self.outcome.label

    # ------------------------------------------------------------ derived tables
    @property
    def seed_sequences(self) -> list:
        """``[base_seed, width, seed]`` of every draw (the entropy of its ``SeedSequence``)."""
        return [[self.base_seed, n, s] for n in self.widths for s in self.seeds]

    def frob_mean(self) -> Tuple[np.ndarray, np.ndarray]:
        """Seed mean of the relative Frobenius error per width and its t half-width."""
        return t_interval(self.frob, self.confidence, axis=1)

    def frob_geomean(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Geometric seed mean per width with the t interval of ``log e`` mapped back: (gm, lo, hi)."""
        m, h = t_interval(np.log(self.frob), self.confidence, axis=1)
        return np.exp(m), np.exp(m - h), np.exp(m + h)

    def rel_signed(self, probe: bool = False) -> np.ndarray:
        """Relative signed diagonal error ``diag_signed / (beta_l / n_x)`` (K, S, L); NaN where ``beta_l = 0``.
        ``probe=True``: of the bias probe's draws (:attr:`bias_widths` x :attr:`bias_seeds`)."""
        ref = self.beta / self.spec.n_x
        d = self.bias_diag_signed if probe else self.diag_signed
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ref > 0, d / np.where(ref > 0, ref, 1.0), np.nan)

    @property
    def has_probe(self) -> bool:
        """Whether the bias comes from a separate probe (more seeds at small widths)."""
        return self.draws.probe is not None

    def bias_source(self) -> Tuple[Tuple[int, ...], int]:
        """Widths and number of seeds the bias table is computed from."""
        if self.has_probe:
            return self.bias_widths, len(self.bias_seeds)
        return self.widths, len(self.seeds)

    def bias_table(self) -> Tuple[np.ndarray, np.ndarray]:
        """``n`` times the seed-mean relative signed diagonal error, per width and lag (K, L),
        and ``n`` times its t half-width, over the widths of :meth:`bias_source` (the probe
        when there is one); :meth:`exact_bias_table` is what the exact mean predicts for it.  The
        half-width grows like ``sqrt n`` (fluctuations are O(n^-1/2)), which is why the probe uses
        many seeds at small widths."""
        m, h = t_interval(self.rel_signed(self.has_probe), self.confidence, axis=1)
        n = np.asarray(self.bias_source()[0], dtype=np.float64)[:, None]
        return n * m, n * h

    def exact_bias_table(self) -> np.ndarray:
        """What the exact finite-width mean predicts for :meth:`bias_table`: ``n (E Theta_n[l, l] /
        (beta_l / n_x) - 1)`` per width of :meth:`bias_source` and lag (K, L); NaN where ``beta_l = 0``.
        For the metrics ntk and variance the diagonal mean has no ``1/n`` term, so these values fall
        like ``1/n``; for "standard" the F and D shares add a ``1/n`` term (docs/theory.md, section
        'Finite width: exact moments of the lag Gram')."""

        mean = mean_lag_gram(self.spec, self.lags)
        widths = self.bias_source()[0]
        out = np.full((len(widths), self.lags), np.nan)
        for l in range(self.lags):
            limit = mean.total[l][l].coeff(0)
            if limit:
                for k, n in enumerate(widths):
                    out[k, l] = float(n * (mean.total[l][l](n) / limit - 1))
        return out

    def to_dict(self, timings: bool = True) -> Dict[str, Any]:
        """JSON-friendly dictionary (:func:`verify.stats.sweep.report.report_dict`)."""

        return report_dict(self, timings=timings)


def summarize(plan: SweepPlan, draws: SweepDraws, beta: np.ndarray, *,
              compute: ComputeOptions = ComputeOptions()) -> SweepResult:
    """Statistics and verdict from per-draw numbers (a pure function; :func:`verify.stats.sweep.sweep` calls it).

    ``draws`` are reordered by ascending width; they must cover exactly ``plan.widths``
    and ``plan.seeds``.  The statistics are :func:`verify.stats.sweep.stats.error_statistics`
    at ``plan.confidence`` with ``plan.slope_model``; the rules are those of
    :func:`verify.stats.sweep.verdict.verdict`.
    """
    draws = draws.sorted_by_width()
    if draws.widths != plan.widths or draws.seeds != plan.seeds:
        raise SpecError(f"the draws (widths {list(draws.widths)}, seeds {list(draws.seeds)}) are not the plan's "
                        f"(widths {list(plan.widths)}, seeds {list(plan.seeds)})")
    stats = error_statistics(draws.widths, draws.frob, confidence=plan.confidence, slope_model=plan.slope_model)
    exact = None
    if draws.grams:
        rtol = FLOAT32_RTOL if compute.dtype == "float32" else DETERMINISTIC_RTOL
        exact = exact_test(predict(plan.spec, plan.lags, sorted(draws.grams)), draws.grams,
                           alpha=1 - plan.confidence, deterministic_rtol=rtol)
    return SweepResult(plan=plan, compute=compute, beta=np.asarray(beta, dtype=np.float64), draws=draws,
                       statistics=stats, outcome=verdict(stats, exact), exact=exact,
                       predicted_error=predicted_error(plan, draws.widths, beta))


def predicted_error(plan: SweepPlan, widths, beta: np.ndarray) -> Optional[np.ndarray]:
    """``sqrt(E ||Theta_n - Theta_inf||_F^2) / ||Theta_inf||_F`` at each width, from the exact mean
    (every order) and the exact leading (``1/n``) variance: the sum of
    :func:`theory.finite_width.expected_sq_error`, with the bias kept in full;
    ``None`` for ``n_x`` or ``n_y`` above 1, where it is not computed."""

    spec = plan.spec
    if spec.n_x != 1 or spec.n_y != 1:
        return None
    ref = float(np.linalg.norm(beta))
    if ref == 0:
        return None
    mean = mean_lag_gram(spec, plan.lags)
    var = variance_lag_gram(spec, plan.lags, order=1)
    out = []
    for n in widths:
        total = 0.0
        for l in range(plan.lags):
            for lp in range(plan.lags):
                bias = float(mean.total[l][lp](n) - mean.total[l][lp].coeff(0))
                total += float(var.total[l][lp](n)) + bias * bias
        out.append(np.sqrt(total) / ref)
    return np.asarray(out)
