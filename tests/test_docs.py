"""The documentation stays true to the code: links, citations, the README's example and CI command."""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = (ROOT / "README.md").read_text()
CITED = re.compile(r"docs/theory\.md`*,?\s+section\s+[\"'`](.+?)[\"'`]", re.S)


def _theory_sections() -> set:
    text = (DOCS / "theory.md").read_text()
    return {m.group(1).strip() for m in re.finditer(r"^###? (.+)$", text, re.M)}


def _sources():
    for folder in ("theory", "verify", "benchmarks", "tests", "docs"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.suffix in (".py", ".md") and path.is_file():
                yield path
    yield ROOT / "README.md"


def test_every_cited_theory_section_exists():
    sections = _theory_sections()
    missing = []
    for path in _sources():
        for match in CITED.finditer(path.read_text(encoding="utf-8")):
            name = " ".join(match.group(1).split())
            if name not in sections:
                missing.append(f"{path.relative_to(ROOT)}: {name!r}")
    assert not missing, "citations of missing docs/theory.md sections: " + "; ".join(missing)


def test_citation_pattern_finds_citations():
    """The check above can fail: it sees the citations this repository makes."""
    text = (ROOT / "theory" / "weights.py").read_text()
    assert [m.group(1) for m in CITED.finditer(text)] == ["Lag weights and group shares"]


def test_index_lists_every_document():
    index = (DOCS / "index.md").read_text()
    unlisted = [p.name for p in sorted(DOCS.glob("*.md")) if p.name != "index.md" and f"({p.name})" not in index]
    assert not unlisted, f"docs/index.md does not list {unlisted}"


def test_readme_is_a_front_page():
    assert len(README.splitlines()) <= 200
    assert "## Finite width" in README


def test_readme_test_command_is_what_ci_runs():
    command = "python -m pip install 'torch==2.13.0' -e '.[test,lint]' && python -m pytest"
    assert f"    {command}\n" in README
    assert f"\n{command}\n" in (ROOT / ".ci" / "run").read_text()


def test_readme_python_example_runs_and_its_comments_hold():
    block = re.search(r"```python\n(.*?)```", README, re.S)
    assert block, "README.md has no Python example"
    lines = block.group(1).splitlines()
    namespace: dict = {}
    values = []
    for line in lines:
        code = line.split("  #")[0].rstrip()
        if re.match(r"^[A-Za-z_][\w.]*\(|^np\.", code) and "=" not in code.split("(")[0]:
            values.append(eval(code, namespace))  # an expression line: its value is stated in the comment
        else:
            exec(code, namespace)
    beta, peak, err = values
    assert [round(float(b), 8) for b in beta] == [1.6562, 2.012283, 2.17326564]
    assert peak == 3
    assert err == pytest.approx(0.067, abs=5e-4)
    assert isinstance(err, (float, np.floating))
