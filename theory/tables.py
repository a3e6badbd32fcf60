"""The shipped table of the spec-free trace means ``E theta_g(m, m')``: reading it.

The means of ``theta_C``, ``theta_F``, ``theta_W`` (:mod:`theory.finite_width`)
are exact polynomials in ``1/n``; :mod:`theory.trace_means` computes them with
the Wick engine and writes them, once, for every group and every pair
``0 <= m, m' < M`` (``M = max_index``), to the package data file
``theory/data/trace_means.json`` (format ``trace_means/1``, described in
:mod:`theory.trace_means`; regenerate it with ``python -m theory.trace_means
--max-index M --out theory/data/trace_means.json``).  This module parses and
checks that file (:func:`table_from_json`), reads it once (:func:`load_table`)
and answers single entries (:func:`lookup`), which
:func:`theory.finite_width.raw_mean` consults before it calls the engine.
The builder's :func:`~theory.trace_means.build_table` is re-exported here, and
``python -m theory.tables`` runs the builder's command too (its former name).

Only pairs with ``m + m'`` even are stored; for ``m + m'`` odd the mean is
exactly zero (an odd Gaussian moment in ``W``) and :meth:`TraceTable.get`
returns zero without storing it.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from importlib import resources
from typing import Dict, Mapping, Optional, Tuple

from theory.polynomial import InvPoly
from theory.trace_means import FORMAT, RAW_GROUPS, build_table, dumps_table, main, table_pairs

__all__ = ["FORMAT", "TraceTable", "build_table", "dumps_table", "load_table", "lookup", "table_from_json"]

DATA_PACKAGE = "theory.data"
DATA_FILE = "trace_means.json"

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
    missing = [(g, m, mp) for g in RAW_GROUPS for m, mp in table_pairs(max_index) if (g, m, mp) not in entries]
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


if __name__ == "__main__":  # python -m theory.tables: the builder's command (python -m theory.trace_means)
    raise SystemExit(main())
