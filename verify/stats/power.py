"""Power study of the exact finite-width test: how often it rejects wrong theories and wrong networks.

Each repetition draws fresh networks (``seeds`` per width at each of
``widths``), computes their lag Grams, and runs :func:`verify.stats.exact.exact_test`
against the true theory and against each perturbation:

* wrong theories (tested on draws from the true networks): ``beta`` times
  ``1 + delta`` for ``delta`` in 0.5, 1, 2 and 5 %; ``s_W`` misread by 0.005;
  conv1 and conv2 swapped; the metrics swapped (ntk read as variance); the
  ``1/n_x`` factor dropped (on networks with ``n_x = 2``);
* wrong networks (tested against the true theory): F's variance 1 % too large.

The rejection rate of the true theory is the measured false-failure rate
(nominal ``alpha``).  Every rate comes with a 95 % Clopper-Pearson interval; for
the ``beta`` perturbations the power predicted from the run's own seed variances
(``Phi(delta A - z_crit) + Phi(-delta A - z_crit)`` of the uniform contrast, a
lower bound for the whole test) is shown beside the measured rate.
"""
from __future__ import annotations

import math
from concurrent.futures import Executor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from scipy import stats

from theory.spec import RNNSpec
from verify.engine.ntk import lag_gram
from verify.engine.rnn import init_rnn
from verify.internal.executors import ordered_map
from verify.stats.exact import DEFAULT_ALPHA, Prediction, exact_test, perturb_beta, predict

__all__ = ["PowerConfig", "PowerRow", "PowerStudy", "power_study", "draw_grams", "BETA_DELTAS", "RepetitionTask",
           "RepetitionResult", "run_repetition"]

BETA_DELTAS = (0.005, 0.01, 0.02, 0.05)


@dataclass(frozen=True)
class PowerConfig:
    """The study's budget: per repetition ``seeds`` networks at each of ``widths``."""

    spec: RNNSpec = RNNSpec(sigma_w="0.9")
    lags: int = 16
    widths: Tuple[int, ...] = (64, 128, 256)
    seeds: int = 256
    repetitions: int = 100
    alpha: float = DEFAULT_ALPHA
    base_seed: int = 0


@dataclass(frozen=True)
class PowerRow:
    """One perturbation: its rejections over the repetitions."""

    name: str
    kind: str  # "none", "theory" or "network"
    rejections: int
    repetitions: int
    predicted: Optional[float] = None  # predicted power (uniform contrast), beta perturbations only

    @property
    def rate(self) -> float:
        return self.rejections / self.repetitions

    def interval(self, level: float = 0.95) -> Tuple[float, float]:
        """Clopper-Pearson interval of the rejection probability."""
        k, m, a = self.rejections, self.repetitions, 1 - level
        lo = 0.0 if k == 0 else float(stats.beta.ppf(a / 2, k, m - k + 1))
        hi = 1.0 if k == m else float(stats.beta.isf(a / 2, k + 1, m - k))
        return lo, hi

    def to_dict(self) -> Dict[str, object]:
        lo, hi = self.interval()
        return {"name": self.name, "kind": self.kind, "rejections": self.rejections,
                "repetitions": self.repetitions, "rate": self.rate, "interval95": [lo, hi],
                "predicted_power": self.predicted}


@dataclass(frozen=True, eq=False)
class PowerStudy:
    config: PowerConfig
    rows: Tuple[PowerRow, ...]
    min_detectable: Dict[str, float]  # median over the base repetitions
    seconds: float = float("nan")
    curves: Dict[str, List[float]] = field(default_factory=dict)

    def row(self, name: str) -> PowerRow:
        return next(r for r in self.rows if r.name == name)

    def to_dict(self) -> Dict[str, object]:
        c = self.config
        return {
            "spec": c.spec.to_dict(), "lags": c.lags, "widths": list(c.widths), "seeds": c.seeds,
            "repetitions": c.repetitions, "alpha": c.alpha, "base_seed": c.base_seed,
            "rows": [r.to_dict() for r in self.rows],
            "min_detectable_median": self.min_detectable, "seconds": self.seconds,
        }


def draw_grams(spec: RNNSpec, n: int, lags: int, seed_words: Sequence[Sequence[int]]) -> np.ndarray:
    """Lag Grams ``(S, L, n_y, n_x, L, n_y, n_x)`` of networks drawn from ``SeedSequence(words)``."""

    out = [np.asarray(lag_gram(init_rnn(spec, n, np.random.default_rng(list(w))), spec, lags).total,
                      dtype=np.float64) for w in seed_words]
    return np.stack(out)


def _draws(cfg: PowerConfig, spec: RNNSpec, tag: int, rep: int) -> Dict[int, np.ndarray]:
    return {n: draw_grams(spec, n, cfg.lags, [(cfg.base_seed, tag, rep, n, s) for s in range(cfg.seeds)])
            for n in cfg.widths}


def _scaled(pred: Prediction, factor: float, label: str) -> Prediction:
    return Prediction(pred.spec, pred.lags, {n: m * factor for n, m in pred.means.items()},
                      pred.beta * factor, pred.lead_cov, label)


def _theories(cfg: PowerConfig) -> Dict[str, Prediction]:
    """The true theory and each wrong theory, on the base networks."""
    spec, L, W = cfg.spec, cfg.lags, cfg.widths
    true = predict(spec, L, W)
    out = {"true theory": true}
    for d in BETA_DELTAS:
        out[f"beta x (1 + {d:.3g})"] = perturb_beta(true, d)
    out["s_W misread by +0.005"] = _relabel(predict(spec.replace(sigma_w=spec.sigma_w + Fraction(1, 200)), L, W),
                                             "s_W misread by +0.005", spec)
    other_conv = "conv2" if spec.convention == "conv1" else "conv1"
    out["conv1 and conv2 swapped"] = _relabel(predict(spec.replace(convention=other_conv), L, W),
                                               "conv1 and conv2 swapped", spec)
    other_metric = "variance" if spec.metric != "variance" else "ntk"
    out[f"metric read as {other_metric}"] = _relabel(predict(spec.replace(metric=other_metric), L, W),
                                                      f"metric read as {other_metric}", spec)
    return out


def _relabel(pred: Prediction, label: str, spec: RNNSpec) -> Prediction:
    """A wrong theory's means, tested against draws of ``spec`` (keeps the true spec's shape)."""
    return Prediction(spec, pred.lags, pred.means, pred.beta, pred.lead_cov, label)


def _predicted_power(delta: float, A: float, crit: float) -> float:
    return float(stats.norm.cdf(delta * A - crit) + stats.norm.cdf(-delta * A - crit))


@dataclass(frozen=True, eq=False)
class RepetitionTask:
    """One repetition of the study: everything :func:`run_repetition` needs, picklable.

    ``theories``: (name, prediction) pairs tested on the base networks (``"true theory"`` among
    them); ``nx2_true`` and ``nx2_dropped``: the true theory of the ``n_x = 2`` networks
    ``nx2_spec`` and the one without its ``1/n_x``; ``f_spec``: the wrong networks.
    """

    cfg: PowerConfig
    rep: int
    theories: Tuple[Tuple[str, Prediction], ...]
    nx2_spec: RNNSpec
    nx2_true: Prediction
    nx2_dropped: Prediction
    f_spec: RNNSpec


@dataclass(frozen=True)
class RepetitionResult:
    """What one repetition contributes: which tests rejected, the true theory's minimal
    detectable errors, and the predicted power of each ``beta`` perturbation."""

    rep: int
    rejected: Tuple[Tuple[str, bool], ...]
    min_uniform: float
    min_single: float
    predicted: Tuple[Tuple[str, float], ...]


def run_repetition(task: RepetitionTask) -> RepetitionResult:
    """Draw repetition ``task.rep``'s networks (seeds ``(base_seed, tag, rep, n, s)``: tag 0 the
    base networks, 1 those with ``n_x = 2``, 2 the wrong ones) and run every exact test on them.

    Top level and pure: any executor can run it, and the result depends only on ``task``.
    """
    cfg, rep = task.cfg, task.rep
    rejected: Dict[str, bool] = {}
    predicted: Dict[str, float] = {}
    min_uniform = min_single = float("nan")
    base = _draws(cfg, cfg.spec, 0, rep)
    true = None
    for name, pred in task.theories:
        res = exact_test(pred, base, alpha=cfg.alpha)
        rejected[name] = not res.consistent
        if name == "true theory":
            true = pred
            md = res.min_detectable
            min_uniform = float(md["uniform_beta"])  # type: ignore[arg-type]
            min_single = float(md["single_beta"]["best"])  # type: ignore[index]
            A = (res.critical["uniform"] + stats.norm.isf(0.01)) / float(md["uniform_beta"])  # type: ignore[arg-type]
            for d in BETA_DELTAS:
                predicted[f"beta x (1 + {d:.3g})"] = _predicted_power(d, A, res.critical["uniform"])
    if true is None:
        raise ValueError("a repetition needs the theory named 'true theory'")
    nx2 = _draws(cfg, task.nx2_spec, 1, rep)
    rejected["true theory (n_x = 2)"] = not exact_test(task.nx2_true, nx2, alpha=cfg.alpha).consistent
    rejected["1/n_x factor dropped"] = not exact_test(task.nx2_dropped, nx2, alpha=cfg.alpha).consistent
    fvar = _draws(cfg, task.f_spec, 2, rep)
    rejected["F variance +1 % (networks)"] = not exact_test(true, fvar, alpha=cfg.alpha).consistent
    return RepetitionResult(rep, tuple(rejected.items()), min_uniform, min_single, tuple(predicted.items()))


def power_study(cfg: PowerConfig = PowerConfig(), *, progress: bool = True,
                on_rep: Optional[Callable[[int], None]] = None, executor: Optional[Executor] = None) -> PowerStudy:
    """Run the study (see the module docstring).

    ``executor``: any ``concurrent.futures.Executor`` runs the repetitions
    (:func:`run_repetition`, one task each; :func:`verify.internal.executors.ordered_map`), or ``None``
    for serial.  Every repetition's seeds are explicit, so the study is the same, bit for bit,
    on any executor.  ``on_rep(rep)`` is called for each repetition, in order, once its result
    is in.
    """
    import time


    t0 = time.perf_counter()
    theories = _theories(cfg)
    nx2_spec = cfg.spec.replace(n_x=2)
    nx2_true = predict(nx2_spec, cfg.lags, cfg.widths)
    nx2_dropped = _scaled(nx2_true, float(nx2_spec.n_x), "1/n_x factor dropped")
    f_spec = cfg.spec.replace(sigma_f=Fraction(math.sqrt(float(cfg.spec.sigma_f) ** 2 * 1.01)))
    counts: Dict[str, int] = {name: 0 for name in theories}
    counts.update({"true theory (n_x = 2)": 0, "1/n_x factor dropped": 0, "F variance +1 % (networks)": 0})
    predicted: Dict[str, List[float]] = {name: [] for name in theories if name.startswith("beta")}
    mins: List[float] = []
    single: List[float] = []
    tasks = [RepetitionTask(cfg, rep, tuple(theories.items()), nx2_spec, nx2_true, nx2_dropped, f_spec)
             for rep in range(cfg.repetitions)]
    for res in ordered_map(run_repetition, tasks, executor=executor, desc="power",
                           progress=None if progress else False):
        for name, rejected in res.rejected:
            counts[name] += rejected
        mins.append(res.min_uniform)
        single.append(res.min_single)
        for name, power in res.predicted:
            predicted[name].append(power)
        if on_rep is not None:
            on_rep(res.rep)
    R = cfg.repetitions
    kinds = {"true theory": "none", "true theory (n_x = 2)": "none", "F variance +1 % (networks)": "network"}
    rows = tuple(
        PowerRow(name, kinds.get(name, "theory"), counts[name], R,
                 float(np.mean(predicted[name])) if name in predicted else None)
        for name in counts
    )
    md = {"uniform_beta": float(np.median(mins)), "single_beta_best": float(np.median(single))}
    return PowerStudy(cfg, rows, md, time.perf_counter() - t0)
