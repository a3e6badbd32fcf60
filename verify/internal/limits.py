"""The size limits, and the one cost model every command checks its request against.

Before the work starts, a command estimates the memory and the time its request needs from
the sizes alone (a :class:`Cost` from the ``*_cost`` functions here) and refuses, in one line
naming the flags, when either exceeds its limit (:func:`check_cost`; docs/errors.md, section
"Limits"):

* memory: ``RNN_VERIFY_MAX_MEMORY_GIB`` (default: this machine's memory, the smaller of
  the physical memory and the cgroup limit);
* time: ``RNN_VERIFY_MAX_SECONDS`` (default 86400, one day of estimated compute).

``RNN_VERIFY_NO_LIMITS=1`` or the command-line flag ``--no-limits`` switches both off.

The estimates are order-of-magnitude models fitted to measurements on a 2-core machine
(each function states its model and the measurements behind it), meant to stop requests that
cannot finish (``--lags 10**9``), not to predict run times.  Each computation has exactly one
model: the finite-width networks (:func:`lag_gram_cost`, :func:`sweep_cost`), the exact
finite-width moments (:func:`exact_mean_cost`, :func:`leading_covariance_cost`,
:func:`leading_variance_cost`, :func:`exact_variance_cost`; :func:`exact_test_cost` is what the
exact test needs), and the exact lag weights and kernels.  Every model works in logarithms where
it grows geometrically, so an absurd request gives a huge finite estimate, never an overflow.
"""
from __future__ import annotations

import contextvars
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, Optional, Sequence

from verify.internal.errors import BadInput, LimitExceeded

__all__ = [
    "MEMORY_ENV",
    "SECONDS_ENV",
    "NO_LIMITS_ENV",
    "Cost",
    "limits_disabled",
    "limits_off",
    "memory_limit",
    "seconds_limit",
    "check_cost",
    "fmt_bytes",
    "fmt_seconds",
    "lag_gram_cost",
    "sweep_cost",
    "check_sweep",
    "arrays_cost",
    "markov_top",
    "TABLE_INDEX",
    "exact_mean_cost",
    "leading_covariance_cost",
    "leading_variance_cost",
    "exact_variance_cost",
    "exact_test_cost",
    "ssm_compare_cost",
    "exact_weights_cost",
    "diagonal_kernel_cost",
]

MEMORY_ENV = "RNN_VERIFY_MAX_MEMORY_GIB"
SECONDS_ENV = "RNN_VERIFY_MAX_SECONDS"
NO_LIMITS_ENV = "RNN_VERIFY_NO_LIMITS"
DEFAULT_SECONDS = 86_400.0
GIB = 2.0**30
MIB = 2.0**20
#: Throughputs of the time estimates, measured on a 2-core machine (the estimates are
#: order-of-magnitude; a GPU is faster, so they err high there, not low).
FLOPS = 1e10  # float64 operations per second in large matrix products
SMALL_FLOPS = 1e9  # in the many small products of the W share (measured 0.7-1.6e9)
BANDWIDTH = 5e9  # bytes per second read by the Krylov matrix-vector products
DRAWS_PER_SECOND = 1e7  # Gaussian draws per second (numpy: measured 0.9e7)
#: Memory of one worker process (interpreter, numpy, scipy) when --workers > 1.
WORKER_BYTES = 64 * 2.0**20
#: Largest natural logarithm an estimate may reach (float64 overflows near 709.8).
_LOG_CAP = 700.0

_NO_LIMITS: contextvars.ContextVar[bool] = contextvars.ContextVar("rnn_verify_no_limits", default=False)


@contextmanager
def limits_disabled(disabled: bool = True) -> Iterator[None]:
    """Switch the size limits off inside the block (what ``--no-limits`` does)."""
    token = _NO_LIMITS.set(bool(disabled) or _NO_LIMITS.get())
    try:
        yield
    finally:
        _NO_LIMITS.reset(token)


def limits_off() -> bool:
    """Whether the limits are off: ``--no-limits`` (:func:`limits_disabled`) or ``RNN_VERIFY_NO_LIMITS=1``."""
    env = os.environ.get(NO_LIMITS_ENV, "").strip().lower()
    return _NO_LIMITS.get() or env not in ("", "0", "false", "no")


def _machine_memory() -> float:
    """Bytes of memory this process may use: physical memory, or the cgroup limit if smaller."""
    try:
        phys = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        phys = 16 * GIB
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(path).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < phys:
            phys = float(text)
    return phys


def _env_number(name: str) -> Optional[float]:
    text = os.environ.get(name)
    if text is None or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadInput(f"environment variable {name}={text!r}: expected a positive number") from None
    if not (value > 0 and math.isfinite(value)):
        raise BadInput(f"environment variable {name}={text!r}: expected a positive number")
    return value


def memory_limit() -> float:
    """The memory limit in bytes (``RNN_VERIFY_MAX_MEMORY_GIB`` or this machine's memory)."""
    gib = _env_number(MEMORY_ENV)
    return _machine_memory() if gib is None else gib * GIB


def seconds_limit() -> float:
    """The limit on the estimated time in seconds (``RNN_VERIFY_MAX_SECONDS``, default one day)."""
    value = _env_number(SECONDS_ENV)
    return DEFAULT_SECONDS if value is None else value


@dataclass(frozen=True)
class Cost:
    """Estimated peak memory (bytes) and time (seconds) of a request; ``what`` describes it."""

    bytes: float
    seconds: float
    what: str

    def __add__(self, other: "Cost") -> "Cost":
        return Cost(self.bytes + other.bytes, self.seconds + other.seconds, f"{self.what} and {other.what}")


def fmt_bytes(b: float) -> str:
    """``b`` bytes in the largest unit that keeps the number at least 1 (``1.5 GiB``)."""
    for unit, size in (("TiB", 2.0**40), ("GiB", GIB), ("MiB", 2.0**20)):
        if b >= size:
            return f"{b / size:.3g} {unit}"
    return f"{b:.0f} bytes"


def fmt_seconds(s: float) -> str:
    """``s`` seconds in the largest unit that keeps the number at least 1 (``2.5 hours``)."""
    for unit, size in (("year", 3.15e7), ("day", 86400.0), ("hour", 3600.0), ("minute", 60.0)):
        if s >= size:
            v = f"{s / size:.3g}"
            return f"{v} {unit}" + ("" if v == "1" else "s")
    return f"{s:.3g} s"


def check_cost(cost: Cost, flags: str) -> None:
    """Raise :class:`LimitExceeded` naming ``flags`` when ``cost`` exceeds a limit (unless switched off)."""
    if limits_off():
        return
    mem = memory_limit()
    how = "use smaller values, or raise the limit: {env}=... or --no-limits (docs/errors.md)"
    if not cost.bytes <= mem:
        src = MEMORY_ENV if os.environ.get(MEMORY_ENV) else "this machine's memory"
        raise LimitExceeded(
            f"{flags}: {cost.what} would need about {fmt_bytes(cost.bytes)} of memory, more than the limit "
            f"{fmt_bytes(mem)} ({src}); " + how.format(env=MEMORY_ENV))
    sec = seconds_limit()
    if not cost.seconds <= sec:
        raise LimitExceeded(
            f"{flags}: {cost.what} would take an estimated {fmt_seconds(cost.seconds)}, more than the limit "
            f"{fmt_seconds(sec)} ({SECONDS_ENV}); " + how.format(env=SECONDS_ENV))


# ----------------------------------------------------------------------------- the networks
def lag_gram_cost(n: int, lags: int, n_x: int = 1, n_y: int = 1, *, itemsize: int = 8,
                  draw: bool = True) -> Cost:
    """One network of width ``n`` and its lag Gram (:func:`verify.engine.ntk.lag_gram`).

    Memory: ``W`` and its draw or device copy (``2 n^2``; measured peak 1.1 n^2 at n = 4096
    with numpy), the Krylov stacks and their copies (``2 L (n_x + n_y) n``), and about ten
    ``(L n_x n_y)^2`` arrays (shares, total, the W-share convolution and its temporaries).
    Time: ``n^2`` Gaussian draws; per Krylov step two passes over ``W`` (memory-bound) and
    ``2 (n_x + n_y) n^2`` flops; ``(n_x n_y L^2)^2`` flops in small products for the W share.
    """
    w, L, m = float(n), float(lags), float(n_x * n_y)  # floats: no int overflow of n^2 or L^4
    k = float(n_x + n_y)
    mem = itemsize * (2 * w * w + 2 * L * k * w + 10 * (L * m) ** 2)
    sec = ((w * w / DRAWS_PER_SECOND if draw else 0.0) + L * (2 * itemsize * w * w / BANDWIDTH + 2 * k * w * w / FLOPS)
           + (m * L * L) ** 2 / SMALL_FLOPS)
    return Cost(mem, sec, f"a width-{int(n)} network with {int(L)} lags")


def sweep_cost(widths: Sequence[int], seeds: int, lags: int, n_x: int = 1, n_y: int = 1, *,
               bias_widths: Sequence[int] = (), bias_seeds: int = 0, workers: int = 1,
               itemsize: int = 8) -> Cost:
    """A widths x seeds sweep (plus the bias probe): the sum of the draws' times; peak memory
    of ``workers`` concurrent draws, ``WORKER_BYTES`` per extra process, and about
    ``2 KB + 24 L`` bytes per draw for its task and result."""
    draws = [(n, int(seeds)) for n in widths] + [(n, int(bias_seeds)) for n in bias_widths]
    count = sum(s for _, s in draws)
    if not draws or count == 0:
        return Cost(0.0, 0.0, "an empty sweep")
    per = {n: lag_gram_cost(n, lags, n_x, n_y, itemsize=itemsize) for n, _ in draws}
    seconds = sum(per[n].seconds * s for n, s in draws)
    conc = max(1, min(int(workers), count))
    peak = max(per[n].bytes for n, _ in draws) * conc
    bookkeeping = count * (2048.0 + 24.0 * lags) + (conc - 1) * WORKER_BYTES + 8.0 * (lags * n_x * n_y) ** 2
    what = f"{count} draws (widths up to {max(n for n, _ in draws)}, {lags} lags)"
    return Cost(peak + bookkeeping, seconds, what)


def check_sweep(widths: Sequence[int], seeds: int, lags: int, n_x: int = 1, n_y: int = 1, *,
                bias_widths: Sequence[int] = (), bias_seeds: int = 0, workers: int = 1, itemsize: int = 8) -> Cost:
    """:func:`check_cost` of :func:`sweep_cost`, naming the flags that drive the excess.

    Memory is attributed to ``--widths``/``--bias-widths`` (the ``n^2`` of the widest draw),
    ``--lags`` (Krylov stacks and lag Gram), ``--seeds``/``--bias-seeds`` (per-draw records)
    or ``--workers`` (processes); time to the number of draws times the widest or longest one.
    """
    cost = sweep_cost(widths, seeds, lags, n_x, n_y, bias_widths=bias_widths, bias_seeds=bias_seeds,
                      workers=workers, itemsize=itemsize)
    if limits_off() or (cost.bytes <= memory_limit() and cost.seconds <= seconds_limit()):
        return cost
    wide = max(list(widths) + list(bias_widths or ()))
    wflag = "--widths" if wide in widths else "--bias-widths"
    cflag = "--seeds" if int(seeds) * len(widths) >= int(bias_seeds) * len(bias_widths or ()) else "--bias-seeds"
    L, k, m = float(lags), float(n_x + n_y), float(n_x * n_y)
    parts = {wflag: 2.0 * wide * wide, "--lags": 2 * L * k * wide + 10 * (L * m) ** 2,
             cflag: (int(seeds) * len(widths) + int(bias_seeds) * len(bias_widths or ()))
             * (2048.0 + 24 * L) / itemsize,
             "--workers": (int(workers) - 1) * WORKER_BYTES / itemsize}
    if cost.bytes > memory_limit():
        flags = max(parts, key=lambda f: parts[f])
    else:
        size = wflag if wide * wide / DRAWS_PER_SECOND >= (m * L * L) ** 2 / SMALL_FLOPS else "--lags"
        flags = f"{cflag} x {size}"
    check_cost(cost, flags)
    return cost


def ssm_compare_cost(lags: int, max_lag: int, train_lags: Optional[int], digits: int, models: int = 8) -> Cost:
    """``ssm compare``: exact T x T kernels of ``models`` models (S4D's costs ~10x a diagonal entry:
    32 modes), the 1 % lag search (a dense model evaluates every lag up to ``max_lag``, twice),
    and ``3 models`` kernel-regression solves of ``train_lags^3`` exact operations.
    Measured at the defaults (T = 128, max lag 100,000, 20 digits, T_train = 64): 1, 8, 4.5 and
    0.4 s per model."""
    T, d = float(lags), float(digits)
    per_entry = 4e-5 * (1 + d / 100)
    seconds = T * T * per_entry * (models + 10) + 3 * 2 * float(max_lag) * 2e-5
    mem = models * T * T * (_mpf_bytes(digits) + d + 30) + 6 * float(max_lag) * _mpf_bytes(15)
    if train_lags:
        Tt = float(train_lags)
        seconds += 3 * models * 1.5e-6 * Tt**3 * (1 + d / 100)
        mem += 2 * Tt * Tt * _mpf_bytes(digits)
    return Cost(mem, seconds, f"the comparison ({int(T)} lags, 1 % lag search to {int(max_lag)})")


def _mpf_bytes(digits: int) -> float:
    """Bytes of one mpmath number with ``digits`` decimal digits (object and mantissa)."""
    return 120.0 + 0.42 * digits


def exact_weights_cost(lags: int, digits: int, groups: int = 4) -> Cost:
    """Exact lag weights and shares (``python -m verify weights``).

    Memory: ``2 (groups + 1) L`` numbers (guarded and rounded) plus their decimal strings
    (three copies: list, JSON, table).  Time per lag (measured on one core, 2 to 4e-5 s at 30
    digits, 1.4e-3 s at 10,000): ``2e-5 + 3.5e-5 (digits/1000)^1.6`` seconds.
    """
    L, d = float(lags), float(digits)
    values = 2 * (groups + 1) * L
    mem = values * _mpf_bytes(digits) + 3 * (groups + 1) * L * (d + 30)
    sec = L * (2e-5 + 3.5e-5 * (d / 1000.0) ** 1.6)
    return Cost(mem, sec, f"{int(L)} exact lag weights at {int(d)} digits")


def diagonal_kernel_cost(T: int, digits: int, matrices: int = 7) -> Cost:
    """The exact T x T lag kernel of a diagonal recurrence (``ssm weights``): ``matrices`` T x T
    tables (six groups and the total) of numbers and strings; time per entry (measured: 5e-5 s
    at 30 digits, 1.5e-4 s at 300) ``4e-5 (1 + digits/100)`` seconds."""
    entries = float(T) ** 2
    mem = matrices * entries * (_mpf_bytes(digits) + 2 * (digits + 30))
    sec = entries * 4e-5 * (1 + digits / 100.0)
    return Cost(mem, sec, f"an exact {int(T)} x {int(T)} kernel at {int(digits)} digits")


def arrays_cost(nbytes: float, what: str) -> Cost:
    """Reading arrays of ``nbytes`` bytes (stored and float64 copies) at about 1 GB/s."""
    return Cost(float(nbytes), float(nbytes) / 1e9, what)


# ----------------------------------------------------------------------------- the exact moments
#: The shipped table of trace means (theory/data/trace_means.json) holds every mean with Markov
#: indices m, m' < TABLE_INDEX; beyond it the Wick engine computes them (pure Python, one core).
TABLE_INDEX = 20


def markov_top(lags: int, convention: str = "conv1") -> int:
    """Largest Markov index ``m`` of ``lags`` lags: ``lags - 1`` (conv1) or ``lags - 2`` (conv2; -1: only D)."""
    return int(lags) - (1 if convention == "conv1" else 2)


def _geometric(measured: Dict[int, float], growth: float, x: int, unit: float = 1.0) -> float:
    """A measured quantity at size ``x``, times ``unit``: the measurement at the next measured size up,
    or the largest measurement times ``growth`` per step beyond the measured range (capped below
    float64 overflow, so an absurd size gives a huge finite estimate)."""
    hi = max(measured)
    if x > hi:
        return math.exp(min(math.log(measured[hi] * unit) + (x - hi) * math.log(growth), _LOG_CAP))
    return measured[min(k for k in measured if k >= x)] * unit


#: Engine only (no table), every mean with m, m' <= top from a cold engine: CPU seconds and peak
#: memory (docs/benchmarks.md, "Exact finite-width moments": 0.19, 1.0, 5.5, 14.4, 36.9 s and
#: 40, 63, 163, 312, 630 MiB at top 11, 13, 15, 16, 17); beyond, x2.6 time and x2.0 memory per index.
_ENGINE_SECONDS = {11: 0.19, 13: 1.0, 15: 5.5, 16: 14.4, 17: 36.9}
_ENGINE_MIB = {11: 40.0, 13: 63.0, 15: 163.0, 16: 312.0, 17: 630.0}
_ENGINE_GROWTH_SECONDS, _ENGINE_GROWTH_MEMORY = 2.6, 2.0
#: Every mean read from the shipped table (measured 0.06 to 0.23 CPU s, 35 MiB, at 16 and 20 lags).
_TABLE_SECONDS, _TABLE_MIB = 0.3, 40.0


def exact_mean_cost(lags: int, convention: str = "conv1", *, widths: int = 1) -> Cost:
    """The exact mean of the lag Gram (:func:`theory.finite_width.mean_lag_gram`) and its float64
    values at ``widths`` widths.

    From the shipped table when every Markov index is below :data:`TABLE_INDEX` (a fraction of a
    second); beyond it the engine's measured cost at the largest index (:data:`_ENGINE_SECONDS`,
    growing 2.6x in time and 2x in memory per index), an upper estimate (entries inside the table
    are still read from it).
    """
    top = markov_top(lags, convention)
    if top < TABLE_INDEX:
        seconds, mem = _TABLE_SECONDS, _TABLE_MIB * MIB
    else:
        seconds = _geometric(_ENGINE_SECONDS, _ENGINE_GROWTH_SECONDS, top)
        mem = _geometric(_ENGINE_MIB, _ENGINE_GROWTH_MEMORY, top, MIB)
    per_width = float(lags) ** 2 * 8.0 * max(int(widths), 0)
    return Cost(mem + per_width, seconds + 2e-5 * float(lags) ** 2 * max(int(widths), 0),
                f"the exact finite-width mean with {int(lags)} lags")


#: Leading (1/n) covariance of the diagonal entries, Cov(Theta[l, l], Theta[k, k]) for every l, k
#: (:func:`verify.stats.exact.predict`): measured 3.8 and 11.6 CPU s, 95 and 150 MiB above the
#: interpreter, at 16 and 20 lags (conv1); growth per lag x1.32 in time, x1.12 in memory.
_LEAD_COV_SECONDS = {15: 3.8, 19: 11.6}
_LEAD_COV_MIB = {15: 95.0, 19: 150.0}
#: Leading (1/n) variance of every entry, Var Theta[l, l'] (``moments --variance --order 1``):
#: measured 4.1 to 13.2, 9.0 and 16.6 to 53 CPU s at top 15, 17 and 19 (147 to 363 MiB); x1.5 per index.
_LEAD_VAR_SECONDS = {15: 13.2, 17: 25.0, 19: 53.0}
_LEAD_VAR_MIB = {15: 147.0, 19: 363.0}
#: Exact variance of every entry (``moments --variance``): 1.3, 9.4, 65 CPU s and 64, 199, 884 MiB at
#: top 6, 7, 8; x7 in time and x4 in memory per index.
_EXACT_VAR_SECONDS = {6: 1.3, 7: 9.4, 8: 65.0}
_EXACT_VAR_MIB = {6: 64.0, 7: 199.0, 8: 884.0}


def leading_covariance_cost(lags: int, convention: str = "conv1") -> Cost:
    """The leading ``1/n`` covariance of the lag Gram's diagonal entries (``L^2`` pairs)."""
    top = max(markov_top(lags, convention), 0)
    return Cost(_geometric(_LEAD_COV_MIB, 1.12, top, MIB), _geometric(_LEAD_COV_SECONDS, 1.32, top),
                f"the leading finite-width covariance with {int(lags)} lags")


def leading_variance_cost(lags: int, convention: str = "conv1") -> Cost:
    """The leading ``1/n`` variance of every entry of the lag Gram (planar factorization)."""
    top = max(markov_top(lags, convention), 0)
    return Cost(_geometric(_LEAD_VAR_MIB, 1.26, top, MIB), _geometric(_LEAD_VAR_SECONDS, 1.5, top),
                f"the leading finite-width variance with {int(lags)} lags")


def exact_variance_cost(lags: int, convention: str = "conv1") -> Cost:
    """The exact variance of every entry of the lag Gram (all orders in ``1/n``)."""
    top = max(markov_top(lags, convention), 0)
    return Cost(_geometric(_EXACT_VAR_MIB, 4.0, top, MIB), _geometric(_EXACT_VAR_SECONDS, 7.0, top),
                f"the exact finite-width variance with {int(lags)} lags")


def exact_test_cost(lags: int, convention: str = "conv1", *, widths: int = 1) -> Cost:
    """What the exact finite-width test needs (:func:`verify.stats.exact.predict`): the exact mean at
    ``widths`` widths and the leading covariance of the diagonal."""
    mean = exact_mean_cost(lags, convention, widths=widths)
    lead = leading_covariance_cost(lags, convention)
    return Cost(mean.bytes + lead.bytes, mean.seconds + lead.seconds,
                f"the exact finite-width mean and covariance with {int(lags)} lags")
