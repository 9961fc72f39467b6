"""The layout's rules, checked on the source: one direction of imports, and no Qt in the engine.

Every import counts, also those inside functions (a lazy import is still a dependency), so a cycle
cannot hide behind one.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "napari_attnseg"
GUI_MODULES = ("qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "napari", "magicgui", "superqt", "vispy")
# napari's own adapters may import napari; everything else of the engine may not.
NAPARI_ADAPTERS = {"napari_attnseg.__main__", "napari_attnseg._reader", "napari_attnseg._writer",
                   "napari_attnseg._sample_data"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names), wherever in the file the import is."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # `from . import editing`
    return found


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        # a package's __init__ is not a dependency of its modules: only real module-to-module edges
        graph[name] = {target for target in _imports(path) if target in modules and target != name
                       and not name.startswith(target + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph[node]:
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checker_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules():
    assert _cycles(_graph()) == []


def test_no_import_cycle_between_subpackages():
    graph = _graph()
    folders: dict[str, set[str]] = {}

    def folder(module: str) -> str:
        parts = module.split(".")
        return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else "top"

    for module, targets in graph.items():
        folders.setdefault(folder(module), set()).update(
            folder(target) for target in targets if folder(target) != folder(module))
    # the top-level modules (cli, metrics, config, ...) are not one unit; leave them out here
    inner = {name: {t for t in targets if t != "top"} for name, targets in folders.items() if name != "top"}
    assert _cycles(inner) == []


@pytest.mark.parametrize("module", sorted(m for m in _graph() if not m.startswith("napari_attnseg._qt")
                                          and m not in NAPARI_ADAPTERS))
def test_engine_modules_import_no_gui_library(module):
    path = PACKAGE.parent / (module.replace(".", "/") + ".py")
    if not path.exists():
        path = PACKAGE.parent / module.replace(".", "/") / "__init__.py"
    gui = sorted(name for name in _imports(path) if name.split(".")[0] in GUI_MODULES)
    assert gui == [], f"{module} imports {gui}"


def test_engine_runs_with_gui_libraries_absent(tmp_path):
    """Import the whole engine in a fresh interpreter where Qt, napari and magicgui cannot be imported."""
    engine = sorted(m for m in _graph() if not m.startswith("napari_attnseg._qt") and m not in NAPARI_ADAPTERS)
    script = (
        "import sys\n"
        f"for name in {list(GUI_MODULES)!r}:\n"
        "    sys.modules[name] = None  # 'import name' now raises ImportError\n"
        "import importlib\n"
        f"for module in {engine!r}:\n"
        "    importlib.import_module(module)\n"
        "import numpy as np, napari_attnseg as nas\n"
        "from napari_attnseg.config import ModelConfig\n"
        "model = nas.new_model(ModelConfig(base_width=4, depth=2), seed=0)\n"
        "print(nas.segment(np.zeros((32, 32), np.float32), model).shape)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("(32, 32)")


def test_the_top_level_stays_small():
    top = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(top) <= 12, top
