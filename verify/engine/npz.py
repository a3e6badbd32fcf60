""".npz files: networks saved with :func:`save_rnn` and read back with :func:`load_rnn`.

Reading is safe against any file: :func:`npz_header` reads the shapes and dtypes from the array
headers only (nothing is allocated, so a header that claims a 10^6 x 10^6 matrix is seen before
any memory is reserved), :func:`load_npz` checks the memory the arrays need against the limit
(:mod:`verify.internal.limits`) before reading them, refuses pickles, and checks every value
finite.  Every failure is a :class:`verify.internal.errors.BadInput`: one line naming the file.
"""
from __future__ import annotations

import math
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, Optional, Tuple, Union

import numpy as np

from verify.engine.backend import Backend, get_backend, to_numpy
from verify.engine.rnn import LinearRNN
from verify.internal.errors import BadInput
from verify.internal.limits import arrays_cost, check_cost
from verify.internal.validate import path_text

__all__ = ["NpzArray", "npz_header", "load_npz", "save_rnn", "load_rnn"]


@dataclass(frozen=True)
class NpzArray:
    """What the header of one array in an ``.npz`` file says: its shape and dtype."""

    shape: Tuple[int, ...]
    dtype: np.dtype


def npz_header(path, flag: Optional[str] = "--weights", *, keys: Iterable[str] = ("W", "F", "C", "D"),
               required: Iterable[str] = ("W", "F", "C")) -> Dict[str, NpzArray]:
    """Shapes and dtypes of the arrays ``keys`` of an ``.npz`` file, read from the headers only.

    Nothing is allocated: a header that claims a 10^6 x 10^6 matrix is seen before any
    memory is reserved for it.  Rejects what is not a regular non-empty zip file, missing
    ``required`` keys, object (pickled) and non-real dtypes.
    """
    text = path_text(path, flag or "path")
    where = f"{flag} {text}" if flag else text
    p = Path(text)
    if not p.exists():
        raise BadInput(f"{where}: no such file")
    if p.is_dir():
        raise BadInput(f"{where}: is a folder, not an .npz file")
    if not p.is_file():
        raise BadInput(f"{where}: not a regular file (an .npz file saved by numpy.savez is needed)")
    try:
        size = p.stat().st_size
        if size == 0:
            raise BadInput(f"{where}: the file is empty (an .npz file saved by numpy.savez is needed)")
        if not zipfile.is_zipfile(p):
            raise BadInput(f"{where}: not an .npz file (expected arrays saved by numpy.savez)")
        out: Dict[str, NpzArray] = {}
        with zipfile.ZipFile(p) as zf:
            members = {name[:-4]: name for name in zf.namelist() if name.endswith(".npy")}
            missing = [k for k in required if k not in members]
            if missing:
                raise BadInput(f"{where}: missing array(s) {', '.join(missing)} "
                               f"(need {', '.join(required)})")
            for k in keys:
                if k not in members:
                    continue
                with zf.open(members[k]) as fh:
                    version = np.lib.format.read_magic(fh)
                    reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                              else np.lib.format.read_array_header_2_0)
                    shape, _fortran, dtype = reader(fh)
                if dtype.hasobject:
                    raise BadInput(f"{where}: array {k} holds Python objects (pickles are not read)")
                if np.issubdtype(dtype, np.complexfloating) or not np.issubdtype(dtype, np.number):
                    raise BadInput(f"{where}: array {k} must be real-valued, got dtype {dtype}")
                out[k] = NpzArray(tuple(int(s) for s in shape), dtype)
    except BadInput:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as exc:
        raise BadInput(f"{where}: not a readable .npz file ({_first_line(exc)})") from None
    return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_npz(path, header: Dict[str, NpzArray], flag: Optional[str] = "--weights") -> Dict[str, np.ndarray]:
    """The arrays named in ``header`` (from :func:`npz_header`) as float64, checked finite.

    The memory they need (stored and float64 copies) is checked against the limit first.
    """
    text = str(path)
    where = f"{flag} {text}" if flag else text
    need = sum((8.0 + a.dtype.itemsize) * math.prod(a.shape) for a in header.values())
    check_cost(arrays_cost(need, f"the arrays of {text}"), flag or text)
    arrays: Dict[str, np.ndarray] = {}
    try:
        with np.load(text, allow_pickle=False) as data:
            for k, meta in header.items():
                raw = data[k]
                if raw.shape != meta.shape:
                    raise BadInput(f"{where}: array {k} does not match its header")
                arrays[k] = np.asarray(raw, dtype=np.float64)
    except BadInput:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError) as exc:
        raise BadInput(f"{where}: not a readable .npz file ({_first_line(exc)})") from None
    for k, a in arrays.items():
        if not np.all(np.isfinite(a)):
            raise BadInput(f"{where}: array {k} contains non-finite values (NaN or infinity)")
    return arrays


def save_rnn(rnn: LinearRNN, path: Union[str, Path]) -> None:
    """Write ``W``, ``F``, ``C`` and (if present) ``D`` to an ``.npz`` file."""
    arrays: dict[str, Any] = {"W": to_numpy(rnn.W), "F": to_numpy(rnn.F), "C": to_numpy(rnn.C)}
    if rnn.D is not None:
        arrays["D"] = to_numpy(rnn.D)
    np.savez(path, **arrays)


def load_rnn(path: Union[str, Path], backend: Optional[Backend] = None, *, flag: Optional[str] = None) -> LinearRNN:
    """Read a network written by :func:`save_rnn` (keys W, F, C and optional D).

    The shapes are read from the array headers first (:func:`npz_header`)
    and checked (``W (n, n)``, ``F (n, n_x)``, ``C (n_y, n)``, ``D (n_y, n_x)``, every
    dimension >= 1) and the memory the arrays need is checked against the limit before any
    array is read.  Every failure is a :class:`verify.internal.errors.BadInput` with one line naming
    the file (and ``flag``, the command-line option that named it, if given).
    """
    be = backend or get_backend()
    header = npz_header(path, flag)
    where = f"{flag} {path}" if flag else f"{path}"
    shapes = {k: a.shape for k, a in header.items()}
    for k, shape in shapes.items():
        if len(shape) != 2:
            raise BadInput(f"{where}: array {k} must be a matrix (2-D), got shape {shape}")
    n = shapes["W"][0]
    if shapes["W"][1] != n:
        raise BadInput(f"{where}: W must be square (n, n), got shape {shapes['W']}")
    if shapes["F"][0] != n:
        raise BadInput(f"{where}: F must have shape (n, n_x) = ({n}, n_x), got {shapes['F']}")
    if shapes["C"][1] != n:
        raise BadInput(f"{where}: C must have shape (n_y, n) = (n_y, {n}), got {shapes['C']}")
    n_x, n_y = shapes["F"][1], shapes["C"][0]
    if "D" in shapes and shapes["D"] != (n_y, n_x):
        raise BadInput(f"{where}: D must have shape (n_y, n_x) = {(n_y, n_x)}, got {shapes['D']}")
    for name, value in (("width n", n), ("n_x", n_x), ("n_y", n_y)):
        if value < 1:
            raise BadInput(f"{where}: the network's {name} is 0 (W {shapes['W']}, F {shapes['F']}, C {shapes['C']}); "
                           "every dimension must be at least 1")
    arrays = load_npz(path, header, flag)
    return LinearRNN(*(be.asarray(arrays[k]) if k in arrays else None for k in ("W", "F", "C", "D")))
