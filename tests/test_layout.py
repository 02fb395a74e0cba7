"""The package's shape: no import cycle between its modules, and every stage a reader can open alone."""

import ast
from pathlib import Path

import archguide

PACKAGE = Path(archguide.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, name: str, is_package: bool) -> set[str]:
    """Every archguide module a file imports: at the top, inside functions, or for type checking only."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".")[: len(name.split(".")) - node.level + (1 if is_package else 0)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.add(module)
            # `from archguide.scoring import grouping` imports the module archguide.scoring.grouping
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "archguide" or m.startswith("archguide.")}


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        edges = set()
        for target in _imports(ast.parse(path.read_text()), name, path.name == "__init__.py"):
            parts = target.split(".")
            # importing a.b.c runs a.b's __init__ first, unless the importer is inside a.b already
            for k in range(2, len(parts) + 1):
                module = ".".join(parts[:k])
                inside = name == module or name.startswith(module + ".")
                if module in files and module != name and not (k < len(parts) and inside):
                    edges.add(module)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules():
    graph = import_graph()
    # The package's own __init__ imports its public names by string (importlib); it is left out, as
    # every module may read archguide.__version__.
    graph = {k: v - {"archguide"} for k, v in graph.items() if k != "archguide"}
    assert cycles(graph) == []


def test_the_cycle_check_sees_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from archguide.scoring import grouping\n")
    assert _imports(tree, "archguide.plotting", False) == {"archguide.scoring", "archguide.scoring.grouping"}


def test_stages_are_sub_packages_in_the_order_of_the_flow():
    graph = import_graph()
    stages = ["archguide.scoring", "archguide.model", "archguide.estimators", "archguide.tuning"]
    for name in stages:
        assert (PACKAGE / name.split(".")[1] / "__init__.py").exists(), name

    def stage_of(module):
        return next((s for s in stages if module == s or module.startswith(s + ".")), None)

    # A stage imports only stages before it in the flow (the tuning stage builds networks, never estimators).
    for module, targets in graph.items():
        here = stage_of(module)
        for target in targets:
            there = stage_of(target)
            if here and there and here != there:
                assert stages.index(there) < stages.index(here) or (here, there) == (
                    "archguide.estimators",
                    "archguide.tuning",
                ), f"{module} imports {target}"


def _code_lines(function: ast.FunctionDef, lines: list[str]) -> int:
    """Lines of a function's body that hold code: its docstring, blank lines and comments aside."""
    body = function.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    spanned = {n for node in body for n in range(node.lineno, node.end_lineno + 1)}
    return sum(1 for n in spanned if lines[n - 1].strip() and not lines[n - 1].strip().startswith("#"))


def test_no_function_body_is_longer_than_60_lines_of_code():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = _code_lines(node, text.split("\n"))
                if n > 60:
                    long.append(f"{_module_name(path)}.{node.name}: {n} lines")
    assert long == []


def test_the_length_check_counts_code_not_docstrings_or_comments():
    text = 'def f():\n    """Doc.\n\n    More.\n    """\n    # note\n\n    x = 1\n    return (\n        x\n    )\n'
    (function,) = ast.parse(text).body
    assert _code_lines(function, text.split("\n")) == 4
