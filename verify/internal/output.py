"""Report folders written atomically: the output rules of every command that writes.

The rules (docs/errors.md, section "Outputs"):

1. the command checks every input and optional dependency first, then calls
   :func:`prepare` (or :func:`report_folder`) *before* the work: it validates ``--out``,
   refuses to replace an existing report unless ``--force`` is given, and creates a
   hidden staging folder (so an unwritable place fails here, not after the work);
2. the work writes its files into the staging folder (:meth:`Outputs.path`);
3. :meth:`Outputs.commit` moves them into place at the end: a new ``--out`` folder is
   created by renaming the staging folder (one atomic step), an existing one receives each
   file by an atomic ``os.replace``; on any failure :meth:`Outputs.discard` removes the
   staging folder, so a failed command leaves neither a partial file nor an empty folder.

Staging folders are named ``.NAME.partial-XXXXXXXX``: inside an existing ``--out``
folder, or else in the nearest existing parent of it (same file system, so the final
moves are renames).  Only a killed process (SIGKILL, power loss) can leave one behind.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Sequence

from verify.internal import validate
from verify.internal.errors import BadInput, OutputExists

__all__ = ["Outputs", "prepare", "report_folder", "discard_pending",
           "SWEEP_FILES", "STAGING_PREFIX"]

#: The files of a ``run``/``sweep`` report folder (verify/cli/figures/sweep.py draws the three figures).
SWEEP_FILES = ("report.json", "beta.png", "rate.png", "bias.png")
_PENDING: List["Outputs"] = []

STAGING_PREFIX = "."
STAGING_TAG = ".partial-"


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists():
        if p.parent == p:
            break
        p = p.parent
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class Outputs:
    """The files ``names`` of one report folder ``target``, staged in :attr:`staging` until :meth:`commit`."""

    def __init__(self, target: Path, names: Sequence[str], staging: Path, existed: bool, force: bool):
        self.target = target
        self.names = tuple(names)
        self.staging = staging
        self.existed = existed
        self.force = force
        self.done = False
        _PENDING.append(self)

    def path(self, name: str) -> Path:
        """Where the work writes file ``name`` (inside the staging folder)."""
        if name not in self.names:
            raise ValueError(f"{name!r} is not one of the declared outputs {self.names}")
        return self.staging / name

    def final(self, name: str) -> Path:
        """Where file ``name`` ends up after :meth:`commit`."""
        return self.target / name

    def commit(self) -> List[Path]:
        """Move the staged files into ``target``; return their final paths."""
        if self.done:
            return []
        made = [n for n in self.names if (self.staging / n).exists()]
        if not self.existed and not self.target.exists():
            self.target.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(self.staging, 0o777 & ~_umask())  # mkdtemp made it private
            os.rename(self.staging, self.target)
        else:
            self.target.mkdir(parents=True, exist_ok=True)
            for name in self.names:
                dest = self.target / name
                if name in made:
                    os.replace(self.staging / name, dest)
                elif self.force and dest.is_file():
                    dest.unlink()  # a stale file of the replaced report
            shutil.rmtree(self.staging, ignore_errors=True)
        self._finish()
        return [self.target / n for n in made]

    def _finish(self) -> None:
        self.done = True
        if self in _PENDING:
            _PENDING.remove(self)

    def discard(self) -> None:
        """Remove the staging folder and everything in it (the target is untouched)."""
        if not self.done:
            shutil.rmtree(self.staging, ignore_errors=True)
            self._finish()


def prepare(out, names: Sequence[str], *, force: bool = False, flag: str = "--out") -> Outputs:
    """Check ``out`` and create the staging folder (call it after every other check, before the work).

    Raises :class:`BadInput` when ``out`` is empty, is a file, lies under a file or where
    nothing can be written, and :class:`OutputExists` when ``out`` already holds one of
    ``names`` and ``force`` is false.
    """
    text = validate.path_text(out, flag)
    target = Path(os.path.abspath(os.path.expanduser(text)))
    if target.exists() and not target.is_dir():
        raise BadInput(f"{flag} {text}: exists and is not a folder")
    existed = target.is_dir()
    if existed:
        present = [n for n in names if (target / n).exists()]
        if present and not force:
            more = f" (and {len(present) - 1} more of its files)" if len(present) > 1 else ""
            raise OutputExists(f"{flag} {text}: {present[0]} exists{more}; use --force to replace the report")
        for n in present:
            if (target / n).is_dir():
                raise BadInput(f"{flag} {text}: {n} is a folder; remove it or choose another --out")
        anchor = target
    else:
        anchor = _nearest_existing(target.parent)
        if not anchor.is_dir():
            raise BadInput(f"{flag} {text}: cannot create the folder ({anchor} is not a folder)")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{target.name or 'out'}{STAGING_TAG}",
                                        dir=anchor))
    except OSError as exc:
        raise BadInput(f"{flag} {text}: cannot write in {anchor} ({exc.strerror or exc})") from None
    if existed and not os.access(target, os.W_OK | os.X_OK):
        shutil.rmtree(staging, ignore_errors=True)
        raise BadInput(f"{flag} {text}: the folder is not writable")
    return Outputs(target, names, staging, existed, force)


@contextmanager
def report_folder(out, names: Sequence[str], *, force: bool = False, flag: str = "--out") -> Iterator[Outputs]:
    """:func:`prepare`, run the block, then :meth:`~Outputs.commit`; :meth:`~Outputs.discard` if it raises."""
    outputs = prepare(out, names, force=force, flag=flag)
    try:
        yield outputs
    except BaseException:
        outputs.discard()
        raise
    outputs.commit()


def discard_pending() -> None:
    """Discard every prepared output not yet committed (:func:`verify.cli.main.main` calls this when a
    command ends, so a command that fails between :func:`prepare` and ``commit`` leaves nothing)."""
    for outputs in list(_PENDING):
        outputs.discard()


atexit.register(discard_pending)
