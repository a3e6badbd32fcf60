"""A progress bar on standard error (tqdm), drawn only where someone is watching.

Drawn only when standard error is a terminal (or ``enabled=True``); otherwise
it prints nothing, so logs and CI output stay clean.  ``RNN_VERIFY_PROGRESS=0``
or ``1`` in the environment overrides the terminal test.
"""
from __future__ import annotations

import os
import sys
from typing import Iterable, Iterator, Optional, TypeVar

T = TypeVar("T")

__all__ = ["progress"]


def _wanted(enabled: Optional[bool], stream) -> bool:
    """``enabled``, or else the environment override, or else whether ``stream`` is a terminal."""
    if enabled is not None:
        return bool(enabled)
    env = os.environ.get("RNN_VERIFY_PROGRESS")
    if env in ("0", "1"):
        return env == "1"
    return bool(getattr(stream, "isatty", lambda: False)())


def progress(
    items: Iterable[T],
    total: Optional[int] = None,
    desc: str = "",
    *,
    enabled: Optional[bool] = None,
    stream=None,
) -> Iterator[T]:
    """Iterate over ``items`` while drawing a bar with elapsed time and an estimate of the rest.

    ``total`` defaults to ``len(items)`` when there is one.  ``enabled=None`` draws
    only on a terminal; ``RNN_VERIFY_PROGRESS=0`` or ``1`` in the environment
    overrides that.  ``stream`` defaults to standard error.  Items are passed
    through lazily and unchanged.

    >>> list(progress(range(3), desc="quiet", enabled=False))
    [0, 1, 2]
    """
    stream = stream or sys.stderr
    if not _wanted(enabled, stream):
        yield from items
        return
    from tqdm import tqdm  # type: ignore[import-untyped]  # tqdm ships no type information

    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with tqdm(items, total=total, desc=desc, file=stream, mininterval=0.1, dynamic_ncols=True) as bar:
        yield from bar
