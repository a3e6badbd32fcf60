"""The shape of the code: layers, no import loops, and where the heavy dependencies live.

Read from the source with :mod:`ast` (nothing is imported), so a function-level import counts
as much as a module-level one:

* ``theory`` never imports ``verify``;
* inside ``verify`` every module imports only its own layer or the layers below it
  (:data:`LAYERS`: internal < engine < stats < harness, experiments < cli), and ``harness``
  and ``experiments`` do not import each other;
* no module imports another in a loop (strongly connected components of the import graph);
* matplotlib is imported only under ``verify/cli/figures/``, ``torch.func`` in one module;
* ``verify/`` holds at most 12 entries at its root.
"""
from __future__ import annotations

import ast
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Set, Tuple

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("theory", "verify")

#: Layer of each part of ``verify`` (a module may import its own layer and the ones below).
LAYERS: Dict[str, int] = {
    "verify._version": 0,
    "verify.internal": 1,
    "verify.engine": 2,
    "verify.stats": 3,
    "verify.harness": 4,
    "verify.experiments": 4,
    "verify.strategies": 4,
    "verify.claims": 4,
    "verify.cli": 5,
    "verify.__main__": 6,
    "verify": 6,  # the package itself: the public names, re-exported from below
}
#: Parts of one layer that must not import each other.
SIBLINGS = (("verify.harness", "verify.experiments"),)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@lru_cache(maxsize=None)
def modules() -> Dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def _imported(node: ast.AST, name: str, is_package: bool) -> List[str]:
    """Dotted names that ``node`` (an import statement of module ``name``) imports."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    assert isinstance(node, ast.ImportFrom)
    if node.level:
        base = name.split(".")
        if not is_package:
            base = base[:-1]
        base = base[: len(base) - (node.level - 1)]
        module = ".".join(base + ([node.module] if node.module else []))
    else:
        module = node.module or ""
    return [f"{module}.{a.name}" for a in node.names] + [module]


@lru_cache(maxsize=None)
def imports() -> Tuple[Tuple[str, str, int], ...]:
    """(importer, imported, line) for every import of a project module, at any depth of the code."""
    known = modules()
    out = []
    for name, path in known.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            targets = _imported(node, name, path.name == "__init__.py")
            seen: Set[str] = set()
            for target in targets:
                while target and target not in known:
                    target = target.rpartition(".")[0]
                if target and target != name and target not in seen:
                    if isinstance(node, ast.ImportFrom) and target == node.module and len(targets) > 1:
                        # "from pkg import mod": the edge goes to pkg.mod when that is a module
                        if any(t in known for t in targets[:-1]):
                            continue
                    seen.add(target)
                    out.append((name, target, node.lineno))
    return tuple(out)


def _all_imports(names: Set[str] = frozenset()) -> List[Tuple[str, str, ast.AST]]:
    """(module, imported dotted name) of every import, project or not."""
    out = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                out += [(name, a.name, node) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                out += [(name, node.module, node)] + [(name, f"{node.module}.{a.name}", node) for a in node.names]
    return out


def layer(name: str) -> Tuple[int, str]:
    best = max((k for k in LAYERS if name == k or name.startswith(k + ".")), key=len, default=None)
    assert best is not None, f"{name}: not in any layer of tests/test_architecture.py"
    return LAYERS[best], best


def test_theory_never_imports_verify():
    bad = [(a, b, line) for a, b, line in imports() if a.startswith("theory") and b.startswith("verify")]
    assert not bad, bad


def test_every_module_has_a_layer():
    for name in modules():
        if name.startswith("verify"):
            layer(name)


def test_layers_import_only_downwards():
    bad = []
    for a, b, line in imports():
        if not (a.startswith("verify") and b.startswith("verify")):
            continue
        (la, pa), (lb, pb) = layer(a), layer(b)
        if lb > la or any({pa, pb} == set(pair) for pair in SIBLINGS):
            bad.append(f"{modules()[a].relative_to(ROOT)}:{line} imports {b} ({pb}, above {pa})")
    assert not bad, "\n".join(bad)


def _cycles() -> List[List[str]]:
    graph: Dict[str, Set[str]] = {m: set() for m in modules()}
    for a, b, _ in imports():
        graph[a].add(b)
    index: Dict[str, int] = {}
    low: Dict[str, int] = {}
    stack: List[str] = []
    on: Set[str] = set()
    found: List[List[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_loops():
    assert _cycles() == []


def test_the_cycle_finder_finds_a_cycle(monkeypatch):
    fake = imports() + (("verify.internal.errors", "verify.internal.validate", 0),)
    monkeypatch.setattr(__import__(__name__), "imports", lambda: fake)
    assert any("verify.internal.errors" in c for c in _cycles())


def test_matplotlib_only_in_the_figures():
    users = {m for m, target, _ in _all_imports() if target.split(".")[0] == "matplotlib"}
    assert users, "no module imports matplotlib: the check would be vacuous"
    assert {m for m in users if not m.startswith("verify.cli.figures")} == set()


def test_one_module_uses_torch_func():
    imported = {m for m, target, _ in _all_imports() if target.startswith("torch.func")}
    called = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr == "func" and isinstance(node.value, ast.Name)
                    and node.value.id == "torch"):
                called.add(name)
    assert imported | called == {"verify.engine.autodiff"}, imported | called


def test_verify_root_is_small():
    entries = [p for p in (ROOT / "verify").iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 12, sorted(p.name for p in entries)
