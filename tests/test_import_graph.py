"""No import circle among tierwise's modules: dependencies point one way (docs/architecture.md).

The walk reads every module's source, so imports inside functions — the lazy ones the CLI and
`__getattr__` use — count too, and so does a string that names a tierwise module exactly (the
tables that `importlib.import_module` reads). `from a.b import c` is an import of the module
`a.b.c` when that is a module, else of `a.b`; `lazy_names(__name__, {"Name": "module"})`
(or `"module:attribute"`) imports each module it names. Imports under `if TYPE_CHECKING:` are
exempt: they never run, so they cannot form a circle at run time, and they are how an
annotation names a type from a module that depends on this one.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted((SRC / "tierwise").rglob("*.py"))}


def _type_checking_only(tree: ast.Module) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return skipped


def _known(name: str) -> str | None:
    """The innermost tierwise module that `name` is or lies in."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imported_names(module: str, path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    skipped = _type_checking_only(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield submodule if submodule in MODULES else source
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("lazy_names"):
            # lazy_names(__name__, {"Name": "submodule"}): the package imports each submodule
            tables = [arg for arg in node.args if isinstance(arg, ast.Dict)]
            for table in tables:
                for value in table.values:
                    if isinstance(value, ast.Constant):
                        yield f"{module}.{str(value.value).partition(':')[0]}"
        elif isinstance(node, ast.Constant) and node.value in MODULES and "." in node.value:
            yield node.value  # "tierwise" alone is also a strategy's name, not an import


@functools.cache  # the tree does not change during a test run; read it once
def import_graph() -> dict[str, set[str]]:
    """module -> the tierwise modules it imports (at run time, lazily or not)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        targets = {_known(name) for name in _imported_names(module, path)}
        graph[module] = {t for t in targets if t is not None and t != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle as [a, b, ..., a], or None (depth-first search, colours white/grey/black)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_module_imports_itself_back() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_walk_sees_lazy_imports_and_finds_a_planted_circle() -> None:
    graph = import_graph()
    # both import their heavy parts only on first use: inside __getattr__, or by a name table
    assert "tierwise.cloud.app" in graph["tierwise.cloud"]
    assert "tierwise.plan" in graph["tierwise"]
    assert "tierwise.edge.agent" in graph["tierwise.edge"]
    planted = {**graph, "tierwise.errors": {*graph["tierwise.errors"], "tierwise.cli"}}  # a copy
    assert find_cycle(planted) is not None


@pytest.mark.parametrize("module", ["tierwise.spec", "tierwise.errors", "tierwise.rules"])
def test_the_inner_rooms_import_nothing_outward(module: str) -> None:
    """spec, errors and rules sit at the centre: they reach nothing of plan, edge, cloud, ..."""
    outward = tuple(f"tierwise.{room}" for room in ("plan", "edge", "cloud", "federate", "up"))
    graph = import_graph()
    inside = [m for m in graph if m == module or m.startswith(module + ".")]
    for name in inside:
        assert not [t for t in graph[name] if t.startswith(outward)], name
