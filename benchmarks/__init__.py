"""Benchmarks: the structured (lag-Gram) NTK against autodiff and dense Jacobians,
and the cost of the exact side.

Run from the repository root::

    python -m benchmarks [--quick] [--sizes 1024x32,4096x64] [--repeats 5] [--json OUT] [--markdown]

See ``docs/benchmarks.md`` for the methods, the memory measurement and the results.
"""
