"""The package layers (docs/architecture.md): a package imports only its own layer and the
layers below it, anywhere in a module (imports inside functions count too), and no two
modules import each other, however indirectly."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from code_shape import measure, module_name, strongly_connected, top_level_imports

SRC = Path(__file__).resolve().parents[1] / "src"

# lowest first; a package may import its own layer and any layer before it
LAYERS = [
    ("errors", "vocab", "extras", "progress", "tables", "files", "notebook"),
    ("config",),
    ("data",),
    ("model",),
    ("run",),
    ("trust",),  # calibration and rejection: the loop fits them, evaluate/report/predict apply them
    ("training",),
    ("analysis",),
    ("report",),
    ("inference",),
    ("serve",),
    ("sweep",),
    ("integrations", "sklearn"),  # sklearn: mlplab.sklearn, the short name of integrations.sklearn
    ("cli",),
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def _graph() -> dict[str, set[str]]:
    modules = {module_name(p, SRC): p for p in (SRC / "mlplab").rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        imported = top_level_imports(tree, name, path.name == "__init__.py", deferred=True)
        graph[name] = {m for m in imported if m in modules and m != name}
    return graph


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: mlplab itself (the lazy public API)


def test_every_package_has_a_layer() -> None:
    packages = {_top(m) for m in _graph()} - {None, "__main__"}
    assert packages <= set(LAYER), f"give these a layer in LAYERS: {sorted(packages - set(LAYER))}"


def test_packages_import_only_their_layer_and_below() -> None:
    wrong = []
    for module, imported in _graph().items():
        here = _top(module)
        if here in (None, "__main__"):
            continue
        for target in imported:
            there = _top(target)
            if there is not None and LAYER[there] > LAYER[here]:
                wrong.append(f"{module} imports {target} ({here} is below {there})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycles_between_modules() -> None:
    graph = _graph()
    # a package's __init__ importing its own modules is how packages work
    for name in graph:
        graph[name] = {m for m in graph[name] if not m.startswith(name + ".")}
    assert strongly_connected(graph) == []


def test_the_shape_script_finds_a_cycle() -> None:  # the cycle test can fail
    assert strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _layer_file(package: str) -> Path:
    path = SRC / "mlplab" / package
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


# the layers named for rooms not built yet (integrations) have no file to check
@pytest.mark.parametrize(
    "package", [p for names in LAYERS for p in names if _layer_file(p).exists()]
)
def test_each_package_opens_with_a_docstring(package: str) -> None:
    path = _layer_file(package)
    assert ast.get_docstring(ast.parse(path.read_text())), f"{path} needs a docstring"


def test_measure_runs_on_this_tree() -> None:
    shape = measure(SRC.parent)
    assert shape["modules"] > 40 and shape["import_cycles"] == []
