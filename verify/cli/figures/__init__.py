"""The figures of the command line: the only modules that import matplotlib.

Each module draws the figures of one command on :class:`matplotlib.figure.Figure` objects
(no pyplot, no global state, no backend switch) and writes them as PNG files:
:mod:`~verify.cli.figures.sweep` (``run``, ``sweep``), :mod:`~verify.cli.figures.moments`,
:mod:`~verify.cli.figures.power`, :mod:`~verify.cli.figures.reproduce`,
:mod:`~verify.cli.figures.ssm` (``ssm compare``) and :mod:`~verify.cli.figures.validity`.
matplotlib is optional (``pip install 'rnn-implicit-bias[plot]'``) and imported only inside the
drawing functions, so the commands import these modules freely; before the work, a command
whose figures are optional asks :func:`available`, one that needs them calls :func:`require`.
"""
from __future__ import annotations

import sys

from verify.internal.errors import MissingDependency

__all__ = ["available", "require", "INSTALL"]

#: How to install matplotlib (the package extra ``plot``).
INSTALL = "pip install 'rnn-implicit-bias[plot]'"


def _installed() -> bool:
    """Whether ``matplotlib`` and ``matplotlib.figure`` import (the only parts the figures use)."""
    try:
        import matplotlib
        import matplotlib.figure  # noqa: F401
    except ImportError:
        return False
    return True


def available(purpose: str = "figures") -> bool:
    """Whether matplotlib is installed; if not, say so once on standard error (call it before the work)."""
    if _installed():
        return True
    print(f"warning: matplotlib is not installed; no {purpose} will be written ({INSTALL})", file=sys.stderr)
    return False


def require(purpose: str) -> None:
    """Refuse, before the work, a request whose figures need matplotlib when it is not installed.

    Raises :class:`~verify.internal.errors.MissingDependency` (one line, exit status 2):
    ``{purpose} needs matplotlib, which is not installed (pip install 'rnn-implicit-bias[plot]')``.
    """
    if not _installed():
        raise MissingDependency(f"{purpose} needs matplotlib, which is not installed ({INSTALL})")
