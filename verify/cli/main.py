"""The command line ``python -m verify [COMMAND] ...``.

With no command (or only options) it runs the default verification (``run``).
Each command lives in :mod:`verify.cli.commands` as a module with
``add_arguments(parser)`` and ``run(args) -> int``.

Exit status (docs/errors.md): 0 done (verdict "consistent"); 1 verdict "inconsistent",
a failed check, or an internal error (a bug: one line, the traceback with ``--debug``
or ``RNN_VERIFY_DEBUG=1``); 2 bad input (one line ``error: ...``, no traceback).
``--no-limits`` switches off the size limits of :mod:`verify.internal.validate`.
"""
from __future__ import annotations

import argparse
import importlib
import re
import sys
from typing import List, Optional, Sequence, Tuple

from theory.spec import SpecError
from verify.engine.backend import BackendError
from verify.internal.errors import DEBUG_ENV, EXIT_BAD_INPUT, EXIT_INTERNAL, BadInput, UsageError, debug_enabled
from verify.internal.limits import limits_disabled
from verify.internal.output import discard_pending

__all__ = ["main", "build_parser", "COMMANDS", "GLOBAL_FLAGS"]

#: Flags every command accepts, anywhere on the line.
GLOBAL_FLAGS = {
    "--debug": f"show the traceback of an internal error (as {DEBUG_ENV}=1 does)",
    "--no-limits": "switch off the memory and time limits (docs/errors.md)",
}

# name -> (module, one-line help)
_COMMANDS = "verify.cli.commands."
COMMANDS = {
    "run": (_COMMANDS + "run", "default verification: width sweep of the empirical lag Gram against the closed form"),
    "weights": (_COMMANDS + "weights", "exact lag weights, their group shares and closed-form series"),
    "ntk": (_COMMANDS + "ntk", "empirical lag Gram of a network saved as .npz"),
    "sweep": (_COMMANDS + "sweep", "widths x seeds sweep with every knob"),
    "reproduce": (_COMMANDS + "reproduce", "training experiments: implicit bias in action"),
    "moments": (_COMMANDS + "moments", "exact mean and variance of the finite-width lag Gram as polynomials in 1/n"),
    "ssm": (_COMMANDS + "ssm", "diagonal linear recurrences (LRU, S4D): lag kernels and memory comparison"),
    "power": (_COMMANDS + "power", "power study of the exact finite-width test: wrong theories and wrong networks"),
    "gpu-check": (_COMMANDS + "gpu_check", "prepared GPU verification script (property tests, wide sweep, timings)"),
    "check": (_COMMANDS + "check", "exact finite-width test of your own networks (a folder of .npz files)"),
    "validity": (_COMMANDS + "validity",
                 "where the wide-limit kernel is accurate: exact maps over lag and width, rules"),
    "kernel": (_COMMANDS + "kernel", "exact NTK and NNGP of linear, ReLU and erf Elman RNNs between input sequences"),
    "claim": (_COMMANDS + "claim", "check anyone's claimed wide-width NTK against finite networks (widths x seeds)"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, no usage dump
        m = re.match(r"argument (\S+): (.*)$", message)
        if m and m.group(2).startswith(m.group(1).split("/")[-1]):
            message = m.group(2)  # the check already names the flag
        raise UsageError(f"{self.prog}: {message}")


def _add_global_flags(p: argparse.ArgumentParser) -> None:
    """Listed in every --help; :func:`main` takes them off the line before parsing."""
    g = p.add_argument_group("general")
    for flag, text in GLOBAL_FLAGS.items():
        g.add_argument(flag, action="store_true", help=text)


def build_parser(command: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser of every command, or, with ``command``, of that one only (the others are listed with
    their help but their modules are not imported: ``python -m verify weights`` does not load the
    statistics of ``run``)."""
    parser = _Parser(prog="python -m verify", description=__doc__.split("\n\n")[0])
    _add_global_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (modname, helptext) in COMMANDS.items():
        if command is not None and name != command:
            sub.add_parser(name, help=helptext, description=helptext)
            continue
        try:
            mod = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name != modname:
                raise
            continue
        sp = sub.add_parser(name, help=helptext, description=helptext)
        mod.add_arguments(sp)
        _add_global_flags(sp)
        sp.set_defaults(_run=mod.run)
    return parser


def _split_global(argv: Sequence[str]) -> Tuple[List[str], bool, bool]:
    """``argv`` without the global flags, and whether ``--debug`` / ``--no-limits`` were given."""
    rest = [a for a in argv if a not in GLOBAL_FLAGS]
    return rest, "--debug" in argv, "--no-limits" in argv


def _one_line(exc: BaseException) -> str:
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    if not text and isinstance(exc, MemoryError):
        return "out of memory (the size limits of docs/errors.md did not foresee this request)"
    return text or type(exc).__name__


def _declared_bad_input(exc: BaseException) -> bool:
    """Bad input the toolkit declares (exit 2): SpecError (BadInput, UsageError, ...) and BackendError."""
    if isinstance(exc, (SpecError, BadInput)):
        return True

    return isinstance(exc, BackendError)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; return its exit status (0, 1 or 2; 130 when interrupted)."""
    argv, debug, no_limits = _split_global(list(sys.argv[1:] if argv is None else argv))
    debug = debug or debug_enabled()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["run"] + argv

    try:
        with limits_disabled(no_limits):
            parser = build_parser(argv[0] if argv[0] in COMMANDS else None)
            args = parser.parse_args(argv)
            if not hasattr(args, "_run"):
                raise UsageError(f"python -m verify: unknown command {argv[0]!r}")
            try:
                return int(args._run(args) or 0)
            finally:  # outputs prepared but not committed belong to a failed command: remove them
                discard_pending()
    except SystemExit as exc:  # --help
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_BAD_INPUT)
    except BrokenPipeError:  # e.g. `python -m verify ntk --json | head`
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if _declared_bad_input(exc):
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if debug:
            raise
        if isinstance(exc, OSError):  # the operating system refused mid-work (disk full, ...)
            print(f"error: {_one_line(exc)} (an operating-system error during the work; nothing was written; "
                  "rerun with --debug for the traceback)", file=sys.stderr)
            return EXIT_INTERNAL
        print(f"internal error (a bug): {type(exc).__name__}: {_one_line(exc)}; rerun with --debug "
              f"(or {DEBUG_ENV}=1) for the traceback", file=sys.stderr)
        return EXIT_INTERNAL
