"""Shell dialects.  Each renders the same :class:`~layervenv.runtime.envchange.EnvChange`.

Adding a shell means adding a module with a ``render(env, version)`` function that
fills a :class:`~layervenv.runtime.shells.dialect.Dialect` table and names its file(s).
"""

from __future__ import annotations

from collections.abc import Callable

from layervenv.runtime.envchange import EnvChange
from layervenv.runtime.shells import csh, fish, posix

Renderer = Callable[[EnvChange, str], dict[str, str]]

RENDERERS: dict[str, Renderer] = {
    "posix": posix.render,
    "fish": fish.render,
    "csh": csh.render,
}


def render_all(env: EnvChange, version: str) -> dict[str, str]:
    """Every activation script, as ``{file name in bin/: text}``."""
    scripts: dict[str, str] = {}
    for render in RENDERERS.values():
        scripts.update(render(env, version))
    return scripts
