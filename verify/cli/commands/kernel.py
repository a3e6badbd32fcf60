"""``python -m verify kernel --activation linear|relu|erf --sigma-w S --inputs X.npy [--dps D] [--json]``.

The exact wide-limit NTK and NNGP of the Elman RNN ``h_t = phi(W h_(t-1) + F x_t)``,
``y_t = C h_t (+ D x_t)`` (:mod:`theory.nonlinear`; ``docs/theory.md``, section
"Nonlinear RNNs") between the sequences of ``X.npy`` (shape ``(B, T, n_x)``,
taken exactly: a float is its binary value) and those of ``--inputs2`` (default
``X`` itself).  ``n_x`` comes from the file (``--n-x``, if given, must agree).

``--json``: one object with ``"ntk"`` and ``"nngp"`` as nested lists of decimal
strings with ``dps`` significant digits (computed 10 digits further and rounded
once).  Layout: ``[b][t][b'][t']`` when ``n_y = 1``; otherwise the full
``[b][t][a][b'][t'][c]``, zero unless ``a == c`` (both kernels carry delta_ac).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from mpmath import nstr

from theory.nonlinear import ACTIVATIONS, rnn_kernels
from theory.precision import check_dps, context
from theory.spec import SpecError
from verify.cli.options import add_spec_arguments, spec_from_args
from verify.internal.jsonio import dumps, versioned

GUARD_DPS = 10


def add_arguments(p) -> None:
    p.add_argument("--activation", choices=ACTIVATIONS, required=True, help="phi: linear, relu or erf")
    p.add_argument("--inputs", required=True, metavar="X.npy", help="input sequences, shape (B, T, n_x)")
    p.add_argument("--inputs2", default=None, metavar="X2.npy", help="second batch (default: the same as --inputs)")
    add_spec_arguments(p, sigma_w=None, lags=None)
    p.set_defaults(n_x=None)  # taken from the file unless given
    p.add_argument("--dps", type=int, default=30, help="significant decimal digits (default 30)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def load_inputs(path: str, name: str = "--inputs") -> np.ndarray:
    """A real 3-D array ``(B, T, n_x)`` from an ``.npy`` file, or a one-line :class:`SpecError`."""
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"{name} {path}: no such file")
    try:
        arr = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SpecError(f"{name} {path}: not a readable .npy array ({str(exc).splitlines()[0]})") from None
    if not isinstance(arr, np.ndarray):
        raise SpecError(f"{name} {path}: expected one array saved by numpy.save, got an archive")
    if arr.dtype.kind not in "iuf":
        raise SpecError(f"{name} {path}: must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != 3 or 0 in arr.shape:
        raise SpecError(f"{name} {path}: must have shape (B, T, n_x) with no empty axis, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise SpecError(f"{name} {path}: contains non-finite values")
    return arr


def compute(args) -> dict:
    """The kernels of the flags' network between the two batches, as decimal strings."""
    try:
        dps = check_dps(args.dps)
    except ValueError as exc:
        raise SpecError(f"--dps: {exc}") from None
    X = load_inputs(args.inputs)
    Xp = X if args.inputs2 is None else load_inputs(args.inputs2, "--inputs2")
    if args.n_x is not None and args.n_x != X.shape[2]:
        raise SpecError(f"--n-x {args.n_x} does not match {args.inputs} (n_x = {X.shape[2]})")
    if Xp.shape[2] != X.shape[2]:
        raise SpecError(f"--inputs2 has n_x = {Xp.shape[2]}, --inputs has n_x = {X.shape[2]}")
    args.n_x = int(X.shape[2])
    spec = spec_from_args(args)
    scalar = spec.n_y == 1
    R = rnn_kernels(spec, args.activation, X, None if args.inputs2 is None else Xp, dps=dps + GUARD_DPS,
                    full=not scalar)
    text = np.frompyfunc(lambda v: nstr(v, dps, strip_zeros=False), 1, 1)
    return {
        "activation": args.activation,
        "spec": dict(spec.to_dict()),
        "dps": dps,
        "inputs": str(args.inputs),
        "inputs2": None if args.inputs2 is None else str(args.inputs2),
        "shape": [list(X.shape), list(Xp.shape)],
        "layout": "[b][t][b'][t']" if scalar else "[b][t][a][b'][t'][c], zero unless a == c",
        "ntk": text(R.ntk).tolist(),
        "nngp": text(R.nngp).tolist(),
    }


def run(args) -> int:
    out = compute(args)
    if args.json:
        print(dumps(versioned(out), indent=None))
        return 0
    spec = out["spec"]
    print(f"Exact wide-limit kernels of the {out['activation']} Elman RNN: metric {spec['metric']}, "
          f"{spec['convention']}, s_W = {spec['sigma_w']}, s_F = {spec['sigma_f']}, s_C = {spec['sigma_c']}, "
          f"s_D = {spec['sigma_d']}, n_x = {spec['n_x']}, n_y = {spec['n_y']} ({out['dps']} digits; table shows 10)")
    if spec["n_y"] != 1:
        print("n_y > 1: both kernels are delta_ac times the scalar kernels shown (output coordinate a = c = 0)")
    for key in ("ntk", "nngp"):
        arr = np.array(out[key], dtype=object)
        if arr.ndim == 6:
            arr = arr[:, :, 0, :, :, 0]
        B, T, Bp, Tp = arr.shape
        print(f"\n{key.upper()} (rows (b, t), columns (b', t')):")
        for b in range(B):
            for t in range(T):
                cells = " ".join(f"{_short(arr[b, t, bp, tp]):>17}" for bp in range(Bp) for tp in range(Tp))
                print(f"({b},{t:>2}) {cells}")
    return 0


def _short(text: str) -> str:
    return nstr(context(20).mpf(text), 10)
