"""Array backends: numpy (default), array-api-strict, PyTorch and CuPy.

All finite-width array code is written once against the Python array API
standard (through ``array_api_compat``); this module turns a backend name and a
device name into a namespace, and moves arrays in and out of it.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

__all__ = ["Backend", "BackendError", "ComputeOptions", "get_backend", "BACKENDS", "DEVICES", "DRAWS", "to_numpy"]

BACKENDS = ("numpy", "array-api-strict", "torch", "cupy")
DEVICES = ("cpu", "cuda")
#: Where :func:`verify.engine.rnn.init_rnn` draws the weights: ``numpy`` (host numpy
#: ``Generator``, the same network on every backend for a seed; the default) or
#: ``native`` (the backend's own generator on its device: torch ``Generator`` /
#: cupy ``default_rng``; fast for huge widths, but the network then depends on
#: the backend, device, dtype and library version).
DRAWS = ("numpy", "native")


class BackendError(RuntimeError):
    """A backend or device was asked for that is not installed or not present."""


@dataclass(frozen=True)
class Backend:
    """An array namespace, the device arrays live on, the float dtype used, and
    where random weights are drawn (``draws``, one of :data:`DRAWS`)."""

    name: str
    xp: Any
    device: Any
    dtype: Any
    draws: str = "numpy"

    @property
    def on_cuda(self) -> bool:
        return self.name == "cupy" or (self.name == "torch" and str(self.device).startswith("cuda"))

    def standard_normal(self, shape, seed: int, *, generator=None):
        """Native draws: ``(array, generator)`` of N(0, 1) entries of ``shape`` made on the
        device by the backend's own generator (seeded with ``seed`` when ``generator`` is None).

        numpy and array-api-strict have no device generator: they use numpy's ``default_rng``.
        """
        if self.name == "torch":
            import torch

            if generator is None:
                generator = torch.Generator(device=self.device)
                generator.manual_seed(int(seed))
            return torch.randn(shape, generator=generator, device=self.device, dtype=self.dtype), generator
        if self.name == "cupy":
            import cupy

            if generator is None:
                generator = cupy.random.default_rng(int(seed))
            return generator.standard_normal(shape, dtype=self.dtype), generator
        if generator is None:
            generator = np.random.default_rng(int(seed))
        return self.asarray(generator.standard_normal(shape)), generator

    def asarray(self, a):
        """``a`` (numpy or nested lists) as an array of this backend, dtype and device."""
        if self.name == "torch":
            import torch

            if isinstance(a, torch.Tensor):
                return a.to(device=self.device, dtype=self.dtype)
            return torch.as_tensor(np.asarray(a), dtype=self.dtype, device=self.device)
        if self.name == "numpy":
            return np.asarray(a, dtype=self.dtype)
        return self.xp.asarray(np.asarray(a) if not hasattr(a, "__array_namespace__") else a,
                               dtype=self.dtype, device=self.device)

    def synchronize(self) -> None:
        """Wait for queued device work (for timings)."""
        if self.name == "torch" and str(self.device).startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        elif self.name == "cupy":
            import cupy

            cupy.cuda.Device().synchronize()


@dataclass(frozen=True)
class ComputeOptions:
    """Where finite-width arrays are computed: the knobs that travel together.

    ``backend`` (one of :data:`BACKENDS`), ``device`` (one of :data:`DEVICES`),
    ``dtype`` ("float64" or "float32") and ``draws`` (one of :data:`DRAWS`).
    Plain strings, so the options are picklable and compare by value; nothing
    is imported until :meth:`backend_namespace` is called.

    >>> ComputeOptions().to_dict()
    {'name': 'numpy', 'device': 'cpu', 'dtype': 'float64', 'draws': 'numpy'}
    """

    backend: str = "numpy"
    device: str = "cpu"
    dtype: str = "float64"
    draws: str = "numpy"

    def backend_namespace(self) -> "Backend":
        """The :class:`Backend` these options name (:func:`get_backend`; one-line
        :class:`BackendError` when it is not installed or the device is absent)."""
        return get_backend(self.backend, self.device, self.dtype, draws=self.draws)

    def to_dict(self) -> dict:
        """``{"name", "device", "dtype", "draws"}``: the ``"backend"`` entry of a report."""
        return {"name": self.backend, "device": self.device, "dtype": self.dtype, "draws": self.draws}


def get_backend(name: str = "numpy", device: str = "cpu", dtype: str = "float64", draws: str = "numpy") -> Backend:
    """Namespace for ``name`` on ``device`` with ``dtype`` ("float64" or "float32");
    ``draws`` ("numpy" or "native") is where :func:`verify.engine.rnn.init_rnn` draws weights.

    Raises :class:`BackendError` with a one-line message when the backend is
    not installed or the device is not present.  On CUDA, TF32 is disabled so
    that float32/float64 results are IEEE results.
    """
    if draws not in DRAWS:
        raise BackendError(f"draws must be one of {', '.join(DRAWS)}, got {draws!r}")
    be = _get_backend(name, device, dtype)
    return be if draws == "numpy" else replace(be, draws=draws)


def _get_backend(name: str, device: str, dtype: str) -> Backend:
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if device not in DEVICES:
        raise BackendError(f"unknown device {device!r}; choose one of {', '.join(DEVICES)}")
    if dtype not in ("float64", "float32"):
        raise BackendError(f"dtype must be float64 or float32, got {dtype!r}")
    if name == "numpy":
        if device != "cpu":
            raise BackendError("the numpy backend runs on the CPU only; use --backend torch or cupy for CUDA")
        return Backend("numpy", np, "cpu", getattr(np, dtype))
    if name == "array-api-strict":
        return _strict_backend(device, dtype)
    if name == "torch":
        return _torch_backend(device, dtype)
    return _cupy_backend(device, dtype)


def _strict_backend(device: str, dtype: str) -> Backend:
    if device != "cpu":
        raise BackendError("array-api-strict runs on the CPU only")
    try:
        import array_api_strict as xp
    except ImportError:
        raise BackendError("backend array-api-strict is not installed (pip install array-api-strict)") from None
    return Backend("array-api-strict", xp, xp.Device("CPU_DEVICE"), getattr(xp, dtype))


def _torch_backend(device: str, dtype: str) -> Backend:
    try:
        import torch
    except ImportError:
        raise BackendError("backend torch is not installed (pip install torch)") from None
    if device == "cuda":
        if not torch.cuda.is_available():
            raise BackendError("device cuda is not available to torch (no CUDA GPU or a CPU-only build)")
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")  # the same switch, said the newer way
    from array_api_compat import torch as xp

    return Backend("torch", xp, torch.device(device), getattr(torch, dtype))


def _cupy_backend(device: str, dtype: str) -> Backend:
    if device != "cuda":
        raise BackendError("the cupy backend needs --device cuda")
    try:
        import cupy
    except ImportError:
        raise BackendError("backend cupy is not installed (pip install cupy-cuda12x)") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception:
        count = 0
    if count < 1:
        raise BackendError("device cuda is not available to cupy (no CUDA GPU found)")
    from array_api_compat import cupy as xp

    return Backend("cupy", xp, None, getattr(cupy, dtype))


def to_numpy(a) -> np.ndarray:
    """Copy any backend's array to a numpy float array on the host."""
    if isinstance(a, np.ndarray):
        return a
    mod = type(a).__module__
    if mod.startswith("torch"):
        return a.detach().cpu().numpy()
    if mod.startswith("cupy"):
        return a.get()
    if mod.startswith("array_api_strict"):
        import array_api_strict as xps

        return np.asarray(xps.asarray(a, copy=True)._array)
    return np.asarray(a)
