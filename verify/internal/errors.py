"""The toolkit's errors and exit statuses: one hierarchy (docs/errors.md).

Exit statuses of ``python -m verify``:

* 0: the command did its work (and, for a verification, the verdict is "consistent");
* 1: a verification ran and its verdict is "inconsistent" (or a check failed), **or** an
  internal error (a bug: any exception not declared below) stopped it;
* 2: bad input, reported before the work starts as one line ``error: ...``.

Declared bad input is :class:`BadInput` and its subclasses, :class:`theory.spec.SpecError`
(the exact side's own error: ``theory`` never imports ``verify``, so :class:`BadInput`
subclasses it and every ``except SpecError`` also catches it), and
:class:`verify.engine.backend.BackendError` (a backend or device that is not there).  Anything else
that escapes a command is an internal error: one line saying so, and the traceback with
``--debug`` or ``RNN_VERIFY_DEBUG=1``.
"""
from __future__ import annotations

import os

from theory.spec import SpecError

__all__ = [
    "EXIT_OK",
    "EXIT_INCONSISTENT",
    "EXIT_BAD_INPUT",
    "EXIT_INTERNAL",
    "DEBUG_ENV",
    "BadInput",
    "UsageError",
    "LimitExceeded",
    "MissingDependency",
    "OutOfRange",
    "OutputExists",
    "debug_enabled",
    "require",
]

EXIT_OK = 0
EXIT_INCONSISTENT = 1
EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
#: ``RNN_VERIFY_DEBUG=1`` shows the traceback of an internal error (as ``--debug`` does).
DEBUG_ENV = "RNN_VERIFY_DEBUG"


class BadInput(SpecError):
    """Bad input to a command or a library function: one line, exit status 2."""


class UsageError(BadInput):
    """Malformed command line (unknown option, missing or unparsable value)."""


class LimitExceeded(BadInput):
    """A request whose estimated memory or time exceeds a limit (see :mod:`verify.internal.validate`)."""


class MissingDependency(BadInput):
    """An optional dependency the request needs is not installed (detected before the work)."""


class OutOfRange(BadInput):
    """Valid inputs whose result leaves the range of float64 (the message names the quantity)."""


class OutputExists(BadInput):
    """An output would replace an existing report and ``--force`` was not given."""


def debug_enabled() -> bool:
    """Whether ``RNN_VERIFY_DEBUG`` asks for tracebacks of internal errors."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def require(module: str, purpose: str, extra: str):
    """Import the optional dependency ``module`` or raise :class:`MissingDependency`.

    ``purpose`` completes "... needs {module}"; ``extra`` names the package extra that
    installs it (e.g. ``"plot"``).  Call this before the work starts.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(
            f"{purpose} needs {module}, which is not installed (pip install 'rnn-implicit-bias[{extra}]')"
        ) from None
