# layervenv: runs on the stack's Python (3.6+, stdlib only; checked by vermin)
"""Import modules in the layer's interpreter and say which fail: ``check --imports``.

The tool runs this file's source as ``DIR/bin/python -c SOURCE REPORT [--deep] MODULE...``
in the environment the layer runs with.  Each MODULE is imported; with ``--deep``,
so are the public submodules right below a package (``scipy.special``: importing
``scipy`` alone loads none of its compiled modules, and succeeds under a numpy it
cannot run with).  Submodules named ``_*``, ``test*``, ``conftest`` or ``setup`` are
left alone.  The answer, ``{"failed": {module: last line of the exception}}``, goes
to the file REPORT (ASCII JSON), never to stdout, where imported code may print;
then the interpreter ends at once (``os._exit``): a process or thread a module started
as it was imported does not hold it up (the tool kills its whole process group).

Importing runs the package's code: that is the point (it is the proof), and why
``check`` does it only when asked.
"""

import importlib
import json
import os
import pkgutil
import sys
import traceback
import warnings

SKIPPED = ("test", "conftest", "setup")


def _drop_command_entry():
    """Remove the ``''`` that ``-c`` put first on sys.path (the current directory)."""
    if sys.path and sys.path[0] == "" and not getattr(sys.flags, "safe_path", False):
        del sys.path[0]


def _last_line(error):
    lines = traceback.format_exception_only(type(error), error)
    text = lines[-1].strip() if lines else type(error).__name__
    return text.splitlines()[-1] if text else type(error).__name__


def _try(name, failed):
    try:
        return importlib.import_module(name)
    except BaseException as error:  # SystemExit, KeyboardInterrupt from a module too
        failed[name] = _last_line(error)
        return None


def _public_children(module):
    path = getattr(module, "__path__", None)
    if path is None:
        return []
    names = []
    try:
        for info in pkgutil.iter_modules(path):
            if info.name.startswith("_") or info.name.startswith(SKIPPED):
                continue
            names.append(module.__name__ + "." + info.name)
    except Exception:
        return []
    return sorted(set(names))


def main():
    _drop_command_entry()
    target = sys.argv[1]
    deep = sys.argv[2:3] == ["--deep"]
    modules = sys.argv[3:] if deep else sys.argv[2:]
    warnings.simplefilter("ignore")
    failed = {}
    for name in modules:
        module = _try(name, failed)
        if module is not None and deep:
            for child in _public_children(module):
                _try(child, failed)
    with open(target, "w") as handle:
        json.dump({"failed": failed}, handle)
    # The answer is written.  An ordinary exit would wait for what the modules started
    # (a non-daemon thread, a multiprocessing child joined at exit) and turn an import
    # that returned into a timeout; the tool kills what is left of the process group.
    os._exit(0)


if __name__ == "__main__":
    main()
