"""The module layout: no import cycle between the image sources, the named datasets and the training data, and
the shared helpers where the other modules import them from."""

from __future__ import annotations

import ast
from pathlib import Path

import ganeval

PACKAGE = Path(ganeval.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The ganeval modules that ``path`` imports anywhere (module level or inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            module = node.module if node.level == 0 else ".".join(filter(None, (base, node.module)))
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)  # `from . import x` names a module
    return {module for module in found if module.split(".")[0] == "ganeval"}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: _imports(path) & modules.keys() - {name} for name, path in modules.items()}


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for module in graph.get(todo.pop(), ()):
            if module not in seen:
                seen.add(module)
                todo.append(module)
    return seen


def test_datasets_do_not_import_the_sources_or_the_training_code() -> None:
    """ganeval.datasets (named datasets) builds on decode/imagesource/images only: importing it, at module level
    or lazily in a function, never leads back to ganeval.sources or ganeval.train."""
    graph = _graph()
    assert "ganeval.datasets" in graph
    reached = _reachable(graph, "ganeval.datasets")
    assert "ganeval.sources" not in reached
    assert not {module for module in reached if module.startswith("ganeval.train")}


def test_no_cycle_between_sources_datasets_and_training_data() -> None:
    graph = _graph()
    for module in (
        "ganeval.sources",
        "ganeval.datasets",
        "ganeval.train.data",
        "ganeval.decode",
        "ganeval.imagesource",
        "ganeval.images",
    ):
        assert module not in _reachable(graph, module), f"{module} imports itself through a cycle"


def test_image_helpers_are_pure() -> None:
    """ganeval.images (png_bytes, tile, fit_square) needs neither torch nor any other ganeval module."""
    assert _imports(PACKAGE / "images.py") == set()
    assert "torch" not in (PACKAGE / "images.py").read_text()
