"""Hypothesis strategies for property-testing linear-RNN / SSM code.

Exported so that users can property-test their own code against the toolkit
(``hypothesis`` is a test extra: ``pip install 'rnn-implicit-bias[test]'``).
Every strategy is composable (plain hypothesis strategies, combine them with
``flatmap``, ``st.tuples`` or ``st.data()``) and shrinks towards the simplest
case (small dimensions, short sequences, seed 0, scales at the lower end).

* :func:`scales`       -- exact rationals on a decimal grid, e.g. 0.20, 0.21, ..., 1.10
* :func:`specs`        -- :class:`theory.spec.RNNSpec` over metrics, conventions, scales, dims, D, lr
* :func:`input_batches`-- float64 arrays ``(B, T, n_x)``, finite and bounded
* :func:`seeds`, :func:`networks` -- seeds and :class:`verify.engine.rnn.LinearRNN` draws of a given width
* :func:`lags`         -- numbers of lags ``1..max``
* :func:`spec_and_batch` -- a spec together with a matching input batch

Example (a property of your own code)::
    from hypothesis import given
    from verify import strategies as vst

    @given(vst.spec_and_batch(max_T=8), vst.seeds())
    def test_my_forward(case, seed):
        spec, X = case
        rnn = init_rnn(spec, 16, seed)
        ...  # compare your implementation with verify.engine.rnn.forward(rnn, X, spec.convention)

Scales are drawn as exact decimals (``Fraction(k, 10**places)``), so the spec
is exact and the closed form of :mod:`theory` is evaluated at exactly the
drawn value; the finite-width side rounds it to float64 once.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Optional, Sequence, Tuple, Union

try:
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
except ImportError as exc:  # pragma: no cover - exercised only without the test extra
    raise ImportError(
        "verify.strategies needs hypothesis, which is a test extra: "
        "pip install 'rnn-implicit-bias[test]' (or pip install hypothesis)"
    ) from exc

import numpy as np

from theory.spec import CONVENTIONS, GROUPS, METRICS, RNNSpec, SpecError, as_fraction
from verify.engine.rnn import init_rnn

__all__ = [
    "scales",
    "specs",
    "input_batches",
    "seeds",
    "networks",
    "lags",
    "spec_and_batch",
    "SIGMA_W",
    "SIGMA_RANGE",
]

#: Default range of s_W: contractive, critical and mildly exploding recurrences.
SIGMA_W: Tuple[str, str] = ("0.2", "1.1")
#: Default range of s_F, s_C, s_D.
SIGMA_RANGE: Tuple[str, str] = ("0.3", "2")

Bound = Union[int, float, str, Fraction]


def scales(low: Bound, high: Bound, *, places: int = 2) -> "st.SearchStrategy[Fraction]":
    """Exact rationals ``k / 10**places`` with ``low <= k / 10**places <= high``.

    Bounds are converted exactly (``"0.3"`` and ``0.3`` are both 3/10: a float
    bound is read as its shortest decimal); they must be >= 0 and ``low <= high``.
    Shrinks towards ``low``.

    >>> from hypothesis import find
    >>> find(scales("0.2", "1.1"), lambda s: s > 1)   # the simplest value above 1
    Fraction(101, 100)
    """
    # a float bound means its shortest decimal (0.2 -> 1/5), not its binary value
    lo = as_fraction(repr(low) if isinstance(low, float) else low, "low")
    hi = as_fraction(repr(high) if isinstance(high, float) else high, "high")
    if isinstance(places, bool) or not isinstance(places, int) or not 0 <= places <= 12:
        raise SpecError(f"places must be an integer in 0..12, got {places!r}")
    if lo > hi:
        raise SpecError(f"low must be <= high, got low = {low}, high = {high}")
    unit = 10**places
    k_lo = -((-lo.numerator * unit) // lo.denominator)  # ceil(lo * unit)
    k_hi = (hi.numerator * unit) // hi.denominator  # floor(hi * unit)
    if k_lo > k_hi:
        raise SpecError(f"no multiple of 10^-{places} lies in [{low}, {high}]")
    return st.integers(k_lo, k_hi).map(lambda k: Fraction(k, unit))


def _choices(values, allowed, name):
    values = tuple(values)
    if not values:
        raise SpecError(f"{name} must not be empty")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise SpecError(f"{name} must be chosen from {', '.join(allowed)}; got {bad[0]!r}")
    return st.sampled_from(values)


def _lr_strategy(lr) -> "st.SearchStrategy[Fraction]":
    if lr is None:
        return st.just(Fraction(1))
    if isinstance(lr, st.SearchStrategy):
        return lr.map(lambda v: as_fraction(v, "lr"))
    values = [as_fraction(v, "lr") for v in lr]
    if not values:
        raise SpecError("lr must not be empty")
    return st.sampled_from(values)


@st.composite
def specs(
    draw,
    metrics: Sequence[str] = METRICS,
    conventions: Sequence[str] = CONVENTIONS,
    sigma_w: Tuple[Bound, Bound] = SIGMA_W,
    sigma_range: Tuple[Bound, Bound] = SIGMA_RANGE,
    max_dims: int = 3,
    with_d: Optional[bool] = None,
    lr=None,
    places: int = 2,
) -> RNNSpec:
    """Specifications :class:`theory.spec.RNNSpec` with exact decimal scales.

    ``metrics``/``conventions``: the values to draw from (default: all three
    metrics, both conventions).  ``sigma_w``: ``(low, high)`` of s_W
    (default 0.2..1.1); ``sigma_range``: ``(low, high)`` of s_F, s_C and s_D
    (default 0.3..2); both on a grid of ``10**-places``.  ``n_x, n_y`` in
    ``1..max_dims``.  ``with_d``: ``True`` always a D, ``False`` never, ``None``
    either.  ``lr``: ``None`` keeps every learning-rate multiplier at 1; a
    sequence of values (e.g. ``(0, "0.5", 1, 2)``; 0 freezes a group) or a
    strategy of numbers draws each of lr_W, lr_F, lr_C, lr_D independently.

    >>> from hypothesis import find
    >>> spec = find(specs(conventions=("conv2",)), lambda s: s.has_d and s.n_y == 2)
    >>> spec.convention, spec.has_d, spec.n_x, spec.n_y, str(spec.sigma_w), str(spec.sigma_d)
    ('conv2', True, 1, 2, '1/5', '3/10')
    """
    if isinstance(max_dims, bool) or not isinstance(max_dims, int) or max_dims < 1:
        raise SpecError(f"max_dims must be a positive integer, got {max_dims!r}")
    metric = draw(_choices(metrics, METRICS, "metrics"))
    convention = draw(_choices(conventions, CONVENTIONS, "conventions"))
    s_w = draw(scales(*sigma_w, places=places))
    other = scales(*sigma_range, places=places)
    s_f, s_c = draw(other), draw(other)
    has_d = draw(st.booleans()) if with_d is None else bool(with_d)
    s_d = draw(other) if has_d else None
    n_x = draw(st.integers(1, max_dims))
    n_y = draw(st.integers(1, max_dims))
    lr_values = _lr_strategy(lr)
    lrs = {f"lr_{g.lower()}": draw(lr_values) for g in GROUPS}
    return RNNSpec(
        sigma_w=s_w, sigma_f=s_f, sigma_c=s_c, sigma_d=s_d, n_x=n_x, n_y=n_y,
        metric=metric, convention=convention, **lrs,
    )


def input_batches(
    n_x: int,
    max_batch: int = 3,
    max_T: int = 16,
    *,
    min_T: int = 1,
    T: Optional[int] = None,
    bound: float = 2.0,
    tiny: float = 1e-100,
) -> "st.SearchStrategy[np.ndarray]":
    """Float64 arrays ``(B, T, n_x)`` with ``1 <= B <= max_batch``, ``min_T <= T <= max_T``
    (or exactly ``T``), entries finite, in ``[-bound, bound]``, and either 0 or of
    magnitude at least ``tiny``.

    ``tiny`` (default 1e-100, 0 allows every normal float) keeps kernels, which are
    quadratic in the inputs and carry weights down to s_W^(2L), inside the normal
    float64 range: with inputs near 1e-160 an NTK entry underflows to a subnormal and
    relative comparisons become meaningless.  Subnormal inputs are always excluded.

    >>> from hypothesis import find
    >>> X = find(input_batches(2, max_batch=2, max_T=5), lambda X: X.shape[1] == 3)
    >>> X.dtype, X.shape, bool(abs(X).max() <= 2)
    (dtype('float64'), (1, 3, 2), True)
    """
    for name, v, lo in (("n_x", n_x, 1), ("max_batch", max_batch, 1), ("max_T", max_T, 1), ("min_T", min_T, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise SpecError(f"{name} must be a positive integer, got {v!r}")
    if T is not None:
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise SpecError(f"T must be a positive integer, got {T!r}")
        lengths = st.just(T)
    else:
        if min_T > max_T:
            raise SpecError(f"min_T must be <= max_T, got {min_T} > {max_T}")
        lengths = st.integers(min_T, max_T)
    if not (bound > 0 and np.isfinite(bound)):
        raise SpecError(f"bound must be positive and finite, got {bound!r}")
    if not (0 <= tiny < bound):
        raise SpecError(f"tiny must be in [0, bound), got {tiny!r}")
    if tiny > 0:
        magnitude = st.floats(tiny, bound, allow_subnormal=False, width=64)
        elements = st.one_of(st.just(0.0), magnitude, magnitude.map(lambda v: -v))
    else:
        elements = st.floats(-bound, bound, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)
    shapes = st.tuples(st.integers(1, max_batch), lengths, st.just(n_x))
    return shapes.flatmap(lambda shape: hnp.arrays(np.float64, shape, elements=elements))


def seeds(max_seed: int = 2**32 - 1) -> "st.SearchStrategy[int]":
    """Seeds for :func:`numpy.random.default_rng` (shrink towards 0)."""
    return st.integers(0, max_seed)


def networks(spec: RNNSpec, width: Union[int, Tuple[int, int]], backend=None):
    """:class:`verify.engine.rnn.LinearRNN` at initialization for ``spec``: a seed is drawn
    and passed to :func:`verify.engine.rnn.init_rnn`.  ``width`` is an int or a range
    ``(low, high)``.

    >>> from theory.spec import RNNSpec
    >>> from hypothesis import find
    >>> rnn = find(networks(RNNSpec(sigma_w="0.5"), (4, 8)), lambda r: True)
    >>> rnn.n, rnn.n_x, rnn.n_y
    (4, 1, 1)
    """

    if isinstance(width, tuple):
        lo, hi = width
        widths = st.integers(int(lo), int(hi))
    else:
        widths = st.just(width)
    return st.tuples(widths, seeds()).map(lambda ws: init_rnn(spec, ws[0], ws[1], backend))


def lags(max: int = 16, min: int = 1) -> "st.SearchStrategy[int]":  # max, min: public keyword names
    """Numbers of lags ``min..max`` (shrink towards ``min``)."""
    if isinstance(max, bool) or not isinstance(max, int) or not 1 <= min <= max:
        raise SpecError(f"lags need 1 <= min <= max, got min = {min!r}, max = {max!r}")
    return st.integers(min, max)


def spec_and_batch(max_batch: int = 3, max_T: int = 16, min_T: int = 1, bound: float = 2.0, **spec_kwargs):
    """``(spec, X)`` with ``X`` an input batch of ``spec.n_x`` channels; ``spec_kwargs`` go to :func:`specs`.

    >>> from hypothesis import find
    >>> spec, X = find(spec_and_batch(max_T=4, with_d=True), lambda c: c[0].n_x == 3)
    >>> spec.has_d, X.shape
    (True, (1, 1, 3))
    """
    return specs(**spec_kwargs).flatmap(
        lambda spec: st.tuples(
            st.just(spec), input_batches(spec.n_x, max_batch, max_T, min_T=min_T, bound=bound)
        )
    )
