"""One place for the checks of command-line arguments and inputs, and for the size limits.

Every check raises :class:`verify.internal.errors.BadInput` (or a subclass) with one line that
names the flag, the value and what was expected; commands call these before any work.

Size limits (docs/errors.md, section "Limits").  Before the work starts, a command
estimates the memory and the time its request needs from the sizes alone
(:class:`Cost`, the ``*_cost`` functions) and refuses, naming the flags, when either
exceeds its limit:

* memory: ``RNN_VERIFY_MAX_MEMORY_GIB`` (default: this machine's memory, the smaller of
  the physical memory and the cgroup limit);
* time: ``RNN_VERIFY_MAX_SECONDS`` (default 86400, one day of estimated compute).

``RNN_VERIFY_NO_LIMITS=1`` or the command-line flag ``--no-limits`` switches both off.
The estimates are order-of-magnitude models (stated with each function), meant to
stop requests that cannot finish (``--lags 10**9``), not to predict run times.
"""
from __future__ import annotations

import contextvars
import math
import os
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Dict, Iterable, Iterator, Optional, Sequence, Tuple

import numpy as np

from theory.precision import MAX_DPS, MIN_DPS
from theory.spec import RNNSpec, SpecError
from verify.internal.errors import BadInput, LimitExceeded, OutOfRange

__all__ = [
    "MEMORY_ENV",
    "SECONDS_ENV",
    "NO_LIMITS_ENV",
    "Cost",
    "limits_disabled",
    "memory_limit",
    "seconds_limit",
    "check_cost",
    "integer",
    "positive_int",
    "lags",
    "int_list",
    "dps",
    "number",
    "path_text",
    "lag_gram_cost",
    "sweep_cost",
    "check_sweep",
    "check_sweep_args",
    "ssm_compare_cost",
    "exact_weights_cost",
    "diagonal_kernel_cost",
    "float64_spec",
    "finite_lag_gram",
    "NpzArray",
    "npz_header",
    "load_npz",
]

MEMORY_ENV = "RNN_VERIFY_MAX_MEMORY_GIB"
SECONDS_ENV = "RNN_VERIFY_MAX_SECONDS"
NO_LIMITS_ENV = "RNN_VERIFY_NO_LIMITS"
DEFAULT_SECONDS = 86_400.0
GIB = 2.0**30
#: Throughputs of the time estimates, measured on a 2-core machine (the estimates are
#: order-of-magnitude; a GPU is faster, so they err high there, not low).
FLOPS = 1e10  # float64 operations per second in large matrix products
SMALL_FLOPS = 1e9  # in the many small products of the W share (measured 0.7-1.6e9)
BANDWIDTH = 5e9  # bytes per second read by the Krylov matrix-vector products
DRAWS_PER_SECOND = 1e7  # Gaussian draws per second (numpy: measured 0.9e7)
#: Memory of one worker process (interpreter, numpy, scipy) when --workers > 1.
WORKER_BYTES = 64 * 2.0**20
#: float64 range: log10 of the largest finite double.
LOG10_MAX = math.log10(np.finfo(np.float64).max)

_NO_LIMITS: contextvars.ContextVar[bool] = contextvars.ContextVar("rnn_verify_no_limits", default=False)


# ----------------------------------------------------------------------------- limits
@contextmanager
def limits_disabled(disabled: bool = True) -> Iterator[None]:
    """Switch the size limits off inside the block (what ``--no-limits`` does)."""
    token = _NO_LIMITS.set(bool(disabled) or _NO_LIMITS.get())
    try:
        yield
    finally:
        _NO_LIMITS.reset(token)


def _limits_off() -> bool:
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


def _fmt_bytes(b: float) -> str:
    for unit, size in (("TiB", 2.0**40), ("GiB", GIB), ("MiB", 2.0**20)):
        if b >= size:
            return f"{b / size:.3g} {unit}"
    return f"{b:.0f} bytes"


def _fmt_seconds(s: float) -> str:
    for unit, size in (("year", 3.15e7), ("day", 86400.0), ("hour", 3600.0), ("minute", 60.0)):
        if s >= size:
            v = f"{s / size:.3g}"
            return f"{v} {unit}" + ("" if v == "1" else "s")
    return f"{s:.3g} s"


def check_cost(cost: Cost, flags: str) -> None:
    """Raise :class:`LimitExceeded` naming ``flags`` when ``cost`` exceeds a limit (unless switched off)."""
    if _limits_off():
        return
    mem = memory_limit()
    how = "use smaller values, or raise the limit: {env}=... or --no-limits (docs/errors.md)"
    if not cost.bytes <= mem:
        src = MEMORY_ENV if os.environ.get(MEMORY_ENV) else "this machine's memory"
        raise LimitExceeded(
            f"{flags}: {cost.what} would need about {_fmt_bytes(cost.bytes)} of memory, more than the limit "
            f"{_fmt_bytes(mem)} ({src}); " + how.format(env=MEMORY_ENV))
    sec = seconds_limit()
    if not cost.seconds <= sec:
        raise LimitExceeded(
            f"{flags}: {cost.what} would take an estimated {_fmt_seconds(cost.seconds)}, more than the limit "
            f"{_fmt_seconds(sec)} ({SECONDS_ENV}); " + how.format(env=SECONDS_ENV))


# ----------------------------------------------------------------------------- arguments
def integer(value, flag: str, *, minimum: Optional[int] = None, maximum: Optional[int] = None) -> int:
    """An integer (not a bool; numpy integers and integer strings accepted) within the bounds."""
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise BadInput(f"{flag}: expected an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise BadInput(f"{flag}: expected an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        what = "a positive integer" if minimum == 1 else f"at least {minimum}"
        raise BadInput(f"{flag} must be {what}, got {value}")
    if maximum is not None and value > maximum:
        raise BadInput(f"{flag} must be at most {maximum}, got {value}")
    return value


def positive_int(value, flag: str) -> int:
    """A positive integer (a count, a width, a dimension)."""
    return integer(value, flag, minimum=1)


def lags(value, flag: str = "--lags") -> int:
    """A number of lags: a positive integer (its size is checked with the cost of the request)."""
    return integer(value, flag, minimum=1)


def int_list(values, flag: str, *, minimum: int = 1, distinct: bool = True, at_least: int = 1) -> Tuple[int, ...]:
    """Integers from a comma-separated text or a sequence, each ``>= minimum``, distinct if asked."""
    if isinstance(values, str):
        parts = [v for v in values.replace(" ", "").split(",") if v != ""]
        try:
            values = [int(v) for v in parts]
        except ValueError:
            raise BadInput(f"{flag}: expected comma-separated integers, got {values!r}") from None
    try:
        out = tuple(integer(v, flag, minimum=minimum) for v in values)
    except TypeError:
        raise BadInput(f"{flag}: expected integers, got {values!r}") from None
    if len(out) < at_least:
        raise BadInput(f"{flag}: expected at least {at_least} integer(s), got {len(out)}")
    if distinct and len(set(out)) != len(out):
        raise BadInput(f"{flag}: values must be distinct, got {list(out)}")
    return out


def dps(value, flag: str = "--dps") -> int:
    """Decimal digits requested by the user, between ``theory.precision.MIN_DPS`` and ``MAX_DPS``.

    Checked before any guard digits are added: ``--dps 100000`` (the maximum) is valid.
    """
    v = integer(value, flag)
    if not MIN_DPS <= v <= MAX_DPS:
        raise BadInput(f"{flag}: dps must be between {MIN_DPS} and {MAX_DPS}, got {v}")
    return v


def number(value, flag: str, *, minimum: Optional[float] = None, maximum: Optional[float] = None,
           open_minimum: bool = False, open_maximum: bool = False) -> float:
    """A finite float within ``[minimum, maximum]`` (ends excluded when ``open_*``)."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"{flag}: expected a number, got {value!r}") from None
    lo = "(" if open_minimum else "["
    hi = ")" if open_maximum else "]"
    rng = f"{lo}{'-inf' if minimum is None else f'{minimum:g}'}, {'inf' if maximum is None else f'{maximum:g}'}{hi}"
    bad = not math.isfinite(v)
    if minimum is not None and (v < minimum or (open_minimum and v == minimum)):
        bad = True
    if maximum is not None and (v > maximum or (open_maximum and v == maximum)):
        bad = True
    if bad:
        raise BadInput(f"{flag} must be a number in {rng}, got {value}")
    return v


def path_text(value, flag: str) -> str:
    """A non-empty path (``""`` would silently mean the current folder)."""
    text = "" if value is None else str(value)
    if not text.strip():
        raise BadInput(f"{flag}: expected a path, got an empty string")
    if "\x00" in text:
        raise BadInput(f"{flag}: a path cannot contain a NUL character")
    return text


# ----------------------------------------------------------------------------- cost models
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
    if _limits_off() or (cost.bytes <= memory_limit() and cost.seconds <= seconds_limit()):
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


def exact_mean_cost(lags: int, widths: int) -> Cost:
    """The exact mean and leading covariance of the lag Gram (:func:`verify.stats.exact.predict`).

    Time model ``0.017 * 1.78^(L - 4)`` seconds, an upper estimate: measured (one core) 0.017,
    0.16, 1.4 and 15 s at 4, 8, 12 and 16 lags with the Wick engine alone; with the shipped
    table of trace means 1.0, 2.0 and 5.1 s at 12, 16 and 20 lags, and more than 500 s at 22
    lags, past the table (the model says 560 s).  Memory model ``3e7 * 1.45^(L - 16)`` bytes
    (measured above the interpreter: 7, 30 and 86 MB at 12, 16 and 20 lags) plus ``widths``
    float64 means of ``L^2`` entries.
    """
    sec = 0.017 * math.exp(min(max(lags - 4, 0) * math.log(1.78), 690.0))  # capped below float64 overflow
    mem = 3e7 * math.exp(min((lags - 16) * math.log(1.45), 690.0)) + 8.0 * widths * lags * lags
    return Cost(mem, sec, f"the exact finite-width mean with {lags} lags")


def check_sweep_args(args, spec: RNNSpec) -> Cost:
    """The checks ``run`` and ``sweep`` make before drawing anything (``args`` from
    :func:`verify.cli.commands.sweep.add_sweep_arguments`): float64 range of the specification
    (:func:`float64_spec`) and the size limits (:func:`check_sweep`)."""
    widths = tuple(int(n) for n in args.widths)
    bias_seeds = max(int(args.bias_seeds), 0)
    bias_widths: Tuple[int, ...] = ()
    if bias_seeds:
        bias_widths = tuple(sorted(widths)[:3]) if args.bias_widths is None else tuple(args.bias_widths)
    if widths and int(args.lags) >= 1:
        float64_spec(spec, int(args.lags), width=max(min(widths), 1))  # names the field that overflows
    cost = check_sweep(widths, max(int(args.seeds), 0), int(args.lags), spec.n_x, spec.n_y,
                       bias_widths=bias_widths, bias_seeds=bias_seeds, workers=max(int(args.workers), 1),
                       itemsize=4 if getattr(args, "dtype", "float64") == "float32" else 8)
    if int(args.lags) >= 1:  # the exact test's means: cheap from the shipped table, costly beyond it
        check_cost(exact_mean_cost(int(args.lags), len(set(widths) | set(bias_widths))), "--lags")
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


# ----------------------------------------------------------------------------- float64 range
def _log10(q: Fraction) -> float:
    """log10 of a positive rational (any size)."""
    return math.log10(q.numerator) - math.log10(q.denominator)


def _scale_text(spec: RNNSpec, name: str) -> str:
    from theory.spec import short_text

    v = getattr(spec, name)
    return "none" if v is None else short_text(v)


def float64_spec(spec: RNNSpec, lags: Optional[int] = None, *, width: Optional[int] = None,
                 squares: bool = True) -> None:
    """Raise :class:`OutOfRange` naming the field when a float64 computation of ``spec`` would overflow.

    Checked: every scale and learning rate as a float64; the NTK factor of each group
    (:func:`verify.engine.ntk.group_scales`: ``s_g^2 lr_g / fan-in`` for the ntk metric) at
    ``width``; the closed-form weights ``beta_l`` (``l < lags``), bounded by their two parts
    ``a r^m`` and ``b m r^(m-1)`` (:func:`theory.weights.markov_coefficients`).  With
    ``squares`` (the comparisons of the finite-width side take Frobenius norms, sums of
    ``(L n_x n_y)^2`` squared entries of size ``beta``), ``beta_l^2 (L n_x n_y)^2`` must fit too.
    """
    from theory.weights import markov_coefficients

    names = ["sigma_w", "sigma_f", "sigma_c", "lr_w", "lr_f", "lr_c"] + (["sigma_d", "lr_d"] if spec.has_d else [])
    for name in names:
        try:
            spec.float64(name)
        except SpecError as exc:
            raise OutOfRange(f"--{name.replace('_', '-')}: {exc}") from None
    fan = {"W": width or 1, "C": width or 1, "F": spec.n_x, "D": spec.n_x}
    for g in spec.groups:
        lr = spec.lr(g)
        if not lr:
            continue
        sig = spec.sigma(g)
        factor = (sig**2 if spec.metric == "ntk" else Fraction(1)) * lr / fan[g]
        if factor and _log10(factor) > LOG10_MAX:
            raise OutOfRange(
                f"--sigma-{g.lower()} {_scale_text(spec, 'sigma_' + g.lower())}: the NTK factor of group {g}, "
                f"s_{g}^2 lr_{g.lower()} / fan-in = 10^{_log10(factor):.1f}, overflows float64 (max 1.8e308)")
    if lags is None:
        return
    coef = markov_coefficients(spec)
    M = lags if spec.convention == "conv1" else max(lags - 1, 0)
    r = coef.r
    A = Fraction(sum(coef.a.values()))
    B = Fraction(sum(coef.b.values()))
    worst = (-math.inf, 0, "")
    if M >= 1 and r > 0:
        lr_ = _log10(r)
        if A > 0:
            m = 0 if lr_ <= 0 else M - 1
            worst = max(worst, (_log10(A) + m * lr_, m, "A"))
        if B > 0 and M >= 2:
            cands = {1, M - 1}
            if lr_ < 0:
                cands.add(min(max(1, round(-1 / (lr_ * math.log(10)))), M - 1))
            for m in cands:
                worst = max(worst, (_log10(B) + math.log10(m) + (m - 1) * lr_, m, "B"))
    elif M >= 1 and A > 0:
        worst = (_log10(A), 0, "A")
    if coef.d:
        worst = max(worst, (_log10(coef.d), 0, "D"))
    level, m, part = worst
    top = LOG10_MAX - math.log10(2)
    if squares:
        top = (LOG10_MAX - 2 * math.log10(lags * spec.n_x * spec.n_y)) / 2 - 1
    if level <= top:
        return
    why = ("overflows float64 (max 1.8e308)" if level + math.log10(2) > LOG10_MAX else
           f"is too large for the float64 comparison: the Frobenius norms square it (beta_l must stay below "
           f"about 10^{top:.0f} here)")
    lag = m + (0 if spec.convention == "conv1" else 1)
    if part == "D":
        raise OutOfRange(f"--sigma-d {_scale_text(spec, 'sigma_d')}: the lag-0 weight beta_0 = 10^{level:.1f} {why}")
    # which factor drives it: the power of r = s_W^2, or the coefficient (s_C, s_F, learning rates)
    coef_log = _log10(A if part == "A" else B)
    if coef_log > top - 1 or m == 0:
        big = [n for n in ("sigma_c", "sigma_f", "sigma_w", "lr_c", "lr_f", "lr_w")
               if getattr(spec, n) and _log10(getattr(spec, n)) > 0]
        big.sort(key=lambda n: -_log10(getattr(spec, n)))
        who = ", ".join(f"--{n.replace('_', '-')} {_scale_text(spec, n)}" for n in big[:2]) or "the scales"
        raise OutOfRange(f"{who}: the closed-form lag weight beta_{lag} = 10^{level:.1f} {why}; use smaller scales "
                         "or the exact side (python -m verify weights)")
    raise OutOfRange(f"--sigma-w {_scale_text(spec, 'sigma_w')} with --lags {lags}: the closed-form lag weight "
                     f"beta_{lag} = 10^{level:.1f} {why} (the factor s_W^(2l) grows with the lag); use fewer lags or "
                     "the exact side (python -m verify weights)")


def finite_lag_gram(shares: Dict[str, np.ndarray], where: str) -> None:
    """Raise :class:`OutOfRange` naming the share and the first lag when a lag Gram is not finite.

    ``shares``: group -> array ``(L, n_y, n_x, L, n_y, n_x)`` (:attr:`verify.engine.ntk.LagGram.shares`).
    Weights near the float64 limit make ``C W^l F`` (and the Gram of the Krylov vectors
    ``W^l f_i``, ``(W^T)^l c_a``) overflow: the lag Gram is then NaN or infinite, never a result.
    """
    first: Optional[Tuple[int, str]] = None
    for g, arr in shares.items():
        a = np.asarray(arr, dtype=np.float64)
        bad = ~np.isfinite(a.reshape(a.shape[0], -1)).all(axis=1)
        if bad.any():
            lag = int(np.argmax(bad))
            first = min(first, (lag, g)) if first else (lag, g)
    if first is None:
        total = np.sum([np.asarray(v, dtype=np.float64) for v in shares.values()], axis=0)
        if np.all(np.isfinite(total)):
            return
        first = (int(np.argmax(~np.isfinite(total.reshape(total.shape[0], -1)).all(axis=1))), "total")
    lag, g = first
    what = "the total" if g == "total" else f"the {g} share"
    raise OutOfRange(f"{where}: the lag Gram overflows float64 ({what} is not finite from lag {lag} on: the products "
                     "C W^l F of these weights exceed 1.8e308); use fewer --lags or rescale the weights")


# ----------------------------------------------------------------------------- .npz inputs
@dataclass(frozen=True)
class NpzArray:
    """What the header of one array in an ``.npz`` file says: its shape and dtype."""

    shape: Tuple[int, ...]
    dtype: np.dtype


def npz_header(path, flag: Optional[str] = "--weights", *, keys: Iterable[str] = ("W", "F", "C", "D"),
               required: Iterable[str] = ("W", "F", "C")) -> Dict[str, NpzArray]:
    """Shapes and dtypes of the arrays ``keys`` of an ``.npz`` file, read from the headers only.

    Nothing is allocated: a header that claims a 10^6 x 10^6 matrix is seen before any
    memory is reserved for it.  Rejects what is not a regular non-empty zip file, missing
    ``required`` keys, object (pickled) and non-real dtypes.
    """
    text = path_text(path, flag or "path")
    where = f"{flag} {text}" if flag else text
    p = Path(text)
    if not p.exists():
        raise BadInput(f"{where}: no such file")
    if p.is_dir():
        raise BadInput(f"{where}: is a folder, not an .npz file")
    if not p.is_file():
        raise BadInput(f"{where}: not a regular file (an .npz file saved by numpy.savez is needed)")
    try:
        size = p.stat().st_size
        if size == 0:
            raise BadInput(f"{where}: the file is empty (an .npz file saved by numpy.savez is needed)")
        if not zipfile.is_zipfile(p):
            raise BadInput(f"{where}: not an .npz file (expected arrays saved by numpy.savez)")
        out: Dict[str, NpzArray] = {}
        with zipfile.ZipFile(p) as zf:
            members = {name[:-4]: name for name in zf.namelist() if name.endswith(".npy")}
            missing = [k for k in required if k not in members]
            if missing:
                raise BadInput(f"{where}: missing array(s) {', '.join(missing)} "
                               f"(need {', '.join(required)})")
            for k in keys:
                if k not in members:
                    continue
                with zf.open(members[k]) as fh:
                    version = np.lib.format.read_magic(fh)
                    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    shape, _fortran, dtype = reader(fh)
                if dtype.hasobject:
                    raise BadInput(f"{where}: array {k} holds Python objects (pickles are not read)")
                if np.issubdtype(dtype, np.complexfloating) or not np.issubdtype(dtype, np.number):
                    raise BadInput(f"{where}: array {k} must be real-valued, got dtype {dtype}")
                out[k] = NpzArray(tuple(int(s) for s in shape), dtype)
    except BadInput:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as exc:
        raise BadInput(f"{where}: not a readable .npz file ({_first_line(exc)})") from None
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_npz(path, header: Dict[str, NpzArray], flag: Optional[str] = "--weights") -> Dict[str, np.ndarray]:
    """The arrays named in ``header`` (from :func:`npz_header`) as float64, checked finite.

    The memory they need (stored and float64 copies) is checked against the limit first.
    """
    text = str(path)
    where = f"{flag} {text}" if flag else text
    need = sum((8.0 + a.dtype.itemsize) * math.prod(a.shape) for a in header.values())
    check_cost(Cost(need, need / 1e9, f"the arrays of {text}"), flag or text)
    arrays: Dict[str, np.ndarray] = {}
    try:
        with np.load(text, allow_pickle=False) as data:
            for k, meta in header.items():
                raw = data[k]
                if raw.shape != meta.shape:
                    raise BadInput(f"{where}: array {k} does not match its header")
                arrays[k] = np.asarray(raw, dtype=np.float64)
    except BadInput:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as exc:
        raise BadInput(f"{where}: not a readable .npz file ({_first_line(exc)})") from None
    for k, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise BadInput(f"{where}: array {k} contains non-finite values (NaN or infinity)")
    return arrays
