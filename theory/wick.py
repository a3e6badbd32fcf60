"""Exact Gaussian moments of traces of words in a real Gaussian matrix.

``W`` is an ``n x n`` matrix with independent ``N(0, 1/n)`` entries (the real
Ginibre ensemble).  A *word* is a string over the letters ``"W"`` and ``"T"``
(``T`` stands for ``W^T``); ``tr(word)`` is the trace of the product.  For any
multiset of words,

    E[ tr(w_1) ... tr(w_k) ] = sum_f c_f n^(f - p),

where ``2p`` is the total number of letters, the sum runs over the pairings of
the letters (Wick/Isserlis), and ``f`` counts the faces (index cycles) a pairing
closes.  The coefficients ``c_f`` are non-negative integers; the moment is an
exact Laurent polynomial in ``n``.

Method: Gaussian integration by parts one letter at a time.  The first letter
``x`` of the first word is paired with every other letter ``y``:

* ``y`` in the same word, ``tr(x A1 y A2)``: equal letters (W W or T T) give
  ``tr(A1^T A2)`` (one word; for real W only), unequal letters give
  ``tr(A1) tr(A2)`` (the word splits);
* ``y`` in another word, ``tr(x A) tr(y B)``: equal letters give
  ``tr(A^T B)``, unequal letters ``tr(A B)`` (the two words merge);

each pairing contributing a factor ``1/n`` and each empty word ``tr(I) = n``.
States are memoized in canonical form: a word is equivalent to its rotations
and to its reversal with ``W`` and ``T`` swapped (``tr(A) = tr(A^T)``), and a
state is the sorted tuple of its canonical words.

The polynomial of a state with ``p`` letter pairs and ``t`` words has degree at
most ``top = p + t`` in the face count; it is stored as the integer
``R = sum_d c_(top-d) X^d`` with ``X = 2^B`` (Kronecker substitution), so that
the whole recursion is integer additions and shifts.  A pairing lowers the
*depth* ``d`` by ``delta = 1 + t - t' - e`` (0 for a split into two non-empty
words or the like, up to 2 for a merge), so the leading coefficients can be
computed alone: ``depth=D`` keeps ``d <= D`` and prunes every branch that
cannot reach it.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Dict, Iterable, Iterator, Optional, Sequence, Tuple

__all__ = [
    "canonical_word", "canonical_state", "transpose_word", "first_letter_pairings", "trace_moment", "WickEngine",
    "engine",
]

_SWAP = str.maketrans("WT", "TW")


def transpose_word(word: str) -> str:
    """The word of ``A^T`` for the word of ``A``: reversed, with ``W`` and ``T`` swapped.

    >>> transpose_word("WWT")
    'WTT'
    """
    return word[::-1].translate(_SWAP)


@lru_cache(maxsize=1 << 20)
def canonical_word(word: str) -> str:
    """Least representative of ``tr(word)`` under rotation and transposition.

    >>> canonical_word("WTT") == canonical_word("TWT") == canonical_word("TTW") == canonical_word("WWT")
    True
    """
    if not word:
        return word
    length = len(word)
    best = word
    for w in (word, transpose_word(word)):
        doubled = w + w
        for i in range(length):
            cand = doubled[i : i + length]
            if cand < best:
                best = cand
    return best


def canonical_state(words: Iterable[str]) -> Tuple[str, ...]:
    """Canonical multi-trace state: the sorted canonical forms of the non-empty words."""
    return tuple(sorted(canonical_word(w) for w in words if w))


def first_letter_pairings(state: Tuple[str, ...]) -> Iterator[Tuple[Tuple[str, ...], int]]:
    """Yield ``(child_state, empties)`` for each pairing of the first letter of ``state``
    (the rules of the module docstring; ``child_state`` is not canonical yet)."""
    first, rest = state[0], state[1:]
    x, a = first[0], first[1:]
    # partner in the same word
    for j, y in enumerate(a):
        a1, a2 = a[:j], a[j + 1 :]
        new: Tuple[str, ...] = (transpose_word(a1) + a2,) if y == x else (a1, a2)
        empties = sum(1 for w in new if not w)
        yield new + rest, empties
    # partner in another word
    for k, other in enumerate(rest):
        others = rest[:k] + rest[k + 1 :]
        for j, y in enumerate(other):
            b = other[j + 1 :] + other[:j]  # other rotated so that y comes first, y removed
            merged = (transpose_word(a) + b) if y == x else (a + b)
            yield (merged,) + others, (0 if merged else 1)


class WickEngine:
    """Memoized exact moments; one engine serves every call (its table only grows).

    ``bits`` is the width ``B`` of one packed coefficient: it must exceed the
    bit length of ``(2p - 1)!!``, the number of pairings of the largest state.
    """

    def __init__(self, bits: int = 256) -> None:
        self.bits = bits
        self.max_letters = _max_letters(bits)
        self._memo: Dict[Tuple[Tuple[str, ...], int], int] = {}

    @property
    def states(self) -> int:
        """Number of memoized (state, depth) entries."""
        return len(self._memo)

    def packed(self, state: Tuple[str, ...], depth: int) -> int:
        """``R(state, depth)`` for a canonical ``state`` (see the module docstring)."""
        if not state:
            return 1
        key = (state, depth)
        memo = self._memo
        got = memo.get(key)
        if got is not None:
            return got
        t = len(state)
        bits = self.bits
        total = 0
        for child, empties in first_letter_pairings(state):
            canon = canonical_state(child)
            delta = 1 + t - len(canon) - empties
            if delta > depth:
                continue
            total += self.packed(canon, depth - delta) << (bits * delta)
        memo[key] = total
        return total

    def moment(self, words: Sequence[str], depth: Optional[int] = None) -> Dict[int, int]:
        """``E[prod tr(w)]`` as ``{k: c}`` meaning ``sum c n^k`` (see :func:`trace_moment`)."""
        words = [_check_word(w) for w in words]
        letters = sum(len(w) for w in words)
        empties = sum(1 for w in words if not w)
        if letters % 2:
            return {}
        if letters > self.max_letters:
            raise ValueError(
                f"{letters} letters exceed this engine's {self.max_letters} (make one with more bits)"
            )
        state = canonical_state(words)
        p, t = letters // 2, len(state)
        top = p + t
        if depth is None:
            depth = top
        if depth < 0:
            return {}
        packed = self.packed(state, depth)
        mask = (1 << self.bits) - 1
        out: Dict[int, int] = {}
        d = 0
        while packed:
            c = packed & mask
            if c:
                out[top - d - p + empties] = c
            packed >>= self.bits
            d += 1
        return out


def _check_word(word: str) -> str:
    if not isinstance(word, str) or word.strip("WT"):
        raise ValueError(f"a word is a string over the letters W and T, got {word!r}")
    return word


def _max_letters(bits: int) -> int:
    """Largest even letter count ``2p`` with ``(2p - 1)!! < 2^bits``."""
    p, count = 0, 1
    while True:
        nxt = count * (2 * p + 1)
        if nxt.bit_length() >= bits:
            return 2 * p
        p, count = p + 1, nxt


_ENGINE = WickEngine()


def engine() -> WickEngine:
    """The shared engine (module-level memo)."""
    return _ENGINE


def trace_moment(words: Sequence[str], depth: Optional[int] = None) -> Dict[int, int]:
    """``E[tr(w_1) ... tr(w_k)]`` for real ``W`` with ``N(0, 1/n)`` entries, exactly.

    Returns ``{k: c}``: the moment is ``sum_k c n^k`` (integers ``c``).  With
    ``depth=D`` only the ``D + 1`` leading orders are computed (each order is
    one power of ``n`` below the largest possible ``n^t``, ``t`` the number of
    non-empty words); the terms returned are exact.

    >>> trace_moment(["WW"])                      # E tr(W^2) = 1
    {0: 1}
    >>> trace_moment(["WT"])                      # E tr(W W^T) = n
    {1: 1}
    >>> sorted(trace_moment(["TTWW"]).items())    # E tr((W^2)^T W^2) = n + 2/n
    [(-1, 2), (1, 1)]
    """
    return _ENGINE.moment(words, depth)
