"""The command line ``python -m verify [COMMAND] ...``.

With no command (or only options) it runs the default verification (``run``).
Each command lives in :mod:`verify.commands` as a module with
``add_arguments(parser)`` and ``run(args) -> int``.  Bad input exits with
status 2 and a one-line message on standard error, never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from theory.spec import CONVENTIONS, METRICS, RNNSpec, SpecError

__all__ = ["main", "UsageError", "add_spec_arguments", "spec_from_args", "COMMANDS"]

# name -> (module, one-line help)
COMMANDS = {
    "run": ("verify.commands.run", "default verification: width sweep of the empirical lag Gram against the closed form"),
    "weights": ("verify.commands.weights", "exact lag weights, their group shares and closed-form series"),
    "ntk": ("verify.commands.ntk", "empirical lag Gram of a network saved as .npz"),
    "sweep": ("verify.commands.sweep", "widths x seeds sweep with every knob"),
    "reproduce": ("verify.commands.reproduce", "training experiments: implicit bias in action"),
    "ssm": ("verify.commands.ssm", "diagonal linear recurrences (LRU, S4D): lag kernels and memory comparison"),
    "gpu-check": ("verify.commands.gpu_check", "prepared GPU verification script (property tests, wide sweep, timings)"),
}


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, status 2, no usage dump
        raise UsageError(f"{self.prog}: {message}")


def add_spec_arguments(p: argparse.ArgumentParser, *, sigma_w: Optional[str] = "0.9", lags: Optional[int] = 16) -> None:
    """Options that build an :class:`RNNSpec` (and the number of lags)."""
    g = p.add_argument_group("network specification")
    g.add_argument("--metric", choices=METRICS, default="ntk", help="gradient metric (default ntk)")
    g.add_argument("--convention", choices=CONVENTIONS, default="conv1", help="indexing convention (default conv1)")
    g.add_argument("--sigma-w", default=sigma_w, required=sigma_w is None, help=f"scale of W (default {sigma_w})")
    g.add_argument("--sigma-f", default="1", help="scale of F (default 1)")
    g.add_argument("--sigma-c", default="1", help="scale of C (default 1)")
    g.add_argument("--sigma-d", default=None, help="scale of D (default: no D)")
    g.add_argument("--n-x", type=int, default=1, help="input dimension (default 1)")
    g.add_argument("--n-y", type=int, default=1, help="output dimension (default 1)")
    for grp in "wfcd":
        g.add_argument(f"--lr-{grp}", default="1", help=f"learning-rate multiplier of {grp.upper()} (0 freezes it; default 1)")
    if lags is not None:
        g.add_argument("--lags", type=int, default=lags, help=f"number of lags L (default {lags})")


def spec_from_args(args: argparse.Namespace) -> RNNSpec:
    """Build and validate the specification named by :func:`add_spec_arguments`'s options."""
    return RNNSpec(
        sigma_w=args.sigma_w, sigma_f=args.sigma_f, sigma_c=args.sigma_c, sigma_d=args.sigma_d,
        n_x=args.n_x, n_y=args.n_y, metric=args.metric, convention=args.convention,
        lr_w=args.lr_w, lr_f=args.lr_f, lr_c=args.lr_c, lr_d=args.lr_d,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m verify", description=__doc__.split("\n\n")[0])
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
        sp.set_defaults(_run=mod.run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["run"] + argv
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if not hasattr(args, "_run"):
            raise UsageError(f"python -m verify: unknown command {argv[0]!r}")
        return int(args._run(args) or 0)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SpecError, ValueError, OverflowError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:  # an optional dependency is missing
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `python -m verify ntk --json | head`
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # BackendError and friends: still one line
        from .backend import BackendError

        if isinstance(exc, BackendError):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
