"""S4D: its deterministic spectra and the C share of its lag kernel, exactly.

S4D (Gu, Gupta, Goel, Re, NeurIPS 2022) fixes the continuous-time eigenvalues
``A_n`` (:func:`s4d_spectrum`: kinds ``lin``, ``inv``, ``real``) and
discretizes with a zero-order hold of step ``dt``:

    lambda_n = exp(dt A_n),   b_n = (lambda_n - 1)/A_n   (B = 1),
    L_l = sum_n Re(C_n b_n lambda_n^l),   C_n = s_C c~_n,  Re c~, Im c~ ~ N(0, 1).

Only ``C`` is random, so the C share of the lag kernel is the covariance of the
initial impulse response (:func:`s4d_c_share`, its diagonal
:func:`s4d_c_share_diagonal`):

    Theta_C(l, l') = s_C^2 sum_n |b_n|^2 |lambda_n|^(l+l') cos((l - l') arg lambda_n).

:func:`s4d_c_share` and :func:`s4d_c_share_diagonal` work in a local context
with 20 guard bits and round each entry once to the requested digits.
"""
from __future__ import annotations

from typing import Any, List, Sequence, Tuple

from theory.diagonal.spec import check_lag_list
from theory.precision import Context, check_dps, context, exact, guarded
from theory.spec import SpecError, as_fraction
from theory.weights import check_lags

__all__ = ["S4D_KINDS", "s4d_spectrum", "s4d_c_share", "s4d_c_share_diagonal"]

S4D_KINDS = ("lin", "inv", "real")


def s4d_spectrum(kind: str, state_size: int, ctx: Context) -> List:
    """Continuous-time eigenvalues ``A_n`` of S4D (Gu, Gupta, Goel, Re, NeurIPS 2022,
    "On the Parameterization and Initialization of Diagonal State Space Models"), as the
    S4 repository builds them (state-spaces/s4, ``src/models/sequence/kernels/dplr.py``,
    read for this work), ``N = state_size``, modes ``n = 0..N/2-1`` (one of each conjugate
    pair; the output takes ``2 Re``):

    * ``lin``:  ``A_n = -1/2 + i pi n``
    * ``inv``:  ``A_n = -1/2 + i (N/pi) (N/(2n+1) - 1)``
    * ``real``: ``A_n = -(n + 1)``  (the code keeps N/2 real modes; the paper writes diag(-1..-N))

    The repository stores the conjugates (negative imaginary parts); the kernels here depend
    only on ``|lambda|`` and ``cos(m arg lambda)``, which are the same.
    """
    if kind not in S4D_KINDS:
        raise SpecError(f"S4D kind must be one of {', '.join(S4D_KINDS)}; got {kind!r}")
    if isinstance(state_size, bool) or not isinstance(state_size, int) or state_size < 2 or state_size % 2:
        raise SpecError(f"state_size must be an even integer >= 2, got {state_size!r}")
    N = state_size
    half = ctx.mpf(-1) / 2
    if kind == "lin":
        return [ctx.mpc(half, ctx.pi * n) for n in range(N // 2)]
    if kind == "inv":
        return [ctx.mpc(half, N / ctx.pi * (ctx.mpf(N) / (2 * n + 1) - 1)) for n in range(N // 2)]
    return [ctx.mpc(-(n + 1), 0) for n in range(N // 2)]


def s4d_c_share(kind: str, lags: int, *, state_size: int = 64, dt="0.01", sigma_c2="2",
                dps: int = 30) -> List[List[object]]:
    """C-share lag kernel (= NNGP covariance of the initial response) of an S4D layer
    with deterministic spectrum :func:`s4d_spectrum`, zero-order hold:

        lambda_n = exp(dt A_n),  b_n = (lambda_n - 1)/A_n  (B = 1),
        L_l = sum_n Re(C_n b_n lambda_n^l),  C_n = s_C c~_n, c~ complex with Re, Im ~ N(0, 1)
        Theta_C(l, l') = s_C^2 sum_n Re(b_n lambda_n^l conj(b_n lambda_n^l'))
                       = s_C^2 sum_n |b_n|^2 |lambda_n|^(l+l') cos((l - l') arg lambda_n)

    ``s_C^2 = 2`` reproduces S4D's ``C ~ CN(0, 1)`` with its ``2 Re(...)`` output.
    Not normalized by the number of modes (S4D does not scale C with N).  For
    ``lin``/``inv`` the diagonal is exactly geometric, ``beta_l = beta_0 e^(-dt l)``.
    """
    lags = check_lags(lags)
    ctx = context(check_dps(dps))
    sc2 = as_fraction(sigma_c2, "sigma_c2")
    with guarded(ctx, 20):
        modes = _s4d_modes(kind, state_size, dt, ctx)
        out: List[List[Any]] = [[None] * lags for _ in range(lags)]
        scv = exact(ctx, sc2)
        for l in range(lags):
            for lp in range(l, lags):
                k, m = l + lp, l - lp
                v = sum((b2 * r**k * ctx.cos(m * ph) for b2, r, ph in modes), ctx.mpf(0))
                out[l][lp] = out[lp][l] = scv * v
    return [[+v for v in row] for row in out]


def _s4d_modes(kind: str, state_size: int, dt, ctx: Context) -> List[Tuple[Any, Any, Any]]:
    """``(|b_n|^2, |lambda_n|, arg lambda_n)`` per mode, zero-order hold (see :func:`s4d_c_share`)."""
    dtv = exact(ctx, as_fraction(dt, "dt", allow_zero=False))
    modes = []
    for A in s4d_spectrum(kind, state_size, ctx):
        lam = ctx.exp(dtv * A)
        b = ctx.expm1(dtv * A) / A
        modes.append((abs(b) ** 2, abs(lam), ctx.arg(lam)))
    return modes


def s4d_c_share_diagonal(kind: str, lag_list: Sequence[int], *, state_size: int = 64, dt="0.01",
                         sigma_c2="2", dps: int = 20) -> List:
    """Diagonal of :func:`s4d_c_share` at the given lags: ``s_C^2 sum_n |b_n|^2 |lambda_n|^(2l)``."""
    ctx = context(check_dps(dps))
    sc2 = as_fraction(sigma_c2, "sigma_c2")
    out = []
    with guarded(ctx, 20):
        modes = _s4d_modes(kind, state_size, dt, ctx)
        scv = exact(ctx, sc2)
        for l in check_lag_list(lag_list):
            out.append(scv * sum((b2 * r ** (2 * l) for b2, r, _ in modes), ctx.mpf(0)))
    return [+v for v in out]
