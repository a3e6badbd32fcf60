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


PATH = re.compile(r"(?<![\w/.-])((?:theory|verify|benchmarks|tests|docs)/[\w./*-]*[\w*/])")
DOTTED = re.compile(r"(?<![\w./-])((?:theory|verify)(?:\.[A-Za-z_]\w*)+)")


def _markdown():
    yield ROOT / "README.md"
    yield from sorted(DOCS.glob("*.md"))


def _resolves(name: str) -> bool:
    """Whether ``name`` (dotted) is a module of the project or an attribute of one."""
    import importlib

    parts = name.split(".")
    for k in range(len(parts), 0, -1):
        module = ".".join(parts[:k])
        where = ROOT / Path(*parts[:k])
        if not (where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()):
            continue
        obj = importlib.import_module(module)
        for attr in parts[k:]:
            if isinstance(obj, type) and attr in getattr(obj, "__annotations__", {}):
                return True  # a field of a dataclass: an attribute of its instances
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_every_path_in_the_docs_exists():
    missing = []
    for doc in _markdown():
        for match in PATH.finditer(doc.read_text(encoding="utf-8")):
            text = match.group(1).rstrip(".")
            if "NAME" in text:  # a placeholder: verify/cli/commands/NAME.py
                continue
            if "*" in text:
                ok = any(ROOT.glob(text))
            else:
                ok = (ROOT / text).exists()
            if not ok:
                missing.append(f"{doc.relative_to(ROOT)}: {text}")
    assert not missing, "paths in the docs that do not exist:\n" + "\n".join(missing)


def test_every_module_name_in_the_docs_resolves():
    missing = []
    for doc in _markdown():
        for match in DOTTED.finditer(doc.read_text(encoding="utf-8")):
            name = match.group(1).rstrip(".")
            if name.rsplit(".", 1)[-1] in ("md", "py", "json"):  # a file name (theory.md), not a module
                continue
            if not _resolves(name):
                missing.append(f"{doc.relative_to(ROOT)}: {name}")
    assert not missing, "module or function names in the docs that do not exist:\n" + "\n".join(sorted(set(missing)))


def test_the_path_checks_can_fail():
    assert [m.group(1) for m in PATH.finditer("see `verify/engine/ntk.py` and verify/nowhere.py.")] == \
        ["verify/engine/ntk.py", "verify/nowhere.py"]
    assert _resolves("verify.engine.ntk.lag_gram") and not _resolves("verify.engine.ntk.no_such_function")
    assert not _resolves("verify.ntk")


ROLE = re.compile(r":(?:func|class|mod|data|meth|attr|exc):`~?((?:theory|verify)(?:\.[A-Za-z_]\w*)+)`")


def test_every_cross_reference_in_the_code_resolves():
    """Docstrings name functions and modules (``:func:`verify.engine.ntk.lag_gram```): each one exists."""
    missing = []
    for folder in ("theory", "verify", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for match in ROLE.finditer(path.read_text(encoding="utf-8")):
                if not _resolves(match.group(1)):
                    missing.append(f"{path.relative_to(ROOT)}: {match.group(1)}")
    assert not missing, "docstring references to names that do not exist:\n" + "\n".join(sorted(set(missing)))
