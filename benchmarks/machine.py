"""What the numbers were measured on: CPU, cores, BLAS and its threads, library versions."""
from __future__ import annotations

import os
import platform
import sys
from typing import Any, Dict

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def mem_available_bytes() -> int | None:
    """``MemAvailable`` from ``/proc/meminfo`` (None where there is none)."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _blas() -> Dict[str, Any]:
    """BLAS libraries and their thread counts: threadpoolctl if installed, else numpy's build config."""
    try:
        from threadpoolctl import threadpool_info

        return {"source": "threadpoolctl", "pools": [
            {k: p.get(k) for k in ("user_api", "internal_api", "version", "num_threads", "threading_layer",
                                   "architecture")}
            for p in threadpool_info()
        ]}
    except ImportError:
        pass
    import numpy as np

    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        return {"source": "numpy.show_config (threadpoolctl not installed; thread count = env vars or the BLAS "
                          "default)",
                "name": blas.get("name"), "version": blas.get("version"),
                "configuration": blas.get("openblas configuration")}
    except TypeError:  # numpy < 1.26 has no mode=
        return {"source": "numpy.show_config unavailable"}


def machine_info() -> Dict[str, Any]:
    """A JSON-serialisable description of this machine and process."""
    import numpy as np

    info: Dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores_logical": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "thread_env": {k: os.environ.get(k) for k in THREAD_VARS},
        "blas": _blas(),
        "mem_available_bytes": mem_available_bytes(),
    }
    try:
        with open("/proc/loadavg") as fh:
            info["loadavg_at_start"] = fh.read().split()[:3]
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_parallel"] = torch.__config__.parallel_info().splitlines()[:6]
    except ImportError:
        info["torch"] = None
    try:
        import mpmath

        info["mpmath"] = mpmath.__version__
        info["mpmath_backend"] = mpmath.libmp.BACKEND
    except ImportError:
        pass
    return info
