"""JSON in one place: the scrubber that makes any report strict JSON, the version stamp, the writer.

Every JSON report the toolkit prints or writes goes through :func:`jsonable` (numpy arrays and
scalars to Python, tuples to lists, keys to strings, NaN and infinities to ``null``: JSON has no
such numbers) and carries the toolkit's version (:func:`versioned`); :func:`dumps` and
:func:`write_json` do both conversions' last step with ``allow_nan=False``, so a report can never
hold a number another JSON reader rejects.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional

import numpy as np

from verify._version import __version__

__all__ = ["jsonable", "versioned", "dumps", "write_json"]


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values, recursively: numpy to Python, tuples to lists, keys to strings,
    NaN and infinities to ``None``.

    >>> jsonable({"a": np.array([1.0, np.nan]), "b": (np.int64(2), np.bool_(True)), 3: float("inf")})
    {'a': [1.0, None], 'b': [2, True], '3': None}
    """
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def versioned(report: Mapping[str, Any]) -> Dict[str, Any]:
    """A copy of ``report`` with ``"version"`` (:data:`verify.__version__`) as its first key.

    >>> versioned({"beta": [1]})["version"] == __version__
    True
    """
    out: Dict[str, Any] = {"version": __version__}
    out.update(report)
    out["version"] = __version__
    return out


def dumps(obj: Any, *, indent: Optional[int] = 1) -> str:
    """``obj`` as strict JSON text (:func:`jsonable` first)."""
    return json.dumps(jsonable(obj), indent=indent, allow_nan=False)


def write_json(path: Path, obj: Any, *, indent: Optional[int] = 1) -> Path:
    """Write ``obj`` as strict JSON (:func:`dumps`) to ``path``, with a final newline."""
    Path(path).write_text(dumps(obj, indent=indent) + "\n")
    return Path(path)
