"""theory.wick and the spec-free moments of theory.finite_width against brute force.

The reference below is written apart from the engine (it imports neither
theory.wick nor theory.finite_width).  A product of traces of words in Gaussian
matrices is a set of *letters*; letter ``i`` carries two index slots, its row
``2i`` and its column ``2i + 1``.  The trace ``tr(X_1 ... X_k)`` identifies the
column slot of ``X_j`` with the row slot of ``X_(j+1)`` (cyclically).  Isserlis'
theorem sums over the perfect matchings of the letters that pair equal matrices;
a matched pair of entries ``M[a, b] M[c, d]`` of a matrix with independent
entries of variance ``v`` has mean ``v delta_ac delta_bd``, so the pairing
identifies the two letters' matrix-row slots and their matrix-column slots (a
transposed letter ``M^T`` has its slots swapped).  Each connected component of
the identification graph (union-find on slots) is one free index summed over its
range (``n``, or ``1`` for the thin side of an ``n x 1`` matrix).  Matrices:

* ``W``: ``n x n``, variance ``1/n`` (letters ``W`` and ``T = W^T``);
* ``G``, ``H``: ``n x 1``, variance 1, so ``f~ = G`` and ``c~ = H`` and
  ``f~^T A f~ = tr(G^T A G)`` (the trace over the 1 x 1 side).

Each pairing contributes ``n^(components of size n - pairs of W letters)``.
"""
from __future__ import annotations

import itertools
import random
from collections import Counter
from fractions import Fraction
from typing import Dict, Iterator, List, Sequence, Tuple

import pytest

from theory.finite_width import InvPoly, mean_lag_gram, raw_covariance, raw_mean
from theory.spec import RNNSpec
from theory.wick import trace_moment

# ------------------------------------------------------------------ reference
Letter = Tuple[str, bool]  # (matrix, transposed)
SHAPES = {"W": ("n", "n"), "G": ("n", "1"), "H": ("n", "1")}
W_LETTERS = {"W": ("W", False), "T": ("W", True)}
Laurent = Dict[int, int]  # {power of n: integer coefficient}


def matchings(items: Sequence[int]) -> Iterator[List[Tuple[int, int]]]:
    """All perfect matchings of ``items`` (none for an odd count)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for j in range(len(rest)):
        for tail in matchings(rest[:j] + rest[j + 1 :]):
            yield [(first, rest[j])] + tail


class _UnionFind:
    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, a: int) -> int:
        parent = self.parent
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[ra] = rb


def brute_moment(traces: Sequence[Sequence[Letter]]) -> Laurent:
    """``E prod_k tr(trace_k)`` by summing over all Wick pairings (a Laurent polynomial in n).

    An empty trace is ``tr(I_n) = n``.
    """
    letters: List[Letter] = []
    glue: List[Tuple[int, int]] = []  # (column slot, row slot) identified by a product
    base_power = 0
    for word in traces:
        if not word:
            base_power += 1
            continue
        start = len(letters)
        letters.extend(word)
        k = len(word)
        for j in range(k):
            a, b = start + j, start + (j + 1) % k
            glue.append((2 * a + 1, 2 * b))
    dims = []  # dimension of each slot
    mslots = []  # (matrix-row slot, matrix-column slot) of each letter
    for i, (mat, tr) in enumerate(letters):
        rows, cols = SHAPES[mat]
        dims.extend([cols, rows] if tr else [rows, cols])
        mslots.append((2 * i + 1, 2 * i) if tr else (2 * i, 2 * i + 1))
    for a, b in glue:
        if dims[a] != dims[b]:
            raise ValueError("the product is not well formed")
    by_matrix: Dict[str, List[int]] = {}
    for i, (mat, _) in enumerate(letters):
        by_matrix.setdefault(mat, []).append(i)
    if any(len(v) % 2 for v in by_matrix.values()):
        return {}
    w_pairs = len(by_matrix.get("W", ())) // 2
    out: Counter = Counter()
    groups = [list(matchings(v)) for v in by_matrix.values()]
    for combo in itertools.product(*groups):
        uf = _UnionFind(2 * len(letters))
        for a, b in glue:
            uf.union(a, b)
        for pairing in combo:
            for i, j in pairing:
                uf.union(mslots[i][0], mslots[j][0])
                uf.union(mslots[i][1], mslots[j][1])
        faces = sum(1 for s in range(len(dims)) if uf.find(s) == s and dims[s] == "n")
        out[base_power + faces - w_pairs] += 1
    return {k: v for k, v in out.items() if v}


def word_letters(word: str) -> List[Letter]:
    return [W_LETTERS[ch] for ch in word]


def brute_words(words: Sequence[str]) -> Laurent:
    return brute_moment([word_letters(w) for w in words])


def quad(vec: str, word: str) -> List[Letter]:
    """``v^T A v`` as the letters of ``tr(V^T A V)``."""
    return [(vec, True)] + word_letters(word) + [(vec, False)]


def theta_terms(group: str, m: int, mp: int) -> Tuple[List[List[List[Letter]]], int]:
    """theta_group(m, m') = n^-q sum_terms prod_traces, from the definitions (finite_width docstring).

    theta_C = (1/n) f^T (W^m)^T W^m' f; theta_F = (1/n) c^T W^m (W^m')^T c;
    theta_W = (1/n^2) sum_(k<m, k'<m') (c^T W^k (W^k')^T c)(f^T (W^p)^T W^p' f).
    """
    if group == "C":
        return [[quad("G", "T" * m + "W" * mp)]], 1
    if group == "F":
        return [[quad("H", "W" * m + "T" * mp)]], 1
    terms = []
    for k in range(m):
        for kp in range(mp):
            p, pp = m - 1 - k, mp - 1 - kp
            terms.append([quad("H", "W" * k + "T" * kp), quad("G", "T" * p + "W" * pp)])
    return terms, 2


def laurent_add(a: Laurent, b: Laurent, factor: int = 1) -> Laurent:
    out = dict(a)
    for k, v in b.items():
        out[k] = out.get(k, 0) + factor * v
    return {k: v for k, v in out.items() if v}


def laurent_mul(a: Laurent, b: Laurent) -> Laurent:
    out: Laurent = {}
    for k1, v1 in a.items():
        for k2, v2 in b.items():
            out[k1 + k2] = out.get(k1 + k2, 0) + v1 * v2
    return {k: v for k, v in out.items() if v}


def shift(a: Laurent, q: int) -> Laurent:
    return {k - q: v for k, v in a.items()}


def brute_theta_mean(group: str, m: int, mp: int) -> Laurent:
    terms, q = theta_terms(group, m, mp)
    acc: Laurent = {}
    for traces in terms:
        acc = laurent_add(acc, brute_moment(traces))
    return shift(acc, q)


def brute_theta_covariance(g: str, m1: int, m1p: int, h: str, m2: int, m2p: int) -> Laurent:
    t1, q1 = theta_terms(g, m1, m1p)
    t2, q2 = theta_terms(h, m2, m2p)
    second: Laurent = {}
    for a in t1:
        for b in t2:
            second = laurent_add(second, brute_moment(a + b))
    second = shift(second, q1 + q2)
    product = laurent_mul(brute_theta_mean(g, m1, m1p), brute_theta_mean(h, m2, m2p))
    return laurent_add(second, product, -1)


def as_invpoly_coeffs(a: Laurent) -> Tuple[Fraction, ...]:
    """Coefficients of n^0, n^-1, ... (a positive power of n is an error)."""
    assert all(k <= 0 for k in a), a
    size = max((-k for k in a), default=-1) + 1
    coeffs = [Fraction(a.get(-k, 0)) for k in range(size)]
    while coeffs and coeffs[-1] == 0:
        coeffs.pop()
    return tuple(coeffs)


# --------------------------------------------------------- the reference itself
def test_reference_small_cases_by_hand():
    """Hand-checkable moments: E tr W^2 = 1, E tr W W^T = n, E tr(W)^2 = 1, E |g|^2 = n, E |g|^4 = n^2 + 2n."""
    assert brute_words(["WW"]) == {0: 1}
    assert brute_words(["WT"]) == {1: 1}
    assert brute_words(["W", "W"]) == {0: 1}
    assert brute_words(["W", "T"]) == {0: 1}
    assert brute_words(["", "WT"]) == {2: 1}
    assert brute_words(["WTWT"]) == {1: 2, 0: 1}  # real Wishart: E tr (X X^T)^2 = n^2 (2n + 1), X_ij ~ N(0, 1)
    assert brute_moment([quad("G", "")]) == {1: 1}
    assert brute_moment([quad("G", ""), quad("G", "")]) == {2: 1, 1: 2}
    assert brute_words(["W"]) == {} and brute_words(["WWW"]) == {}


def test_reference_wishart_fourth_moment():
    """The reference against a third method: E tr (W W^T)^2 = (1/n^2) E sum X_ij X_kj X_kl X_il with
    X_ij ~ N(0, 1), evaluated entry by entry (Isserlis per variable) at n = 1, 2, 3."""
    got = brute_words(["WTWT"])
    for n in (1, 2, 3):
        # E sum_(i,j,k,l) X_ij X_kj X_kl X_il / n^2, X_ij ~ N(0, 1): Isserlis entry by entry
        total = 0
        for i, j, k, l in itertools.product(range(n), repeat=4):
            ids = [(i, j), (k, j), (k, l), (i, l)]
            total += _gauss_moment(ids)
        assert Fraction(total, n * n) == sum(Fraction(n) ** p * c for p, c in got.items()), n


def _gauss_moment(ids) -> int:
    """E prod of standard normal variables labelled by ids (repeats allowed)."""
    out = 1
    for c in Counter(ids).values():
        if c % 2:
            return 0
        out *= math_double_factorial(c - 1)
    return out


def math_double_factorial(k: int) -> int:
    out = 1
    while k > 1:
        out *= k
        k -= 2
    return out


# -------------------------------------------------------------- trace_moment
def all_words(length: int) -> List[str]:
    return ["".join(p) for p in itertools.product("WT", repeat=length)]


def rotation_class(word: str) -> str:
    """Least rotation of ``word``: ``tr(AB) = tr(BA)`` makes the moment a function of this class."""
    return min((word[i:] + word[:i] for i in range(len(word))), default=word)


def _check(words: Sequence[str]) -> None:
    got = trace_moment(list(words))
    assert got == brute_words(words), words


def test_reference_is_invariant_under_rotation_and_transposition():
    """Brute force on every word of length <= 8: rotations and the transpose word (reversed, W <-> T) agree."""
    for L in range(0, 9, 2):
        for w in all_words(L):
            ref = brute_words([w])
            assert brute_words([w[1:] + w[:1]]) == ref, w
            assert brute_words([w[::-1].translate(str.maketrans("WT", "TW"))]) == ref, w


def test_every_single_word_up_to_ten_letters():
    """All 2047 words of length 0..10 (odd lengths: the moment is 0, the engine returns {}).

    Length <= 8 by brute force one word at a time; length 10 (1024 words, 945 pairings each)
    with one brute-force sum per rotation class (108 classes), which keeps this test near 1 s.
    """
    for L in range(0, 9):
        for w in all_words(L):
            _check([w])
    by_class: Dict[str, Laurent] = {}
    for w in all_words(10):
        key = rotation_class(w)
        if key not in by_class:
            by_class[key] = brute_words([key])
        assert trace_moment([w]) == by_class[key], w
    assert len(by_class) == 108


def test_every_pair_of_words_up_to_eight_letters():
    """All unordered pairs of words with total length <= 8 (empty words included)."""
    words = [w for L in range(0, 9) for w in all_words(L)]
    for a, b in itertools.combinations_with_replacement(words, 2):
        if len(a) + len(b) <= 8:
            _check([a, b])


def test_triples_and_twelve_letter_products():
    """All triples of words with total length <= 6, and seeded random products with 12 letters."""
    words = [w for L in range(0, 7) for w in all_words(L)]
    for a, b, c in itertools.combinations_with_replacement(words, 3):
        if len(a) + len(b) + len(c) <= 6:
            _check([a, b, c])
    rng = random.Random(20210)
    for _ in range(12):
        parts = sorted(rng.sample(range(1, 12), rng.randint(0, 3)))
        cuts = [0] + parts + [12]
        letters = "".join(rng.choice("WT") for _ in range(12))
        _check([letters[cuts[i] : cuts[i + 1]] for i in range(len(cuts) - 1)])


@pytest.mark.parametrize(
    "words",
    [["WWWWTTTT"], ["WTWTWT"], ["WWTT", "WT"], ["WW", "TT", "WT"], ["WWWTTT", "WT"], ["", "", "WT", "WT"],
     ["WTWWTWTT"], ["WWW", "TTT"], ["WWWWTT", "WT", ""]],
)
def test_truncated_mode_keeps_the_leading_orders(words):
    """trace_moment(words, depth=D) = the full moment restricted to powers >= (number of words) - D."""
    full = trace_moment(words)
    top = len(words)  # the largest power of n a product of len(words) traces can reach
    assert max(full) <= top
    for depth in range(0, top + sum(map(len, words)) // 2 + 2):
        got = trace_moment(words, depth=depth)
        assert got == {k: v for k, v in full.items() if k >= top - depth}, (words, depth)
    assert trace_moment(words, depth=-1) == {}


def test_ground_truth_from_the_literature():
    """(1/n) E tr((W^2)^T W^2) = 1 + 2/n^2 (real Ginibre), both by brute force and by the engine."""
    assert brute_words(["TTWW"]) == {1: 1, -1: 2}
    assert trace_moment(["TTWW"]) == {1: 1, -1: 2}
    assert trace_moment(["WWTT"]) == trace_moment(["TWWT"]) == {1: 1, -1: 2}


def test_ground_truth_mean_lag_gram():
    """ntk, conv1, n_x = n_y = 1, all scales 1 (hand derivation):
    E Theta[2,2] = 4 + 6/n^2, E Theta[2,0] = 2/n, E Theta[3,1] = 6/n + 3/n^2, and 0 when l + l' is odd."""
    mom = mean_lag_gram(RNNSpec(sigma_w="1", sigma_f="1", sigma_c="1"), 10)
    assert mom.total[2][2] == InvPoly.of([4, 0, 6])
    assert mom.total[2][0] == InvPoly.of([0, 2])
    assert mom.total[3][1] == InvPoly.of([0, 6, 3])
    for l in range(10):
        for lp in range(10):
            if (l + lp) % 2:
                assert mom.total[l][lp] == InvPoly.zero(), (l, lp)
            else:
                assert mom.total[l][lp] != InvPoly.zero(), (l, lp)


# ---------------------------------------------------- raw_mean / raw_covariance
@pytest.mark.parametrize("group", ["C", "F", "W"])
def test_raw_mean_against_brute_force(group):
    """E theta_g(m, m') for all m, m' <= 3 (the reference expands f~, c~ as Gaussian letters)."""
    for m in range(4):
        for mp in range(4):
            ref = as_invpoly_coeffs(brute_theta_mean(group, m, mp))
            assert raw_mean(group, m, mp).coeffs == ref, (group, m, mp)


def test_raw_mean_hand_values():
    """theta_C(0, 0) = |f|^2/n has mean 1; theta_W(1, 1) = |c|^2 |f|^2 / n^2 has mean 1; theta_C(1, 0) mean 0."""
    assert as_invpoly_coeffs(brute_theta_mean("C", 0, 0)) == (1,)
    assert as_invpoly_coeffs(brute_theta_mean("W", 1, 1)) == (1,)
    assert as_invpoly_coeffs(brute_theta_mean("C", 1, 0)) == ()
    assert as_invpoly_coeffs(brute_theta_mean("C", 2, 2)) == (1, 0, 2)


def _index_triples(max_index: int):
    return [(g, m, mp) for g in "CFW" for m in range(max_index + 1) for mp in range(max_index + 1)]


def test_raw_covariance_against_brute_force():
    """Cov(theta_g(m1, m1'), theta_h(m2, m2')) for every unordered pair with indices <= 2, exactly."""
    triples = _index_triples(2)
    for a, b in itertools.combinations_with_replacement(triples, 2):
        ref = as_invpoly_coeffs(brute_theta_covariance(*a, *b))
        assert raw_covariance(*a, *b).coeffs == ref, (a, b)


@pytest.mark.parametrize(
    "a, b",
    [(("C", 3, 3), ("C", 3, 3)), (("W", 3, 3), ("W", 2, 2)), (("F", 3, 1), ("W", 3, 1)), (("C", 3, 2), ("F", 2, 3)),
     (("W", 3, 2), ("C", 1, 2)), (("W", 3, 3), ("F", 1, 1))],
)
def test_raw_covariance_larger_indices(a, b):
    """A few covariances with an index 3 (up to 16 letters, within brute-force reach)."""
    ref = as_invpoly_coeffs(brute_theta_covariance(*a, *b))
    assert raw_covariance(*a, *b).coeffs == ref
    assert raw_covariance(*b, *a).coeffs == ref


def test_raw_covariance_truncation():
    """order=k keeps exactly the coefficients of n^0..n^-k of the full covariance."""
    for a, b in [(("C", 2, 2), ("C", 2, 2)), (("W", 2, 2), ("W", 2, 1)), (("F", 2, 0), ("W", 1, 1))]:
        full = raw_covariance(*a, *b)
        for order in range(0, full.degree + 2):
            assert raw_covariance(*a, *b, order=order) == InvPoly.of(full.coeffs[: order + 1]), (a, b, order)


def test_hand_variances():
    """Var(|f|^2/n) = 2/n; Var(|c|^2 |f|^2 / n^2) = (1 + 2/n)^2 - 1 = 4/n + 4/n^2 (brute force and engine)."""
    assert as_invpoly_coeffs(brute_theta_covariance("C", 0, 0, "C", 0, 0)) == (0, 2)
    assert as_invpoly_coeffs(brute_theta_covariance("W", 1, 1, "W", 1, 1)) == (0, 4, 4)
    assert raw_covariance("W", 1, 1, "W", 1, 1).coeffs == (0, 4, 4)
