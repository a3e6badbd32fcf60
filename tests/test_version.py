"""The version is single-sourced (verify/_version.py) and every JSON report carries it."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import verify
from verify._version import __version__
from verify.internal.jsonio import versioned

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_a_release_number():
    assert re.fullmatch(r"\d+\.\d+\.\d+", verify.__version__), verify.__version__
    assert verify.__version__ == __version__


def test_installed_metadata_matches_the_package():
    """pyproject.toml reads the version from verify._version: the installed metadata must agree."""
    assert metadata.version("rnn-implicit-bias") == verify.__version__


def test_pyproject_takes_the_version_from_the_package():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic\s*=\s*\[[^\]]*"version"', text, re.M)
    assert 'attr = "verify._version.__version__"' in text
    assert not re.search(r'^version\s*=\s*"', text, re.M), "a literal [project] version would shadow the attribute"


def test_versioned_puts_the_version_first_and_overrides_a_stale_one():
    out = versioned({"version": "0.0.0", "beta": [1, 2]})
    assert list(out) == ["version", "beta"]
    assert out["version"] == verify.__version__ and out["beta"] == [1, 2]


def test_weights_json_report_carries_the_version():
    proc = subprocess.run(
        [sys.executable, "-m", "verify", "weights", "--sigma-w", "0.9", "--lags", "3", "--json"],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["version"] == verify.__version__
    assert len(report["beta"]) == 3


def test_citation_file_states_the_package_version():
    text = (ROOT / "CITATION.cff").read_text()
    match = re.search(r'^version:\s*"?([^"\n]+)"?\s*$', text, re.M)
    assert match and match.group(1) == verify.__version__


def test_every_module_that_writes_json_adds_the_version():
    """A guard for new commands: a module that writes JSON must pass its report through ``versioned``."""
    helpers = {ROOT / "verify" / "internal" / "jsonio.py", ROOT / "verify" / "internal" / "output.py"}
    writes = re.compile(r"json\.dumps?\(|(?<![\w.])dumps\(|(?<!def )write_json\(")
    missing = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "verify").rglob("*.py"))
        if path not in helpers and writes.search(path.read_text()) and "versioned(" not in path.read_text()
    ]
    assert not missing, f"JSON written without the version in {missing}"
