"""Real time series vendored from the statsmodels 0.15.0 wheel (public domain; see data/ATTRIBUTION.md).

Loaded with numpy only, so the real-data experiment runs offline with no extra dependency.
"""
from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["sunspots_monthly", "sunspots_yearly"]


def _text(name: str) -> str:
    return resources.files("verify.experiments.data").joinpath(name).read_text(encoding="ascii")


def sunspots_monthly() -> np.ndarray:
    """Monthly mean sunspot numbers, 1749-01 .. 2009-06: 3126 values (NOAA NGDC via statsmodels).

    The file has a text header and footer: only lines starting with a 4-digit year are data
    (12 months per line, the last line 6).
    """
    vals: list = []
    for line in _text("sunspots_monthly.dat").splitlines():
        parts = line.split()
        if parts and len(parts[0]) == 4 and parts[0].isdigit():
            vals.extend(float(v) for v in parts[1:])
    out = np.array(vals)
    if out.size != 3126:
        raise ValueError(f"sunspots_monthly.dat: expected 3126 monthly values, read {out.size}")
    return out


def sunspots_yearly() -> tuple:
    """Yearly sunspot numbers 1700..2008: ``(years, values)``, 309 each."""
    rows = _text("sunspots_yearly.csv").splitlines()[1:]
    data = np.array([[float(v) for v in r.split(",")] for r in rows if r.strip()])
    if data.shape != (309, 2):
        raise ValueError(f"sunspots_yearly.csv: expected 309 rows of (YEAR, SUNACTIVITY), got {data.shape}")
    return data[:, 0].astype(int), data[:, 1]
