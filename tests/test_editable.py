"""Editable installs of a project whose import name the stack also provides.

The stack has ``hepconf`` 0.9.0 on PYTHONPATH.  The user works on ``hepconf`` and
installs it with ``pip install -e``; the editable copy must be what imports, for
each way build backends implement editables: setuptools' path line in a ``.pth``
(src layout), setuptools' import-hook finder (flat layout), and hatchling's ``.pth``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import py

WHERE = "import hepconf; print(hepconf.__file__)"


BACKENDS = {
    "setuptools": ('["setuptools>=70"]', "setuptools.build_meta"),
    "hatchling": ('["hatchling"]', "hatchling.build"),
}


def _project(root: Path, backend: str, layout: str) -> Path:
    package = root / ("src/hepconf" if layout == "src" else "hepconf")
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("__version__ = '9.9.0'\n")
    requires, build_backend = BACKENDS[backend]
    text = (f'[build-system]\nrequires = {requires}\nbuild-backend = "{build_backend}"\n\n'
            '[project]\nname = "hepconf"\nversion = "9.9.0"\n')
    if backend == "hatchling" and layout == "src":
        text += '\n[tool.hatch.build.targets.wheel]\npackages = ["src/hepconf"]\n'
    (root / "pyproject.toml").write_text(text)
    return root


@pytest.mark.parametrize(
    ("backend", "layout", "style"),
    [
        ("setuptools", "src", "path"),
        ("setuptools", "flat", "finder"),
        ("hatchling", "src", "path"),
    ],
)
def test_editable_copy_wins_over_stack(make_layer, tmp_path, backend_wheels, backend, layout,
                                       style):
    layer = make_layer()
    project = _project(tmp_path / f"proj-{backend}-{layout}", backend, layout)
    env = dict(layer.env, PIP_FIND_LINKS=f"{backend_wheels} {layer.env['PIP_FIND_LINKS']}")
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "-e", str(project)],
                   env=env, check=True, capture_output=True)
    site = next((layer.root / "lib").glob("python*/site-packages"))
    pth_text = "".join(p.read_text() for p in site.glob("*.pth") if "layervenv" not in p.name)
    finder = any(site.glob("__editable__*finder.py"))
    # the backend really used the style this case is about
    assert (style == "finder") == finder, pth_text
    if style == "path":
        assert str(project) in pth_text
    where = py(layer.python, WHERE, layer.env)
    assert where.startswith(str(project)), where
    # control: without the hook, the stack's copy shadows the editable one
    plain = py(layer.python, WHERE, dict(layer.env, LAYERVENV_BOOT_DISABLE="1"))
    assert not plain.startswith(str(project))
