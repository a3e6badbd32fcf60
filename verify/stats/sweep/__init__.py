"""Width sweeps: the empirical lag Gram against its closed form, with statistics.

For every width ``n`` and seed ``s`` a network is drawn (:func:`verify.engine.rnn.init_rnn`),
its lag Gram ``Theta_n`` computed exactly (:func:`verify.engine.ntk.lag_gram`) and compared
with the limit ``Theta_inf = diag(beta) (x) I / n_x`` (:func:`verify.engine.ntk.limit_lag_gram`,
``beta`` from :mod:`theory`).  Per draw, only a few numbers come back
(:func:`verify.stats.sweep.stats.lag_gram_errors`):

* ``frob``: ``||Theta_n - Theta_inf||_F / ||Theta_inf||_F``;
* ``diag_rel[l]``: the same on the lag-diagonal block ``Theta_n[l, :, :, l, :, :]``;
* ``diag_signed[l]``: mean over ``(a, i)`` of ``Theta_n[l, a, i, l, a, i]`` minus
  ``beta_l / n_x`` (signed, absolute units): the seed mean of this is the bias;
* ``offdiag``: the Frobenius norm of ``Theta_n`` off the main diagonal of its
  ``(L n_y n_x)``-square matrix form (where the limit is 0), over ``||Theta_inf||_F``.

What theory predicts (docs/theory.md, section 'Finite width: exact moments of
the lag Gram'): entries fluctuate by ``O(n^-1/2)``; the mean has an ``O(1/n^2)`` diagonal bias and
``O(1/n)`` couplings off the diagonal, both growing with the lag.  Hence
``e_n = n^-1/2 ||G + n^-1/2 H||`` with ``G`` Gaussian, and (``G -> -G`` symmetry
kills the ``n^-1/2`` term of an even function)

    E log e_n = a - (1/2) log n + c / n + O(n^-3/2).

Statistics (all at confidence level ``confidence``, default 0.99), see
:mod:`verify.stats.sweep.stats`:

* seed means with Student-t intervals (per width, ``S - 1`` degrees of freedom);
* the exponent ``p``: ordinary least squares of the per-seed ``log e`` on
  ``[1, log n, 1/n]`` (model ``"corrected"``, the default: the ``c/n`` column
  absorbs the O(1/n) correction so ``p`` estimates the asymptotic exponent) or on
  ``[1, log n]`` (model ``"plain"``), with the classical t interval (``N - k`` dof).
  Draws are independent across (width, seed), and ``log e`` is roughly
  homoscedastic (the law of ``e sqrt n`` has a width-independent limit).  Both
  slopes are always reported;
* the band at the largest width: the law with the theoretical exponent,
  ``log e + (1/2) log n = a + c/n``, is fitted on the *other* widths and the
  t prediction interval for the mean of ``S`` new ``log e`` at ``n_max`` is formed;
  its image ``exp(.) n_max^-1/2`` is the band for the geometric seed mean there;
* the bias: ``n`` times the seed-mean relative signed diagonal error per lag and
  width with its t interval, beside the exact finite-width mean's value (falls like
  ``1/n`` for the metrics ntk and variance, whose diagonal bias is ``O(1/n^2)``;
  the interval grows like ``sqrt n`` because fluctuations are ``O(n^-1/2)``, so the
  bias is resolved only with many seeds at small widths: the *bias probe*).

Verdict: the exact finite-width test decides (:func:`verify.stats.exact.exact_test`,
rule ``exact`` of :func:`verify.stats.sweep.verdict.verdict`): every draw keeps its lag
Gram, and the seed means at every width (the sweep's and the bias probe's draws
together) are tested against their exact finite-width means, with a
false-failure probability of at most ``1 - confidence`` (1 % by default; 0 false
failures in 200 repetitions measured by ``tests/test_exact.py``).  The verdict
states its power: the smallest uniform error in ``beta``, and in a single
``beta_l``, that the run detects with probability 0.99 (the default job: about
0.6 % and 0.9 %).  The rate rules (``rate``, ``decay``, ``band``) stay, as
information: on 30 independent repetitions of the default job's draws (base
seeds 0..29) none failed; the corrected slopes had mean -0.503 and sd 0.083,
whereas the plain model's 99 % interval missed -1/2 in 4 of 30 (the O(1/n)
correction biases it at widths 128..512): why "corrected" is the default.

Modules, in the order a sweep runs through them: :mod:`~verify.stats.sweep.plan`
(the frozen :class:`SweepPlan`), :mod:`~verify.stats.sweep.draws` (task seeds, tasks,
executors; each draw crosses into numpy once), :mod:`~verify.stats.sweep.stats`
(intervals, slope fit, band, lag-Gram error measures), :mod:`~verify.stats.sweep.verdict`
(the rules), :mod:`~verify.stats.sweep.result` (:class:`SweepResult`, :func:`summarize`)
and :mod:`~verify.stats.sweep.report` (JSON).  Where the arrays are computed is one
:class:`verify.engine.backend.ComputeOptions`.

Every task is a picklable top-level function of a frozen dataclass, so any
``concurrent.futures.Executor`` (process pools, Dask, Ray) can run it; the
result is a pure function of the inputs (timings aside).
"""
from __future__ import annotations

import numpy as np

from theory.spec import SpecError
from verify.engine.backend import ComputeOptions
from verify.engine.ntk import lag_weights_float64, limit_lag_gram
from verify.stats.sweep.draws import (
    BiasProbe,
    SweepDraws,
    SweepTask,
    TaskResult,
    run_draws,
    run_task,
    task_seed_sequence,
)
from verify.stats.sweep.plan import SweepPlan
from verify.stats.sweep.report import report_dict
from verify.stats.sweep.result import SweepResult, summarize
from verify.stats.sweep.stats import (
    SLOPE_MODELS,
    THEORY_EXPONENT,
    Band,
    LogFit,
    SlopeFit,
    SweepStatistics,
    error_statistics,
    fit_slope,
    lag_gram_errors,
    prediction_band,
    t_interval,
)
from verify.stats.sweep.verdict import RULES, Rule, Verdict

__all__ = [
    "sweep",
    "SweepPlan",
    "ComputeOptions",
    "SweepTask",
    "TaskResult",
    "BiasProbe",
    "SweepDraws",
    "SweepStatistics",
    "LogFit",
    "SlopeFit",
    "Band",
    "Rule",
    "Verdict",
    "SweepResult",
    "RULES",
    "SLOPE_MODELS",
    "THEORY_EXPONENT",
    "task_seed_sequence",
    "lag_gram_errors",
    "run_task",
    "run_draws",
    "summarize",
    "error_statistics",
    "fit_slope",
    "prediction_band",
    "t_interval",
    "report_dict",
]

def sweep(plan: SweepPlan, *, compute: ComputeOptions = ComputeOptions(), executor=None,
          progress: bool = True) -> SweepResult:
    """Run every draw of ``plan`` on ``compute`` and summarize (:func:`summarize`).

    ``executor``: any ``concurrent.futures.Executor`` (its ``map`` runs
    :func:`run_task` on picklable :class:`SweepTask` objects; results come back
    in order), or ``None`` for serial.  Results do not depend on the executor.
    ``progress``: a bar on standard error (drawn on a terminal only).

    The bias probe (``plan.bias_seeds > 0``) shares the sweep's draws where they
    coincide.  The bias is O(1/n^2) on the diagonal while fluctuations are O(n^-1/2), so it is
    resolved only with many seeds at small widths, where draws are cheap.  The
    probe's draws enter the exact test (small widths carry most of its power).
    """

    if not isinstance(plan, SweepPlan):
        raise SpecError(f"plan must be a SweepPlan, got {type(plan).__name__}")
    if not isinstance(compute, ComputeOptions):
        raise SpecError(f"compute must be ComputeOptions, got {type(compute).__name__}")
    compute.backend_namespace()  # fail early, in this process, with one line
    beta = lag_weights_float64(plan.spec, plan.lags)
    limit = limit_lag_gram(plan.spec, plan.lags)
    if not np.any(limit):
        raise SpecError("the closed-form lag Gram is zero (every group frozen?); relative errors are undefined")
    draws = run_draws(plan, limit, compute=compute, executor=executor, progress=progress)
    return summarize(plan, draws, beta, compute=compute)
