"""Where the draws of a sweep or a power study run: here, in a process pool, or on a Dask cluster.

Every command that sweeps takes ``--workers N`` and ``--dask ADDRESS``
(:func:`verify.cli.options.add_executor_arguments`; :func:`verify.cli.options.executor_options`
checks them before any work and builds :class:`ExecutorOptions`), and
:func:`open_executor` turns them into an executor inside a ``with`` block that always cleans up
(the pool shut down; the Dask client, and a local cluster with its worker processes, closed),
also on an error or KeyboardInterrupt:

* neither flag, or ``--workers 1``: ``None``, i.e. serial, in this process;
* ``--workers N`` (N > 1): a ``ProcessPoolExecutor`` with N processes (spawned fresh for CUDA);
* ``--dask local``: a ``dask.distributed.LocalCluster`` on this machine, worker *processes* with
  one thread each: N of them with ``--workers N`` (N > 1), else one per core;
* ``--dask ADDRESS`` (e.g. ``tcp://host:8786``): the Dask scheduler there, whose own workers run
  the tasks.  ``--workers N > 1`` with an address is refused (exit 2): the size of a running
  cluster is set where it is started, not by its clients.

:func:`ordered_map` runs a picklable top-level function over picklable items on any of these
(or on any ``concurrent.futures.Executor``) and returns the results in the items' order; its
progress bar counts *completed* tasks wherever the executor tells which completed (process and
thread pools, Dask).  Each task draws its random numbers from its own explicit seed, so the
results are the same, bit for bit, whatever runs them (docs/executors.md).
"""
from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures import as_completed as cf_as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Tuple

from verify.internal.errors import BadInput, UsageError, debug_enabled, require
from verify.internal.progress import progress as bar

__all__ = [
    "LOCAL",
    "DEFAULT_CONNECT_TIMEOUT",
    "ExecutorOptions",
    "DaskExecutor",
    "ClusterError",
    "max_local_workers",
    "open_executor",
    "ordered_map",
]

#: ``--dask local``: start a cluster on this machine instead of connecting to one.
LOCAL = "local"
#: Seconds to wait for a Dask scheduler to answer before giving up (exit 2).
DEFAULT_CONNECT_TIMEOUT = 10.0


class ClusterError(OSError):
    """The Dask cluster failed under the work: a task's workers kept dying (more often than
    ``distributed.scheduler.allowed-failures`` allows: out of memory, a lost node), or the client
    lost its scheduler.  An ``OSError``: the command line reports it as one line, exit 1."""


@dataclass(frozen=True)
class ExecutorOptions:
    """Where tasks run: ``workers`` processes, or the Dask cluster ``dask`` ("local" or an address).

    ``spawn``: a process pool starts fresh interpreters (needed for CUDA; Dask always spawns).
    ``connect_timeout``: seconds to wait for a remote scheduler.
    """

    workers: int = 1
    dask: Optional[str] = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    spawn: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise BadInput(f"--workers must be a positive integer, got {self.workers!r}")
        if self.dask is not None:
            if not isinstance(self.dask, str) or not self.dask.strip() or any(c.isspace() for c in self.dask):
                raise UsageError(f"--dask: expected 'local' or a scheduler address such as tcp://host:8786, "
                                 f"got {self.dask!r}")
            if self.dask != LOCAL and self.workers > 1:
                raise UsageError(f"--workers {self.workers} with --dask {self.dask}: the scheduler's own workers run "
                                 "the tasks (size the cluster where it is started); --workers sizes only "
                                 "--dask local")
        if not self.connect_timeout > 0:
            raise BadInput(f"connect_timeout must be > 0, got {self.connect_timeout!r}")

    @property
    def local_workers(self) -> int:
        """Worker processes of ``--dask local``: ``workers`` when above 1, else the number of cores."""
        return self.workers if self.workers > 1 else max(os.cpu_count() or 1, 1)

    def describe(self) -> str:
        """One phrase for reports: ``serial``, ``4 processes``, ``Dask LocalCluster (2 worker processes)``,
        ``Dask scheduler at tcp://host:8786``."""
        if self.dask == LOCAL:
            return f"Dask LocalCluster ({self.local_workers} worker processes)"
        if self.dask is not None:
            return f"Dask scheduler at {self.dask}"
        return "serial" if self.workers == 1 else f"{self.workers} processes"


def max_local_workers() -> int:
    """The most ``--workers`` the command line starts on this machine: 4 per core, at least 8."""
    return max(8, 4 * (os.cpu_count() or 1))


@contextmanager
def open_executor(options: ExecutorOptions = ExecutorOptions()) -> Iterator[Optional[Executor]]:
    """The executor that ``options`` names (``None`` for serial), closed on leaving the block.

    A process pool is shut down with its queued tasks cancelled (running tasks finish: at most
    one per process).  A Dask client cancels its tasks and closes; a local cluster stops its
    worker processes.  This happens also when the block raises (KeyboardInterrupt included).
    """
    if options.dask is not None:
        with _dask_executor(options) as ex:
            yield ex
    elif options.workers > 1:
        import multiprocessing

        # CUDA cannot be used in a forked child: spawn fresh interpreters there
        ctx = multiprocessing.get_context("spawn") if options.spawn else None
        pool = ProcessPoolExecutor(max_workers=options.workers, mp_context=ctx)
        try:
            yield pool
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        yield None


@contextmanager
def _dask_executor(options: ExecutorOptions) -> Iterator["DaskExecutor"]:
    distributed = require("distributed", "--dask", "dask")
    with _quiet_distributed(not debug_enabled()), _environment_kept(_nanny_variables()):
        cluster = client = None
        try:
            if options.dask == LOCAL:
                # on the loopback only; no dashboard, and the scheduler's HTTP server on a free port
                cluster = distributed.LocalCluster(n_workers=options.local_workers, threads_per_worker=1,
                                                   processes=True, host="127.0.0.1", dashboard_address=None,
                                                   scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
                                                   silence_logs=logging.CRITICAL if not debug_enabled() else False)
                client = distributed.Client(cluster, set_as_default=False)
            else:
                client = _connect(distributed, str(options.dask), options.connect_timeout)
            executor = DaskExecutor(client)
            try:
                yield executor
            finally:
                executor.shutdown(wait=False)
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()


def _nanny_variables() -> Tuple[str, ...]:
    """Variables a local cluster's nannies write into *this* process's environment before spawning
    workers (``distributed.nanny.pre-spawn-environ``: OMP_NUM_THREADS=1, ...; PYTHONHASHSEED)."""
    import dask

    return tuple(sorted(set(dask.config.get("distributed.nanny.pre-spawn-environ", None) or {}) | {"PYTHONHASHSEED"}))


@contextmanager
def _environment_kept(names: Sequence[str]) -> Iterator[None]:
    """Restore ``os.environ[name]`` (or its absence) for each of ``names`` on leaving."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _quiet_distributed(quiet: bool) -> Iterator[None]:
    """Keep ``distributed``'s own log lines (worker restarts, reconnect attempts, their tracebacks)
    off standard error while ``quiet``: the caller reports the outcome once, as one line.
    ``RNN_VERIFY_DEBUG=1`` lets them through.  (``distributed`` logs through handlers of its
    ``"distributed"`` logger; their levels are raised here and restored on leaving.)"""
    handlers = logging.getLogger("distributed").handlers if quiet else []
    old = [h.level for h in handlers]
    for h in handlers:
        h.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for h, level in zip(handlers, old):
            h.setLevel(level)


def _connect(distributed, address: str, timeout: float):
    """A client of the scheduler at ``address``, or one line (exit 2): a malformed address, a
    port nobody listens on (found at once by a plain TCP connect for ``tcp://``), or no answer
    within ``timeout`` seconds."""
    import socket

    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    try:
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown scheme {scheme!r}; known: {', '.join(sorted(backends))}")
        host_port = parse_host_port(location) if scheme == "tcp" else None
    except ValueError as exc:
        raise BadInput(f"--dask {address}: not a scheduler address ({_reason(exc)}); expected 'local' or an "
                       "address such as tcp://host:8786") from None
    if host_port is not None:
        try:
            with socket.create_connection(host_port, timeout=timeout):
                pass
        except OSError as exc:
            raise BadInput(f"--dask {address}: cannot reach a Dask scheduler there within {timeout:g} s "
                           f"({_reason(exc)})") from None
    try:  # a Client can wait forever on a port that accepts and never answers: ask first, with a deadline
        with ThreadPoolExecutor(max_workers=1) as one:  # its own event loop, whatever runs in this thread
            kind = one.submit(asyncio.run, _identity(address, timeout)).result()
        if kind != "Scheduler":
            raise ValueError(f"the server there is a {kind}, not a scheduler")
        return distributed.Client(address, timeout=timeout, set_as_default=False)
    except Exception as exc:
        raise BadInput(f"--dask {address}: no Dask scheduler answered there within {timeout:g} s "
                       f"({_reason(exc)})") from None


async def _identity(address: str, timeout: float) -> str:
    """The ``type`` the server at ``address`` gives for itself (``"Scheduler"`` for a scheduler)."""
    from distributed.comm import connect

    comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
    try:
        await asyncio.wait_for(comm.write({"op": "identity", "reply": True}), timeout)
        reply = await asyncio.wait_for(comm.read(), timeout)
    finally:
        comm.abort()
    return str(reply.get("type")) if isinstance(reply, dict) else type(reply).__name__


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class DaskExecutor(Executor):
    """A ``concurrent.futures.Executor`` on a ``distributed.Client``: each call one task.

    ``map`` submits every task at once and yields results in order; :meth:`map_as_completed`
    yields ``(index, result)`` as tasks finish (for a progress bar that follows the cluster).
    Tasks are submitted with ``pure=False`` (never deduplicated).  Leaving either iterator early,
    or an error in a task, cancels the tasks not yet done.  A task whose workers died more than
    ``distributed.scheduler.allowed-failures`` times, or a lost scheduler, raises :class:`ClusterError`.
    """

    def __init__(self, client) -> None:
        self.client = client
        self._inner = client.get_executor(pure=False)

    def submit(self, fn, /, *args, **kwargs):
        return self._inner.submit(fn, *args, **kwargs)

    def map(self, fn: Callable, *iterables: Iterable, timeout: Optional[float] = None, chunksize: int = 1):
        futures = self.client.map(fn, *[list(it) for it in iterables], pure=False)

        def results():
            try:
                for fut in futures:
                    yield _result(fut, timeout)
            finally:
                self.client.cancel(futures)

        return results()

    def map_as_completed(self, fn: Callable, items: Sequence) -> Iterator[Tuple[int, Any]]:
        """``(i, fn(items[i]))`` in the order the tasks finish."""
        from distributed import as_completed

        futures = self.client.map(fn, list(items), pure=False)
        index = {fut.key: i for i, fut in enumerate(futures)}

        def results():
            try:
                for fut in as_completed(futures, loop=self.client.loop):
                    yield index[fut.key], _result(fut)
            finally:
                self.client.cancel(futures)

        return results()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._inner.shutdown(wait=wait and not cancel_futures)


def _result(fut, timeout: Optional[float] = None):
    """The task's value; its own exception as raised; the cluster's failures as :class:`ClusterError`."""
    from distributed import KilledWorker
    from distributed.client import FutureCancelledError

    try:
        return fut.result(timeout)
    except KilledWorker as exc:
        raise ClusterError(f"a task's Dask workers died while running it, more often than "
                           f"distributed.scheduler.allowed-failures allows (out of memory? a lost node?): "
                           f"{_reason(exc)}") from None
    except FutureCancelledError as exc:
        raise ClusterError(f"a Dask task was cancelled under the work ({_reason(exc)})") from None


def _pool_as_completed(pool: Executor, fn: Callable, items: Sequence) -> Iterator[Tuple[int, Any]]:
    futures = [pool.submit(fn, x) for x in items]
    index = {fut: i for i, fut in enumerate(futures)}
    try:
        for fut in cf_as_completed(futures):
            yield index[fut], fut.result()
    finally:
        for fut in futures:
            fut.cancel()


def ordered_map(fn: Callable, items: Iterable, *, executor: Optional[Executor] = None, desc: str = "",
                progress: Optional[bool] = None) -> List[Any]:
    """``[fn(x) for x in items]``, run serially (``executor=None``) or on ``executor``, in order.

    ``fn`` and the items must be picklable for process pools and clusters (a top-level function
    of a frozen dataclass).  The bar (:func:`verify.internal.progress.progress`; ``progress=None``: on a
    terminal only, ``False``: never) counts completed tasks on process and thread pools and on a
    :class:`DaskExecutor`; on other executors it counts results as ``executor.map`` yields them.
    An exception in a task propagates (the remaining tasks are cancelled).
    """

    items = list(items)
    enabled = False if progress is False else None
    if executor is None:
        return list(bar(map(fn, items), total=len(items), desc=desc, enabled=enabled))
    completed: Optional[Iterator[Tuple[int, Any]]] = None
    if isinstance(executor, DaskExecutor):
        completed = executor.map_as_completed(fn, items)
    elif isinstance(executor, (ProcessPoolExecutor, ThreadPoolExecutor)):
        completed = _pool_as_completed(executor, fn, items)
    if completed is None:
        return list(bar(executor.map(fn, items), total=len(items), desc=desc, enabled=enabled))
    out: List[Any] = [None] * len(items)
    try:
        for i, value in bar(completed, total=len(items), desc=desc, enabled=enabled):
            out[i] = value
    finally:
        completed.close()  # type: ignore[attr-defined]  # a generator: cancels what is left
    return out
