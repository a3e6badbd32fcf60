"""Throughput of sweep draws: serial in this process against a local Dask cluster.

``python -m benchmarks dask [--width 2048] [--lags 16] [--draws 16] [--workers 2] [--repeats 3]
[--json OUT] [--markdown] [--quiet]``.

One draw is one :func:`verify.stats.sweep.run_task`: a width-``n`` network drawn from its seed and
its lag Gram with ``L`` lags (float64, numpy), exactly what a sweep runs per ``(width, seed)``.
The same ``--draws`` tasks (seeds ``0..D-1``) run

* serially in this process, with the BLAS threads the environment gives (what a plain
  ``python -m verify sweep`` does), and, when threadpoolctl is installed, with one BLAS thread
  (what each cluster worker has);
* on a ``LocalCluster`` of ``--workers`` worker processes, one thread each
  (:func:`verify.internal.executors.open_executor` with ``--dask local``), through
  :func:`verify.internal.executors.ordered_map` as a sweep does.

The modes alternate ``--repeats`` times inside one cluster session (so a load change on the
machine hits both alike) and the median wall time of each is reported as draws per second,
with the ratio cluster / serial.  The cluster's start-up (spawning the worker interpreters
and importing the toolkit there: one warm-up task per worker, untimed) and shutdown are
timed separately and also folded into an end-to-end rate.  The results of every mode must be
identical (a draw depends only on its seed); the benchmark checks that.

With W workers on W cores the cluster can at best multiply the rate of single-threaded
draws by W; against a serial run that already uses several BLAS threads the gain is
smaller, and every task pays pickling of the task (the limit lag Gram travels with it) and
of its result, plus the scheduler's round trip.
"""
from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

PROG = "python -m benchmarks dask"


def _tasks(width: int, lags: int, draws: int) -> list:
    from theory.spec import RNNSpec
    from verify.engine.backend import ComputeOptions
    from verify.engine.ntk import limit_lag_gram
    from verify.stats.sweep import SweepTask

    spec = RNNSpec(sigma_w="0.9")
    limit = limit_lag_gram(spec, lags)
    return [SweepTask(spec, width, s, 0, lags, limit, ComputeOptions()) for s in range(draws)]


def _timed(run: Callable[[], list]) -> Dict[str, Any]:
    t0 = time.perf_counter()
    results = run()
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "frob": [float(r.frob) for r in results],
            "task_s_median": float(np.median([r.seconds for r in results]))}


def _serial_one_thread(tasks: list) -> Optional[Callable[[], list]]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return None
    from verify.stats.sweep import run_task

    def run() -> list:
        with threadpool_limits(limits=1):
            return [run_task(t) for t in tasks]

    return run


def run_bench(width: int = 2048, lags: int = 16, draws: int = 16, workers: int = 2, repeats: int = 3,
              log: Callable[[str], None] = lambda msg: None) -> Dict[str, Any]:
    """Every number of the benchmark (see the module docstring), as a JSON-ready dict."""
    from verify.internal.executors import ExecutorOptions, open_executor, ordered_map
    from verify.stats.sweep import run_task

    tasks = _tasks(width, lags, draws)
    run_task(_tasks(min(width, 64), lags, 1)[0])  # imports and first-call costs, untimed
    modes: Dict[str, Callable[[], list]] = {"serial": lambda: [run_task(t) for t in tasks]}
    one = _serial_one_thread(tasks)
    if one is not None:
        modes["serial, 1 BLAS thread"] = one
    runs: Dict[str, List[Dict[str, Any]]] = {}
    t0 = time.perf_counter()
    with open_executor(ExecutorOptions(workers=workers, dask="local")) as ex:
        assert ex is not None
        ordered_map(run_task, _tasks(min(width, 64), lags, workers), executor=ex, progress=False)  # warm-up
        startup = time.perf_counter() - t0
        log(f"cluster of {workers} workers up in {startup:.1f} s")
        modes[f"Dask LocalCluster, {workers} workers"] = lambda: ordered_map(run_task, tasks, executor=ex,
                                                                           progress=False)
        for r in range(repeats):
            for name, run in modes.items():
                runs.setdefault(name, []).append(_timed(run))
                log(f"repeat {r + 1}/{repeats}: {name}: {runs[name][-1]['wall_s']:.2f} s")
        t1 = time.perf_counter()
    shutdown = time.perf_counter() - t1
    reference = runs["serial"][0]["frob"]
    identical = all(rec["frob"] == reference for recs in runs.values() for rec in recs)
    out: Dict[str, Any] = {"width": width, "lags": lags, "draws": draws, "workers": workers, "repeats": repeats,
                           "identical_results": identical, "cluster_startup_s": startup,
                           "cluster_shutdown_s": shutdown,
                           "task_bytes": len(pickle.dumps(tasks[0])),
                           "result_bytes": len(pickle.dumps(run_task(tasks[0]))), "modes": {}}
    for name, recs in runs.items():
        wall = statistics.median(rec["wall_s"] for rec in recs)
        out["modes"][name] = {"wall_s": [rec["wall_s"] for rec in recs], "median_wall_s": wall,
                              "draws_per_s": draws / wall,
                              "task_s_median": statistics.median(rec["task_s_median"] for rec in recs)}
    cluster = out["modes"][f"Dask LocalCluster, {workers} workers"]
    out["ratio_cluster_to_serial"] = cluster["draws_per_s"] / out["modes"]["serial"]["draws_per_s"]
    if "serial, 1 BLAS thread" in out["modes"]:
        out["ratio_cluster_to_serial_1_thread"] = (cluster["draws_per_s"]
                                                   / out["modes"]["serial, 1 BLAS thread"]["draws_per_s"])
    out["end_to_end_cluster_draws_per_s"] = draws / (startup + cluster["median_wall_s"] + shutdown)
    return out


def render(res: Dict[str, Any], *, markdown: bool) -> str:
    """The table of ``res`` (plain text or markdown)."""
    rows = [(name, m["median_wall_s"], m["draws_per_s"], m["task_s_median"]) for name, m in res["modes"].items()]
    head = ("mode", f"median wall s ({res['draws']} draws)", "draws/s", "median s per draw (inside the task)")
    lines = []
    if markdown:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        lines += [f"| {n} | {w:.3g} | {r:.3g} | {t:.3g} |" for n, w, r, t in rows]
    else:
        lines.append(f"{head[0]:34s} {head[1]:>26s} {head[2]:>8s} {head[3]:>36s}")
        lines += [f"{n:34s} {w:26.3g} {r:8.3g} {t:36.3g}" for n, w, r, t in rows]
    lines.append("")
    extra = f"; against serial with 1 BLAS thread {res['ratio_cluster_to_serial_1_thread']:.2f}" \
        if "ratio_cluster_to_serial_1_thread" in res else ""
    lines.append(f"n = {res['width']}, {res['lags']} lags; throughput ratio cluster / serial "
                 f"{res['ratio_cluster_to_serial']:.2f}{extra}; cluster start-up {res['cluster_startup_s']:.1f} s, "
                 f"shutdown {res['cluster_shutdown_s']:.1f} s, end to end {res['end_to_end_cluster_draws_per_s']:.3g} "
                 f"draws/s; {res['task_bytes']} bytes pickled per task, {res['result_bytes']} per result; "
                 f"results identical in every mode: {res['identical_results']}")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--width", type=int, default=2048, help="network width n (default 2048)")
    p.add_argument("--lags", type=int, default=16, help="lags L (default 16)")
    p.add_argument("--draws", type=int, default=16, help="draws per timed run (default 16)")
    p.add_argument("--workers", type=int, default=2, help="worker processes of the local cluster (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="alternating timed runs of each mode (default 3)")
    p.add_argument("--json", metavar="OUT", help="write every number to this JSON file")
    p.add_argument("--markdown", action="store_true", help="markdown table (for docs/benchmarks.md)")
    p.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    args = p.parse_args(argv)
    for flag in ("width", "lags", "draws", "workers", "repeats"):
        if getattr(args, flag) < 1:
            print(f"{PROG}: error: --{flag} must be >= 1, got {getattr(args, flag)}", file=sys.stderr)
            return 2
    try:
        import distributed
    except ImportError:
        print(f"{PROG}: error: needs distributed (pip install 'rnn-implicit-bias[dask]')", file=sys.stderr)
        return 2
    from .machine import machine_info

    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    started = time.time()
    machine = machine_info()  # before the cluster: its nannies set OMP_NUM_THREADS=1 etc. here while it runs
    res = run_bench(args.width, args.lags, args.draws, args.workers, args.repeats, log)
    import dask

    res["machine"] = machine
    res["machine"]["dask"] = dask.__version__
    res["machine"]["distributed"] = distributed.__version__
    res["started_utc"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(started))
    res["command"] = PROG + " " + " ".join(sys.argv[2:] if argv is None else list(argv))
    if args.json:
        from verify.internal.jsonio import versioned

        with open(args.json, "w") as fh:
            json.dump(versioned(res), fh, indent=1)
    print(render(res, markdown=args.markdown))
    return 0 if res["identical_results"] else 1


if __name__ == "__main__":  # spawned workers import this file as a module: keep the run behind the guard
    raise SystemExit(main())
