"""The wide-limit lag kernel of a diagonal recurrence (LRU), by trained group, exactly.

Gradient metric "ntk" (:class:`~theory.diagonal.spec.DiagonalSpec`, scaling
``"ntk"``): ``C = (s_C/sqrt n) c~``, ``B = s_B b~``, ``D = s_D D~``;
``nu, theta, gamma`` are trained as they are.  With ``kappa = 2 s_B^2 s_C^2``,
``k = l + l'``, ``m = l - l'``, ``a = -ln r`` the limit lag kernel is the sum of
the shares (each times its learning-rate multiplier), in the expectations of
:mod:`theory.diagonal.expectations`::

    K0(l, l')   = E[(1 - r^2) r^k cos(m phi)] = P0(k) c0(m)
    B = C = gamma = kappa K0
    nu          = kappa l l' E[a^2 (1 - r^2) r^k cos(m phi)]   = kappa l l' P2(k) c0(m)
    theta       = kappa l l' E[phi^2 (1 - r^2) r^k cos(m phi)] = kappa l l' P0(k) c2(m)
    D           = s_D^2 at (0, 0)

Tied gamma (``g`` recomputed from ``lambda``): no gamma share, and the nu share
is ``kappa c0(m) E[a^2 (1 - r^2) r^k (rho - l)(rho - l')]``, ``rho = r^2/(1 - r^2)``,
which expands to ``kappa c0(m) [I1(k) - k P2_shifted(k) + l l' P2(k)]`` with
``I1 = tied_nu_integral``.

Scaling "lru" (LRU's own parametrization, GD on C, B, ... themselves with one
learning rate): the C share is ``n`` times the others, and
``Theta_n / n -> lr_C 2 s_B^2 K0`` (readout-only kernel = NNGP covariance of
the initial response); the other shares of ``Theta_n / n`` vanish like ``1/n``.

Both functions work in a local context (:func:`theory.precision.context`) with
10 guard bits and round every entry once to the requested digits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Sequence

from theory.diagonal.expectations import P0, P2, P2_shifted, c0, c2, tied_nu_integral
from theory.diagonal.spec import DiagonalSpec, check_lag_list
from theory.precision import Context, check_dps, context, exact, guarded
from theory.spec import SpecError
from theory.weights import check_lags

__all__ = ["DiagonalKernel", "lag_kernel", "lag_kernel_diagonal"]


# --------------------------------------------------------------------------- kernels
@dataclass(frozen=True)
class DiagonalKernel:
    """Limit lag kernel: ``total`` and per-group ``shares`` as lists of lists (T x T)
    of mpmath numbers; ``normalized_by_n`` is True for the "lru" scaling
    (the object is ``lim Theta_n / n``)."""

    total: List[List[Any]]
    shares: Dict[str, List[List[Any]]]
    spec: DiagonalSpec
    lags: int
    dps: int
    normalized_by_n: bool


def _tables(spec: DiagonalSpec, lags: int, ctx: Context, need: Sequence[str]):
    ks = range(2 * lags - 1)
    ms = range(lags)
    t: Dict[str, List] = {}
    t["P0"] = [P0(spec, k, ctx) for k in ks]
    t["c0"] = [c0(spec, m, ctx) for m in ms]
    if "nu" in need:
        if spec.tied_gamma:
            t["I1"] = [tied_nu_integral(spec, k, ctx) for k in ks]
            t["Q"] = [P2_shifted(spec, k, ctx) for k in ks]
        t["P2"] = [P2(spec, k, ctx) for k in ks]
    if "theta" in need:
        t["c2"] = [c2(spec, m, ctx) for m in ms]
    return t


def _share_entry(group: str, spec: DiagonalSpec, t, l: int, lp: int, kappa, sd2, ctx):
    k, m = l + lp, abs(l - lp)
    if group in ("B", "C", "gamma"):
        return kappa * t["P0"][k] * t["c0"][m]
    if group == "nu":
        if spec.tied_gamma:
            return kappa * t["c0"][m] * (t["I1"][k] - k * t["Q"][k] + l * lp * t["P2"][k])
        return kappa * (l * lp) * t["P2"][k] * t["c0"][m]
    if group == "theta":
        return kappa * (l * lp) * t["P0"][k] * t["c2"][m]
    if group == "D":
        return sd2 if (l == 0 and lp == 0) else ctx.mpf(0)
    raise SpecError(f"unknown group {group!r}")


def _readout_coefficient(spec: DiagonalSpec, ctx: Context):
    """``lr_C 2 s_B^2``: ``lim Theta_n / n = lr_C 2 s_B^2 K0`` under the "lru" scaling."""
    return exact(ctx, spec.lr("C")) * 2 * exact(ctx, spec.sigma_b2)


def lag_kernel(spec: DiagonalSpec, lags: int, *, dps: int = 30) -> DiagonalKernel:
    """Limit lag kernel ``Theta(l, l')``, ``l, l' = 0..lags-1``, as shares and total.

    Scaling "ntk": shares as in the module docstring, times ``lr_g``.
    Scaling "lru": ``lim Theta_n/n``: C share ``lr_C 2 s_B^2 K0``, all others 0.

    >>> K = lag_kernel(DiagonalSpec(r_min=0, r_max=1, max_phase="pi"), 2, dps=15)
    >>> [[str(v) for v in row] for row in K.shares["C"]]
    [['0.5', '0.0'], ['0.0', '0.166666666666667']]
    """
    lags = check_lags(lags)
    ctx = context(check_dps(dps))
    groups = spec.groups
    with guarded(ctx, 10):
        t = _tables(spec, lags, ctx, groups if spec.scaling == "ntk" else ())
        zero = ctx.mpf(0)
        shares: Dict[str, List[List[Any]]] = {}
        for g in groups:
            lr = exact(ctx, spec.lr(g))
            if spec.scaling == "lru":
                if g == "C":
                    c = _readout_coefficient(spec, ctx)
                    mat = [[c * t["P0"][l + lp] * t["c0"][abs(l - lp)] for lp in range(lags)] for l in range(lags)]
                else:
                    mat = [[zero] * lags for _ in range(lags)]
            else:
                kappa = exact(ctx, spec.kappa) * lr
                sd2 = exact(ctx, (spec.sigma_d or 0) ** 2) * lr
                mat = [[None] * lags for _ in range(lags)]
                for l in range(lags):
                    for lp in range(l, lags):
                        mat[l][lp] = mat[lp][l] = _share_entry(g, spec, t, l, lp, kappa, sd2, ctx)
            shares[g] = mat
        total = [[sum((shares[g][l][lp] for g in groups), zero) for lp in range(lags)] for l in range(lags)]
    rnd = lambda mat: [[+v for v in row] for row in mat]
    return DiagonalKernel(rnd(total), {g: rnd(v) for g, v in shares.items()}, spec, lags, dps,
                          spec.scaling == "lru")


def lag_kernel_diagonal(spec: DiagonalSpec, lag_list: Sequence[int], *, dps: int = 20) -> List:
    """Diagonal ``Theta(l, l)`` (total over trained groups) at the given lags (any size),
    by the same closed forms as :func:`lag_kernel` (``m = 0``: ``c0 = 1``, ``c2 = Phi^2/3``)."""
    ctx = context(check_dps(dps))
    out = []
    with guarded(ctx, 10):
        c0v, c2v = ctx.mpf(1), c2(spec, 0, ctx)
        t: Dict[str, Any] = {"c0": [c0v], "c2": [c2v]}
        for l in check_lag_list(lag_list):
            k = 2 * l
            tt = dict(t)
            tt["P0"] = {k: P0(spec, k, ctx)}
            if spec.scaling == "lru":
                v = _readout_coefficient(spec, ctx) * tt["P0"][k]
                out.append(+v)
                continue
            if "nu" in spec.groups:
                tt["P2"] = {k: P2(spec, k, ctx)}
                if spec.tied_gamma:
                    tt["I1"] = {k: tied_nu_integral(spec, k, ctx)}
                    tt["Q"] = {k: P2_shifted(spec, k, ctx)}
            total = ctx.mpf(0)
            for g in spec.groups:
                lr = exact(ctx, spec.lr(g))
                kappa = exact(ctx, spec.kappa) * lr
                sd2 = exact(ctx, (spec.sigma_d or 0) ** 2) * lr
                total += _share_entry(g, spec, tt, l, l, kappa, sd2, ctx)
            out.append(+total)
    return out
