"""Every JSON report the toolkit writes carries the version of the toolkit that wrote it."""
from __future__ import annotations

from typing import Any, Dict, Mapping

from verify._version import __version__

__all__ = ["versioned"]


def versioned(report: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of ``report`` with ``"version"`` (:data:`verify.__version__`) as its first key.

    >>> versioned({"beta": [1]})["version"] == __version__
    True
    """
    out: Dict[str, Any] = {"version": __version__}
    out.update(report)
    out["version"] = __version__
    return out
