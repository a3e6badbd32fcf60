"""The draws of a width sweep: one network per ``(width, seed)``, its lag Gram, its errors.

Every task is a picklable top-level function (:func:`run_task`) of a frozen
dataclass (:class:`SweepTask`), so any ``concurrent.futures.Executor`` (process
pools, Dask, Ray) can run it; the result is a pure function of the inputs
(timings aside).  :func:`run_task` is where a draw crosses from the backend into
numpy, once: everything it returns is numpy float64.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Dict, Optional, Tuple

import numpy as np

from theory.spec import RNNSpec
from verify.engine.backend import ComputeOptions, to_numpy
from verify.engine.ntk import lag_gram
from verify.engine.rnn import init_rnn
from verify.internal.executors import ordered_map
from verify.stats.sweep.plan import SweepPlan
from verify.stats.sweep.stats import lag_gram_errors

__all__ = ["task_seed_sequence", "SweepTask", "TaskResult", "run_task", "BiasProbe", "SweepDraws", "run_draws"]


def task_seed_sequence(base_seed: int, width: int, seed: int) -> np.random.SeedSequence:
    """The seed sequence of draw ``(width, seed)``: ``SeedSequence([base_seed, width, seed])``.

    Independent streams for every (width, seed); the same network for the same
    triple whatever else the sweep contains, or in which order it runs.
    """
    return np.random.SeedSequence([int(base_seed), int(width), int(seed)])


@dataclass(frozen=True)
class SweepTask:
    """One draw of a sweep: everything :func:`run_task` needs, picklable."""

    spec: RNNSpec
    width: int
    seed: int
    base_seed: int
    lags: int
    limit: np.ndarray  # float64 (L, n_y, n_x, L, n_y, n_x)
    compute: ComputeOptions = ComputeOptions()


@dataclass(frozen=True, eq=False)
class TaskResult:
    """The numbers of one draw (numpy float64); ``seconds`` is wall time of draw + lag Gram."""

    width: int
    seed: int
    frob: float
    diag_rel: np.ndarray
    diag_signed: np.ndarray
    offdiag: float
    seconds: float
    gram: Optional[np.ndarray] = None  # the lag Gram itself (L, n_y, n_x, L, n_y, n_x), for the exact test


def run_task(task: SweepTask) -> TaskResult:
    """Draw network ``(task.width, task.seed)``, compute its lag Gram, return its errors.

    Top level and pure (apart from ``seconds``), so any executor can run it.
    """

    be = task.compute.backend_namespace()
    rng = np.random.default_rng(task_seed_sequence(task.base_seed, task.width, task.seed))
    t0 = time.perf_counter()
    rnn = init_rnn(task.spec, task.width, rng, backend=be)
    gram = to_numpy(lag_gram(rnn, task.spec, task.lags).total)  # the one crossing into numpy
    be.synchronize()
    seconds = time.perf_counter() - t0
    del rnn
    err = lag_gram_errors(np.asarray(gram, dtype=np.float64), task.limit)
    return TaskResult(task.width, task.seed, err["frob"], err["diag_rel"], err["diag_signed"],
                      err["offdiag"], seconds, np.asarray(gram, dtype=np.float64))


@dataclass(frozen=True, eq=False)
class BiasProbe:
    """Extra draws for the bias table: ``diag_signed`` (K_b, S_b, L) at ``widths`` x ``seeds``."""

    widths: Tuple[int, ...]
    seeds: Tuple[int, ...]
    diag_signed: np.ndarray


@dataclass(frozen=True, eq=False)
class SweepDraws:
    """Every draw's numbers, numpy float64, widths along axis 0 and seeds along axis 1:
    ``frob``, ``offdiag`` and ``seconds`` (K, S), ``diag_rel`` and ``diag_signed`` (K, S, L);
    ``wall_seconds`` of the whole run; the bias ``probe`` (None without one); ``grams``:
    every distinct draw's lag Gram per width (sweep and probe seeds together, seeds
    ascending), shape ``(S_n, L, n_y, n_x, L, n_y, n_x)``, for the exact test."""

    widths: Tuple[int, ...]
    seeds: Tuple[int, ...]
    frob: np.ndarray
    diag_rel: np.ndarray
    diag_signed: np.ndarray
    offdiag: np.ndarray
    seconds: Optional[np.ndarray] = None
    wall_seconds: float = float("nan")
    probe: Optional[BiasProbe] = None
    grams: Optional[Dict[int, np.ndarray]] = None

    def sorted_by_width(self) -> "SweepDraws":
        """The same draws with widths ascending (rows reordered with them), arrays as float64."""
        order = np.argsort(np.asarray(self.widths))

        def take(a):
            return None if a is None else np.asarray(a, dtype=np.float64)[order]

        probe = self.probe
        if probe is not None:
            border = np.argsort(np.asarray(probe.widths))
            probe = BiasProbe(tuple(int(probe.widths[i]) for i in border), tuple(int(s) for s in probe.seeds),
                              np.asarray(probe.diag_signed, dtype=np.float64)[border])
        return replace(self, widths=tuple(int(self.widths[i]) for i in order),
                       seeds=tuple(int(s) for s in self.seeds), frob=take(self.frob), diag_rel=take(self.diag_rel),
                       diag_signed=take(self.diag_signed), offdiag=take(self.offdiag), seconds=take(self.seconds),
                       wall_seconds=float(self.wall_seconds), probe=probe)


def run_draws(plan: SweepPlan, limit: np.ndarray, *, compute: ComputeOptions = ComputeOptions(),
              executor=None, progress: bool = True) -> SweepDraws:
    """Run :func:`run_task` on every draw of ``plan`` (serially, or on ``executor``) and
    collect the numbers.  Draws shared by the sweep and its bias probe are made once.
    ``progress``: a bar on standard error (drawn on a terminal only)."""

    keys = plan.task_keys()
    tasks = [SweepTask(plan.spec, n, s, plan.base_seed, plan.lags, limit, compute) for n, s in keys]
    t0 = time.perf_counter()
    # in order; the bar counts completed tasks where the executor tells (pools, Dask)
    results = ordered_map(run_task, tasks, executor=executor, desc="sweep", progress=None if progress else False)
    got = dict(zip(keys, results))
    wall = time.perf_counter() - t0
    grid = [[got[(n, s)] for s in plan.seeds] for n in plan.widths]
    grams: Dict[int, np.ndarray] = {}
    for n in sorted({n for n, _ in keys}):
        mats = [got[(n, s)].gram for s in sorted(s for m, s in keys if m == n)]
        if all(g is not None for g in mats):
            grams[n] = np.stack(mats)
    probe = None
    if plan.bias_widths:
        probe = BiasProbe(plan.bias_widths, plan.probe_seeds,
                          np.array([[got[(n, s)].diag_signed for s in plan.probe_seeds] for n in plan.bias_widths]))
    return SweepDraws(
        widths=plan.widths, seeds=plan.seeds,
        frob=np.array([[r.frob for r in row] for row in grid]),
        diag_rel=np.array([[r.diag_rel for r in row] for row in grid]),
        diag_signed=np.array([[r.diag_signed for r in row] for row in grid]),
        offdiag=np.array([[r.offdiag for r in row] for row in grid]),
        seconds=np.array([[r.seconds for r in row] for row in grid]),
        wall_seconds=wall, probe=probe, grams=grams or None,
    )
