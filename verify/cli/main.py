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
from typing import Callable, List, Optional, Sequence, Tuple

from theory.spec import CONVENTIONS, METRICS, RNNSpec, SpecError
from verify.internal import validate
from verify.internal.errors import DEBUG_ENV, EXIT_BAD_INPUT, EXIT_INTERNAL, BadInput, UsageError, debug_enabled

__all__ = ["main", "UsageError", "add_spec_arguments", "spec_from_args", "arg_type", "COMMANDS", "GLOBAL_FLAGS"]

#: Flags every command accepts, anywhere on the line.
GLOBAL_FLAGS = {
    "--debug": f"show the traceback of an internal error (as {DEBUG_ENV}=1 does)",
    "--no-limits": "switch off the memory and time limits (docs/errors.md)",
}

# name -> (module, one-line help)
COMMANDS = {
    "run": ("verify.cli.commands.run", "default verification: width sweep of the empirical lag Gram against the closed form"),
    "weights": ("verify.cli.commands.weights", "exact lag weights, their group shares and closed-form series"),
    "ntk": ("verify.cli.commands.ntk", "empirical lag Gram of a network saved as .npz"),
    "sweep": ("verify.cli.commands.sweep", "widths x seeds sweep with every knob"),
    "reproduce": ("verify.cli.commands.reproduce", "training experiments: implicit bias in action"),
    "moments": ("verify.cli.commands.moments", "exact mean and variance of the finite-width lag Gram as polynomials in 1/n"),
    "ssm": ("verify.cli.commands.ssm", "diagonal linear recurrences (LRU, S4D): lag kernels and memory comparison"),
    "power": ("verify.cli.commands.power", "power study of the exact finite-width test: wrong theories and wrong networks"),
    "gpu-check": ("verify.cli.commands.gpu_check", "prepared GPU verification script (property tests, wide sweep, timings)"),
    "check": ("verify.cli.commands.check", "exact finite-width test of your own networks (a folder of .npz files)"),
    "validity": ("verify.cli.commands.validity", "where the wide-limit kernel is accurate: exact maps over lag and width, rules"),
    "kernel": ("verify.cli.commands.kernel", "exact NTK and NNGP of linear, ReLU and erf Elman RNNs between input sequences"),
    "claim": ("verify.cli.commands.claim", "check anyone's claimed wide-width NTK against finite networks (widths x seeds)"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, no usage dump
        m = re.match(r"argument (\S+): (.*)$", message)
        if m and m.group(2).startswith(m.group(1).split("/")[-1]):
            message = m.group(2)  # the check already names the flag
        raise UsageError(f"{self.prog}: {message}")


def arg_type(check: Callable, flag: str) -> Callable[[str], object]:
    """An argparse ``type`` that runs ``check(text, flag)`` (a :mod:`verify.internal.validate` check)
    and turns its :class:`BadInput` into an argparse error with the same one-line message."""

    def parse(text: str):
        try:
            return check(text, flag)
        except BadInput as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = flag.lstrip("-")
    return parse


def add_spec_arguments(p: argparse.ArgumentParser, *, sigma_w: Optional[str] = "0.9", lags: Optional[int] = 16) -> None:
    """Options that build an :class:`RNNSpec` (and the number of lags)."""
    g = p.add_argument_group("network specification")
    g.add_argument("--metric", choices=METRICS, default="ntk", help="gradient metric (default ntk)")
    g.add_argument("--convention", choices=CONVENTIONS, default="conv1", help="indexing convention (default conv1)")
    g.add_argument("--sigma-w", default=sigma_w, required=sigma_w is None, help=f"scale of W (default {sigma_w})")
    g.add_argument("--sigma-f", default="1", help="scale of F (default 1)")
    g.add_argument("--sigma-c", default="1", help="scale of C (default 1)")
    g.add_argument("--sigma-d", default=None, help="scale of D (default: no D)")
    g.add_argument("--n-x", type=arg_type(validate.positive_int, "--n-x"), default=1, help="input dimension (default 1)")
    g.add_argument("--n-y", type=arg_type(validate.positive_int, "--n-y"), default=1, help="output dimension (default 1)")
    for grp in "wfcd":
        g.add_argument(f"--lr-{grp}", default="1", help=f"learning-rate multiplier of {grp.upper()} (0 freezes it; default 1)")
    if lags is not None:
        g.add_argument("--lags", type=arg_type(validate.lags, "--lags"), default=lags,
                       help=f"number of lags L (default {lags})")


def spec_from_args(args: argparse.Namespace) -> RNNSpec:
    """Build and validate the specification named by :func:`add_spec_arguments`'s options."""
    return RNNSpec(
        sigma_w=args.sigma_w, sigma_f=args.sigma_f, sigma_c=args.sigma_c, sigma_d=args.sigma_d,
        n_x=args.n_x, n_y=args.n_y, metric=args.metric, convention=args.convention,
        lr_w=args.lr_w, lr_f=args.lr_f, lr_c=args.lr_c, lr_d=args.lr_d,
    )


def _add_global_flags(p: argparse.ArgumentParser) -> None:
    """Listed in every --help; :func:`main` takes them off the line before parsing."""
    g = p.add_argument_group("general")
    for flag, text in GLOBAL_FLAGS.items():
        g.add_argument(flag, action="store_true", help=text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m verify", description=__doc__.split("\n\n")[0])
    _add_global_flags(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (modname, helptext) in COMMANDS.items():
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
    from verify.engine.backend import BackendError

    return isinstance(exc, BackendError)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run one command; return its exit status (0, 1 or 2; 130 when interrupted)."""
    argv, debug, no_limits = _split_global(list(sys.argv[1:] if argv is None else argv))
    debug = debug or debug_enabled()
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["run"] + argv
    from verify.internal.validate import limits_disabled

    try:
        with limits_disabled(no_limits):
            parser = build_parser()
            args = parser.parse_args(argv)
            if not hasattr(args, "_run"):
                raise UsageError(f"python -m verify: unknown command {argv[0]!r}")
            try:
                return int(args._run(args) or 0)
            finally:  # outputs prepared but not committed belong to a failed command: remove them
                from verify.internal.output import discard_pending

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
    except Exception as exc:  # noqa: BLE001 - classified below
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
