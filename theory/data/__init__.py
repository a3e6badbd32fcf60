"""Package data of the exact side: ``trace_means.json``, the table of exact trace means built by
:mod:`theory.trace_means` and read by :mod:`theory.tables`."""
