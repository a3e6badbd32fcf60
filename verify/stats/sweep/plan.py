"""What a sweep draws and how it is judged: the frozen :class:`SweepPlan`.

A plan is validated once, when it is made (one-line :class:`theory.spec.SpecError`
for bad input), and normalized: widths ascending, seeds a tuple, the bias probe's
widths and seeds spelled out.  Everything downstream (draws, statistics, verdict,
report) reads it and trusts it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

from theory.spec import RNNSpec, SpecError
from theory.weights import check_lags
from verify.stats.sweep.stats import SLOPE_MODELS

__all__ = ["SweepPlan"]


def _check_ints(values, name: str, minimum: int) -> Tuple[int, ...]:
    """Distinct integers ``>= minimum`` as a tuple (bools rejected)."""
    try:
        vals = tuple(values)
    except TypeError:
        raise SpecError(f"{name} must be a sequence of integers, got {values!r}") from None
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum:
            raise SpecError(f"{name} must be integers >= {minimum}, got {v!r}")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise SpecError(f"{name} must be distinct, got {list(out)}")
    return tuple(out)


def _is_int(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer))


@dataclass(frozen=True)
class SweepPlan:
    """A width sweep: draws ``widths x seeds`` of ``spec`` with ``lags`` lags, judged at ``confidence``.

    ``seeds``: a count ``S`` (seeds ``0..S-1``) or distinct non-negative integers;
    draw ``(n, s)`` uses ``SeedSequence([base_seed, n, s])``.  At least 3 widths
    and 2 seeds (a slope with an interval).  ``slope_model``: one of
    :data:`verify.stats.sweep.stats.SLOPE_MODELS`.

    Bias probe: with ``bias_seeds > 0`` (at least 2) the bias table uses seeds
    ``0..bias_seeds-1`` at ``bias_widths`` (default: the three smallest widths);
    with ``bias_seeds = 0`` there is no probe and ``bias_widths`` is ignored.

    >>> from theory.spec import RNNSpec
    >>> p = SweepPlan(RNNSpec(sigma_w="0.9"), (64, 16, 32), 2, 4, bias_seeds=3)
    >>> p.widths, p.seeds, p.bias_widths, p.probe_seeds
    ((16, 32, 64), (0, 1), (16, 32, 64), (0, 1, 2))
    """

    spec: RNNSpec
    widths: Tuple[int, ...]
    seeds: Tuple[int, ...]  # a count S is accepted too, and stored as (0, ..., S - 1)
    lags: int
    base_seed: int = 0
    bias_seeds: int = 0
    bias_widths: Optional[Tuple[int, ...]] = None  # stored as a tuple: () without a probe
    confidence: float = 0.99
    slope_model: str = "corrected"

    def __post_init__(self) -> None:
        if not isinstance(self.spec, RNNSpec):
            raise SpecError(f"spec must be an RNNSpec, got {type(self.spec).__name__}")
        seeds: Any = self.seeds
        if _is_int(seeds):
            if seeds < 1:
                raise SpecError(f"seeds must be a positive count or a list of seeds, got {seeds}")
            seeds = tuple(range(int(seeds)))
        seeds = _check_ints(seeds, "seeds", 0)
        widths = _check_ints(self.widths, "widths", 1)
        if len(widths) < 3 or len(seeds) < 2:
            raise SpecError(f"a slope with an interval needs at least 3 widths and 2 seeds; "
                            f"got {len(widths)} width(s) and {len(seeds)} seed(s)")
        check_lags(self.lags)
        if not _is_int(self.base_seed) or self.base_seed < 0:
            raise SpecError(f"base_seed must be a non-negative integer, got {self.base_seed!r}")
        if not (isinstance(self.confidence, (int, float)) and 0.5 <= float(self.confidence) < 1):
            raise SpecError(f"confidence must be in [0.5, 1), got {self.confidence!r}")
        if self.slope_model not in SLOPE_MODELS:
            raise SpecError(f"slope model must be one of {', '.join(SLOPE_MODELS)}, got {self.slope_model!r}")
        widths = tuple(sorted(widths))
        if not _is_int(self.bias_seeds) or self.bias_seeds < 0:
            raise SpecError(f"bias_seeds must be a non-negative integer, got {self.bias_seeds!r}")
        probe_widths: Tuple[int, ...] = ()
        if self.bias_seeds:
            if self.bias_seeds < 2:
                raise SpecError(f"bias_seeds must be 0 (no probe) or at least 2, got {self.bias_seeds}")
            chosen = widths[:3] if self.bias_widths is None else self.bias_widths
            probe_widths = tuple(sorted(_check_ints(chosen, "bias_widths", 1)))
            if not probe_widths:
                raise SpecError("bias_widths must name at least one width")
        set_ = object.__setattr__
        set_(self, "widths", widths)
        set_(self, "seeds", seeds)
        set_(self, "lags", int(self.lags))
        set_(self, "base_seed", int(self.base_seed))
        set_(self, "bias_seeds", int(self.bias_seeds))
        set_(self, "bias_widths", probe_widths)
        set_(self, "confidence", float(self.confidence))

    @property
    def probe_seeds(self) -> Tuple[int, ...]:
        """Seeds of the bias probe: ``0..bias_seeds-1`` (empty without a probe)."""
        return tuple(range(self.bias_seeds))

    def task_keys(self) -> Tuple[Tuple[int, int], ...]:
        """Every ``(width, seed)`` to draw, once each: the sweep's, largest widths first (pools
        finish together), then the probe's draws that the sweep does not already make."""
        keys = [(n, s) for n in reversed(self.widths) for s in self.seeds]
        seen = set(keys)
        keys += [(n, s) for n in self.bias_widths or () for s in self.probe_seeds if (n, s) not in seen]
        return tuple(keys)
