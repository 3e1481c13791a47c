"""The layout's one-way rule, checked on the source: a command never imports another."""

from __future__ import annotations

import ast
from pathlib import Path

import layervenv.commands

COMMANDS = Path(layervenv.commands.__file__).parent
#: imports owned by other work in progress (the environment a layer runs in moves out of
#: ``commands/run.py``): each is to go, and this test says when one is back
KNOWN = {("lock.py", "layervenv.commands.run"), ("pack.py", "layervenv.commands.run")}


def _imported(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            if node.module in ("layervenv", "layervenv.commands"):  # a module by name
                names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.ImportFrom):  # from . import x, from .create import y
            names.add("layervenv.commands." + (node.module or ""))
    return names


def test_no_command_imports_another() -> None:
    found = set()
    for path in sorted(COMMANDS.glob("*.py")):
        for name in _imported(ast.parse(path.read_text(encoding="utf-8"))):
            if name.startswith("layervenv.commands.") or name == "layervenv.commands":
                found.add((path.name, name))
    assert found - KNOWN == set(), "a command imports another (move the shared code down)"
