"""The lag Gram at finite width, exactly: its mean and variance as polynomials in 1/n.

For a Gaussian initialization every moment of the empirical lag Gram
``Theta_n`` (docs/theory.md, section "The lag Gram and its Krylov structure")
is an exact polynomial in ``1/n`` with rational coefficients.  Write ``W~`` for
``W / s_W`` (entries ``N(0, 1/n)``) and let ``f~, c~ ~ N(0, I_n)`` be
independent.  Three spec-free random variables carry all of it, per pair of
Markov indices ``(m, m')``:

    theta_C(m, m') = (1/n)   f~^T (W~^m)^T W~^m' f~
    theta_F(m, m') = (1/n)   c~^T W~^m (W~^m')^T c~
    theta_W(m, m') = (1/n^2) sum_(k<m, k'<m') (c~^T W~^k (W~^k')^T c~) (f~^T (W~^p)^T W~^p' f~),
                     p = m - 1 - k, p' = m' - 1 - k'.

The entry of the lag Gram with equal output and input indices is, exactly
(not only in mean), ``Theta_n[l, a, i, l', a, i] = sum_g kappa_g(m, m') theta_g(m, m')``
plus the D share ``kappa_D`` at lags (0, 0), where ``(m, m')`` are the Markov
indices of the lags (conv1: ``m = l``; conv2: ``m = l - 1``) and the factors
``kappa_g`` (:func:`group_factors`) hold the scales, the metric, ``n_x`` and
the learning-rate multipliers.  Entries with ``a != b`` or ``i != j`` have mean
zero, so

    E Theta_n[l, a, i, l', b, j] = delta_ab delta_ij  sum_g kappa_g E theta_g(m, m').

The mean does not depend on ``n_y``; it scales as ``1/n_x``, except the F and D
shares of the metric "standard", which are ``O(1/n)`` and carry no ``1/n_x``.

The means and covariances of the ``theta_g`` come from their Wick expansion
(:mod:`theory.trace_means`: Isserlis' theorem over ``f~`` and ``c~``, then the
Gaussian moments of traces of words in ``W~``, :mod:`theory.wick`); the means
with ``m, m'`` below the shipped table's size are read from it
(:mod:`theory.tables`).  Every result is an :class:`~theory.polynomial.InvPoly`
(re-exported here, with :data:`~theory.trace_means.RAW_GROUPS`).
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from theory.polynomial import InvPoly
from theory.spec import RNNSpec, SpecError
from theory.tables import lookup
from theory.trace_means import RAW_GROUPS, check_index, engine_mean, evaluate, expand, theta_terms
from theory.weights import check_lags
from theory.wick import engine, transpose_word

__all__ = [
    "InvPoly",
    "FiniteMoments",
    "group_factors",
    "raw_mean",
    "raw_covariance",
    "mean_lag_gram",
    "variance_lag_gram",
    "covariance_entries",
    "expected_sq_error",
    "RAW_GROUPS",
    "planar",
]


# ------------------------------------------------------------ spec-free moments
@lru_cache(maxsize=None)
def raw_mean(group: str, m: int, mp: int) -> InvPoly:
    """``E theta_group(m, m')``, exactly (spec-free).

    >>> str(raw_mean("C", 2, 2))
    '1 + 2/n^2'
    >>> str(raw_mean("W", 2, 2))
    '2 + 2/n^2'
    """
    check_index(m, mp)
    stored = lookup(group, m, mp)  # the shipped table (theory/data/trace_means.json), when (m, m') is in it
    return stored if stored is not None else engine_mean(group, m, mp)


@lru_cache(maxsize=None)
def raw_covariance(g: str, m1: int, m1p: int, h: str, m2: int, m2p: int, order: Optional[int] = None) -> InvPoly:
    """``Cov(theta_g(m1, m1'), theta_h(m2, m2'))``, exact or truncated to ``n^-order``.

    >>> str(raw_covariance("C", 0, 0, "C", 0, 0))  # Var (|f|^2 / n) = 2/n
    '2/n'
    """
    check_index(m1, m1p)
    check_index(m2, m2p)
    if order is not None and order <= 1:
        return _leading_covariance(g, m1, m1p, h, m2, m2p).truncate(order)
    acc, q = expand([(g, m1, m1p), (h, m2, m2p)])
    second = evaluate(acc, q, order)
    product = (raw_mean(g, m1, m1p) * raw_mean(h, m2, m2p)).truncate(order)
    return second - product


@lru_cache(maxsize=None)
def planar(word: str) -> int:
    """``phi(w) = lim (1/n) E tr(w)``: the leading coefficient (non-crossing pairings of W with W^T).

    >>> planar("TTWW"), planar("TWTW"), planar("")
    (1, 2, 1)
    """
    return engine().moment([word], 0).get(1, 0) if word else 1


def _leading_covariance(g: str, m1: int, m1p: int, h: str, m2: int, m2p: int) -> InvPoly:
    """The ``1/n`` coefficient of ``Cov(theta_g, theta_h)`` (its constant term is 0).

    Expand both in quadratic forms of ``c~`` and ``f~``.  Up to order ``1/n`` the
    fully factorized Isserlis term cancels the product of the means (a joint
    cumulant of traces lies two orders below their product), terms with two
    traces fewer are ``O(1/n^2)``, and the rest are one cross pairing of a form
    of ``theta_g`` with a form of ``theta_h`` in the same vector, whose leading
    order factorizes into planar moments:

        n Cov -> sum_terms sum_(v shared) [phi(A_v B_v^T) + phi(A_v B_v)] prod_(other forms) phi.
    """
    xs, _ = theta_terms(g, m1, m1p)
    ys, _ = theta_terms(h, m2, m2p)
    total = 0
    for xc, xf in xs:
        for yc, yf in ys:
            for a, b, others in ((xc, yc, (xf, yf)), (xf, yf, (xc, yc))):
                if a is None or b is None:
                    continue
                rest = 1
                for w in others:
                    if w is not None:
                        rest *= planar(w)
                        if not rest:
                            break
                if rest:
                    total += rest * (planar(a + transpose_word(b)) + planar(a + b))
    return InvPoly.of([0, total])


# ------------------------------------------------------------------ spec layer
Factor = Tuple[Fraction, int]  # (coefficient, power of 1/n)


def group_factors(spec: RNNSpec, m: int, mp: int) -> Dict[str, Factor]:
    """``kappa_g = coefficient * n^-power`` of each group at Markov indices ``(m, m')``.

    ``Theta_n[l, a, i, l', a, i] = sum_g kappa_g theta_g(m, m')`` (plus the D share
    at lags (0, 0), returned under ``"D"`` when the model has a D).  With the
    metric's scales ``s_g`` (docs/theory.md, section "Initialization and
    metrics") and ``r = s_W``:

        kappa_C = lr_C scale_C s_F^2 r^(m+m') n / n_x
        kappa_F = lr_F scale_F s_C^2 r^(m+m')
        kappa_W = lr_W scale_W s_C^2 s_F^2 r^(m+m'-2) n / n_x
        kappa_D = lr_D scale_D

    where ``scale`` is (W, F, C, D): ntk ``(s_W^2/n, s_F^2/n_x, s_C^2/n, s_D^2/n_x)``;
    variance ``(1/n, 1/n_x, 1/n, 1/n_x)``; standard ``1/n`` for all.
    """
    nx = Fraction(spec.n_x)
    sw, sf, sc = spec.sigma_w, spec.sigma_f, spec.sigma_c
    one = Fraction(1)
    if spec.metric == "ntk":
        scale = {"W": (sw**2, 1), "F": (sf**2 / nx, 0), "C": (sc**2, 1), "D": (spec.sigma("D") ** 2 / nx, 0)}
    elif spec.metric == "variance":
        scale = {"W": (one, 1), "F": (one / nx, 0), "C": (one, 1), "D": (one / nx, 0)}
    else:
        scale = {g: (one, 1) for g in "WFCD"}
    out: Dict[str, Factor] = {}
    c, p = scale["C"]
    out["C"] = (spec.lr("C") * c * sf**2 * sw ** (m + mp) / nx, p - 1)
    c, p = scale["F"]
    out["F"] = (spec.lr("F") * c * sc**2 * sw ** (m + mp), p)
    c, p = scale["W"]
    wpow = sw ** (m + mp - 2) if m + mp >= 2 else Fraction(0)
    out["W"] = (spec.lr("W") * c * sc**2 * sf**2 * wpow / nx, p - 1)
    if spec.has_d:
        c, p = scale["D"]
        out["D"] = (spec.lr("D") * c, p)
    return out


def _markov(spec: RNNSpec, lag: int) -> Optional[int]:
    """Markov index of ``lag`` (``None``: only D reaches it)."""
    if spec.convention == "conv1":
        return lag
    return lag - 1 if lag >= 1 else None


def _entry_shares(spec: RNNSpec, l: int, lp: int) -> Dict[str, InvPoly]:
    m, mp = _markov(spec, l), _markov(spec, lp)
    shares: Dict[str, InvPoly] = {}
    if m is not None and mp is not None:
        for g, (coef, power) in group_factors(spec, m, mp).items():
            if g == "D":
                continue
            shares[g] = raw_mean(g, m, mp).scale(coef, power) if coef else InvPoly.zero()
    else:
        for g in RAW_GROUPS:
            shares[g] = InvPoly.zero()
    if spec.has_d:
        coef, power = group_factors(spec, 0, 0)["D"]
        shares["D"] = InvPoly.of([0] * power + [coef]) if (l, lp) == (0, 0) else InvPoly.zero()
    return shares


@dataclass(frozen=True)
class FiniteMoments:
    """A moment of the lag Gram entry by entry: ``total[l][l']`` and ``shares[g][l][l']``.

    Entries are :class:`InvPoly` in ``1/n``; the layout is that of the
    ``(a, i) = (b, j)`` entries (see the module docstring).
    """

    spec: RNNSpec
    lags: int
    total: Tuple[Tuple[InvPoly, ...], ...]
    shares: Mapping[str, Tuple[Tuple[InvPoly, ...], ...]]
    order: Optional[int] = None

    def at(self, n: int, which: str = "total") -> List[List[Fraction]]:
        """Exact values at width ``n``."""
        grid = self.total if which == "total" else self.shares[which]
        return [[p(n) for p in row] for row in grid]


def _grid(lags: int, fn: Callable[[int, int], InvPoly]) -> Tuple[Tuple[InvPoly, ...], ...]:
    return tuple(tuple(fn(l, lp) for lp in range(lags)) for l in range(lags))


def mean_lag_gram(spec: RNNSpec, lags: int) -> FiniteMoments:
    """``E Theta_n[l, l']`` for ``l, l' < lags``, per group share and in total, exactly.

    The constant terms are the lag weights: ``E Theta_n[l, l] -> beta_l / n_x``.

    >>> spec = RNNSpec(sigma_w="1")
    >>> mom = mean_lag_gram(spec, 4)
    >>> str(mom.total[2][2]), str(mom.total[2][0]), str(mom.total[3][1])
    ('4 + 6/n^2', '2/n', '6/n + 3/n^2')
    """
    check_lags(lags)
    cells = {(l, lp): _entry_shares(spec, l, lp) for l in range(lags) for lp in range(lags)}
    groups = list(next(iter(cells.values())))

    def share(g: str) -> Callable[[int, int], InvPoly]:
        return lambda l, lp: cells[(l, lp)][g]

    shares = {g: _grid(lags, share(g)) for g in groups}

    def total(l: int, lp: int) -> InvPoly:
        out = InvPoly.zero()
        for g in groups:
            out = out + cells[(l, lp)][g]
        return out

    return FiniteMoments(spec, lags, _grid(lags, total), shares)


def _entry_factors(spec: RNNSpec, l: int, lp: int) -> Dict[str, Tuple[Fraction, int, int, int]]:
    """Random groups of entry (l, l'): g -> (coef, power, m, m')."""
    m, mp = _markov(spec, l), _markov(spec, lp)
    if m is None or mp is None:
        return {}
    return {g: (c, p, m, mp) for g, (c, p) in group_factors(spec, m, mp).items() if g != "D" and c}


def covariance_entries(spec: RNNSpec, e1: Tuple[int, int], e2: Tuple[int, int], order: Optional[int] = None) -> InvPoly:
    """``Cov(Theta_n[e1], Theta_n[e2])`` for two lag pairs, on the ``(a, i) = (b, j)`` entries."""
    f1, f2 = _entry_factors(spec, *e1), _entry_factors(spec, *e2)
    out = InvPoly.zero()
    for g, (c1, p1, m1, m1p) in f1.items():
        for h, (c2, p2, m2, m2p) in f2.items():
            inner = None if order is None else order - p1 - p2
            if inner is not None and inner < 0:
                continue
            cov = _sym_covariance(g, m1, m1p, h, m2, m2p, inner)
            out = out + cov.scale(c1 * c2, p1 + p2)
    return out.truncate(order)


def _sym_covariance(g: str, m1: int, m1p: int, h: str, m2: int, m2p: int, order: Optional[int]) -> InvPoly:
    """:func:`raw_covariance` with its arguments in a canonical order (it is symmetric)."""
    a, b = (g, m1, m1p), (h, m2, m2p)
    if b < a:
        a, b = b, a
    return raw_covariance(*a, *b, order)


def variance_lag_gram(spec: RNNSpec, lags: int, order: Optional[int] = None) -> FiniteMoments:
    """``Var Theta_n[l, l']`` for ``l, l' < lags``, exact (``order=None``) or to ``n^-order``.

    ``shares[g]`` holds the variance of the group share alone.

    >>> str(variance_lag_gram(RNNSpec(sigma_w="1"), 1).total[0][0])   # (|c|^2 + |f|^2)/n
    '4/n'
    """
    check_lags(lags)

    def var_total(l: int, lp: int) -> InvPoly:
        return covariance_entries(spec, (l, lp), (l, lp), order)

    def var_share(g: str) -> Callable[[int, int], InvPoly]:
        def fn(l: int, lp: int) -> InvPoly:
            f = _entry_factors(spec, l, lp)
            if g not in f:
                return InvPoly.zero()
            c, p, m, mp = f[g]
            inner = None if order is None else order - 2 * p
            if inner is not None and inner < 0:
                return InvPoly.zero()
            return _sym_covariance(g, m, mp, g, m, mp, inner).scale(c * c, 2 * p).truncate(order)

        return fn

    shares = {g: _grid(lags, var_share(g)) for g in RAW_GROUPS}
    return FiniteMoments(spec, lags, _grid(lags, var_total), shares, order)


def expected_sq_error(spec: RNNSpec, lags: int, order: Optional[int] = None) -> InvPoly:
    """``E ||Theta_n - Theta_inf||_F^2`` over lags ``< lags`` (``n_x = n_y = 1``).

    ``= sum_(l,l') Var Theta_n[l, l'] + (E Theta_n[l, l'] - beta_l delta_ll')^2``;
    the wide limit ``Theta_inf`` is the constant term of the mean.
    """
    if spec.n_x != 1 or spec.n_y != 1:
        raise SpecError("expected_sq_error needs n_x = n_y = 1 (the (a, i) != (b, j) entries are not covered)")
    mean = mean_lag_gram(spec, lags)
    var = variance_lag_gram(spec, lags, order)
    out = InvPoly.zero()
    for l in range(lags):
        for lp in range(lags):
            p = mean.total[l][lp]
            bias = p - InvPoly.of(p.coeffs[:1])
            out = out + var.total[l][lp] + (bias * bias).truncate(order)
    return out.truncate(order)
