"""Sweeps accept any ``concurrent.futures.Executor``: the result does not depend on it.

``verify.stats.sweep.sweep`` draws network ``(n, s)`` from ``SeedSequence([base_seed, n, s])``
inside the task, so where and in which order a task runs cannot change its
numbers.  Thread and process pools must therefore reproduce the serial sweep
*exactly* (bitwise: the same float64 operations on the same inputs, with the
BLAS of the same library, one thread per process as in CI).  Dask
(``distributed.Client.get_executor()``) and Ray executors are documented in
``docs/executors.md``; they are not installed here, so they are not run.
"""
from __future__ import annotations

import multiprocessing
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from theory.spec import RNNSpec
from verify.engine.backend import ComputeOptions
from verify.stats.sweep import SweepPlan, sweep

SPEC = RNNSpec(sigma_w="0.7", sigma_f="1", sigma_c="1.2", sigma_d="0.5", n_x=2, n_y=1)
WIDTHS = (16, 32, 64)
SEEDS = (0, 1, 5)
LAGS = 6


def run(seeds, *, backend="numpy", executor=None):
    return sweep(SweepPlan(SPEC, WIDTHS, seeds, LAGS), compute=ComputeOptions(backend=backend), executor=executor,
                 progress=False)


def _same(a, b) -> None:
    for name in ("frob", "diag_rel", "diag_signed", "offdiag"):
        x, y = getattr(a, name), getattr(b, name)
        assert np.array_equal(x, y, equal_nan=True), name
    assert a.widths == b.widths and a.seeds == b.seeds
    assert a.to_dict(timings=False) == b.to_dict(timings=False)


@pytest.fixture(scope="module")
def serial():
    return run(SEEDS)


def test_thread_pool_equals_serial(serial):
    with ThreadPoolExecutor(max_workers=2) as ex:
        _same(run(SEEDS, executor=ex), serial)


def test_process_pool_equals_serial(serial):
    # "spawn": fresh interpreters, as Dask/Ray workers are (no state inherited by fork)
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as ex:
        _same(run(SEEDS, executor=ex), serial)


class ReversedExecutor(Executor):
    """Runs submitted tasks in reverse order of submission (futures still map back in order)."""

    def __init__(self):
        self.pending = []

    def submit(self, fn, /, *args, **kwargs):
        fut = Future()
        self.pending.append((fut, fn, args, kwargs))
        return fut

    def map(self, fn, *iterables, timeout=None, chunksize=1):
        futures = [self.submit(fn, *args) for args in zip(*iterables)]
        for fut, f, args, kwargs in reversed(self.pending):
            fut.set_result(f(*args, **kwargs))
        self.pending.clear()
        return (f.result() for f in futures)


def test_execution_order_does_not_matter(serial):
    _same(run(SEEDS, executor=ReversedExecutor()), serial)


def test_seed_subset_is_the_same_draws(serial):
    """A draw depends only on (base_seed, width, seed): a sweep over a subset of seeds repeats its numbers."""
    sub = run((0, 5))
    assert np.array_equal(sub.frob, serial.frob[:, [0, 2]])


def test_torch_backend_in_a_thread_pool():
    pytest.importorskip("torch")
    ref = run((0, 1), backend="torch")
    with ThreadPoolExecutor(max_workers=2) as ex:
        _same(run((0, 1), backend="torch", executor=ex), ref)
    # numpy-drawn networks give the numpy sweep's numbers on torch: Theta agrees to ~1e-15 relative
    # (tests/test_backends.py), and frob ~ 0.3 amplifies that by ||Theta|| / ||Theta - limit|| ~ 3
    num = run((0, 1))
    assert np.allclose(ref.frob, num.frob, rtol=1e-12, atol=0)
