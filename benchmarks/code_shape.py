"""The shape of the source tree: modules per package, longest functions, formatter escapes,
import cycles. Run from the repository root: ``python benchmarks/code_shape.py [--json]``.

Static reading only (``ast``), nothing is imported, so it measures any checkout, including an
old one (``git worktree add /tmp/old REV && python benchmarks/code_shape.py --root /tmp/old``).
An import cycle is a strongly connected group of modules in the graph of module-level
``import``/``from ... import`` statements inside the package (imports inside functions are
deferred on purpose and are left out; ``TYPE_CHECKING`` blocks too).
"""

from __future__ import annotations

import argparse
import ast
import json
from collections import Counter
from pathlib import Path


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def top_level_imports(
    tree: ast.Module, name: str, is_package: bool, deferred: bool = False
) -> set[str]:
    """Modules named by the module-level imports (not TYPE_CHECKING; with ``deferred``, the
    imports inside functions too)."""
    found: set[str] = set()
    package = name if is_package else name.rpartition(".")[0]

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[: len(base) - (node.level - 1)]
                    stem = ".".join([*base, node.module] if node.module else base)
                else:
                    stem = node.module or ""
                found.add(stem)
                found.update(f"{stem}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
            elif deferred and not isinstance(node, ast.If):
                visit([n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt)])

    visit(tree.body)
    return found


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; returns the groups of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def measure(root: Path) -> dict:
    src = root / "src"
    files = sorted((src / "mlplab").rglob("*.py"))
    modules = {module_name(f, src): f for f in files}
    per_package: Counter[str] = Counter()
    lines_per_package: Counter[str] = Counter()
    functions: list[tuple[int, str]] = []
    fmt_skip = 0
    long_lines = 0
    graph: dict[str, set[str]] = {}
    graph_all: dict[str, set[str]] = {}

    def is_init(name: str) -> bool:
        return modules[name].name == "__init__.py"

    for name, path in modules.items():
        text = path.read_text()
        parts = name.split(".")
        nested = len(parts) > 2 or (len(parts) == 2 and path.name == "__init__.py")
        package = parts[1] if nested else "(top)"
        per_package[package] += 1
        lines_per_package[package] += text.count("\n")
        fmt_skip += text.count("# fmt: skip")
        long_lines += sum(len(line) > 100 for line in text.splitlines())
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.append((length, f"{name}.{node.name}"))
        for g, deferred in ((graph, False), (graph_all, True)):
            imported = top_level_imports(tree, name, path.name == "__init__.py", deferred)
            # a package's __init__ importing its own submodules is how packages work
            g[name] = {
                m
                for m in imported
                if m in modules and m != name and not (is_init(name) and m.startswith(name + "."))
            }
    functions.sort(reverse=True)
    return {
        "modules": len(modules),
        "lines": sum(lines_per_package.values()),
        "modules_per_package": dict(sorted(per_package.items())),
        "lines_per_package": dict(sorted(lines_per_package.items())),
        "longest_functions": [{"lines": n, "function": f} for n, f in functions[:10]],
        "functions_over_60_lines": sum(n > 60 for n, _ in functions),
        "fmt_skip": fmt_skip,
        "lines_over_100": long_lines,
        "import_cycles": strongly_connected(graph),
        "import_cycles_with_deferred": strongly_connected(graph_all),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    shape = measure(args.root)
    if args.json:
        print(json.dumps(shape, indent=2))
        return
    print(f"{shape['modules']} modules, {shape['lines']} lines")
    for package, count in shape["modules_per_package"].items():
        print(f"  {package:14} {count:3} modules {shape['lines_per_package'][package]:6} lines")
    print("longest functions:")
    for row in shape["longest_functions"]:
        print(f"  {row['lines']:4}  {row['function']}")
    print(f"functions over 60 lines: {shape['functions_over_60_lines']}")
    print(
        f"'# fmt: skip' markers: {shape['fmt_skip']}; lines over 100 characters: {shape['lines_over_100']}"
    )
    for key, what in (
        ("import_cycles", "module level"),
        ("import_cycles_with_deferred", "with imports inside functions"),
    ):
        cycles = shape[key]
        print(f"import cycles ({what}): {len(cycles)}")
        for group in cycles:
            print(f"  {len(group)} modules: " + ", ".join(group))


if __name__ == "__main__":
    main()
