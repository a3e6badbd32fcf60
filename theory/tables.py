"""A shipped table of the spec-free trace means ``E theta_g(m, m')`` (:func:`theory.finite_width.raw_mean`).

The means of the three spec-free variables ``theta_C``, ``theta_F``, ``theta_W``
of :mod:`theory.finite_width` are exact polynomials in ``1/n`` with integer
coefficients; computing them costs seconds to minutes (their Wick engine's
memo grows about 2.2 times per Markov index).  This module precomputes them
once, for every group ``g`` in ``C, F, W`` and every pair ``0 <= m, m' < M``
(``M = max_index``), and ships them as package data
(``theory/data/trace_means.json``); :func:`theory.finite_width.raw_mean` reads
an entry from here when its ``(m, m')`` lies inside the table.

Format (``"format": "trace_means/1"``), one JSON object::

    {"format": "trace_means/1",
     "description": "...",
     "max_index": M,
     "groups": {"C": {"m,m'": ["c_0", "c_1", ...], ...}, "F": {...}, "W": {...}}}

where ``E theta_g(m, m') = sum_k c_k n^-k`` and each ``c_k`` is an exact
integer or rational written as a string (``"3"``, ``"-7/2"``); trailing zero
coefficients are dropped (the zero polynomial is ``[]``).  Only pairs with
``m + m'`` even are stored: with ``m + m'`` odd every term of ``theta_g`` is a
Gaussian moment of odd degree in ``W``, so the mean is exactly zero, and
:func:`lookup` returns zero for those pairs without storing them.

Build it with ``python -m theory.tables --max-index M --out theory/data/trace_means.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from theory.finite_width import RAW_GROUPS, InvPoly

__all__ = ["FORMAT", "TraceTable", "build_table", "load_table", "lookup", "table_from_json"]

FORMAT = "trace_means/1"
DATA_PACKAGE = "theory.data"
DATA_FILE = "trace_means.json"
DESCRIPTION = (
    "E theta_g(m, m') = sum_k c_k n^-k (theory.finite_width.raw_mean) for g in C, F, W and 0 <= m, m' < max_index; "
    "keys 'm,m'', values the exact coefficients c_0, c_1, ... as strings, trailing zeros dropped; "
    "pairs with m + m' odd are zero and not stored"
)

Key = Tuple[str, int, int]


@dataclass(frozen=True)
class TraceTable:
    """Parsed table: ``entries[(g, m, m')]`` for ``m + m'`` even and ``m, m' < max_index``."""

    max_index: int
    entries: Mapping[Key, InvPoly]

    def get(self, group: str, m: int, mp: int) -> Optional[InvPoly]:
        """The stored mean, zero for an odd ``m + m'`` inside the table, ``None`` outside it."""
        if group not in RAW_GROUPS or not (0 <= m < self.max_index and 0 <= mp < self.max_index):
            return None
        if (m + mp) % 2:
            return InvPoly.zero()
        return self.entries.get((group, m, mp))


def _compute(group: str, m: int, mp: int) -> InvPoly:
    """``E theta_group(m, m')`` from the Wick engine, never from the table."""
    from theory.finite_width import _check_index, _evaluate, _expand

    _check_index(m, mp)
    acc, q = _expand([(group, m, mp)])
    return _evaluate(acc, q, None)


def _pairs(max_index: int) -> List[Tuple[int, int]]:
    """Pairs with ``m + m'`` even, by increasing ``m + m'`` (small states first, so the memo is reused)."""
    pairs = [(m, mp) for m in range(max_index) for mp in range(max_index) if (m + mp) % 2 == 0]
    return sorted(pairs, key=lambda p: (p[0] + p[1], p))


def build_table(max_index: int, log=None) -> Dict[str, object]:
    """The JSON object of the table for ``0 <= m, m' < max_index`` (computed with the engine)."""
    if isinstance(max_index, bool) or not isinstance(max_index, int) or max_index < 1:
        raise ValueError(f"max_index must be an integer >= 1, got {max_index!r}")
    groups: Dict[str, Dict[str, List[str]]] = {g: {} for g in RAW_GROUPS}
    t0 = time.perf_counter()
    last = -1
    for m, mp in _pairs(max_index):
        if log is not None and m + mp != last:
            last = m + mp
            log(f"m + m' = {last} ({time.perf_counter() - t0:.1f} s)")
        for g in RAW_GROUPS:
            groups[g][f"{m},{mp}"] = _compute(g, m, mp).strings()
    return {"format": FORMAT, "description": DESCRIPTION, "max_index": max_index, "groups": groups}


def table_from_json(obj: Mapping[str, object]) -> TraceTable:
    """Parse (and check the layout of) a table's JSON object."""
    if obj.get("format") != FORMAT:
        raise ValueError(f"not a {FORMAT} table: format {obj.get('format')!r}")
    max_index = obj["max_index"]
    if not isinstance(max_index, int) or max_index < 0:
        raise ValueError(f"bad max_index {max_index!r}")
    entries: Dict[Key, InvPoly] = {}
    groups = obj["groups"]
    assert isinstance(groups, dict)
    for g, cells in groups.items():
        if g not in RAW_GROUPS:
            raise ValueError(f"unknown group {g!r}")
        for key, coeffs in cells.items():
            m, mp = (int(v) for v in key.split(","))
            if not (0 <= m < max_index and 0 <= mp < max_index) or (m + mp) % 2:
                raise ValueError(f"entry {g} {key} lies outside the table or has m + m' odd")
            entries[(g, m, mp)] = InvPoly.of(Fraction(c) for c in coeffs)
    missing = [(g, m, mp) for g in RAW_GROUPS for m, mp in _pairs(max_index) if (g, m, mp) not in entries]
    if missing:
        raise ValueError(f"{len(missing)} entries missing, e.g. {missing[0]}")
    return TraceTable(max_index, entries)


@lru_cache(maxsize=1)
def load_table() -> TraceTable:
    """The shipped table (read once); an empty table when the data file is absent."""
    try:
        text = resources.files(DATA_PACKAGE).joinpath(DATA_FILE).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError):
        return TraceTable(0, {})
    return table_from_json(json.loads(text))


def lookup(group: str, m: int, mp: int) -> Optional[InvPoly]:
    """The shipped ``E theta_group(m, m')``, or ``None`` when ``(m, m')`` lies outside the table."""
    return load_table().get(group, m, mp)


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
    p = argparse.ArgumentParser(prog="python -m theory.tables", description="build the table of exact trace means")
    p.add_argument("--max-index", type=int, required=True, help="M: all 0 <= m, m' < M")
    p.add_argument("--out", required=True, help="JSON file to write (e.g. theory/data/trace_means.json)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    args = p.parse_args(argv)
    if args.max_index < 1:
        print("python -m theory.tables: error: --max-index must be >= 1", file=sys.stderr)
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
