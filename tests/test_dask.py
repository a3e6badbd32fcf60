"""Sweeps and power studies on a real Dask cluster: the same numbers, bit for bit, as the serial run.

Draw ``(n, s)`` comes from ``SeedSequence([base_seed, n, s])`` inside its task (a power
repetition from its own explicit seeds), so where a task runs cannot change its numbers: the
cluster's report must equal the serial one *exactly* (``==`` on every JSON number but the
timings; no tolerance).  The clusters are real: ``LocalCluster`` with 2 worker processes
(spawned interpreters with one BLAS thread each: the serial run's BLAS threads do not change
these float64 results, checked with 1 and 2 threads), and a scheduler and workers started as
separate processes for ``--dask ADDRESS``.

Failure paths: a worker killed (SIGKILL) in the middle of a sweep, exactly once (a marker file
makes the kill happen on the first run of one chosen draw only), so the scheduler retries the
draw elsewhere and the report is still identical; a task that raises; cleanup on leaving the
block (also on KeyboardInterrupt): no worker process survives.  Without ``distributed`` only
the error-message tests run.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Tuple

import pytest

from theory.spec import RNNSpec
from verify.cli.main import main
from verify.internal.executors import DaskExecutor, ExecutorOptions, open_executor, ordered_map
from verify.stats.sweep import SweepPlan, sweep

try:
    import cloudpickle
    import distributed
    import psutil
except ImportError:  # the error-message tests below still run
    distributed = None

needs_dask = pytest.mark.skipif(distributed is None, reason="needs dask[distributed] (the dask extra)")

if distributed is not None:
    # The helpers below travel to the workers by value: the workers need not import this file.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])

SPEC = RNNSpec(sigma_w="0.7", sigma_f="1", sigma_c="1.2", sigma_d="0.5", n_x=2, n_y=1)
PLAN = SweepPlan(SPEC, (16, 32, 64), 3, 6)  # 9 draws, widths 64, 32, 16 in this order
SWEEP = ["sweep", "--widths", "16,32,64", "--seeds", "3", "--lags", "4", "--bias-seeds", "0", "--sigma-w", "0.7",
         "--n-x", "2", "--json"]
POWER = ["power", "--widths", "16,32", "--seeds", "4", "--reps", "3", "--lags", "3", "--json"]
NOT_NUMBERS = ("timings", "executor", "workers", "seconds")  # wall times and where it ran


def _cli(argv, capsys) -> Tuple[int, str, str]:
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def _numbers(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in NOT_NUMBERS}


def _children() -> set:
    """This process's descendants, less multiprocessing's resource tracker (one shared helper,
    started by the first spawned process, that lives as long as this interpreter)."""
    return {p.pid for p in psutil.Process().children(recursive=True)
            if not any("resource_tracker" in part for part in _cmdline(p))}


def _cmdline(p) -> list:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def _gone(pids, seconds: float = 15.0) -> bool:
    """Every pid has exited (zombies count as exited), waiting up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.1)
    return False


def _worker_pids(ex: DaskExecutor) -> list:
    return sorted(ex.client.run(os.getpid).values())


@pytest.fixture(scope="module")
def serial():
    return sweep(PLAN, progress=False)


@pytest.fixture(scope="module")
def cluster():
    with open_executor(ExecutorOptions(workers=2, dask="local")) as ex:
        yield ex


# --- the same numbers -------------------------------------------------------------------------------


@needs_dask
def test_sweep_on_a_local_cluster_equals_serial(cluster, serial):
    pids = _worker_pids(cluster)
    assert len(pids) == 2 and os.getpid() not in pids  # two separate worker processes
    res = sweep(PLAN, executor=cluster, progress=False)
    assert res.to_dict(timings=False) == serial.to_dict(timings=False)


@needs_dask
def test_cli_sweep_dask_local_equals_serial_and_leaves_no_process(capsys):
    rc, out, err = _cli(SWEEP, capsys)
    assert rc in (0, 1), err
    ref = json.loads(out)
    before = _children()
    rc2, out2, err2 = _cli(SWEEP + ["--dask", "local", "--workers", "2"], capsys)
    assert rc2 == rc and err2 == "", err2
    rep = json.loads(out2)
    assert _numbers(rep) == _numbers(ref)
    assert rep["executor"] == "Dask LocalCluster (2 worker processes)" and ref["executor"] == "serial"
    assert _gone(_children() - before, seconds=10)


@dataclass(frozen=True)
class KillOnce:
    """``fn(task)``, except that the first run of draw ``key`` kills its own worker process (SIGKILL).

    The marker file is created atomically (O_EXCL) before the kill: exactly one kill however
    the scheduler retries, and the marker records the killed worker's pid."""

    fn: Callable
    key: Tuple[int, int]
    marker: str

    def __call__(self, task):
        if (task.width, task.seed) == self.key:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pass
            else:
                os.write(fd, str(os.getpid()).encode())
                os.close(fd)
                os.kill(os.getpid(), signal.SIGKILL)
        return self.fn(task)


class KillingExecutor(DaskExecutor):
    """The cluster's executor, with :class:`KillOnce` around every task function."""

    def __init__(self, client, key, marker):
        super().__init__(client)
        self.key, self.marker = key, marker

    def map_as_completed(self, fn, items):
        return super().map_as_completed(KillOnce(fn, self.key, self.marker), items)


@needs_dask
def test_a_worker_killed_mid_sweep_is_retried_and_the_report_is_identical(cluster, serial, tmp_path):
    marker = tmp_path / "killed"
    before = _worker_pids(cluster)
    res = sweep(PLAN, executor=KillingExecutor(cluster.client, (32, 1), str(marker)), progress=False)
    assert marker.exists(), "the chosen draw never ran"
    killed = int(marker.read_text())
    assert killed in before and _gone([killed])  # the worker did die...
    assert res.to_dict(timings=False) == serial.to_dict(timings=False)  # ...and its draw was redone elsewhere
    deadline = time.monotonic() + 30
    while len(cluster.client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # the nanny restarts the worker; later tests get 2 workers again


def _fail_at_three(x: int) -> int:
    if x == 3:
        raise ValueError("draw 3 failed")
    return x * x


def _sleep_then(x: float) -> float:
    time.sleep(x)
    return x


@needs_dask
def test_results_in_order_and_task_errors_propagate(cluster):
    delays = [0.6, 0.0, 0.3, 0.0]  # finishing out of order on 2 workers
    assert ordered_map(_sleep_then, delays, executor=cluster) == delays
    with pytest.raises(ValueError, match="draw 3 failed"):
        ordered_map(_fail_at_three, range(6), executor=cluster, progress=False)


def _interrupt_after_first(items, *args, **kwargs):
    """A stand-in progress bar: Ctrl-C arrives while the cluster still has tasks."""
    for item in items:
        yield item
        raise KeyboardInterrupt


@needs_dask
def test_cluster_closed_on_keyboard_interrupt(monkeypatch):
    import verify.internal.executors

    before = _children()
    env = {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYTHONHASHSEED")}
    monkeypatch.setattr(verify.internal.executors, "bar", _interrupt_after_first)  # the name ordered_map calls
    with pytest.raises(KeyboardInterrupt):
        with open_executor(ExecutorOptions(workers=2, dask="local")) as ex:
            pids = _worker_pids(ex)
            ordered_map(_sleep_then, [0.0] + [0.5] * 7, executor=ex)
    assert _gone(pids) and _gone(_children() - before)
    # the nannies set OMP_NUM_THREADS=1 etc. in this process for their workers; restored on leaving
    assert {k: os.environ.get(k) for k in env} == env


# --- a scheduler at an address --------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def scheduler_address():
    """A scheduler and 2 single-thread worker processes, started as separate programs on the loopback."""
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", str(port), "--no-dashboard"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env)]
    procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2",
                                   "--nthreads", "1", "--no-dashboard"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, env=env))
    try:
        with distributed.Client(address, timeout=60, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGINT)  # clean shutdown (workers first), then make sure
        for p in reversed(procs):
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@needs_dask
def test_cli_power_on_a_scheduler_address_equals_serial(scheduler_address, capsys):
    rc, out, err = _cli(POWER, capsys)
    assert rc == 0, err
    rc2, out2, err2 = _cli(POWER + ["--dask", scheduler_address], capsys)
    assert rc2 == 0 and err2 == "", err2
    ref, rep = json.loads(out), json.loads(out2)
    assert _numbers(rep) == _numbers(ref) and rep["executor"] == f"Dask scheduler at {scheduler_address}"


# --- one-line errors, exit 2 ----------------------------------------------------------------------


def _closed_port_address() -> str:
    return f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there once the probe socket is closed


@pytest.mark.parametrize("extra, fragment", [
    (["--dask", "local", "--workers", "0"], "--workers must be a positive integer"),
    (["--dask", "tcp://127.0.0.1:8786", "--workers", "2"], "--workers sizes only --dask local"),
    (["--dask", ""], "expected 'local' or a scheduler address"),
])
def test_bad_dask_flags_exit_2_one_line(extra, fragment, capsys):
    rc, out, err = _cli(SWEEP + extra, capsys)
    assert rc == 2 and out == "" and fragment in err and len(err.strip().splitlines()) == 1, err


def _claim_argv(folder) -> list:
    import numpy as np

    np.save(folder / "X.npy", np.ones((1, 2, 1)))
    return ["claim", "--model", "verify.claims.elman:erf_model", "--kernel", "verify.claims.elman:erf_kernel",
            "--inputs", str(folder / "X.npy"), "--widths", "4,8", "--seeds", "3"]


@needs_dask
@pytest.mark.parametrize("name", ["sweep", "power", "claim", "ssm compare"])
def test_unreachable_or_malformed_address_exit_2_one_line(name, tmp_path, capsys):
    command = {"sweep": lambda: SWEEP, "power": lambda: POWER, "claim": lambda: _claim_argv(tmp_path),
               "ssm compare": lambda: ["ssm", "compare", "--out", str(tmp_path / "o"), "--lags", "4"]}[name]()
    for address, fragment in [(_closed_port_address(), "cannot reach a Dask scheduler"),
                              ("no-port-here", "not a scheduler address"),
                              ("http://127.0.0.1:8786", "unknown scheme 'http'")]:
        t0 = time.monotonic()
        rc, out, err = _cli(command + ["--dask", address], capsys)
        assert rc == 2 and out == "" and fragment in err and len(err.strip().splitlines()) == 1, err
        assert time.monotonic() - t0 < 5  # a refused port is known at once, not after the connect timeout
    assert not (tmp_path / "o").exists()  # ssm compare: nothing written


@needs_dask
def test_a_port_that_never_answers_times_out(capsys):
    """A server that accepts and stays silent: the connect timeout ends the wait (a plain Client would hang)."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        t0 = time.monotonic()
        with pytest.raises(Exception, match="no Dask scheduler answered there within 1 s"):
            with open_executor(ExecutorOptions(dask=address, connect_timeout=1.0)):
                pass
        assert time.monotonic() - t0 < 10


def test_dask_not_installed_names_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    rc, out, err = _cli(SWEEP + ["--dask", "local"], capsys)
    assert rc == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "pip install 'rnn-implicit-bias[dask]'" in err


@needs_dask
def test_dask_benchmark_end_to_end_tiny(tmp_path, capsys):
    """``python -m benchmarks dask`` at a tiny size: every mode ran, the same numbers, a ratio (no timing assertion)."""
    from benchmarks.cli import main as bench_main

    out = tmp_path / "dask.json"
    assert bench_main(["dask", "--width", "32", "--lags", "4", "--draws", "4", "--repeats", "1", "--quiet",
                       "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["identical_results"] is True and res["ratio_cluster_to_serial"] > 0
    assert {"serial", "Dask LocalCluster, 2 workers"} <= set(res["modes"])
    assert all(m["draws_per_s"] > 0 for m in res["modes"].values())
    assert res["machine"]["distributed"] == distributed.__version__
    assert "throughput ratio cluster / serial" in capsys.readouterr().out


def test_executor_options_sizes_and_names():
    cores = os.cpu_count() or 1
    assert ExecutorOptions(dask="local").local_workers == cores  # no --workers: one worker per core
    assert ExecutorOptions(workers=3, dask="local").local_workers == 3
    assert ExecutorOptions().describe() == "serial" and ExecutorOptions(workers=4).describe() == "4 processes"
    assert ExecutorOptions(dask="local").describe() == f"Dask LocalCluster ({cores} worker processes)"
    assert ExecutorOptions(dask="tcp://h:1").describe() == "Dask scheduler at tcp://h:1"
    with open_executor(ExecutorOptions()) as ex:
        assert ex is None  # serial: nothing to start or close


@needs_dask
def test_cli_check_dask_local_equals_serial(tmp_path, capsys):
    """``check DIR``: one lag-Gram task per network file; the report on the cluster equals the serial one."""
    from verify.engine.npz import save_rnn
    from verify.engine.rnn import init_rnn

    spec = RNNSpec(sigma_w="0.9")
    for n in (8, 16):
        for s in range(4):
            save_rnn(init_rnn(spec, n, seed=100 * n + s), tmp_path / f"net_n{n}_s{s}.npz")
    argv = ["check", str(tmp_path), "--sigma-w", "0.9", "--lags", "3", "--json"]
    rc, out, err = _cli(argv, capsys)
    assert rc in (0, 1), err
    rc2, out2, err2 = _cli(argv + ["--dask", "local", "--workers", "2"], capsys)
    assert rc2 == rc and err2 == "", err2
    assert _numbers(json.loads(out2)) == _numbers(json.loads(out))


@needs_dask
def test_cli_claim_dask_local_equals_serial_and_leaves_no_process(tmp_path, capsys):
    """``claim``: the first draw runs here, the rest on the cluster's workers, which load the
    model from its reference themselves; the report equals the serial one."""
    import numpy as np

    pytest.importorskip("torch")
    x = tmp_path / "X.npy"
    np.save(x, np.random.default_rng(5).standard_normal((2, 3, 1)))
    argv = ["claim", "--model", "verify.claims.elman:erf_model", "--kernel", "verify.claims.elman:erf_kernel",
            "--inputs", str(x), "--widths", "8,16", "--seeds", "4", "--json"]
    rc, out, err = _cli(argv, capsys)
    assert rc in (0, 1), err
    before = _children()
    rc2, out2, err2 = _cli(argv + ["--dask", "local", "--workers", "2"], capsys)
    assert rc2 == rc and err2 == "", err2
    ref, rep = json.loads(out), json.loads(out2)
    assert _numbers(rep) == _numbers(ref) and len(rep["draws"]) == 8
    assert rep["executor"] == "Dask LocalCluster (2 worker processes)" and ref["executor"] == "serial"
    assert _gone(_children() - before, seconds=10)


@needs_dask
def test_cli_ssm_compare_dask_local_equals_serial(tmp_path, capsys):
    """``ssm compare``: one task per model on the cluster; the JSON summary equals the serial one."""
    pytest.importorskip("matplotlib")
    argv = ["ssm", "compare", "--lags", "6", "--train-lags", "5", "--train-sequences", "2", "--max-lag", "60",
            "--dps", "15"]
    rc, _, err = _cli(argv + ["--out", str(tmp_path / "serial")], capsys)
    assert rc == 0, err
    rc2, _, err2 = _cli(argv + ["--out", str(tmp_path / "dask"), "--dask", "local", "--workers", "2"], capsys)
    assert rc2 == 0 and err2 == "", err2
    ref = json.loads((tmp_path / "serial" / "ssm_compare.json").read_text())
    rep = json.loads((tmp_path / "dask" / "ssm_compare.json").read_text())
    assert _numbers(rep) == _numbers(ref) and len(rep["models"]) == 8
    assert rep["executor"] == "Dask LocalCluster (2 worker processes)" and ref["executor"] == "serial"
