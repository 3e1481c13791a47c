"""The layout's one-way rules, checked on the source (every import, run or not):
a command never imports another; nothing imports from a package above its own; no
module takes a private name (``_name``) from another module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import layervenv

PACKAGE = Path(layervenv.__file__).parent
#: the floors of the package, top down: a module imports from its own floor or below
FLOORS = {"app": 5, "cli": 6, "__main__": 6, "_zipapp_main": 6, "commands": 4,
          "services": 3, "inspection": 3, "model": 2, "dists": 2, "runtime": 2, "interp": 2,
          "infra": 1, "boot": 1, "__init__": 0}


def _modules() -> Iterator[tuple[str, ast.AST]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        yield ".".join(("layervenv", *rel.parts)), ast.parse(path.read_text(encoding="utf-8"))


def _imports(tree: ast.AST) -> Iterator[tuple[str, list[str]]]:
    """(module, names taken from it) of every absolute import of the package."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [alias.name for alias in node.names]
            yield node.module, names
            for name in names:  # from layervenv.commands import run: a module by name
                yield f"{node.module}.{name}", []
        elif isinstance(node, ast.ImportFrom):
            raise AssertionError("relative import: the package imports itself by name")


def _floor(module: str) -> int:
    parts = module.split(".")
    return FLOORS[parts[1]] if len(parts) > 1 else 0


def _is_module(name: str) -> bool:
    path = PACKAGE.joinpath(*name.split(".")[1:])
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def test_no_command_imports_another() -> None:
    found = {(module, name) for module, tree in _modules() if module.startswith(
        "layervenv.commands.") for name, _ in _imports(tree)
        if name.startswith("layervenv.commands.") and _is_module(name)}
    assert found == set(), "a command imports another (move the shared code down)"


def test_nothing_imports_from_a_floor_above() -> None:
    found = {(module, name) for module, tree in _modules() for name, _ in _imports(tree)
             if name.startswith("layervenv.") and _is_module(name)
             and _floor(name) > _floor(module)}
    assert found == set(), "an import runs back up the layers"


def test_no_private_name_is_taken_from_another_module() -> None:
    found = {(module, name, taken) for module, tree in _modules()
             for name, names in _imports(tree) if name.startswith("layervenv")
             for taken in names if taken.startswith("_") and not taken.startswith("__")}
    assert found == set(), "a private name is used across modules: make it public or move it"
