"""A dependency-free progress bar on standard error.

Drawn only when standard error is a terminal (or ``force=True``); otherwise
it prints nothing, so logs and CI output stay clean.
"""
from __future__ import annotations

import os
import sys
import time
from typing import Iterable, Iterator, Optional, TypeVar

T = TypeVar("T")

__all__ = ["progress"]


class _Bar:
    def __init__(self, total: int, desc: str, enabled: bool, stream):
        self.total, self.desc, self.enabled, self.stream = max(total, 1), desc, enabled, stream
        self.count = 0
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, k: int = 1, note: str = "") -> None:
        self.count += k
        now = time.perf_counter()
        if not self.enabled or (now - self._last < 0.1 and self.count < self.total):
            return
        self._last = now
        frac = min(self.count / self.total, 1.0)
        width = 24
        filled = int(round(frac * width))
        elapsed = now - self.start
        eta = elapsed / frac - elapsed if frac > 0 else 0.0
        line = (f"\r{self.desc} [{'#' * filled}{'.' * (width - filled)}] {self.count}/{self.total} "
                f"{elapsed:5.1f}s elapsed, ~{eta:4.0f}s left {note}")
        self.stream.write(line[:160].ljust(100))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def progress(
    items: Iterable[T],
    total: Optional[int] = None,
    desc: str = "",
    *,
    enabled: Optional[bool] = None,
    stream=None,
) -> Iterator[T]:
    """Iterate over ``items`` while drawing a bar with elapsed time and an estimate of the rest.

    ``enabled=None`` draws only on a terminal; ``RNN_VERIFY_PROGRESS=0`` or ``1``
    in the environment overrides that.
    """
    stream = stream or sys.stderr
    if enabled is None:
        env = os.environ.get("RNN_VERIFY_PROGRESS")
        enabled = (env == "1") if env in ("0", "1") else bool(getattr(stream, "isatty", lambda: False)())
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = 0
    bar = _Bar(total, desc, enabled, stream)
    try:
        for item in items:
            yield item
            bar.update()
    finally:
        bar.close()
