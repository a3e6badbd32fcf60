"""``python -m verify`` (or ``python -m verify run``): the default verification.

Metric "ntk", conv1, s_W = 0.9, s_F = s_C = 1, 16 lags, widths 128..4096,
8 seeds per width: draws every network, computes its lag Gram exactly, compares
with the closed form, prints the tables, writes ``report.json`` and PNG figures
to ``--out`` (default ``verify-report``) and exits 0 exactly when the verdict is
"consistent" (rules in :mod:`verify.stats.sweep.verdict`), 1 otherwise, 2 on bad input.
Every default is a flag (``python -m verify run --help``).
"""
from __future__ import annotations

from verify.cli.commands.sweep import add_sweep_arguments, execute

DEFAULT_OUT = "verify-report"


def add_arguments(p) -> None:
    add_sweep_arguments(p, out_default=DEFAULT_OUT)


def run(args) -> int:
    return execute(args, command="run")
