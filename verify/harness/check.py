"""The exact finite-width test on networks the user supplies (``python -m verify check DIR``).

A folder holds linear RNNs saved as ``.npz`` files (arrays ``W (n, n)``,
``F (n, n_x)``, ``C (n_y, n)`` and optional ``D (n_y, n_x)``, the actual
matrices: :func:`verify.engine.npz.save_rnn`), at any widths.  Each network's empirical
lag Gram (:func:`verify.engine.ntk.lag_gram`) is one draw; the networks of one width
are the draws at that width, and :func:`verify.stats.exact.exact_test` tests their
means against the exact finite-width mean of the lag Gram under the claimed
specification (docs/theory.md, section "Finite width: exact moments of the lag
Gram").  If the networks were drawn as the theory assumes
(``W_ij ~ N(0, s_W^2/n)``, ``F_ij ~ N(0, s_F^2/n_x)``, ``C_ij ~ N(0, s_C^2/n)``,
``D_ij ~ N(0, s_D^2/n_x)``, independently) the verdict is "inconsistent" with
probability at most ``alpha`` (up to the normal approximation of the means).

Rules for the folder: every ``*.npz`` file directly in it (sorted by name, not
recursive; other files are ignored) is a network; all share ``n_x``, ``n_y``
and the presence of ``D`` with the specification; every width present has at
least 2 networks (a width with a single network is bad input, not skipped: a
lone network gives no variance, and dropping it silently would test fewer
networks than the user supplied).  Violations raise
:class:`verify.internal.errors.BadInput` with one line; headers are read and checked
before any array is loaded.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Sequence, Tuple, Union

import numpy as np

from theory.spec import RNNSpec
from verify.engine.float64 import float64_spec
from verify.engine.npz import load_rnn, npz_header
from verify.engine.ntk import lag_gram
from verify.internal import limits, validate
from verify.internal.errors import BadInput
from verify.internal.executors import ordered_map
from verify.internal.jsonio import jsonable
from verify.stats.exact import DEFAULT_ALPHA, ExactTest, exact_test, predict

__all__ = [
    "NetworkFile",
    "CheckResult",
    "DEFAULT_LAGS",
    "scan_folder",
    "common_dims",
    "group_by_width",
    "check_files",
    "check_folder",
]

DEFAULT_LAGS = 16


@dataclass(frozen=True)
class NetworkFile:
    """One network file and the dimensions its array headers state."""

    path: Path
    n: int
    n_x: int
    n_y: int
    has_d: bool

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class CheckResult:
    """Outcome of :func:`check_files`: the test, and which files made up each width."""

    folder: str
    spec: RNNSpec
    lags: int
    alpha: float
    files: Mapping[int, Tuple[str, ...]]
    test: ExactTest
    warnings: Tuple[str, ...] = ()

    @property
    def verdict(self) -> str:
        return self.test.verdict

    @property
    def consistent(self) -> bool:
        return self.test.consistent

    def max_abs_z_by_width(self) -> Tuple[float, ...]:
        """Largest ``|z|`` over the tested entries at each width (before combining widths)."""
        z = np.abs(self.test.z_entries_widths)
        return tuple(float(np.max(row)) if row.size else 0.0 for row in z)

    def to_dict(self, entries: bool = True) -> Dict[str, object]:
        """JSON-friendly report (numpy -> lists, inf/NaN -> None); ``"version"`` is added by the caller."""
        out = dict(self.test.to_dict(entries=entries))
        out.pop("seeds", None)  # the per-width counts are under "networks"
        widths = sorted(self.files)
        out.update(
            folder=self.folder,
            spec=dict(self.spec.to_dict()),
            lags=self.lags,
            alpha=self.alpha,
            widths=widths,
            networks={
                "count": sum(len(v) for v in self.files.values()),
                "by_width": {str(n): len(self.files[n]) for n in widths},
                "files": {str(n): list(self.files[n]) for n in widths},
            },
            max_abs_z_entry_by_width=list(self.max_abs_z_by_width()),
            warnings=list(self.warnings),
        )
        return jsonable(out)


def scan_folder(folder: Union[str, Path], flag: str = "DIR") -> Tuple[NetworkFile, ...]:
    """The ``*.npz`` files directly in ``folder`` (sorted by name; subfolders, even one named
    ``x.npz``, are not read) with their header dimensions.

    Only the array headers are read (:func:`verify.engine.npz.npz_header`): shapes
    ``W (n, n)``, ``F (n, n_x)``, ``C (n_y, n)``, ``D (n_y, n_x)``, every dimension >= 1.
    """
    text = validate.path_text(folder, flag)
    root = Path(text)
    if not root.exists():
        raise BadInput(f"{text}: no such folder")
    if not root.is_dir():
        raise BadInput(f"{text}: not a folder (give the folder that holds the .npz networks)")
    try:
        paths = sorted((p for p in root.iterdir() if p.name.endswith(".npz") and not p.is_dir()), key=lambda p: p.name)
    except OSError as exc:
        raise BadInput(f"{text}: cannot list the folder ({exc.strerror or exc})") from None
    if not paths:
        raise BadInput(f"{text}: no .npz files (expected networks saved by numpy.savez with arrays W, F, C "
                       "and optional D)")
    return tuple(_read_dims(p) for p in paths)


def _read_dims(path: Path) -> NetworkFile:
    header = npz_header(path, None)
    shapes = {k: a.shape for k, a in header.items()}
    for k, shape in shapes.items():
        if len(shape) != 2:
            raise BadInput(f"{path}: array {k} must be a matrix (2-D), got shape {shape}")
    n = shapes["W"][0]
    n_x, n_y = shapes["F"][1], shapes["C"][0]
    expected = {"W": (n, n), "F": (n, n_x), "C": (n_y, n), "D": (n_y, n_x)}
    for k, shape in shapes.items():
        if shape != expected[k]:
            raise BadInput(f"{path}: W {shapes['W']}, F {shapes['F']}, C {shapes['C']}"
                           + (f", D {shapes['D']}" if "D" in shapes else "")
                           + ": expected W (n, n), F (n, n_x), C (n_y, n) and D (n_y, n_x)")
    if min(n, n_x, n_y) < 1:
        raise BadInput(f"{path}: every dimension must be at least 1 (W {shapes['W']}, F {shapes['F']}, "
                       f"C {shapes['C']})")
    return NetworkFile(path, int(n), int(n_x), int(n_y), "D" in shapes)


def common_dims(files: Sequence[NetworkFile]) -> Tuple[int, int, bool]:
    """The ``(n_x, n_y, has_d)`` every network shares; one line naming two files that differ if not."""
    first = files[0]
    for f in files[1:]:
        for what, a, b in (("n_x", first.n_x, f.n_x), ("n_y", first.n_y, f.n_y)):
            if a != b:
                raise BadInput(f"the networks must share n_x, n_y and D: {first.name} has {what} = {a}, "
                               f"{f.name} has {what} = {b}")
        if first.has_d != f.has_d:
            has, lacks = (first, f) if first.has_d else (f, first)
            raise BadInput(f"the networks must share n_x, n_y and D: {has.name} has a D, {lacks.name} has none")
    return first.n_x, first.n_y, first.has_d


def _match_spec(files: Sequence[NetworkFile], spec: RNNSpec) -> None:
    n_x, n_y, has_d = common_dims(files)
    if (n_x, n_y) != (spec.n_x, spec.n_y):
        raise BadInput(f"the networks have n_x = {n_x}, n_y = {n_y}; the specification says "
                       f"n_x = {spec.n_x}, n_y = {spec.n_y}")
    if has_d != spec.has_d:
        raise BadInput("the specification has a D (--sigma-d) but the networks have none" if spec.has_d
                       else "the networks have a D but the specification has none (give --sigma-d)")


def group_by_width(files: Sequence[NetworkFile]) -> Dict[int, Tuple[NetworkFile, ...]]:
    """Networks per width (ascending); every width needs at least 2 (no variance from one draw)."""
    groups: Dict[int, list] = {}
    for f in files:
        groups.setdefault(f.n, []).append(f)
    for n in sorted(groups):
        if len(groups[n]) < 2:
            raise BadInput(f"width {n} has a single network ({groups[n][0].name}); the exact test needs at least "
                           "2 networks per width (add networks of that width or remove it)")
    return {n: tuple(groups[n]) for n in sorted(groups)}


#: A width ``n`` is flagged when ``m^2 > HEAVY_TAIL_RATIO * n``, ``m`` the largest Markov index.
def _cost(groups: Mapping[int, Sequence[NetworkFile]], lags: int, spec: RNNSpec) -> limits.Cost:
    """Peak memory of one network and its lag Gram plus every stored lag Gram; summed time."""
    n_x, n_y = spec.n_x, spec.n_y
    per = {n: limits.lag_gram_cost(n, lags, n_x, n_y, draw=False) for n in groups}
    count = sum(len(v) for v in groups.values())
    store = 8.0 * count * (lags * n_x * n_y) ** 2
    seconds = sum(per[n].seconds * len(v) for n, v in groups.items())
    work = limits.Cost(max(c.bytes for c in per.values()) + 2 * store, seconds,
                         f"the lag Grams of {count} networks with {lags} lags")
    return work + limits.exact_test_cost(lags, spec.convention, widths=len(groups))


@dataclass(frozen=True)
class GramTask:
    """One network's lag Gram, as a picklable task: the file's path (not its weights), spec, lags."""

    path: Path
    spec: RNNSpec
    lags: int


def file_lag_gram(task: GramTask) -> np.ndarray:
    """The lag Gram ``(L, n_y, n_x, L, n_y, n_x)`` (float64) of the network in ``task.path``.

    Top level and pure, so any executor can run it (the file must be readable where it runs)."""

    rnn = load_rnn(task.path)
    gram = np.asarray(lag_gram(rnn, task.spec, task.lags).total, dtype=np.float64)
    if not np.all(np.isfinite(gram)):
        raise BadInput(f"{task.path}: the lag Gram overflows float64 (the weights are too large for "
                       f"{task.lags} lags)")
    return gram


def _lag_grams(files: Sequence[NetworkFile], spec: RNNSpec, lags: int, executor=None) -> np.ndarray:
    """The lag Grams of ``files``, shape ``(S, L, n_y, n_x, L, n_y, n_x)``, loaded one at a time per
    process (serially, or one :func:`file_lag_gram` task per file on ``executor``)."""

    out = np.empty((len(files), lags, spec.n_y, spec.n_x, lags, spec.n_y, spec.n_x))
    tasks = [GramTask(f.path, spec, lags) for f in files]
    for s, gram in enumerate(ordered_map(file_lag_gram, tasks, executor=executor, desc="check", progress=False)):
        out[s] = gram
    return out


def check_files(files: Sequence[NetworkFile], spec: RNNSpec, *, lags: int = DEFAULT_LAGS,
                alpha: float = DEFAULT_ALPHA, folder: str = "", executor=None) -> CheckResult:
    """Run the exact finite-width test on the networks ``files`` (from :func:`scan_folder`).

    ``executor``: any ``concurrent.futures.Executor`` computes the lag Grams (one task per file,
    :func:`file_lag_gram`; the same numbers as serially), or ``None`` for serial."""
    lags = validate.lags(lags)
    alpha = validate.number(alpha, "alpha", minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True)
    if not files:
        raise BadInput(f"{folder or 'the folder'}: no networks to check")
    _match_spec(files, spec)
    groups = group_by_width(files)
    for n in groups:
        float64_spec(spec, lags, width=n)
    limits.check_cost(_cost(groups, lags, spec), f"--lags {lags} on the networks in {folder or 'DIR'}")
    samples = {n: _lag_grams(fs, spec, lags, executor) for n, fs in groups.items()}
    pred = predict(spec, lags, list(groups))
    test = exact_test(pred, samples, alpha=alpha)
    names = {n: tuple(f.name for f in fs) for n, fs in groups.items()}
    return CheckResult(folder, spec, lags, alpha, names, test, test.notes)


def check_folder(folder: Union[str, Path], spec: RNNSpec, *, lags: int = DEFAULT_LAGS,
                 alpha: float = DEFAULT_ALPHA, executor=None) -> CheckResult:
    """:func:`check_files` on every ``*.npz`` network directly in ``folder``."""
    return check_files(scan_folder(folder), spec, lags=lags, alpha=alpha, folder=str(folder), executor=executor)
