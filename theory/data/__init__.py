"""Package data of the exact side: ``trace_means.json``, the table of :mod:`theory.tables`."""
