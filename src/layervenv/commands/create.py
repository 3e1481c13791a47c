"""``layervenv create DIR``: a new layer over the stack, all or nothing.

The engine (staging, the swap, carrying the user's files over) is
:mod:`layervenv.services.staging`, which ``create --from``, ``rebase`` and ``demo`` use
too; this command is its entry.
"""

from __future__ import annotations

import argparse

from layervenv.infra.arguments import add_format, add_sources
from layervenv.services.staging import CreateOptions, CreateResult, create

__all__ = ["CreateOptions", "CreateResult", "create"]


#: ``create`` without DIR, as ``uv venv``
DEFAULT_DIR = ".venv"


def add_arguments(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``layervenv create``'s options and help (``--from`` ones too: create_from reads them)."""
    create = commands.add_parser("create",
                                 help="create a layer over the stack set up in this shell",
                                 description="Create a layer DIR with the stack's python3 "
                                             "(the first on PATH) or --python.")
    create.add_argument("dir", metavar="DIR", nargs="?", default=DEFAULT_DIR,
                        help=f"directory of the new layer (default: {DEFAULT_DIR}, as uv)")
    create.add_argument("--python", metavar="PYTHON", help="interpreter to use: a path, a "
                        "command (python3.12) or a version (3.12: python3.12 on PATH); "
                        "default: the python3 first on PATH, i.e. the stack's")
    create.add_argument("--prompt", metavar="NAME",
                        help="prompt prefix when activated (default: DIR's name; "
                             "'.': the current directory's name, as venv)")
    create.add_argument("--system-site-packages", action="store_true",
                        help="accepted for habit's sake: a layer always sees the stack")
    create.add_argument("--clear", action="store_true", help="replace DIR if it is a layer")
    create.add_argument("--without-pip", action="store_true", help="do not install pip")
    create.add_argument("--export-pythonpath", action="store_true",
                        help="also put the layer's site-packages first on PYTHONPATH when "
                             "activated (for Pythons embedded in C++ programs)")
    create.add_argument("--no-prompt-hook", action="store_true",
                        help="no prompt hook: interactive shells do not move the layer's bin "
                             "back in front of PATH when something put other entries there")
    create.add_argument("--setup", metavar="CMD",
                        help="command that sets the stack up (e.g. 'asetup AnalysisBase,25.2.15'); "
                             "run once in a clean bash, its environment is recorded so that "
                             "activation and 'layervenv run' re-establish the stack")
    create.add_argument("--over", metavar="GROUP",
                        help="make the layer over the layer GROUP (a group's read-only layer): "
                             "GROUP's packages and its stack become this layer's stack; "
                             "this layer's own packages win over them")
    create.add_argument("--rerun-setup", action="store_true",
                        help="with --setup: activation re-runs CMD instead of replaying the "
                             "recorded environment (for stacks that define shell functions)")
    create.add_argument("--from", dest="from_file", metavar="FILE",
                        help="re-create the layer from a lock (layervenv lock): exactly the "
                             "locked versions, after checking the stack against the lock")
    create.add_argument("--allow-stack-drift", action="store_true",
                        help="with --from: proceed when the stack differs from the lock's")
    create.add_argument("--trust-setup", action="store_true",
                        help="with --from: run the lock's setup command (shown when refused); "
                             "needed unless a layer of yours beside DIR already uses it")
    create.add_argument("--trust-build", action="store_true",
                        help="with --from: build the lock's directory, VCS, archive and sdist "
                             "entries, which runs their setup.py or build backend (listed "
                             "when refused); locked wheels need nothing")
    add_sources(create)
    add_format(create)
    return create
