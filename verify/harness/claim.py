"""Check anyone's claim about the wide-width NTK of their network.

Contract (``docs/claim.md``):

* ``model(width, seed) -> (params, apply)``: ``params`` a dict of torch float64
  tensors (the trained variables, drawn from ``seed``), ``apply(params, X)`` maps
  a torch float64 batch ``X (B, T, n_x)`` to outputs ``(B, T, n_y)``;
* ``kernel(X, Xp) -> array (B, T, n_y, B', T', n_y)``: the claimed limit of the
  empirical NTK ``sum_p dy/dp dy'/dp`` over the entries of ``params``.

The harness draws networks over ``widths x seeds`` (one seed per draw, derived
from a base seed), computes each empirical NTK ``Theta = J J^T`` on ``X``
(:func:`verify.engine.autodiff.empirical_ntk`: Jacobian contraction, or NTK-vector
products when the Jacobians would not fit in ``max_jacobian_bytes``) and reduces it
to *statistics* whose claimed value is
known (``M = B T n_y`` rows, ``Theta`` the empirical kernel, ``K`` the claim):

* ``gain``: ``<Theta, K>_F / ||K||_F^2`` (claim: 1);
* ``gain_t`` for each time ``t``: the same restricted to the equal-time block
  (rows and columns of time ``t``) where ``K`` is nonzero there (claim: 1);
* ``residual``: ``||Theta - gain K||_F^2 / ||K||_F^2``, the part of Theta that is
  not a multiple of K (claim: 0; it has mean O(1/n) under the claim: variance
  plus squared bias);
* ``rel_error`` ``||Theta - K||_F / ||K||_F``, only for the rate.

Decision (:func:`decide`), false-failure probability ``alpha`` (default 0.01)
under two assumptions: the seed mean is normal enough for Student's t, and the
finite-width bias ``b(n)`` of each statistic keeps its sign with ``n |b(n)|``
non-increasing over the swept widths (true for a bias ``beta/n + O(1/n^2)``
whose terms share a sign, as Wick's theorem gives for linear RNNs).  At the
largest width ``N`` (mean ``m_N``, standard error ``se_N`` over seeds) a
statistic fails when

    |m_N - claim| > t_a se_N + A + rounding,
    A = k (|m_r - m_N| + t_b sqrt(se_r^2 + se_N^2)),   k = r/(N - r),  r = the smallest width

(``residual``: one-sided, ``m_N - 0 > ...``).  The assumption gives
``|b(N)| <= k |b(r) - b(N)|``, so ``A`` is an upper confidence bound on
``|b(N)|``; the smallest width gives the least noisy bound (``k`` small).
``t_a`` and ``t_b``: Student t quantiles, each event at level ``alpha/(2d)`` for
``d`` statistics (Bonferroni), so the verdict fails a true claim with probability
at most ``alpha``.  ``rounding`` = 1e-8 (relative) covers float64 sums of up to
9e7 terms (``k u <= 1e-8``).  The verdict is "inconsistent" when any statistic fails.

Power: ``min_detectable`` is the smallest uniform relative error ``eps`` of the
claim (``K = (1 + eps) K_true``) rejected with probability ``power`` (0.99)
by some gain statistic: ``min_j ((t_a + z_power) se_j + 2 A_j)``, the seed
standard errors and allowances of this run taken as fixed.  The rate (slope of
``log rel_error`` on ``log n`` by least squares over every draw) is reported,
expected ``-1/2`` under the claim; it does not enter the verdict.
"""
from __future__ import annotations

import importlib
import importlib.util
import math
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from verify.engine import autodiff
from verify.internal.errors import BadInput, require
from verify.internal.executors import DaskExecutor, ordered_map
from verify.internal.jsonio import jsonable

__all__ = [
    "ClaimError",
    "ClaimOptions",
    "Decision",
    "ClaimReport",
    "ROUNDING",
    "load_callable",
    "draw_seed",
    "empirical_ntk",
    "claim_statistics",
    "decide",
    "rate",
    "ClaimDraw",
    "model_reference",
    "draw_kernel",
    "run_draw",
    "check_claim",
    "format_report",
]

ROUNDING = 1e-8
#: The NTK strategies (:data:`verify.engine.autodiff.METHODS`).
METHODS = autodiff.METHODS


class ClaimError(BadInput):
    """Bad input to the harness (a malformed model, kernel, input or option): one line, exit 2."""


@dataclass(frozen=True)
class ClaimOptions:
    """Widths, seeds and error levels of a check.

    ``seeds``: draws per width (one int for all widths, or one per width).
    ``alpha``: false-failure probability of the verdict; ``power``: detection
    probability that defines ``min_detectable``.  ``method``: ``"auto"``
    (Jacobian contraction unless it needs more than ``max_jacobian_bytes``),
    ``"jacobian"`` or ``"products"`` (NTK-vector products).  ``threads``: torch's
    intra-op threads during the check (restored afterwards; ``None`` leaves torch's
    setting; 1 is much faster for small widths on a busy machine).
    """

    widths: Tuple[int, ...] = (64, 128, 256, 512)
    seeds: Union[int, Tuple[int, ...]] = 16
    base_seed: int = 0
    alpha: float = 0.01
    power: float = 0.99
    method: str = "auto"
    max_jacobian_bytes: int = 1 << 30
    threads: Optional[int] = None

    def __post_init__(self) -> None:
        widths = tuple(self.widths)
        if len(widths) < 2 or not all(_is_int(w, 1) for w in widths):
            raise ClaimError(f"widths must be at least two positive integers, got {self.widths!r}")
        widths = tuple(int(w) for w in widths)
        if len(set(widths)) != len(widths):
            raise ClaimError(f"widths must be distinct, got {widths}")
        object.__setattr__(self, "widths", widths)
        raw: Any = self.seeds
        seeds = (raw,) * len(widths) if _is_int(raw, None) else tuple(raw)
        if len(seeds) != len(widths) or not all(_is_int(s, 3) for s in seeds):
            raise ClaimError(f"seeds must be an integer >= 3 (or one per width), got {self.seeds!r}")
        object.__setattr__(self, "seeds", tuple(int(s) for s in seeds))
        if not _is_int(self.base_seed, 0):
            raise ClaimError(f"base_seed must be a non-negative integer, got {self.base_seed!r}")
        for name in ("alpha", "power"):
            v = getattr(self, name)
            if isinstance(v, bool) or not (isinstance(v, (int, float)) and 0 < v < 1):
                raise ClaimError(f"{name} must be in (0, 1), got {v!r}")
        if self.method not in METHODS:
            raise ClaimError(f"method must be one of {', '.join(METHODS)}; got {self.method!r}")
        if not _is_int(self.max_jacobian_bytes, 1):
            raise ClaimError(f"max_jacobian_bytes must be a positive integer, got {self.max_jacobian_bytes!r}")
        if self.threads is not None and not _is_int(self.threads, 1):
            raise ClaimError(f"threads must be a positive integer or None, got {self.threads!r}")

    def seeds_at(self, width: int) -> int:
        """Draws at ``width`` (one of :attr:`widths`)."""
        seeds: Any = self.seeds  # a tuple after validation
        return int(seeds[self.widths.index(width)])


def _is_int(v, low: Optional[int]) -> bool:
    """``v`` is an integer (not a bool), at least ``low`` unless ``low`` is None."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        return False
    return bool(low is None or v >= low)


# --------------------------------------------------------------------------- loading
def load_callable(text: str) -> Callable:
    """``"package.module:function"`` or ``"path/to/file.py:function"`` -> the function."""
    if not isinstance(text, str) or text.count(":") < 1:
        raise ClaimError(f"expected MODULE:FUNCTION, got {text!r}")
    modname, _, attr = text.rpartition(":")
    if not modname or not attr:
        raise ClaimError(f"expected MODULE:FUNCTION, got {text!r}")
    try:
        if modname.endswith(".py"):
            path = Path(modname)
            if not path.is_file():
                raise ClaimError(f"{modname}: no such file")
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None:
                raise ClaimError(f"{modname}: not a loadable Python file")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)  # type: ignore[union-attr]
        else:
            module = importlib.import_module(modname)
    except ClaimError:
        raise
    except ModuleNotFoundError as exc:
        raise ClaimError(f"cannot import {modname!r}: {exc}") from None
    except Exception as exc:  # a user module that fails on import: still one line
        raise ClaimError(f"importing {modname!r} raised {type(exc).__name__}: {exc}") from None
    fn = getattr(module, attr, None)
    if fn is None or not callable(fn):
        raise ClaimError(f"{modname!r} has no callable {attr!r}")
    return fn


def draw_seed(base_seed: int, width: int, index: int) -> int:
    """The seed of draw ``index`` at ``width``: a 63-bit integer from numpy's SeedSequence,
    independent across widths and indices, reproducible from ``base_seed``.

    >>> draw_seed(0, 64, 0) == draw_seed(0, 64, 0) != draw_seed(0, 64, 1)
    True
    """
    state = np.random.SeedSequence([int(base_seed), int(width), int(index)]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


# --------------------------------------------------------------------------- empirical NTK
def _torch() -> Any:
    return require("torch", "the claim harness (verify.harness.claim)", "torch")


def _as_batch(torch, X, name: str):
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    arr = np.asarray(X)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise ClaimError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 3 or 0 in arr.shape:
        raise ClaimError(f"{name} must have shape (B, T, n_x) with no empty axis, got {arr.shape}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise ClaimError(f"{name} contains non-finite values")
    return torch.as_tensor(arr, dtype=torch.float64)


def _check_params(torch, params) -> None:
    if not isinstance(params, dict) or not params:
        raise ClaimError("model(...) must return params as a non-empty dict of torch tensors")
    for k, v in params.items():
        if not isinstance(v, torch.Tensor) or v.dtype != torch.float64:
            raise ClaimError(f"params[{k!r}] must be a torch float64 tensor, got {type(v).__name__}"
                             + (f" of dtype {v.dtype}" if isinstance(v, torch.Tensor) else ""))


def empirical_ntk(params, apply, X, Xp=None, *, method: str = "auto",
                  max_jacobian_bytes: int = 1 << 30) -> np.ndarray:
    """Empirical NTK ``K[b,t,a,b',t',c] = sum_p d y[b,t,a]/dp  d y'[b',t',c]/dp`` (float64).

    :func:`verify.engine.autodiff.empirical_ntk` of the user's ``params`` and ``apply`` after
    checking them (a :class:`ClaimError` for a malformed model or output).  ``method``:
    ``"jacobian"`` (Jacobian contraction, memory ``8 (B T + B' T') n_y P`` bytes for ``P``
    parameters), ``"products"`` (NTK-vector products, memory ``O(P)``) or ``"auto"`` (the
    first when it fits in ``max_jacobian_bytes``).
    """
    return _ntk_and_method(params, apply, X, Xp, method, max_jacobian_bytes)[0]


def _ntk_and_method(params, apply, X, Xp, method: str, max_jacobian_bytes: int) -> Tuple[np.ndarray, str]:
    """:func:`empirical_ntk` and the strategy that computed it (``"jacobian"`` or ``"products"``)."""
    torch = _torch()
    _check_params(torch, params)
    if method not in METHODS:
        raise ClaimError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    Xt = _as_batch(torch, X, "X")
    same = Xp is None or Xp is X
    Xpt = Xt if same else _as_batch(torch, Xp, "X'")
    with torch.no_grad():
        y = apply(params, Xt)
        yp = y if same else apply(params, Xpt)
    ny = _check_output(torch, y, Xt)
    if not same and _check_output(torch, yp, Xpt) != ny:
        raise ClaimError("apply gives a different n_y for the second batch")
    used = autodiff.choose_method(method, params, y.numel(), 0 if same else yp.numel(),
                                  max_jacobian_bytes=max_jacobian_bytes)
    K = autodiff.empirical_ntk(params, apply, Xt, None if same else Xpt, method=used)
    return K.cpu().numpy(), used


def _check_output(torch, y, Xt) -> int:
    if not isinstance(y, torch.Tensor) or y.dtype != torch.float64:
        raise ClaimError(f"apply(params, X) must return a torch float64 tensor, got {type(y).__name__}"
                         + (f" of dtype {y.dtype}" if isinstance(y, torch.Tensor) else ""))
    if y.ndim != 3 or tuple(y.shape[:2]) != tuple(Xt.shape[:2]) or y.shape[2] < 1:
        raise ClaimError(f"apply(params, X) must have shape (B, T, n_y) = ({Xt.shape[0]}, {Xt.shape[1]}, n_y), "
                         f"got {tuple(y.shape)}")
    if not bool(torch.all(torch.isfinite(y))):
        raise ClaimError("apply(params, X) gives non-finite outputs")
    return int(y.shape[2])


# --------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class _Layout:
    """The claim as an M x M matrix and the statistic definitions on it."""

    K: np.ndarray
    norm2: float
    blocks: Tuple[Tuple[int, np.ndarray], ...]  # (time t, the rows of time t) where the claim's t-block is nonzero

    @property
    def names(self) -> List[str]:
        return ["gain"] + [f"gain_t{t}" for t, _ in self.blocks] + ["residual"]


def _layout(claim: np.ndarray, B: int, T: int, ny: int) -> _Layout:
    M = B * T * ny
    K = claim.reshape(M, M)
    norm2 = float(np.sum(K * K))
    if not norm2 > 0:
        raise ClaimError("the claimed kernel is zero on these inputs: there is no scale to compare with")
    times = np.broadcast_to(np.arange(T)[None, :, None], (B, T, ny)).reshape(M)
    blocks = []
    for t in range(T):
        rows = np.flatnonzero(times == t)
        if np.sum(K[np.ix_(rows, rows)] ** 2) > 0:
            blocks.append((t, rows))
    return _Layout(K, norm2, tuple(blocks))


def claim_statistics(theta: np.ndarray, layout: _Layout) -> Dict[str, float]:
    """The statistics of one empirical kernel (module docstring) against the claim."""
    K = layout.K
    E = theta.reshape(K.shape)
    g = float(np.sum(E * K) / layout.norm2)
    out = {"gain": g}
    for t, rows in layout.blocks:
        block = np.ix_(rows, rows)
        k = K[block]
        out[f"gain_t{t}"] = float(np.sum(E[block] * k) / np.sum(k * k))
    out["residual"] = float(np.sum((E - g * K) ** 2) / layout.norm2)
    out["rel_error"] = float(math.sqrt(np.sum((E - K) ** 2) / layout.norm2))
    return out


# --------------------------------------------------------------------------- decision
@dataclass(frozen=True)
class Decision:
    """The test of one statistic at the largest width (see :func:`decide`)."""

    name: str
    claim: float
    mean: float
    se: float
    allowance: float
    reference_width: Optional[int]
    threshold: float
    deviation: float
    passed: bool
    one_sided: bool


def _t(q: float, df: int) -> float:
    from scipy.stats import t as student

    return float(student.ppf(q, df))


def decide(means: Dict[int, Dict[str, float]], ses: Dict[int, Dict[str, float]], counts: Dict[int, int],
           names: Sequence[str], alpha: float) -> Tuple[List[Decision], Dict[str, Any]]:
    """Bias-aware tests at the largest width ``N`` (module docstring), Bonferroni over statistics.

    ``means[n][name]``, ``ses[n][name]``: seed mean and standard error at width n;
    ``counts[n]``: seeds at width n.  The bias allowance comes from the trend between
    the smallest width ``r`` and ``N``.  Returns the decisions and the quantiles used.
    """
    widths = sorted(means)
    N, r = widths[-1], widths[0]
    d = len(names)
    t_two = _t(1 - alpha / 2 / (2 * d), counts[N] - 1)  # two-sided, level alpha/(2d)
    t_one = _t(1 - alpha / 2 / d, counts[N] - 1)  # one-sided, level alpha/(2d)
    t_b = _t(1 - alpha / 2 / (2 * d), min(counts[r], counts[N]) - 1)  # allowance, two-sided alpha/(2d)
    k = r / (N - r)
    out = []
    for name in names:
        one_sided = name == "residual"
        claim = 0.0 if one_sided else 1.0
        m, se = means[N][name], ses[N][name]
        allowance = k * (abs(means[r][name] - m) + t_b * math.hypot(ses[r][name], se))
        threshold = (t_one if one_sided else t_two) * se + allowance + ROUNDING
        deviation = (m - claim) if one_sided else abs(m - claim)
        out.append(Decision(name, claim, m, se, allowance, r, threshold, deviation, bool(deviation <= threshold),
                            one_sided))
    return out, {"t_a": t_two, "t_a_one_sided": t_one, "t_b": t_b, "k": k}


def min_detectable(decisions: Sequence[Decision], t_a: float, power: float) -> Tuple[float, Optional[str]]:
    """Smallest uniform relative error ``eps`` of the claim detected with probability ``power``:
    ``min over gain statistics of (t_a + z_power) se + 2 A`` (A covers a bias of either sign)."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(power)
    best, which = math.inf, None
    for dcs in decisions:
        if dcs.one_sided:
            continue
        v = (t_a + z) * dcs.se + 2 * dcs.allowance + ROUNDING
        if v < best:
            best, which = v, dcs.name
    return best, which


def rate(widths: Sequence[int], errors: Sequence[float], alpha: float = 0.01) -> Dict[str, float]:
    """Least-squares slope of ``log error`` on ``log n`` over every draw, with a ``1 - alpha`` t interval."""
    x = np.log(np.asarray(widths, dtype=np.float64))
    y = np.log(np.maximum(np.asarray(errors, dtype=np.float64), 1e-300))
    n = x.size
    if n < 3 or np.ptp(x) == 0:
        return {"slope": float("nan"), "low": float("nan"), "high": float("nan"), "expected": -0.5}
    A = np.stack([np.ones_like(x), x], axis=1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    s2 = float(resid @ resid) / (n - 2)
    se = math.sqrt(s2 / float(np.sum((x - x.mean()) ** 2)))
    h = _t(1 - alpha / 2, n - 2) * se
    return {"slope": float(coef[1]), "low": float(coef[1] - h), "high": float(coef[1] + h), "expected": -0.5}


# --------------------------------------------------------------------------- the check
@dataclass(frozen=True)
class ClaimReport:
    """Everything a check found; :meth:`to_dict` is the JSON report."""

    verdict: str
    decisions: Tuple[Decision, ...]
    min_detectable: float
    min_detectable_statistic: Optional[str]
    rate: Dict[str, float]
    widths: Tuple[int, ...]
    draws: Tuple[Dict[str, Any], ...]
    per_width: Tuple[Dict[str, Any], ...]
    options: ClaimOptions
    quantiles: Dict[str, Any]
    shape: Tuple[int, int, int]
    method: str
    seconds: float

    def to_dict(self) -> Dict[str, object]:
        """JSON-ready: plain floats and lists, non-finite numbers as None."""
        opts = asdict(self.options)
        return jsonable({
            "verdict": self.verdict,
            "alpha": self.options.alpha,
            "rule": RULE,
            "statistics": [asdict(d) for d in self.decisions],
            "min_detectable": self.min_detectable,
            "min_detectable_statistic": self.min_detectable_statistic,
            "power": self.options.power,
            "rate": self.rate,
            "widths": list(self.widths),
            "per_width": list(self.per_width),
            "draws": list(self.draws),
            "options": {k: (list(v) if isinstance(v, tuple) else v) for k, v in opts.items()},
            "quantiles": self.quantiles,
            "inputs_shape": list(self.shape),
            "method": self.method,
            "seconds": self.seconds,
        })


RULE = ("at the largest width N a statistic fails when |mean - claim| > t_a se + A + 1e-8 (residual: one-sided, "
        "claim 0); A = r/(N - r) (|m_r - m_N| + t_b sqrt(se_r^2 + se_N^2)), r the smallest width, bounds the "
        "finite-width bias when n |bias(n)| is non-increasing with a fixed sign; t_a, t_b: Student t quantiles, "
        "each event at level alpha/(2d) for d statistics (Bonferroni): false failure <= alpha")


def _call_user(label: str, fn: Callable, *args):
    """``fn(*args)``; an exception of the user's code becomes one line naming the call ``label``."""
    try:
        return fn(*args)
    except BadInput:
        raise
    except Exception as exc:
        raise ClaimError(f"{label} raised {type(exc).__name__}: {exc}") from None


def _call_model(model, width: int, seed: int):
    out = _call_user(f"model({width}, {seed})", model, width, seed)
    if not (isinstance(out, tuple) and len(out) == 2 and callable(out[1])):
        raise ClaimError(f"model({width}, {seed}) must return (params, apply)")
    return out


def _call_kernel(kernel, X: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
    K = _call_user("kernel(X, X)", kernel, X, X)
    try:
        K = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ClaimError(f"kernel(X, X) must return a real array: {exc}") from None
    if K.shape != shape:
        raise ClaimError(f"kernel(X, X) must have shape (B, T, n_y, B, T, n_y) = {shape}, got {K.shape}")
    if not np.all(np.isfinite(K)):
        raise ClaimError("kernel(X, X) contains non-finite values")
    return K


def check_claim(model, kernel, X, options: ClaimOptions = ClaimOptions(), *, progress: bool = False,
                executor: Optional[Executor] = None) -> ClaimReport:
    """Sweep ``options.widths x seeds``, compare every empirical NTK on ``X`` with
    ``kernel(X, X)`` and decide (module docstring).

    ``model``: the function ``model(width, seed)``, or its reference ``"MODULE:FUNCTION"``
    (:func:`load_callable`).  The first draw runs here (it fixes ``n_y`` and the claim's
    layout); the others are :class:`ClaimDraw` tasks, run by :func:`verify.internal.executors.ordered_map`
    serially (``executor=None``) or on ``executor`` (a process pool, a Dask cluster).  A task's
    numbers depend only on its seed: the report is the same, bit for bit, wherever the tasks
    run.  With an executor, a reference travels to the workers and is loaded there (the module
    must be importable there, or the file readable at the same path); a callable must pickle.
    """
    return _check_claim(model_reference(model, executor), kernel, X, options, progress, executor)


def model_reference(model, executor: Optional[Executor] = None):
    """``model`` as a task carries it, checked before any work: a ``"MODULE:FUNCTION"`` reference
    (a ``.py`` path made absolute; loaded once here, into the per-process cache the tasks use),
    or the callable itself (checked to pickle when ``executor`` sends it to other processes)."""
    if isinstance(model, str):
        if model.count(":") >= 1 and model.rpartition(":")[0].endswith(".py"):
            modname, _, attr = model.rpartition(":")
            model = f"{Path(modname).resolve()}:{attr}"
        _resolve(model)  # a bad reference: one line, before any work
        return model
    if not callable(model):
        raise ClaimError(f"model must be a callable or a 'MODULE:FUNCTION' reference, got {type(model).__name__}")
    if executor is not None and not isinstance(executor, ThreadPoolExecutor):
        import pickle

        try:
            pickle.dumps(model)
        except Exception as exc:  # PicklingError, AttributeError, TypeError, ...: any failure to pickle
            if not isinstance(executor, DaskExecutor) or not _cloudpickles(model):
                raise ClaimError(f"the model cannot be sent to the workers ({type(exc).__name__}: {exc}); pass it "
                                 "as a 'MODULE:FUNCTION' reference instead") from None
    return model


def _cloudpickles(obj) -> bool:
    try:
        import cloudpickle  # type: ignore[import-untyped]

        cloudpickle.dumps(obj)
        return True
    except Exception:  # any failure to pickle
        return False


_LOADED: Dict[str, Callable] = {}


def _resolve(model) -> Callable:
    """The model function of a task: a reference is loaded once per process."""
    if not isinstance(model, str):
        return model
    fn = _LOADED.get(model)
    if fn is None:
        fn = _LOADED[model] = load_callable(model)
    return fn


@dataclass(frozen=True)
class ClaimDraw:
    """One draw of a check: ``model(width, seed)`` (a reference or a picklable callable), its
    empirical NTK on ``X`` by ``method``, reduced to the statistics of ``layout`` (the claim)
    by :func:`run_draw`; ``threads``: torch's intra-op threads while it runs (None: unchanged)."""

    model: Any
    X: np.ndarray
    width: int
    index: int
    seed: int
    method: str = "auto"
    max_jacobian_bytes: int = 1 << 30
    threads: Optional[int] = None
    layout: Optional["_Layout"] = None


@contextmanager
def _torch_threads(torch, threads: Optional[int]) -> Iterator[None]:
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads is not None:
            torch.set_num_threads(before)


def draw_kernel(task: ClaimDraw) -> Tuple[np.ndarray, str]:
    """The empirical NTK ``(B, T, n_y, B, T, n_y)`` of the task's network on ``task.X``, and the
    method that computed it (``"jacobian"`` or ``"products"``)."""
    torch = _torch()
    n, seed = task.width, task.seed
    with _torch_threads(torch, task.threads):
        params, apply = _call_model(_resolve(task.model), n, seed)
        try:
            return _ntk_and_method(params, apply, task.X, None, task.method, task.max_jacobian_bytes)
        except (BadInput, MemoryError):
            raise
        except Exception as exc:
            raise ClaimError(f"differentiating apply for model({n}, {seed}) raised "
                             f"{type(exc).__name__}: {exc}") from None


def run_draw(task: ClaimDraw) -> Dict[str, Any]:
    """``{"width", "index", "seed", statistics..., "method"}`` of one draw against ``task.layout``."""
    return _draw_row(task, *draw_kernel(task))


def _draw_row(task: ClaimDraw, theta: np.ndarray, used: str) -> Dict[str, Any]:
    if task.layout is None:
        raise ClaimError("a draw needs the claim's layout (ClaimDraw.layout)")
    B, T = task.X.shape[:2]
    if theta.shape[2] * B * T != task.layout.K.shape[0]:
        raise ClaimError(f"model({task.width}, {task.seed}) gives n_y = {theta.shape[2]}, another draw gave "
                         f"n_y = {task.layout.K.shape[0] // (B * T)}")
    return {"width": task.width, "index": task.index, "seed": task.seed,
            **claim_statistics(theta, task.layout), "method": used}


def _check_claim(model, kernel, X, options: ClaimOptions, progress: bool,
                 executor: Optional[Executor]) -> ClaimReport:
    start = time.perf_counter()
    torch = _torch()
    Xn = _as_batch(torch, X, "X").numpy()
    B, T, _ = Xn.shape
    tasks = [ClaimDraw(model, Xn, n, i, draw_seed(options.base_seed, n, i), options.method,
                       options.max_jacobian_bytes, options.threads)
             for n in options.widths for i in range(options.seeds_at(n))]
    theta, used = draw_kernel(tasks[0])  # here: n_y and the claim's layout, and a bad model fails at once
    ny = theta.shape[2]
    layout = _layout(_call_kernel(kernel, Xn, (B, T, ny, B, T, ny)), B, T, ny)
    tasks = [replace(t, layout=layout) for t in tasks]
    draws = [_draw_row(tasks[0], theta, used)]
    draws += ordered_map(run_draw, tasks[1:], executor=executor, desc="claim", progress=None if progress else False)
    method_used = {d.pop("method") for d in draws}
    names = layout.names
    means: Dict[int, Dict[str, float]] = {}
    ses: Dict[int, Dict[str, float]] = {}
    per_width: List[Dict[str, Any]] = []
    for n in options.widths:
        rows_n = [d for d in draws if d["width"] == n]
        S = len(rows_n)
        means[n], ses[n] = {}, {}
        for name in names + ["rel_error"]:
            v = np.array([d[name] for d in rows_n], dtype=np.float64)
            means[n][name] = float(v.mean())
            ses[n][name] = float(v.std(ddof=1) / math.sqrt(S))
        per_width.append({"width": n, "seeds": S, "mean": dict(means[n]), "se": dict(ses[n])})
    counts = {n: options.seeds_at(n) for n in options.widths}
    decisions, quant = decide(means, ses, counts, names, options.alpha)
    md, md_name = min_detectable(decisions, quant["t_a"], options.power)
    r = rate([d["width"] for d in draws], [d["rel_error"] for d in draws], options.alpha)
    verdict = "consistent" if all(d.passed for d in decisions) else "inconsistent"
    return ClaimReport(
        verdict=verdict, decisions=tuple(decisions), min_detectable=md, min_detectable_statistic=md_name,
        rate=r, widths=tuple(sorted(options.widths)), draws=tuple(draws), per_width=tuple(per_width),
        options=options, quantiles=quant, shape=(B, T, int(Xn.shape[2])),
        method=",".join(sorted(method_used)), seconds=time.perf_counter() - start,
    )


def format_report(report: ClaimReport) -> str:
    """A human-readable summary of :class:`ClaimReport`."""
    lines = [f"Claim check: {report.verdict.upper()}  (false-failure level alpha = {report.options.alpha})"]
    seeds = [report.options.seeds_at(n) for n in report.options.widths]
    lines.append(f"inputs (B, T, n_x) = {report.shape}, widths {list(report.widths)}, "
                 f"seeds {seeds}, NTK by {report.method}, {report.seconds:.1f} s")
    lines.append("")
    lines.append(f"{'width':>7} {'seeds':>5} {'gain (mean +- se)':>22} {'rel. error':>12} {'residual':>12}")
    for row in report.per_width:
        m, s = row["mean"], row["se"]
        lines.append(f"{row['width']:>7} {row['seeds']:>5} {m['gain']:>12.5f} +- {s['gain']:<7.5f} "
                     f"{m['rel_error']:>12.5f} {m['residual']:>12.3e}")
    lines.append("")
    N = report.widths[-1]
    lines.append(f"tests at n = {N} (deviation <= threshold = t se + bias allowance + 1e-8):")
    for d in report.decisions:
        ref = f"ref n = {d.reference_width}" if d.reference_width is not None else ""
        lines.append(f"  {d.name:>10}: mean {d.mean:.6g} (claim {d.claim:g}), deviation {d.deviation:.3e} "
                     f"{'<=' if d.passed else '>'} {d.threshold:.3e} (allowance {d.allowance:.2e}, {ref})"
                     f"  {'ok' if d.passed else 'FAIL'}")
    lines.append("")
    lines.append(f"min_detectable: a uniform relative error of {report.min_detectable:.3g} in the claim is detected "
                 f"with probability {report.options.power} (via {report.min_detectable_statistic})")
    rt = report.rate
    lines.append(f"rate: rel. error ~ n^p, p = {rt['slope']:.3f}, {100 * (1 - report.options.alpha):.0f} % interval "
                 f"[{rt['low']:.3f}, {rt['high']:.3f}] (expected -0.5 under the claim; informative)")
    return "\n".join(lines)
