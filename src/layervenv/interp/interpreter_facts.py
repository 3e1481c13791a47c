# layervenv: runs on the stack's Python (3.6+, stdlib only; checked by vermin)
"""What layer creation needs to know about an interpreter: its version, install scheme,
bundled pip wheels, and the boot hook compiled by it.

Run with ``-I -S`` (neither PYTHONPATH nor site-packages can change the answer) as
``PYTHON -I -S -c SOURCE REPORT`` with the boot hook's source on stdin; writes one
JSON object to REPORT.  The install scheme is asked for a layer rooted at ``BASE``,
which the tool replaces by the layer's directory.
"""

import base64
import glob
import json
import marshal
import os
import sys
import sysconfig

BASE = "@LAYERVENV_BASE@"


def hook_bytecode():
    """The boot hook (given on stdin) compiled by this very interpreter, so that the
    layer can ship its .pyc: stacks often set PYTHONDONTWRITEBYTECODE, and then every
    start-up would compile the hook again."""
    try:
        import importlib.util
        source = sys.stdin.read()
        tag = sys.implementation.cache_tag
        if not source or not tag:
            return None
        codes = [base64.b64encode(marshal.dumps(compile(
            source, "_layervenv_boot.py", "exec", dont_inherit=True, optimize=level))).decode()
            for level in (0, 1, 2)]  # plain, -O, -OO
        return {"magic": base64.b64encode(importlib.util.MAGIC_NUMBER).decode(),
                "cache_tag": tag, "flags_field": sys.version_info >= (3, 7),
                "code": codes[0], "optimized": codes[1:]}
    except Exception:
        return None


def wheel_dirs():
    """Where ensurepip's wheels are: in the stdlib, or where a distribution keeps them
    instead (--with-wheel-pkg-dir, e.g. Debian's and Fedora's /usr/share/python-wheels,
    where ``_bundled`` is empty)."""
    dirs = [os.path.join(os.path.dirname(os.__file__), "ensurepip", "_bundled"),
            sysconfig.get_config_var("WHEEL_PKG_DIR") or ""]
    return [d for d in dirs if d]


def main():
    scheme = "venv" if "venv" in sysconfig.get_scheme_names() else "posix_prefix"
    base = {"base": BASE, "platbase": BASE, "installed_base": BASE, "installed_platbase": BASE}
    paths = sysconfig.get_paths(scheme=scheme, vars=base)
    exe = getattr(sys, "_base_executable", None) if sys.prefix != sys.base_prefix else None
    dirs = wheel_dirs()
    facts = {
        "executable": exe or sys.executable,
        "version": ".".join(str(n) for n in sys.version_info[:3]),
        "implementation": sys.implementation.name,
        "abiflags": getattr(sys, "abiflags", ""),
        "purelib": paths["purelib"], "platlib": paths["platlib"],
        "scripts": paths["scripts"], "include": paths["include"],
        "pip_wheels": sorted(w for d in dirs for w in glob.glob(os.path.join(d, "pip-*.whl"))),
        "maxsize": sys.maxsize,
        "hook_bytecode": hook_bytecode(),
        "os_py": os.__file__,
        "wheel_dirs": dirs,
    }
    with open(sys.argv[1], "w") as handle:
        json.dump(facts, handle)


if __name__ == "__main__":
    main()
