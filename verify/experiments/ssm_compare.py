"""Dense RNNs against diagonal recurrences (LRU, S4D-Lin): the experiment of ``python -m verify ssm compare``.

For each model (dense linear RNNs at three ``s_W``; LRU-style rings with all groups trained
(metric ntk) or the readout only; S4D-Lin's readout share) it computes, from the exact
wide-limit lag kernels of :mod:`theory` (:mod:`theory.diagonal`, :mod:`theory.weights`):

* the lag where ``Theta(l, l)`` first falls to 1 % of its maximum (:func:`verify.engine.diagonal.drop_lag`);
* the entropy effective rank of the ``T x T`` kernel (:func:`verify.engine.diagonal.effective_rank`);
* kernel regression (gradient descent in the kernel regime from ``L(0) = 0``) on three teachers:
  ``L = Theta X^T (X Theta X^T)^-1 y`` (:func:`theory.diagonal.implicit_bias_solution`).

:func:`compare` computes, :func:`verify.cli.figures.ssm.write_figure` draws; the command only parses,
calls and prints.
"""
from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from theory.diagonal import (
    DiagonalSpec,
    implicit_bias_solution,
    lag_kernel,
    lag_kernel_diagonal,
    s4d_c_share,
    s4d_c_share_diagonal,
)
from theory.spec import RNNSpec
from theory.weights import lag_weights
from verify.internal import limits, validate
from verify.internal.errors import BadInput

__all__ = ["CompareOptions", "Comparison", "Model", "ModelTask", "models", "model_result", "compare",
           "DENSE_SW", "RING", "LRU_DEFAULT", "S4D"]


@dataclass(frozen=True)
class CompareOptions:
    """Sizes of the comparison: ``lags`` T of the kernels, the 1 % search up to ``max_lag``, and
    the regression example (``train_lags`` T_train, ``None`` to skip it; ``train_sequences`` N
    Gaussian sequences drawn with ``seed``); ``dps`` digits of the exact kernels."""

    lags: int = 128
    train_lags: Optional[int] = 64
    train_sequences: int = 16
    max_lag: int = 100_000
    dps: int = 20
    seed: int = 0
    progress: Optional[bool] = None

    def check(self) -> None:
        """Validate every field (one-line :class:`verify.internal.errors.BadInput` naming the flag)."""
        validate.lags(self.lags, "--lags")
        validate.positive_int(self.max_lag, "--max-lag")
        validate.dps(self.dps, "--dps")
        validate.integer(self.seed, "--seed", minimum=0)
        if self.train_lags is not None:
            validate.lags(self.train_lags, "--train-lags")
            validate.positive_int(self.train_sequences, "--train-sequences")
            if self.train_sequences >= self.train_lags:
                raise BadInput("--train-sequences must be smaller than --train-lags "
                               "(otherwise every kernel fits the same L)")

    def cost(self) -> limits.Cost:
        """Estimated memory and time (:func:`verify.internal.limits.ssm_compare_cost`)."""
        return limits.ssm_compare_cost(self.lags, self.max_lag, self.train_lags, self.dps)


@dataclass(frozen=True)
class Comparison:
    """``summary`` (JSON-ready: per model its 1 % lag, maximum weight, effective rank and fits),
    ``curves`` (model -> (lags, diagonal weights)) and ``spectra`` (model -> normalized
    eigenvalues) for the figure, and the ``teachers`` (name -> impulse response)."""

    summary: Dict
    curves: Dict
    spectra: Dict
    teachers: Dict


DENSE_SW = ("0.8", "0.9", "0.95")
RING: Dict[str, Any] = dict(r_min="0.9", r_max="0.999", max_phase="pi/10", sigma_d=None)
LRU_DEFAULT: Dict[str, Any] = dict(r_min="0", r_max="1", max_phase="6.28", sigma_d=None)
S4D: Dict[str, Any] = dict(kind="lin", state_size=64, dt="0.01")


@dataclass(frozen=True)
class Model:
    """One model of the comparison, picklable: ``family`` ``"dense"`` (``RNNSpec(sigma_w=sw)``: metric
    ntk, conv1, no D, s_F = s_C = 1), ``"diagonal"`` (``DiagonalSpec(**law, scaling=scaling)``) or
    ``"s4d"`` (:data:`S4D`'s C share); :meth:`kernel` and :meth:`diagonal` evaluate :mod:`theory`."""

    name: str
    family: str
    description: str
    sigma_w: Optional[str] = None
    diagonal_spec: Optional[DiagonalSpec] = None

    def _dense(self) -> RNNSpec:
        if self.sigma_w is None:
            raise BadInput(f"model {self.name!r}: family 'dense' needs sigma_w")
        return RNNSpec(sigma_w=self.sigma_w)

    def _spec(self) -> DiagonalSpec:
        if self.diagonal_spec is None:
            raise BadInput(f"model {self.name!r}: family 'diagonal' needs a DiagonalSpec")
        return self.diagonal_spec

    def kernel(self, T: int, dps: int) -> List[List[Any]]:
        """The exact ``T x T`` lag kernel (mpmath numbers)."""
        if self.family == "dense":
            b = lag_weights(self._dense(), T, dps=dps)
            return [[b[i] if i == j else 0 * b[i] for j in range(T)] for i in range(T)]
        if self.family == "diagonal":
            return lag_kernel(self._spec(), T, dps=dps).total
        return s4d_c_share(S4D["kind"], T, state_size=S4D["state_size"], dt=S4D["dt"], dps=dps)

    def diagonal(self, lags: Sequence[int]) -> List[Any]:
        """``Theta(l, l)`` at each of ``lags`` (15 digits)."""
        if self.family == "dense":
            b = lag_weights(self._dense(), max(lags) + 1, dps=15)
            return [b[l] for l in lags]
        if self.family == "diagonal":
            return lag_kernel_diagonal(self._spec(), lags, dps=15)
        return s4d_c_share_diagonal(S4D["kind"], lags, state_size=S4D["state_size"], dt=S4D["dt"], dps=15)


def models() -> List[Model]:
    """The compared models, in the report's order."""
    out = [Model(f"dense RNN s_W={sw}", "dense",
                 f"dense linear RNN, metric ntk, conv1, no D, s_W = {sw}: beta_l = (l+2) s_W^(2l)", sigma_w=sw)
           for sw in DENSE_SW]
    for label, law in (("LRU r[0,1] ph 6.28", LRU_DEFAULT),
                       ("LRU r[0.9,0.999] ph pi/10", RING)):
        for scaling, tag in (("ntk", "all (ntk)"), ("lru", "readout")):
            spec = DiagonalSpec(**law, scaling=scaling)
            out.append(Model(f"{label}, {tag}", "diagonal", f"DiagonalSpec {spec.to_dict()}", diagonal_spec=spec))
    out.append(Model("S4D-Lin N=64 dt=0.01 readout", "s4d",
                     "S4D-Lin (state-spaces/s4 dplr conventions), A_n = -1/2 + i pi n, n < 32, ZOH, B = 1, "
                     "dt = 0.01, s_C^2 = 2: C-share kernel"))
    return out


@dataclass(frozen=True)
class ModelTask:
    """Everything :func:`model_result` computes for one model: the kernel sizes of ``options``
    and, unless ``options.train_lags`` is None, the regression inputs ``X`` (rows: the
    sequences' inputs, lag-reversed) and ``teachers`` (name -> impulse response)."""

    model: Model
    options: "CompareOptions"
    X: Optional[np.ndarray] = None
    teachers: Tuple[Tuple[str, np.ndarray], ...] = ()


def model_result(task: ModelTask) -> Tuple[Dict[str, Any], Tuple[np.ndarray, np.ndarray], np.ndarray]:
    """One model's summary row (1 % lag, maximum weight, effective rank, fits), its weight curve
    ``(lags, Theta(l, l))`` for the figure and its normalized eigenvalues.  Deterministic."""
    from verify.engine.diagonal import drop_lag, effective_rank

    m, options = task.model, task.options
    T, dps = options.lags, options.dps
    lag1, wmax = drop_lag(m.diagonal, 0.01, max_lag=options.max_lag)
    K = m.kernel(T, dps)
    A = np.array([[float(v) for v in row] for row in K])
    er = effective_rank(A)
    ev = np.sort(np.clip(np.linalg.eigvalsh((A + A.T) / 2), 0, None))[::-1]
    far = max(min(options.max_lag, 20_000), 33)
    grid = sorted(set(range(33)) | {int(round(x)) for x in np.geomspace(32, far, 160)})
    curve = (np.array(grid), np.array([float(v) for v in m.diagonal(grid)]))
    row: Dict[str, Any] = {
        "name": m.name, "family": m.family, "description": m.description, "one_percent_lag": lag1,
        "one_percent_note": (None if lag1 is not None
                             else f"stays above 1 % of its maximum up to lag {options.max_lag}"),
        "max_weight": wmax, "effective_rank": er,
    }
    if task.X is not None:
        Tt = options.train_lags
        Kt = [r[:Tt] for r in K[:Tt]]
        row["fits"] = {}
        for tname, Lstar in task.teachers:
            y = task.X @ Lstar
            L = np.array([float(v) for v in implicit_bias_solution(Kt, task.X.tolist(), y.tolist(), dps=dps)])
            row["fits"][tname] = {
                "relative_error": float(np.linalg.norm(L - Lstar) / np.linalg.norm(Lstar)),
                "learned": L.tolist(),
            }
    return row, curve, ev / ev[0]


def _teachers(T: int):
    l = np.arange(T)
    damped = np.exp(-l / 30.0) * np.cos(np.pi * l / 20.0)
    power = 1.0 / (1.0 + l / 4.0)
    delay = np.zeros(T)
    d = min(40, T - 1)
    delay[d] = 1.0
    return {"damped cosine exp(-l/30) cos(pi l/20)": damped, "power law 1/(1 + l/4)": power,
            f"pure delay at lag {d}": delay}


def compare(options: CompareOptions, *, executor: Optional[Executor] = None) -> Comparison:
    """Every model's 1 % lag, effective rank and (unless ``train_lags`` is None) kernel-regression fits.

    One :class:`ModelTask` per model, run by :func:`verify.internal.executors.ordered_map` serially
    (``executor=None``) or on ``executor`` (a process pool, a Dask cluster): the same numbers,
    bit for bit.  Pure computation: nothing is written (:func:`verify.cli.figures.ssm.write_figure`
    draws; the command writes the JSON).
    """
    from verify.internal.executors import ordered_map

    options.check()
    summary: Dict[str, Any] = {"lags": options.lags, "dps": options.dps, "fraction": 0.01, "models": [],
               "train_lags": options.train_lags,
               "train_sequences": None if options.train_lags is None else options.train_sequences}
    X, teachers = None, {}
    if options.train_lags is not None:
        rng = np.random.default_rng(options.seed)
        X = rng.standard_normal((options.train_sequences, options.train_lags))  # row i: x_i(T-1-l)
        teachers = _teachers(options.train_lags)
    tasks = [ModelTask(m, options, X, tuple(teachers.items())) for m in models()]
    curves, spectra = {}, {}
    for row, curve, spectrum in ordered_map(model_result, tasks, executor=executor, desc="ssm compare",
                                            progress=options.progress):
        summary["models"].append(row)
        curves[row["name"]], spectra[row["name"]] = curve, spectrum
    summary["teachers"] = {k: v.tolist() for k, v in teachers.items()}
    summary["notes"] = [
        "lag weights: diagonal Theta(l, l) of the exact wide-limit kernel (theory/), no D term in any model",
        "one_percent_lag: first lag after the maximum where Theta(l, l) <= 1 % of the maximum",
        "effective_rank: entropy effective rank exp(H(p)), p = eigenvalues / trace, of the T x T kernel "
        "(float64 eigenvalues)",
        "fits: kernel regression from L(0) = 0 (gradient descent in the kernel regime, mean initialization): "
        "L = Theta X^T (X Theta X^T)^-1 y, the Theta^-1-metric interpolant; N training sequences, "
        "final output observed, inputs N(0, 1)",
    ]
    return Comparison(summary, curves, spectra, teachers)

