"""The flags several commands share, parsed and checked in one place.

* :func:`arg_type`: an argparse ``type`` from a check of :mod:`verify.internal.validate`, so a bad
  value is one line naming the flag (exit 2);
* :func:`add_spec_arguments` and :func:`spec_from_args`: the options that build an
  :class:`theory.spec.RNNSpec` (metric, convention, scales, dimensions, learning rates, lags);
* :func:`add_executor_arguments` and :func:`executor_options`: ``--workers N`` and
  ``--dask ADDRESS``, where the draws run (:mod:`verify.internal.executors`).
"""
from __future__ import annotations

import argparse
from typing import Callable, Optional

from theory.spec import CONVENTIONS, METRICS, RNNSpec
from verify.internal import validate
from verify.internal.errors import BadInput, require
from verify.internal.executors import ExecutorOptions, max_local_workers

__all__ = ["arg_type", "add_spec_arguments", "spec_from_args", "add_executor_arguments", "executor_options"]


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
    g.add_argument("--n-x", type=arg_type(validate.positive_int, "--n-x"), default=1,
                   help="input dimension (default 1)")
    g.add_argument("--n-y", type=arg_type(validate.positive_int, "--n-y"), default=1,
                   help="output dimension (default 1)")
    for grp in "wfcd":
        g.add_argument(f"--lr-{grp}", default="1",
                       help=f"learning-rate multiplier of {grp.upper()} (0 freezes it; default 1)")
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


def add_executor_arguments(group) -> None:
    """``--workers N`` and ``--dask ADDRESS`` on an argparse parser or argument group."""
    group.add_argument("--workers", type=arg_type(validate.positive_int, "--workers"), default=1,
                       help="processes running draws (a process pool; with --dask local the cluster's worker "
                            "processes); 1 = serial (default 1)")
    group.add_argument("--dask", metavar="ADDRESS", default=None,
                       help="run draws on a Dask cluster: 'local' starts one here (--workers processes, default "
                            "one per core), or a scheduler address such as tcp://host:8786 (needs "
                            "pip install 'rnn-implicit-bias[dask]'; docs/executors.md)")


def executor_options(args, *, device: str = "cpu", spawn: bool = False) -> ExecutorOptions:
    """The :class:`ExecutorOptions` of parsed ``--workers``/``--dask``, checked before any work
    (bad combinations and a missing ``distributed`` are one line, exit 2).  A process pool spawns
    fresh interpreters for ``device="cuda"`` and with ``spawn=True`` (tasks that run torch on the
    CPU: its OpenMP thread pool, once used, does not survive a fork)."""
    opts = ExecutorOptions(workers=int(getattr(args, "workers", 1) or 1), dask=getattr(args, "dask", None),
                           spawn=spawn or device == "cuda")
    most = max_local_workers()
    if opts.workers > most:
        raise BadInput(f"--workers {opts.workers}: more processes than this machine runs usefully (each one an "
                       f"interpreter with its own memory); at most {most} here (4 per core, at least 8)")
    if opts.dask is not None:
        require("distributed", "--dask", "dask")
    return opts
