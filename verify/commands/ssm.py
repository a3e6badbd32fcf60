"""``python -m verify ssm``: lag kernels of diagonal linear recurrences (LRU, S4D).

* ``ssm weights``: the exact wide-limit lag kernel (T x T) of an LRU-style
  diagonal recurrence, by group and total (``theory.diagonal.lag_kernel``).
* ``ssm compare --out DIR``: dense RNN against diagonal initializations: lag
  weights, 1 % lags, effective ranks and kernel-regression fits (PNG + JSON).
"""
from __future__ import annotations

import json
import os

import numpy as np
from mpmath import nstr

from theory.diagonal import (
    DiagonalSpec,
    SCALINGS,
    implicit_bias_solution,
    lag_kernel,
    lag_kernel_diagonal,
    s4d_c_share,
    s4d_c_share_diagonal,
    to_strings,
)
from theory.spec import RNNSpec, SpecError
from theory.weights import lag_weights

from .. import validate
from ..cli import arg_type
from .. import output
from ..errors import BadInput, require
from ..output import write_json
from ..progress import progress
from ..report_json import versioned

_POS = validate.positive_int


def _seed(text, flag):
    return validate.integer(text, flag, minimum=0)


def _sigma_d(text):
    return None if str(text).lower() in ("none", "off", "no") else text


def add_arguments(p) -> None:
    sub = p.add_subparsers(dest="ssm_command", metavar="SUBCOMMAND", required=True)
    w = sub.add_parser("weights", help="exact lag kernel of a diagonal recurrence (shares and total)",
                       description="Exact wide-limit lag kernel Theta(l, l') of an LRU-style diagonal recurrence.")
    w.add_argument("--r-min", required=True, help="smallest eigenvalue modulus (0 <= r_min < r_max)")
    w.add_argument("--r-max", required=True, help="largest eigenvalue modulus (<= 1)")
    w.add_argument("--max-phase", required=True,
                   help="phases uniform on [0, max_phase] radians; multiples of pi exactly as 'pi/10', '2*pi'")
    w.add_argument("--lags", type=arg_type(validate.lags, "--lags"), default=12, help="number of lags T (default 12)")
    w.add_argument("--tied-gamma", action="store_true", help="g = sqrt(1 - |lambda|^2) recomputed (no gamma parameter)")
    w.add_argument("--scaling", choices=SCALINGS, default="ntk",
                   help="ntk: C = (s_C/sqrt n) c~ (default); lru: LRU's own parametrization, limit of Theta_n/n")
    w.add_argument("--sigma-b2", default="1/2", help="s_B^2 = 1/(2H) in LRU (default 1/2, H = 1)")
    w.add_argument("--sigma-c", default="1", help="s_C (default 1)")
    w.add_argument("--sigma-d", default="1", help="s_D, or 'none' for no D (default 1)")
    for g in ("b", "c", "gamma", "nu", "theta", "d"):
        w.add_argument(f"--lr-{g}", default="1", help=f"learning-rate multiplier of {g} (0 freezes it; default 1)")
    w.add_argument("--dps", type=arg_type(validate.dps, "--dps"), default=30, help="decimal digits (default 30)")
    w.add_argument("--json", action="store_true", help="print one JSON object (decimal strings)")
    w.set_defaults(_ssm=run_weights)

    c = sub.add_parser("compare", help="memory of dense vs diagonal recurrences: figure and JSON summary",
                       description="Dense RNN vs LRU / S4D-Lin lag kernels: 1 %% lags, effective ranks, fits.")
    c.add_argument("--out", required=True, help="output folder (created if missing)")
    c.add_argument("--force", action="store_true", help="replace an existing report in --out")
    c.add_argument("--lags", type=arg_type(validate.lags, "--lags"), default=128, help="T for the kernels and effective ranks (default 128)")
    c.add_argument("--train-lags", type=arg_type(validate.lags, "--train-lags"), default=64, help="T of the kernel-regression example (default 64)")
    c.add_argument("--train-sequences", type=arg_type(_POS, "--train-sequences"), default=16, help="training sequences (default 16)")
    c.add_argument("--max-lag", type=arg_type(_POS, "--max-lag"), default=100_000, help="search range of the 1 %% lag (default 100000)")
    c.add_argument("--no-train", action="store_true", help="skip the kernel-regression example")
    c.add_argument("--dps", type=arg_type(validate.dps, "--dps"), default=20, help="digits of the exact kernels (default 20)")
    c.add_argument("--seed", type=arg_type(_seed, "--seed"), default=0, help="seed of the training inputs (default 0)")
    c.set_defaults(_ssm=run_compare)


def run(args) -> int:
    return int(args._ssm(args) or 0)


# --------------------------------------------------------------------------- weights
def spec_from_args(args) -> DiagonalSpec:
    spec = DiagonalSpec(
        r_min=args.r_min, r_max=args.r_max, max_phase=args.max_phase, scaling=args.scaling,
        tied_gamma=args.tied_gamma, sigma_b2=args.sigma_b2, sigma_c=args.sigma_c,
        sigma_d=_sigma_d(args.sigma_d), lr_b=args.lr_b, lr_c=args.lr_c, lr_gamma=args.lr_gamma,
        lr_nu=args.lr_nu, lr_theta=args.lr_theta, lr_d=args.lr_d,
    )
    check_phase(spec, args.max_phase)
    return spec


def exceeds_two_pi(spec: DiagonalSpec) -> bool:
    """Whether ``max_phase`` (radians, or a multiple of pi) is above ``2 pi``, decided exactly:
    interval arithmetic encloses ``2 pi`` at rising precision until the rational ``max_phase``
    (never equal to the irrational ``2 pi``) lies outside the enclosure."""
    if spec.phase_in_pi:
        return spec.max_phase > 2
    q = spec.max_phase
    from theory.precision import MAX_DPS, context

    digits = 30
    while True:
        iv = context(digits, interval=True)
        two_pi = 2 * iv.pi
        x = iv.mpf(q.numerator) / q.denominator
        if x.a > two_pi.b:
            return True
        if x.b < two_pi.a or digits >= MAX_DPS:
            return False
        digits = min(4 * digits, MAX_DPS)


def check_phase(spec: DiagonalSpec, text) -> None:
    """Refuse a maximum phase above ``2 pi``: phases live on the circle, and a uniform law on
    ``[0, Phi]`` with ``Phi > 2 pi`` is not LRU's initialization (it would wrap unevenly)."""
    if exceeds_two_pi(spec):
        raise BadInput(f"--max-phase {text}: the maximum phase must be at most 2*pi = 6.283185307... radians "
                       "(phases of eigenvalues lie on the circle; write multiples of pi exactly, e.g. 'pi/10', '2*pi')")


def compute_weights(args) -> dict:
    spec = spec_from_args(args)
    dps = validate.dps(args.dps)
    validate.lags(args.lags)
    validate.check_cost(validate.diagonal_kernel_cost(args.lags, dps), "--lags/--dps")
    K = lag_kernel(spec, args.lags, dps=dps)
    return {
        "spec": spec.to_dict(),
        "dps": dps,
        "lags": args.lags,
        "normalized_by_n": K.normalized_by_n,
        "theta": to_strings(K.total, dps),
        "shares": {g: to_strings(m, dps) for g, m in K.shares.items()},
    }


def run_weights(args) -> int:
    out = compute_weights(args)
    if args.json:
        print(json.dumps(versioned(out), indent=1))
        return 0
    s, T = out["spec"], out["lags"]
    phase = f"{s['max_phase']}*pi" if s["phase_in_pi"] else s["max_phase"]
    what = "lim Theta_n / n (readout-only)" if out["normalized_by_n"] else "lim Theta_n"
    print(f"Diagonal recurrence lag kernel ({what}): r in [{s['r_min']}, {s['r_max']}], max_phase = {phase}, "
          f"scaling {s['scaling']}, {'tied' if s['tied_gamma'] else 'free'} gamma, s_B^2 = {s['sigma_b2']}, "
          f"s_C = {s['sigma_c']}, s_D = {s['sigma_d']}  ({out['dps']} digits; table shows 10)")
    groups = list(out["shares"])
    short = lambda t: nstr_short(t, 10)
    print("Diagonal Theta(l, l):")
    header = f"{'lag':>5}  {'total':>17}  " + "  ".join(f"{g:>17}" for g in groups)
    print(header)
    print("-" * len(header))
    for l in range(T):
        print(f"{l:>5}  {short(out['theta'][l][l]):>17}  "
              + "  ".join(f"{short(out['shares'][g][l][l]):>17}" for g in groups))
    print("\nTotal Theta(l, l') (rows l, columns l'; not diagonal in the lag, use --json for every digit):")
    for l in range(T):
        print(" ".join(f"{nstr_short(v, 4):>11}" for v in out["theta"][l]))
    return 0


def nstr_short(text: str, digits: int) -> str:
    from theory.precision import context

    return nstr(context(max(digits + 5, 15)).mpf(text), digits)


# --------------------------------------------------------------------------- compare
DENSE_SW = ("0.8", "0.9", "0.95")
RING = dict(r_min="0.9", r_max="0.999", max_phase="pi/10", sigma_d=None)
LRU_DEFAULT = dict(r_min="0", r_max="1", max_phase="6.28", sigma_d=None)
S4D = dict(kind="lin", state_size=64, dt="0.01")


def _models():
    """(name, family, kernel(T) -> list of lists, diagonal(list of lags) -> list, description)."""
    out = []
    for sw in DENSE_SW:
        spec = RNNSpec(sigma_w=sw)  # metric ntk, conv1, no D, s_F = s_C = 1

        def kern(T, dps, spec=spec):
            b = lag_weights(spec, T, dps=dps)
            return [[b[i] if i == j else 0 * b[i] for j in range(T)] for i in range(T)]

        def diag(ls, spec=spec):
            b = lag_weights(spec, max(ls) + 1, dps=15)
            return [b[l] for l in ls]

        out.append((f"dense RNN s_W={sw}", "dense", kern, diag,
                    f"dense linear RNN, metric ntk, conv1, no D, s_W = {sw}: beta_l = (l+2) s_W^(2l)"))
    for label, law in (("LRU r[0,1] ph 6.28", LRU_DEFAULT),
                       ("LRU r[0.9,0.999] ph pi/10", RING)):
        for scaling, tag in (("ntk", "all (ntk)"), ("lru", "readout")):
            spec = DiagonalSpec(**law, scaling=scaling)
            out.append((f"{label}, {tag}", "diagonal",
                        lambda T, dps, spec=spec: lag_kernel(spec, T, dps=dps).total,
                        lambda ls, spec=spec: lag_kernel_diagonal(spec, ls, dps=15),
                        f"DiagonalSpec {spec.to_dict()}"))
    out.append(("S4D-Lin N=64 dt=0.01 readout", "s4d",
                lambda T, dps: s4d_c_share(S4D["kind"], T, state_size=S4D["state_size"], dt=S4D["dt"], dps=dps),
                lambda ls: s4d_c_share_diagonal(S4D["kind"], ls, state_size=S4D["state_size"], dt=S4D["dt"], dps=15),
                "S4D-Lin (state-spaces/s4 dplr conventions), A_n = -1/2 + i pi n, n < 32, ZOH, B = 1, dt = 0.01, s_C^2 = 2: C-share kernel"))
    return out


def _teachers(T: int):
    l = np.arange(T)
    damped = np.exp(-l / 30.0) * np.cos(np.pi * l / 20.0)
    power = 1.0 / (1.0 + l / 4.0)
    delay = np.zeros(T)
    d = min(40, T - 1)
    delay[d] = 1.0
    return {"damped cosine exp(-l/30) cos(pi l/20)": damped, "power law 1/(1 + l/4)": power,
            f"pure delay at lag {d}": delay}


def run_compare(args) -> int:
    dps = validate.dps(args.dps)
    for name in ("lags", "train_lags", "train_sequences", "max_lag"):
        validate.positive_int(getattr(args, name), "--" + name.replace("_", "-"))
    if not args.no_train and args.train_sequences >= args.train_lags:
        raise SpecError("--train-sequences must be smaller than --train-lags (otherwise every kernel fits the same L)")
    validate.check_cost(validate.ssm_compare_cost(args.lags, args.max_lag, None if args.no_train else args.train_lags,
                                                  dps), "--lags/--max-lag/--train-lags/--dps")
    require("matplotlib", "ssm compare (its figure ssm_compare.png)", "plot")
    with output.report_folder(args.out, COMPARE_FILES, force=args.force) as outputs:
        summary, teachers = _compare_into(args, dps, outputs.staging)
    print(f"wrote {outputs.final('ssm_compare.png')} and {outputs.final('ssm_compare.json')}")
    print(f"{'model':<34} {'1 % lag':>9} {'eff. rank':>10}" + "".join(f" {'err ' + ' '.join(t.split()[:2]):>22}" for t in teachers))
    for m in summary["models"]:
        lag1 = m["one_percent_lag"] if m["one_percent_lag"] is not None else f">{args.max_lag}"
        row = f"{m['name']:<34} {lag1!s:>9} {m['effective_rank']:>10.2f}"
        for t in teachers:
            row += f" {m['fits'][t]['relative_error']:>22.4f}"
        print(row)
    return 0


COMPARE_FILES = ("ssm_compare.json", "ssm_compare.png")


def _compare_into(args, dps, folder):
    from verify.diagonal import drop_lag, effective_rank

    models = _models()
    T = args.lags
    summary = {"lags": T, "dps": dps, "fraction": 0.01, "models": [],
               "train_lags": None if args.no_train else args.train_lags,
               "train_sequences": None if args.no_train else args.train_sequences}
    curves, spectra = {}, {}
    for name, family, kern, diag, desc in progress(models, desc="ssm compare: kernels"):
        lag1, wmax = drop_lag(diag, 0.01, max_lag=args.max_lag)
        K = kern(T, dps)
        A = np.array([[float(v) for v in row] for row in K])
        er = effective_rank(A)
        ev = np.sort(np.clip(np.linalg.eigvalsh((A + A.T) / 2), 0, None))[::-1]
        grid = sorted(set(range(33)) | {int(round(x)) for x in np.geomspace(32, max(min(args.max_lag, 20_000), 33), 160)})
        curves[name] = (np.array(grid), np.array([float(v) for v in diag(grid)]))
        spectra[name] = ev / ev[0]
        summary["models"].append({
            "name": name, "family": family, "description": desc, "one_percent_lag": lag1,
            "one_percent_note": None if lag1 is not None else f"stays above 1 % of its maximum up to lag {args.max_lag}",
            "max_weight": wmax, "effective_rank": er, "kernel": K,
        })
    teachers = {}
    if not args.no_train:
        Tt, N = args.train_lags, args.train_sequences
        rng = np.random.default_rng(args.seed)
        X = rng.standard_normal((N, Tt))  # row i: x_i(T-1-l), the final output of sequence i
        teachers = _teachers(Tt)
        for m in progress(summary["models"], desc="ssm compare: kernel regression"):
            K = m["kernel"]
            Kt = [row[:Tt] for row in K[:Tt]]
            m["fits"] = {}
            for tname, Lstar in teachers.items():
                y = X @ Lstar
                L = np.array([float(v) for v in implicit_bias_solution(Kt, X.tolist(), y.tolist(), dps=dps)])
                m["fits"][tname] = {
                    "relative_error": float(np.linalg.norm(L - Lstar) / np.linalg.norm(Lstar)),
                    "learned": L.tolist(),
                }
    for m in summary["models"]:
        m.pop("kernel")
    summary["teachers"] = {k: v.tolist() for k, v in teachers.items()}
    summary["notes"] = [
        "lag weights: diagonal Theta(l, l) of the exact wide-limit kernel (theory/), no D term in any model",
        "one_percent_lag: first lag after the maximum where Theta(l, l) <= 1 % of the maximum",
        "effective_rank: entropy effective rank exp(H(p)), p = eigenvalues / trace, of the T x T kernel (float64 eigenvalues)",
        "fits: kernel regression from L(0) = 0 (gradient descent in the kernel regime, mean initialization): "
        "L = Theta X^T (X Theta X^T)^-1 y, the Theta^-1-metric interpolant; N training sequences, "
        "final output observed, inputs N(0, 1)",
    ]
    write_json(folder / "ssm_compare.json", versioned(summary))
    _figure(str(folder), summary, curves, spectra, teachers)
    return summary, teachers


def _figure(out, summary, curves, spectra, teachers):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from matplotlib.gridspec import GridSpec

    nt = len(teachers)
    fig = plt.figure(figsize=(16, 11 if nt else 5.5))
    gs = GridSpec(2 if nt else 1, 6, figure=fig)
    styles = {"dense": "-", "diagonal": "--", "s4d": ":"}
    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    ax = fig.add_subplot(gs[0, :3])
    for i, m in enumerate(summary["models"]):
        lags, w = curves[m["name"]]
        w = w / w.max()
        ok = w > 0
        lab = m["name"] + (f" (1 %: {m['one_percent_lag']})" if m["one_percent_lag"] is not None else " (1 %: never)")
        ax.loglog(lags[ok] + 1, w[ok], styles[m["family"]], color=colors[i % 10], label=lab)
    ax.axhline(0.01, color="k", lw=0.8, alpha=0.6)
    ax.set_ylim(1e-6, 2)
    ax.set_xlabel("lag l + 1")
    ax.set_ylabel("Theta(l, l) / max")
    ax.set_title("Lag weights: diagonal of the wide-limit kernel (normalized); line = 1 %")
    ax.legend(fontsize=7, loc="lower left")
    ax = fig.add_subplot(gs[0, 3:])
    for i, m in enumerate(summary["models"]):
        ev = spectra[m["name"]]
        ok = ev > 1e-18
        ax.semilogy(np.arange(ev.size)[ok] + 1, ev[ok], styles[m["family"]], color=colors[i % 10],
                    label=f"{m['name']}: eff. rank {m['effective_rank']:.1f}")
    ax.set_xlabel("eigenvalue index")
    ax.set_ylabel("eigenvalue / largest")
    ax.set_title(f"Kernel spectra, T = {summary['lags']} lags (effective rank in legend)")
    ax.set_ylim(1e-18, 2)
    ax.legend(fontsize=7, loc="lower left")
    for j, (tname, Lstar) in enumerate(teachers.items()):
        ax = fig.add_subplot(gs[1, 2 * j: 2 * j + 2])
        ax.plot(Lstar, "k-", lw=3, alpha=0.4, label="teacher")
        for i, m in enumerate(summary["models"]):
            f = m["fits"][tname]
            ax.plot(f["learned"], styles[m["family"]], color=colors[i % 10], lw=1,
                    label=f"{m['name']}: err {f['relative_error']:.2f}")
        lo, hi = float(np.min(Lstar)), float(np.max(Lstar))
        pad = 0.6 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
        ax.set_xlabel("lag l")
        ax.set_ylabel("learned impulse response L_l")
        ax.set_title(f"Teacher: {tname}", fontsize=10)
        ax.legend(fontsize=6, loc="upper right")
    if nt:
        fig.text(0.5, 0.005, f"Bottom: kernel regression with each limit kernel (= gradient descent in the kernel regime "
                 f"from L(0) = 0), final outputs of {summary.get('train_sequences')} Gaussian sequences of "
                 f"{summary.get('train_lags')} steps; err = ||L - L*|| / ||L*||", ha="center", fontsize=9)
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    png = os.path.join(out, "ssm_compare.png")
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png
