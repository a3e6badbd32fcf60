"""The command line ``python -m verify``: the parser and error handling (:mod:`verify.cli.main`),
the shared flags (:mod:`verify.cli.options`), one module per command (:mod:`verify.cli.commands`)
and the figures (:mod:`verify.cli.figures`, the only users of matplotlib)."""
