"""Rules the package's source keeps, read from the source itself:

- its import graph has no circle: no module imports, at run time, one that imports it back
  (directly or further round), hidden in a function or not (imports under ``TYPE_CHECKING`` are
  for the type checker only and are left out);
- one set of closed order statuses (``_config.CLOSED``, re-exported by ``_models``): every other set of statuses derives from it;
- every module logger is used."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import kopechka

PACKAGE = Path(kopechka.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        test = node.test if isinstance(node, ast.If) else None
        if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def imports(name: str) -> set[str]:
    """The package's modules that ``name`` imports at run time."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                member = f"{target}.{alias.name}"
                found.add(member if member in MODULES else target)
    return {module for module in found if module in MODULES and module != name}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = stack[stack.index(node) :]
            del stack[stack.index(node) :]
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_circle() -> None:
    graph = {name: imports(name) for name in MODULES}
    assert "kopechka._wire" in graph["kopechka._endpoints"]  # the graph is read
    assert cycles(graph) == []


def test_a_function_local_import_counts() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from . import x\nif TYPE_CHECKING:\n    import y\n")
    kinds = [type(n).__name__ for n in _runtime_nodes(tree) if isinstance(n, ast.stmt)]
    assert kinds == ["FunctionDef", "ImportFrom"]


def _trees() -> Iterator[tuple[str, ast.Module]]:
    for name, path in sorted(MODULES.items()):
        yield name, ast.parse(path.read_text(encoding="utf-8"))


CLOSED_WORDS = frozenset({"cancelled", "canceled", "expired"})


def _status_literals(tree: ast.AST) -> list[int]:
    """The lines of set literals (``{...}``, ``frozenset({...})``) that spell two closed statuses
    or more: a set of closed statuses written out again."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Set)
        and sum(isinstance(e, ast.Constant) and e.value in CLOSED_WORDS for e in node.elts) >= 2
    ]


def test_one_set_of_closed_statuses() -> None:
    found = {name: lines for name, tree in _trees() if (lines := _status_literals(tree))}
    assert list(found) == ["kopechka._config"], found
    assert len(found["kopechka._config"]) == 1


def test_every_module_logger_is_used() -> None:
    unused = []
    for name, tree in _trees():
        assigned = any(
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "logger" for t in node.targets)
            for node in tree.body
        )
        used = any(
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "logger"
            for node in ast.walk(tree)
        )
        if assigned and not used:
            unused.append(name)
    assert unused == []
