"""The shipped table of exact trace means (theory/data/trace_means.json: built by theory.trace_means,
read by theory.tables).

Entries are recomputed with the Wick engine without the table (``theory.trace_means.engine_mean``)
on a seeded random sample, and the whole table is checked against invariants that
follow from the definitions (module docstring of theory.finite_width):

* ``theta_g(m, m')`` is an entry of a Gram matrix, so ``E theta_g(m, m') = E theta_g(m', m)``;
* ``theta_F(m, m') = (1/n) c^T W^m (W^m')^T c`` has the law of ``theta_C(m, m')`` with ``W``
  replaced by ``W^T`` (same Gaussian law), so ``E theta_F = E theta_C``;
* the wide limit (planar pairings only): ``E theta_C(m, m') -> delta_mm'`` and
  ``E theta_W(m, m') -> m delta_mm'`` (``m`` diagonal terms ``k = k'`` survive);
* ``m + m'`` odd: an odd number of ``W`` letters, mean exactly 0.
"""
from __future__ import annotations

import json
import random
import time
from fractions import Fraction
from importlib import resources

import pytest

import theory.finite_width as fw
from theory import tables, trace_means
from theory.finite_width import InvPoly, raw_mean
from theory.tables import load_table, lookup, table_from_json
from theory.trace_means import build_table, engine_mean

GROUPS = ("C", "F", "W")


@pytest.fixture(scope="module")
def table():
    return load_table()


def test_shipped_file_format():
    text = resources.files("theory.data").joinpath("trace_means.json").read_text()
    obj = json.loads(text)
    assert obj["format"] == tables.FORMAT
    M = obj["max_index"]
    assert M >= 16
    assert sorted(obj["groups"]) == list(GROUPS)
    for g in GROUPS:
        keys = set(obj["groups"][g])
        expected = {f"{m},{mp}" for m in range(M) for mp in range(M) if (m + mp) % 2 == 0}
        assert keys == expected, g  # odd m + m' not stored
        for coeffs in obj["groups"][g].values():
            assert all(isinstance(c, str) for c in coeffs)
            assert not coeffs or coeffs[-1] != "0"  # trailing zeros dropped
    assert len(text) < 5_000_000


def test_symmetry_and_c_equals_f(table):
    M = table.max_index
    for m in range(M):
        for mp in range(M):
            if (m + mp) % 2:
                continue
            for g in GROUPS:
                assert table.entries[(g, m, mp)] == table.entries[(g, mp, m)], (g, m, mp)
            assert table.entries[("C", m, mp)] == table.entries[("F", m, mp)], (m, mp)


def test_constant_terms(table):
    M = table.max_index
    for m in range(M):
        for mp in range(M):
            if (m + mp) % 2:
                continue
            delta = 1 if m == mp else 0
            assert table.entries[("C", m, mp)].coeff(0) == delta
            assert table.entries[("F", m, mp)].coeff(0) == delta
            assert table.entries[("W", m, mp)].coeff(0) == m * delta


def test_hand_computed_entries(table):
    # E (1/n) f^T W^2 f = (1/n) E tr W^2 = (1/n) sum_i E W_ii^2 = 1/n
    assert table.get("C", 0, 2) == InvPoly.of([0, 1])
    # E (1/n) |W f|^2 = (1/n) E tr(W^T W) = (1/n) n^2 (1/n) = 1
    assert table.get("C", 1, 1) == InvPoly.of([1])
    # theta_W(1, 1) = (1/n^2) |c|^2 |f|^2: mean (n * n) / n^2 = 1
    assert table.get("W", 1, 1) == InvPoly.of([1])
    # theta_W(0, m') has no terms (k < 0 is empty)
    assert table.get("W", 0, 4) == InvPoly.zero()


def test_odd_pairs_are_zero_and_outside_is_none(table):
    M = table.max_index
    assert lookup("C", 1, 2) == InvPoly.zero()
    assert lookup("W", M - 1, M - 2) == InvPoly.zero()
    assert lookup("C", M, 0) is None and lookup("W", 0, M) is None
    assert lookup("X", 0, 0) is None


def _sample(table, rng: random.Random, count: int, lo: int, hi: int):
    pairs = [(g, m, mp) for (g, m, mp) in table.entries if lo <= m + mp <= hi]
    pairs.sort()
    return rng.sample(pairs, min(count, len(pairs)))


def test_random_entries_recomputed_exactly(table):
    """A seeded sample, most of it small (cheap) and a few up to m + m' = 28 (about a second each)."""
    rng = random.Random(20250)
    sample = _sample(table, rng, 60, 0, 22) + _sample(table, rng, 6, 24, 28)
    t0 = time.perf_counter()
    for g, m, mp in sample:
        assert engine_mean(g, m, mp) == table.entries[(g, m, mp)], (g, m, mp)
    assert time.perf_counter() - t0 < 120  # a runaway here means the engine changed cost


def test_build_table_matches_shipped(table):
    built = table_from_json(build_table(6))
    for key, poly in built.entries.items():
        assert table.entries[key] == poly, key


def test_raw_mean_reads_the_table(monkeypatch, table):
    """Inside the table raw_mean never calls the engine; outside it, it does."""
    M = table.max_index

    def boom(*args, **kwargs):
        raise RuntimeError("engine called")

    monkeypatch.setattr(fw, "engine_mean", boom)
    assert raw_mean.__wrapped__("W", M - 1, M - 1) == table.entries[("W", M - 1, M - 1)]
    assert raw_mean.__wrapped__("C", M - 1, M - 2) == InvPoly.zero()
    with pytest.raises(RuntimeError, match="engine called"):
        raw_mean.__wrapped__("C", M, M)


def test_builder_command_writes_the_table(tmp_path):
    """``python -m theory.trace_means`` (``main``) writes what :func:`build_table` builds, readably."""
    out = tmp_path / "table.json"
    assert trace_means.main(["--max-index", "3", "--out", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text()) == build_table(3)
    assert trace_means.main(["--max-index", "0", "--out", str(out), "--quiet"]) == 2


def test_malformed_tables_are_refused():
    good = build_table(3)
    with pytest.raises(ValueError, match="format"):
        table_from_json({**good, "format": "other"})
    missing = json.loads(json.dumps(good))
    del missing["groups"]["W"]["2,2"]
    with pytest.raises(ValueError, match="missing"):
        table_from_json(missing)
    odd = json.loads(json.dumps(good))
    odd["groups"]["C"]["1,2"] = ["1"]
    with pytest.raises(ValueError, match="odd"):
        table_from_json(odd)
    parsed = table_from_json(good)
    assert parsed.get("C", 2, 2) == InvPoly.of([1, 0, 2])  # the doctest of raw_mean
    assert parsed.get("W", 2, 2).coeffs == (Fraction(2), Fraction(0), Fraction(2))
