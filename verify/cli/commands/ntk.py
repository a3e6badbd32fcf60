"""``python -m verify ntk --weights FILE.npz --sigma-w S --lags L [--json]``: the lag Gram of a saved network.

The file holds the actual matrices ``W (n, n)``, ``F (n, n_x)``, ``C (n_y, n)`` and
optional ``D (n_y, n_x)`` (:func:`verify.engine.npz.save_rnn`); ``n_x``/``n_y`` come from
it (``--n-x``/``--n-y``, if given, must agree).  The sigmas and the metric only
enter the group scales of the NTK (:func:`verify.engine.ntk.group_scales`) and the
closed form.  Prints ``Theta_n`` (an L x L table for scalar input and output),
the closed form's diagonal and the relative Frobenius error; ``--json``: one
object with ``"theta"`` (nested lists: L x L for scalar input and output, the
full ``(L, n_y, n_x, L, n_y, n_x)`` nesting otherwise), ``"limit"`` (same
nesting) and the errors.
"""
from __future__ import annotations

import math

import numpy as np

from theory.spec import SpecError
from verify.cli.options import add_spec_arguments, spec_from_args
from verify.engine.backend import BACKENDS, DEVICES, get_backend, to_numpy
from verify.engine.float64 import finite_lag_gram, float64_spec
from verify.engine.npz import load_rnn, npz_header
from verify.engine.ntk import lag_gram, limit_lag_gram
from verify.internal import limits, validate
from verify.internal.errors import OutOfRange
from verify.internal.jsonio import dumps, jsonable, versioned
from verify.stats.sweep import lag_gram_errors


def add_arguments(p) -> None:
    p.add_argument("--weights", required=True, metavar="FILE.npz", help="network saved with W, F, C (and optional D)")
    add_spec_arguments(p, sigma_w=None, lags=16)
    p.set_defaults(n_x=None, n_y=None)  # taken from the file unless given
    p.add_argument("--backend", choices=BACKENDS, default="numpy", help="array backend (default numpy)")
    p.add_argument("--device", choices=DEVICES, default="cpu", help="device (default cpu)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="dtype (default float64)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def compute(args) -> dict:
    """The lag Gram of ``--weights`` under the specification of the flags, with its closed form and errors."""

    be = get_backend(args.backend, args.device, args.dtype)
    lags = validate.lags(args.lags)
    header = npz_header(args.weights, "--weights")  # shapes only: nothing allocated yet
    shapes = {k: a.shape for k, a in header.items()}
    if all(len(v) == 2 for v in shapes.values()):  # else load_rnn says what is wrong
        n, nx, ny = shapes["W"][0], shapes["F"][1], shapes["C"][0]
        itemsize = 4 if args.dtype == "float32" else 8
        limits.check_cost(limits.lag_gram_cost(n, lags, max(nx, 1), max(ny, 1), itemsize=itemsize, draw=False),
                            "--weights/--lags")
    rnn = load_rnn(args.weights, backend=be, flag="--weights")
    for flag, name, have in (("--n-x", "n_x", rnn.n_x), ("--n-y", "n_y", rnn.n_y)):
        given = getattr(args, name)
        if given is not None and given != have:
            raise SpecError(f"{flag} {given} does not match the network in {args.weights} ({name} = {have})")
        setattr(args, name, have)
    spec = spec_from_args(args)
    float64_spec(spec, lags, width=rnn.n, squares=False)  # scales, NTK factors, closed form: float64
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below, with a clear message
        gram = lag_gram(rnn, spec, lags)
    finite_lag_gram({g: to_numpy(v) for g, v in gram.shares.items()}, f"--weights {args.weights}")
    theta = np.asarray(to_numpy(gram.total), dtype=np.float64)
    limit = limit_lag_gram(spec, args.lags)
    scalar = spec.n_x == 1 and spec.n_y == 1
    shape = (args.lags, args.lags) if scalar else theta.shape
    out = {
        "weights": str(args.weights),
        "n": rnn.n,
        "spec": dict(spec.to_dict()),
        "lags": args.lags,
        "backend": {"name": args.backend, "device": args.device, "dtype": args.dtype},
        "layout": "theta[l][l']" if scalar else "theta[l][a][i][l'][b][j]",
        "theta": theta.reshape(shape),
        "limit": limit.reshape(shape),
    }
    try:
        # the errors square the entries: scale both by one power of 2 (exact) so that large finite
        # entries do not overflow the norms, unless that would flush the closed form to zero
        top, lim_top = float(np.max(np.abs(theta))), float(np.max(np.abs(limit)))
        scale = 1.0
        if top > 1e150 and lim_top > 0 and lim_top * math.ldexp(1.0, -math.frexp(top)[1]) > 1e-150:
            scale = math.ldexp(1.0, -math.frexp(top)[1])
        with np.errstate(over="ignore", invalid="ignore"):
            err = lag_gram_errors(theta * scale, limit * scale)
        if not (math.isfinite(err["frob"]) and math.isfinite(err["offdiag"])):
            raise OutOfRange(f"--weights {args.weights}: the lag Gram's entries reach {top:.3g}, so far from the "
                             f"closed form (entries up to {lim_top:.3g}) that its relative errors overflow float64; "
                             "rescale the weights or check the scales")
        out.update(relative_error=err["frob"], diag_relative_error=err["diag_rel"],
                   diag_signed_error=np.asarray(err["diag_signed"]) / scale, offdiag_relative_mass=err["offdiag"])
    except OutOfRange:
        raise
    except SpecError as exc:  # a zero closed form: no relative error
        out.update(relative_error=None, note=str(exc))
    return jsonable(out)


def run(args) -> int:
    out = compute(args)
    if args.json:
        print(dumps(versioned(out), indent=None))
        return 0
    s = out["spec"]
    L = out["lags"]
    print(f"Lag Gram Theta_n of {out['weights']} (n = {out['n']}, n_x = {s['n_x']}, n_y = {s['n_y']}): "
          f"metric {s['metric']}, {s['convention']}, s_W = {s['sigma_w']}, s_F = {s['sigma_f']}, "
          f"s_C = {s['sigma_c']}, s_D = {s['sigma_d']}, {L} lags")
    theta = np.asarray(out["theta"], dtype=float)
    limit = np.asarray(out["limit"], dtype=float)
    if theta.ndim == 2:
        print("\nTheta_n[l, l'] (rows l, columns l'):")
        print("      " + " ".join(f"{j:>10}" for j in range(L)))
        for i in range(L):
            print(f"{i:>5} " + " ".join(f"{theta[i, j]:>10.4g}" for j in range(L)))
        diag, ref = np.diag(theta), np.diag(limit)
    else:
        m = s["n_y"] * s["n_x"]
        mat = theta.reshape(L, m, L, m)
        diag = np.array([np.trace(mat[l, :, l, :]) / m for l in range(L)])
        ref = np.array([np.trace(limit.reshape(L, m, L, m)[l, :, l, :]) / m for l in range(L)])
        print("\n(non-scalar input/output: the full tensor is in --json; below, mean diagonal entry per lag)")
    print(f"\n{'lag':>5}  {'Theta_n[l,l]':>14}  {'closed form':>14}  {'rel. diff':>10}")
    for l in range(L):
        rel = (diag[l] - ref[l]) / ref[l] if ref[l] != 0 else float("nan")
        print(f"{l:>5}  {diag[l]:>14.6g}  {ref[l]:>14.6g}  {rel:>10.3g}")
    if out.get("relative_error") is not None:
        print(f"\nrelative Frobenius error ||Theta_n - Theta_inf||_F / ||Theta_inf||_F = {out['relative_error']:.6g}; "
              f"off-diagonal mass {out['offdiag_relative_mass']:.6g}")
    else:
        print(f"\n{out.get('note')}")
    return 0
