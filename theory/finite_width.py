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

Expectations over ``f~`` and ``c~`` are Isserlis' theorem
(``E (f^T A f) = tr A``, ``E (f^T A f)(f^T B f) = tr A tr B + tr(A B^T) + tr(A B)``);
the remaining traces of words in ``W~`` go to :mod:`theory.wick`.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from theory.spec import RNNSpec, SpecError
from theory.weights import check_lags
from theory.wick import canonical_state, engine, transpose_word

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

RAW_GROUPS = ("C", "F", "W")


# --------------------------------------------------------------------- polynomials
@dataclass(frozen=True)
class InvPoly:
    """``sum_k coeffs[k] n^-k`` with exact rational coefficients.

    >>> p = InvPoly.of([4, 0, 6])
    >>> str(p)
    '4 + 6/n^2'
    >>> p(2)
    Fraction(11, 2)
    """

    coeffs: Tuple[Fraction, ...]

    @staticmethod
    def of(values: Iterable[Union[int, Fraction, str]]) -> "InvPoly":
        out = [Fraction(v) for v in values]
        while out and out[-1] == 0:
            out.pop()
        return InvPoly(tuple(out))

    @staticmethod
    def zero() -> "InvPoly":
        return InvPoly(())

    def coeff(self, k: int) -> Fraction:
        """Coefficient of ``n^-k`` (0 beyond the stored ones)."""
        return self.coeffs[k] if 0 <= k < len(self.coeffs) else Fraction(0)

    @property
    def degree(self) -> int:
        """Highest power of ``1/n`` with a non-zero coefficient (-1 for zero)."""
        return len(self.coeffs) - 1

    def __add__(self, other: "InvPoly") -> "InvPoly":
        size = max(len(self.coeffs), len(other.coeffs))
        return InvPoly.of(self.coeff(k) + other.coeff(k) for k in range(size))

    def __sub__(self, other: "InvPoly") -> "InvPoly":
        return self + other.scale(-1)

    def __mul__(self, other: "InvPoly") -> "InvPoly":
        if not self.coeffs or not other.coeffs:
            return InvPoly.zero()
        out = [Fraction(0)] * (len(self.coeffs) + len(other.coeffs) - 1)
        for i, a in enumerate(self.coeffs):
            if a:
                for j, b in enumerate(other.coeffs):
                    out[i + j] += a * b
        return InvPoly.of(out)

    def scale(self, factor: Union[int, Fraction], shift: int = 0) -> "InvPoly":
        """``factor * n^-shift * self`` (``shift >= 0``)."""
        if shift < 0:
            raise ValueError("shift must be >= 0")
        return InvPoly.of([Fraction(0)] * shift + [factor * c for c in self.coeffs])

    def truncate(self, order: Optional[int]) -> "InvPoly":
        """Keep the coefficients of ``n^0 .. n^-order`` (all for ``None``)."""
        return self if order is None else InvPoly.of(self.coeffs[: order + 1])

    def __call__(self, n: Union[int, Fraction]) -> Fraction:
        """Exact value at width ``n``."""
        inv = 1 / Fraction(n)
        total = Fraction(0)
        for c in reversed(self.coeffs):
            total = total * inv + c
        return total

    def strings(self) -> List[str]:
        """Coefficients as exact strings (``"3/2"``, ``"-7"``), for JSON."""
        return [str(c) for c in self.coeffs]

    def __str__(self) -> str:
        if not self.coeffs:
            return "0"
        parts = []
        for k, c in enumerate(self.coeffs):
            if not c:
                continue
            mag = abs(c)
            num = str(mag)
            if k == 0:
                term = num
            else:
                power = "n" if k == 1 else f"n^{k}"
                term = f"{num}/{power}" if mag.denominator == 1 else f"({num})/{power}"
            parts.append(("- " if c < 0 else "+ ") + term)
        text = " ".join(parts)
        return text[2:] if text.startswith("+ ") else "-" + text[2:]


# ------------------------------------------------------------ spec-free moments
# A "form" is a quadratic form in one Gaussian vector: the word of its matrix.
# A term of theta_g is (c_word or None, f_word or None); theta_g is
# n^-q * sum of its terms.

def _power_word(left: str, m: int, right: str, mp: int) -> str:
    return left * m + right * mp


@lru_cache(maxsize=None)
def _terms(group: str, m: int, mp: int) -> Tuple[Tuple[Tuple[Optional[str], Optional[str]], ...], int]:
    """``theta_group(m, m') = n^-q sum_terms c~^T[c_word]c~ f~^T[f_word]f~`` -> (terms, q)."""
    if group == "C":
        return (((None, _power_word("T", m, "W", mp)),), 1)
    if group == "F":
        return (((_power_word("W", m, "T", mp), None),), 1)
    if group == "W":
        terms = []
        for k in range(m):
            for kp in range(mp):
                terms.append((_power_word("W", k, "T", kp), _power_word("T", m - 1 - k, "W", mp - 1 - kp)))
        return (tuple(terms), 2)
    raise SpecError(f"group must be one of C, F, W; got {group!r}")


def _isserlis(words: Sequence[str]) -> List[Tuple[str, ...]]:
    """``E_v prod_i (v^T A_i v)`` for ``v ~ N(0, I)`` and at most two forms, as trace products."""
    if len(words) == 0:
        return [()]
    if len(words) == 1:
        return [(words[0],)]
    if len(words) == 2:
        a, b = words
        return [(a, b), (a + transpose_word(b),), (a + b,)]
    raise ValueError("at most two quadratic forms per vector")


def _expand(groups: Sequence[Tuple[str, int, int]]) -> Tuple[Counter, int]:
    """``E_(c,f) prod theta_g`` as a Counter of W-trace states, and the normalization power."""
    acc: Counter = Counter()
    q_total = 0
    term_lists = []
    for g, m, mp in groups:
        terms, q = _terms(g, m, mp)
        q_total += q
        term_lists.append(terms)
    if any(not t for t in term_lists):
        return acc, q_total

    def rec(idx: int, cws: Tuple[str, ...], fws: Tuple[str, ...]) -> None:
        if idx == len(term_lists):
            for cpart in _isserlis(cws):
                for fpart in _isserlis(fws):
                    words = cpart + fpart
                    empties = sum(1 for w in words if not w)
                    acc[(canonical_state(words), empties)] += 1
            return
        for cw, fw in term_lists[idx]:
            rec(idx + 1, cws + ((cw,) if cw is not None else ()), fws + ((fw,) if fw is not None else ()))

    rec(0, (), ())
    return acc, q_total


def _evaluate(acc: Counter, q: int, order: Optional[int]) -> InvPoly:
    """``n^-q sum_states count E[state]``, truncated to ``order`` (exact coefficients)."""
    eng = engine()
    coeffs: Dict[int, int] = {}
    for (state, empties), count in acc.items():
        t = len(state) + empties
        depth = None if order is None else t - q + order
        if depth is not None and depth < 0:
            continue
        for k, c in eng.moment(list(state) + [""] * empties, depth).items():
            power = q - k  # coefficient of n^-power
            if power < 0:
                raise AssertionError("moment grew faster than its normalization")  # pragma: no cover
            coeffs[power] = coeffs.get(power, 0) + count * c
    size = max(coeffs, default=-1) + 1
    poly = InvPoly.of(Fraction(coeffs.get(k, 0)) for k in range(size))
    return poly.truncate(order)


@lru_cache(maxsize=None)
def raw_mean(group: str, m: int, mp: int) -> InvPoly:
    """``E theta_group(m, m')``, exactly (spec-free).

    >>> str(raw_mean("C", 2, 2))
    '1 + 2/n^2'
    >>> str(raw_mean("W", 2, 2))
    '2 + 2/n^2'
    """
    _check_index(m, mp)
    from theory.tables import lookup  # the shipped table (theory/data/trace_means.json), when (m, m') is in it

    stored = lookup(group, m, mp)
    if stored is not None:
        return stored
    acc, q = _expand([(group, m, mp)])
    return _evaluate(acc, q, None)


@lru_cache(maxsize=None)
def raw_covariance(g: str, m1: int, m1p: int, h: str, m2: int, m2p: int, order: Optional[int] = None) -> InvPoly:
    """``Cov(theta_g(m1, m1'), theta_h(m2, m2'))``, exact or truncated to ``n^-order``.

    >>> str(raw_covariance("C", 0, 0, "C", 0, 0))  # Var (|f|^2 / n) = 2/n
    '2/n'
    """
    _check_index(m1, m1p)
    _check_index(m2, m2p)
    if order is not None and order <= 1:
        return _leading_covariance(g, m1, m1p, h, m2, m2p).truncate(order)
    acc, q = _expand([(g, m1, m1p), (h, m2, m2p)])
    second = _evaluate(acc, q, order)
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
    xs, _ = _terms(g, m1, m1p)
    ys, _ = _terms(h, m2, m2p)
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


def _check_index(m: int, mp: int) -> None:
    for v in (m, mp):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise SpecError(f"Markov indices must be integers >= 0, got {v!r}")


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

    def to_json(self) -> Dict[str, object]:
        return {
            "total": [[p.strings() for p in row] for row in self.total],
            "shares": {g: [[p.strings() for p in row] for row in grid] for g, grid in self.shares.items()},
        }


def _grid(lags: int, fn) -> Tuple[Tuple[InvPoly, ...], ...]:
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
    shares = {g: _grid(lags, lambda l, lp, g=g: cells[(l, lp)][g]) for g in groups}

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

    def var_share(g: str):
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
