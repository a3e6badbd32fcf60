"""The Wick expansion of the spec-free trace means ``E theta_g``, and the builder of their shipped table.

Notation of :mod:`theory.finite_width`: ``W~`` has independent ``N(0, 1/n)``
entries, ``f~, c~ ~ N(0, I_n)`` are independent of it and of each other, and
per pair of Markov indices ``(m, m')``

    theta_C(m, m') = (1/n)   f~^T (W~^m)^T W~^m' f~
    theta_F(m, m') = (1/n)   c~^T W~^m (W~^m')^T c~
    theta_W(m, m') = (1/n^2) sum_(k<m, k'<m') (c~^T W~^k (W~^k')^T c~) (f~^T (W~^p)^T W~^p' f~),
                     p = m - 1 - k, p' = m' - 1 - k'.

**Words.**  A word over ``W`` and ``T`` (``T`` for ``W~^T``) names a product of
matrices, as in :mod:`theory.wick`.  Each ``theta_g`` is ``n^-q`` times a sum
of *terms* (:func:`theta_terms`); a term is a pair ``(c_word, f_word)``: the
quadratic form ``c~^T [c_word] c~`` times ``f~^T [f_word] f~`` (``None``: the
vector does not occur).

**Isserlis.**  The expectation over one Gaussian vector ``v ~ N(0, I)`` of a
product of at most two quadratic forms is a sum of traces (:func:`isserlis`):

    E (v^T A v) = tr A,    E (v^T A v)(v^T B v) = tr A tr B + tr(A B^T) + tr(A B).

**Expansion and evaluation.**  :func:`expand` multiplies out a product of
``theta_g`` and applies Isserlis to ``c~`` and ``f~``: the result is a count of
canonical multi-trace *states* of words in ``W~`` (with the number of empty
words, each ``tr I = n``) and the normalization power ``q``.  :func:`evaluate`
takes the Gaussian moment of each state from the shared :class:`theory.wick.WickEngine`
and sums ``n^-q count E[state]`` into an :class:`~theory.polynomial.InvPoly`
(with ``order``: only the coefficients of ``n^0 .. n^-order``, pruning the rest).
:func:`engine_mean` is ``E theta_g(m, m')`` from the engine alone.

**The shipped table** (``python -m theory.trace_means --max-index M --out
theory/data/trace_means.json``, read by :mod:`theory.tables`): the means of the
three ``theta_g`` are exact polynomials in ``1/n`` with integer coefficients,
and computing them costs seconds to minutes (the engine's memo grows about 2.2
times per Markov index).  :func:`build_table` computes them once, for every
``g`` in ``C, F, W`` and every pair ``0 <= m, m' < M``.  Format
(``"format": "trace_means/1"``, :data:`FORMAT`), one JSON object::

    {"format": "trace_means/1",
     "description": "...",
     "max_index": M,
     "groups": {"C": {"m,m'": ["c_0", "c_1", ...], ...}, "F": {...}, "W": {...}}}

where ``E theta_g(m, m') = sum_k c_k n^-k`` and each ``c_k`` is an exact
integer or rational written as a string (``"3"``, ``"-7/2"``); trailing zero
coefficients are dropped (the zero polynomial is ``[]``).  Only pairs with
``m + m'`` even are stored (:func:`table_pairs`): with ``m + m'`` odd every
term of ``theta_g`` is a Gaussian moment of odd degree in ``W``, so the mean is
exactly zero.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from fractions import Fraction
from functools import lru_cache
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from theory.polynomial import InvPoly
from theory.spec import SpecError
from theory.wick import canonical_state, engine, transpose_word

__all__ = [
    "RAW_GROUPS",
    "check_index",
    "theta_terms",
    "isserlis",
    "expand",
    "evaluate",
    "engine_mean",
    "FORMAT",
    "table_pairs",
    "build_table",
    "dumps_table",
    "main",
]

#: The spec-free random variables ``theta_C``, ``theta_F``, ``theta_W``.
RAW_GROUPS = ("C", "F", "W")

#: A term of ``theta_g``: the words of its quadratic forms in ``c~`` and ``f~`` (``None``: absent).
Term = Tuple[Optional[str], Optional[str]]
#: ``(canonical state, number of empty words)`` -> count: the expansion of a product of ``theta_g``.
Expansion = Counter[Tuple[Tuple[str, ...], int]]


def check_index(m: int, mp: int) -> None:
    """Markov indices are integers ``>= 0`` (else :class:`~theory.spec.SpecError`)."""
    for v in (m, mp):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise SpecError(f"Markov indices must be integers >= 0, got {v!r}")


# --------------------------------------------------------------------- words and terms
def power_word(left: str, m: int, right: str, mp: int) -> str:
    """The word ``left^m right^mp`` (e.g. ``power_word("T", 2, "W", 1) == "TTW"``)."""
    return left * m + right * mp


@lru_cache(maxsize=None)
def theta_terms(group: str, m: int, mp: int) -> Tuple[Tuple[Term, ...], int]:
    """``theta_group(m, m') = n^-q sum_terms c~^T[c_word]c~ f~^T[f_word]f~`` -> ``(terms, q)``.

    >>> theta_terms("C", 1, 2)
    (((None, 'TWW'),), 1)
    >>> theta_terms("W", 2, 1)          # k = 0, 1; k' = 0
    ((('', 'T'), ('W', '')), 2)
    """
    if group == "C":
        return (((None, power_word("T", m, "W", mp)),), 1)
    if group == "F":
        return (((power_word("W", m, "T", mp), None),), 1)
    if group == "W":
        terms: List[Term] = []
        for k in range(m):
            for kp in range(mp):
                terms.append((power_word("W", k, "T", kp), power_word("T", m - 1 - k, "W", mp - 1 - kp)))
        return (tuple(terms), 2)
    raise SpecError(f"group must be one of C, F, W; got {group!r}")


def isserlis(words: Sequence[str]) -> List[Tuple[str, ...]]:
    """``E_v prod_i (v^T A_i v)`` for ``v ~ N(0, I)`` and at most two forms, as trace products.

    >>> isserlis(["W", "TW"])     # tr A tr B + tr(A B^T) + tr(A B)
    [('W', 'TW'), ('WTW',), ('WTW',)]
    """
    if len(words) == 0:
        return [()]
    if len(words) == 1:
        return [(words[0],)]
    if len(words) == 2:
        a, b = words
        return [(a, b), (a + transpose_word(b),), (a + b,)]
    raise ValueError("at most two quadratic forms per vector")


def expand(groups: Sequence[Tuple[str, int, int]]) -> Tuple[Expansion, int]:
    """``E_(c,f) prod theta_g`` over ``groups = [(g, m, m'), ...]``: a count of W-trace states and ``q``.

    ``E_(c,f) prod theta_g = n^-q sum_(state, empties) count tr(state) n^empties`` (the
    expectation over ``W~`` still to take).
    """
    acc: Expansion = Counter()
    q_total = 0
    term_lists = []
    for g, m, mp in groups:
        terms, q = theta_terms(g, m, mp)
        q_total += q
        term_lists.append(terms)
    if any(not t for t in term_lists):
        return acc, q_total

    def rec(idx: int, cws: Tuple[str, ...], fws: Tuple[str, ...]) -> None:
        if idx == len(term_lists):
            for cpart in isserlis(cws):
                for fpart in isserlis(fws):
                    words = cpart + fpart
                    empties = sum(1 for w in words if not w)
                    acc[(canonical_state(words), empties)] += 1
            return
        for cw, fw in term_lists[idx]:
            rec(idx + 1, cws + ((cw,) if cw is not None else ()), fws + ((fw,) if fw is not None else ()))

    rec(0, (), ())
    return acc, q_total


def evaluate(acc: Expansion, q: int, order: Optional[int]) -> InvPoly:
    """``n^-q sum_states count E[state]``, truncated to ``n^-order`` (exact coefficients; all for ``None``)."""
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


def engine_mean(group: str, m: int, mp: int) -> InvPoly:
    """``E theta_group(m, m')`` from the Wick engine, never from the shipped table.

    >>> str(engine_mean("C", 2, 2))
    '1 + 2/n^2'
    """
    check_index(m, mp)
    acc, q = expand([(group, m, mp)])
    return evaluate(acc, q, None)


# --------------------------------------------------------------------- the shipped table
FORMAT = "trace_means/1"
DESCRIPTION = (
    "E theta_g(m, m') = sum_k c_k n^-k (theory.finite_width.raw_mean) for g in C, F, W and 0 <= m, m' < max_index; "
    "keys 'm,m'', values the exact coefficients c_0, c_1, ... as strings, trailing zeros dropped; "
    "pairs with m + m' odd are zero and not stored"
)


def table_pairs(max_index: int) -> List[Tuple[int, int]]:
    """The stored pairs: ``m + m'`` even, ``0 <= m, m' < max_index``, by increasing ``m + m'``
    (small states first, so the engine's memo is reused)."""
    pairs = [(m, mp) for m in range(max_index) for mp in range(max_index) if (m + mp) % 2 == 0]
    return sorted(pairs, key=lambda p: (p[0] + p[1], p))


def build_table(max_index: int, log: Optional[Callable[[str], None]] = None) -> Dict[str, object]:
    """The JSON object of the table for ``0 <= m, m' < max_index`` (computed with the engine)."""
    if isinstance(max_index, bool) or not isinstance(max_index, int) or max_index < 1:
        raise ValueError(f"max_index must be an integer >= 1, got {max_index!r}")
    groups: Dict[str, Dict[str, List[str]]] = {g: {} for g in RAW_GROUPS}
    t0 = time.perf_counter()
    last = -1
    for m, mp in table_pairs(max_index):
        if log is not None and m + mp != last:
            last = m + mp
            log(f"m + m' = {last} ({time.perf_counter() - t0:.1f} s)")
        for g in RAW_GROUPS:
            groups[g][f"{m},{mp}"] = engine_mean(g, m, mp).strings()
    return {"format": FORMAT, "description": DESCRIPTION, "max_index": max_index, "groups": groups}


def dumps_table(table: Mapping[str, object]) -> str:
    """Compact JSON of a table with one entry per line (readable diffs); ``json.loads`` reads it back."""
    head = {k: v for k, v in table.items() if k != "groups"}
    lines = ["{" + json.dumps(head, separators=(",", ":"))[1:-1] + ',"groups":{']
    groups = table["groups"]
    assert isinstance(groups, dict)
    for gi, (g, cells) in enumerate(groups.items()):
        lines.append(json.dumps(g) + ":{")
        items = list(cells.items())
        for i, (key, coeffs) in enumerate(items):
            sep = "," if i + 1 < len(items) else ""
            lines.append(json.dumps(key) + ":" + json.dumps(coeffs, separators=(",", ":")) + sep)
        lines.append("}" + ("," if gi + 1 < len(groups) else ""))
    lines.append("}}")
    return "\n".join(lines)


def _write_atomic(path: str, text: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m theory.trace_means --max-index M --out FILE [--quiet]``: build and write the table."""
    prog = "python -m theory.trace_means"
    p = argparse.ArgumentParser(prog=prog, description="build the table of exact trace means")
    p.add_argument("--max-index", type=int, required=True, help="M: all 0 <= m, m' < M")
    p.add_argument("--out", required=True, help="JSON file to write (e.g. theory/data/trace_means.json)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    if args.max_index < 1:
        print(f"{prog}: error: --max-index must be >= 1", file=sys.stderr)
        return 2
    log = None if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    t0, c0 = time.perf_counter(), time.process_time()
    table = build_table(args.max_index, log=log)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    text = dumps_table(table)
    _write_atomic(args.out, text + "\n")
    if log is not None:
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # kB -> GiB (Linux)
        log(f"wrote {args.out}: {len(text) / 1e6:.2f} MB, {seconds:.1f} s wall, {cpu:.1f} s CPU, "
            f"peak resident {peak:.2f} GiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
