"""``shadows-stdlib``: a layer distribution whose top-level module has a standard-library name.

With a stack on PYTHONPATH the layer comes before the standard library on
``sys.path`` (the boot hook puts it before the first PYTHONPATH entry), so a
distribution the layer installs as ``argparse`` (an old PyPI backport) or ``typing``
replaces the standard library's module for every program: ``python -m json.tool``
fails in the layer and not in a plain venv.  Without PYTHONPATH the standard library
comes first, and the copy is dead weight until a stack is set up.

The names are the layer interpreter's own: ``sys.stdlib_module_names`` (Python 3.10+,
from the probe), else the 3.10 list adjusted for 3.6 to 3.9 below.  A distribution's
top-level modules are those ``check --imports`` reads too (``top_level.txt``, else its
``RECORD``: ``dists.files.top_level_modules``); of those, a directory without
``__init__.py`` is a namespace portion, which a module of the same name anywhere on
the path wins over: not a shadow.  Modules built into the interpreter are found
before ``sys.path`` is looked at: not shadowed either.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from layervenv.dists.files import MODULE_SUFFIXES, top_level_modules
from layervenv.inspection.effective_view import Distribution
from layervenv.inspection.problems import Problem

#: ``sys.stdlib_module_names`` of CPython 3.10 (every platform's)
NAMES_310 = frozenset("""
    __future__ _abc _aix_support _ast _asyncio _bisect _blake2 _bootsubprocess _bz2
    _codecs _codecs_cn _codecs_hk _codecs_iso2022 _codecs_jp _codecs_kr _codecs_tw
    _collections _collections_abc _compat_pickle _compression _contextvars _crypt _csv
    _ctypes _curses _curses_panel _datetime _dbm _decimal _elementtree _frozen_importlib
    _frozen_importlib_external _functools _gdbm _hashlib _heapq _imp _io _json _locale
    _lsprof _lzma _markupbase _md5 _msi _multibytecodec _multiprocessing _opcode
    _operator _osx_support _overlapped _pickle _posixshmem _posixsubprocess _py_abc
    _pydecimal _pyio _queue _random _scproxy _sha1 _sha256 _sha3 _sha512 _signal
    _sitebuiltins _socket _sqlite3 _sre _ssl _stat _statistics _string _strptime _struct
    _symtable _thread _threading_local _tkinter _tracemalloc _uuid _warnings _weakref
    _weakrefset _winapi _zoneinfo abc aifc antigravity argparse array ast asynchat
    asyncio asyncore atexit audioop base64 bdb binascii binhex bisect builtins bz2
    cProfile calendar cgi cgitb chunk cmath cmd code codecs codeop collections colorsys
    compileall concurrent configparser contextlib contextvars copy copyreg crypt csv
    ctypes curses dataclasses datetime dbm decimal difflib dis distutils doctest email
    encodings ensurepip enum errno faulthandler fcntl filecmp fileinput fnmatch
    fractions ftplib functools gc genericpath getopt getpass gettext glob graphlib grp
    gzip hashlib heapq hmac html http idlelib imaplib imghdr imp importlib inspect io
    ipaddress itertools json keyword lib2to3 linecache locale logging lzma mailbox
    mailcap marshal math mimetypes mmap modulefinder msilib msvcrt multiprocessing netrc
    nis nntplib nt ntpath nturl2path numbers opcode operator optparse os ossaudiodev
    pathlib pdb pickle pickletools pipes pkgutil platform plistlib poplib posix
    posixpath pprint profile pstats pty pwd py_compile pyclbr pydoc pydoc_data pyexpat
    queue quopri random re readline reprlib resource rlcompleter runpy sched secrets
    select selectors shelve shlex shutil signal site smtpd smtplib sndhdr socket
    socketserver spwd sqlite3 sre_compile sre_constants sre_parse ssl stat statistics
    string stringprep struct subprocess sunau symtable sys sysconfig syslog tabnanny
    tarfile telnetlib tempfile termios textwrap this threading time timeit tkinter token
    tokenize trace traceback tracemalloc tty turtle turtledemo types typing unicodedata
    unittest urllib uu uuid venv warnings wave weakref webbrowser winreg winsound
    wsgiref xdrlib xml xmlrpc zipapp zipfile zipimport zlib zoneinfo
""".split())  # noqa: SIM905 (303 words, as a list literal 303 quoted lines)
#: public modules new in 3.7 to 3.9, so not in an older standard library
ADDED = {"contextvars": (3, 7), "dataclasses": (3, 7), "graphlib": (3, 9), "zoneinfo": (3, 9)}
#: modules gone by 3.10: the first version without them
REMOVED = {"macurl2path": (3, 7), "macpath": (3, 8), "dummy_threading": (3, 9),
           "_dummy_thread": (3, 9), "formatter": (3, 10), "parser": (3, 10), "symbol": (3, 10),
           "_bootlocale": (3, 10)}


def stdlib_names(report: dict[str, Any]) -> frozenset[str]:
    """The standard library's top-level module names for the probed interpreter."""
    if report.get("stdlib_module_names"):
        names = frozenset(report["stdlib_module_names"])
    else:
        version = tuple(int(p) for p in report["version"].split(".")[:2])
        names = frozenset({n for n in NAMES_310 if ADDED.get(n, (0,)) <= version}
                          | {n for n, gone in REMOVED.items() if version < gone})
    return names - frozenset(report.get("builtin_module_names", ()))


def found_before_namespaces(site: Path, name: str) -> bool:
    """Whether ``import name`` finds a module or a regular package in the directory
    ``site`` (``name.py``, ``name.pyc``, an extension, ``name/__init__.py``): a directory
    without ``__init__`` is a namespace portion, which a module of that name anywhere on
    the path wins over -- not a shadow."""
    try:
        leaves = os.listdir(site)
    except OSError:
        return False
    if (site / name / "__init__.py").is_file() or (site / name / "__init__.pyc").is_file():
        return True
    return any(leaf.split(".", 1)[0] == name and leaf.lower().endswith(MODULE_SUFFIXES)
               and (site / leaf).is_file() for leaf in leaves)


def _index(report: dict[str, Any], path: str) -> int | None:
    real = os.path.realpath(path)
    return next((i for i, e in enumerate(report["sys_path"]) if e["real"] == real), None)


def shadows_stdlib_problems(view: list[Distribution], report: dict[str, Any]) -> list[Problem]:
    """A warning for each top-level module of a layer distribution named as one of the
    standard library's, saying whether it replaces it now."""
    names = stdlib_names(report)
    stdlib = _index(report, report["stdlib_dir"]) if report.get("stdlib_dir") else None
    problems = []
    for dist in view:
        copy = dist.winner
        if copy.origin != "layer":
            continue
        site = Path(copy.metadata).parent
        for module in [m for m in top_level_modules(copy.metadata)
                       if m in names and found_before_namespaces(site, m)]:
            where = _index(report, copy.path_entry)
            now = where is not None and (stdlib is None or where < stdlib)
            effect = (f"'import {module}' gets it instead of the standard library's {module} "
                      "in every program run from the layer" if now else
                      f"the standard library's {module} comes first now, but with PYTHONPATH "
                      "set (a stack) the layer comes before the standard library and this "
                      f"{module} replaces it")
            problems.append(Problem(
                "shadows-stdlib", "warning",
                f"{copy.name} {copy.version} in the layer installs a top-level module "
                f"'{module}', the name of a standard-library module of Python "
                f"{report['version']}: {effect}; uninstall it (python -m pip uninstall "
                f"{copy.name}) unless you need that copy", distribution=copy.name))
    return problems
