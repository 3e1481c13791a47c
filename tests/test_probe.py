"""The probe on every interpreter available here (Python 3.6 to 3.13), and its parsing.

For each interpreter: a layer made with it, a stack directory on PYTHONPATH holding
every metadata layout the probe reads (dist-info, egg-info directory and file, an
``.egg`` on the path, zipped or not, a byte order mark, a long description), and
requirements whose markers only the *layer's* interpreter can decide (the tool itself
runs on another Python).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from helpers import clean_env, pythons, run_tool
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.markers import Marker, default_environment
from packaging.requirements import Requirement
from packaging.specifiers import InvalidSpecifier, Specifier
from packaging.utils import canonicalize_name

from layervenv.dists.requirements import requirement_applies
from layervenv.inspection.effective_view import _requires_from_txt
from layervenv.inspection.pipeline import inspect_layer
from layervenv.model.layer import Layer
from layervenv.services.simstack import Dist, write_dist_info

#: every Python 3 on this machine (pyenv's, uv's, PATH's: tests/helpers.py finds them)
PYTHONS = [str(found.path) for found in pythons() if found.version[0] == 3] or [None]


def _version_id(python: str | None) -> str:
    return Path(python).parent.parent.name if python else "none"


def _stack_dir(root: Path) -> Path:
    site = root / "lib" / "site-packages"
    site.mkdir(parents=True)
    write_dist_info(site, Dist("hepnum", "1.22.3"))
    write_dist_info(site, Dist("hepfit", "1.0.0", compiled=True, requires=(
        'hepnum<1.27; python_version >= "3.8"',)))
    egg_info = site / "hepold-0.3-py3.egg-info"  # setuptools' egg-info directory
    egg_info.mkdir()
    (egg_info / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: hepold\nVersion: 0.3\n")
    (egg_info / "requires.txt").write_text("hepnum>=1\n\n[plot]\nhepmissing\n")
    (egg_info / "native_libs.txt").write_text("hepold/_c.so\n")
    (site / "hepflat-2.1-py3.6.egg-info").write_text(  # distutils: a single file
        "Metadata-Version: 1.0\nName: hepflat\nVersion: 2.1\n")
    egg = root / "hepegg-4.0-py3.egg"
    (egg / "EGG-INFO").mkdir(parents=True)
    (egg / "EGG-INFO" / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: hepegg\n"
                                               "Version: 4.0\n")
    with zipfile.ZipFile(root / "hepzip-1.5-py3.egg", "w") as archive:  # a zipped egg
        archive.writestr("hepzip/__init__.py", "")
        archive.writestr("EGG-INFO/PKG-INFO", "\ufeffName: hepzip\nVersion: 1.5\n\nLong.\n")
        archive.writestr("EGG-INFO/requires.txt", "hepnum>=1\n")
    (site / "hepcmod").mkdir()  # setup.py install without a record: the .so tells
    (site / "hepcmod" / "_c.so").write_bytes(b"")
    (site / "hepcmod-1.0-py3.egg-info").mkdir()
    (site / "hepcmod-1.0-py3.egg-info" / "PKG-INFO").write_bytes(
        b"\xef\xbb\xbfName: hepcmod\nVersion: 1.0\n\n" + b"x" * 100000)
    (site / "hepcmod-1.0-py3.egg-info" / "top_level.txt").write_text("hepcmod\n")
    return site


#: Requirements on hepnum 1.22.3 whose markers hold on some interpreters only (3.6 to 3.13
#: here): which of them conflict says whose interpreter decided.
VERSIONED = (
    Dist("heplegacy", "1.0", requires=('hepnum>=2; python_version < "3.9"',)),
    Dist("hepnew", "1.0", requires=('hepnum<1.20; python_version >= "3.9"',
                                    'hepabsent; python_version >= "3.10"')),
    Dist("hepmid", "1.0", requires=(
        'hepnum>=3; python_full_version >= "3.7.10" and python_full_version < "3.12.0"',)),
    Dist("hepimpl", "1.0", requires=(
        'hepnum>=4; implementation_name == "cpython" and implementation_version < "3.8"',)),
)


def _expected_conflicts(version: tuple[int, int, int], implementation: str) -> set[tuple[str, str]]:
    """(dependent, dependency) of the VERSIONED requirements that apply on an interpreter
    of ``version``, as PEP 508 defines the markers (python_version is major.minor)."""
    expected = {("heplegacy", "hepnum") if version[:2] < (3, 9) else ("hepnew", "hepnum")}
    if version[:2] >= (3, 10):
        expected.add(("hepnew", "hepabsent"))
    if (3, 7, 10) <= version < (3, 12, 0):
        expected.add(("hepmid", "hepnum"))
    if implementation == "cpython" and version[:2] < (3, 8):
        expected.add(("hepimpl", "hepnum"))
    return expected


#: Run by a layer's interpreter: what it says of itself, with none of the probe's code.
#: Its marker environment is the one its own pip evaluates requirements with (pip's
#: vendored packaging); without pip, PEP 508's sample code.
REFERENCE = r"""
import json, os, platform, site, sys, sysconfig
try:
    from pip._vendor.packaging.markers import default_environment
    markers, source = default_environment(), "pip"
except ImportError:
    def format_full_version(info):
        version = '{0.major}.{0.minor}.{0.micro}'.format(info)
        kind = info.releaselevel
        if kind != 'final':
            version += kind[0] + str(info.serial)
        return version
    markers, source = {
        "implementation_name": sys.implementation.name,
        "implementation_version": format_full_version(sys.implementation.version),
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_python_implementation": platform.python_implementation(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "python_version": '.'.join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }, "pep508"
print(json.dumps({
    "version_info": list(sys.version_info[:3]),
    "implementation": sys.implementation.name,
    "executable": sys.executable,
    "prefix": sys.prefix,
    "base_prefix": sys.base_prefix,
    "user_base": site.getuserbase(),
    "user_site": site.getusersitepackages(),
    "user_site_enabled": bool(site.ENABLE_USER_SITE),
    "stdlib_dir": sysconfig.get_paths()["stdlib"],
    "builtin_module_names": sorted(sys.builtin_module_names),
    "stdlib_module_names": sorted(getattr(sys, "stdlib_module_names", ())) or None,
    "sys_path": sys.path[1:],  # without the '' that -c puts first
    "markers": markers,
    "markers_from": source,
}))
"""


def _reference(python: str | Path, env: dict[str, str], cwd: Path | None = None
               ) -> dict[str, Any]:
    return json.loads(subprocess.run([str(python), "-c", REFERENCE], env=env, cwd=cwd,
                                     capture_output=True, text=True, check=True).stdout)


#: ``pip check``'s lines: a requirement not met, a dependency not installed
_PIP_CHECK = re.compile(r"^(\S+) \S+ (?:has requirement|requires) ([A-Za-z0-9._-]+)", re.M)


def _pip_check_conflicts(python: str, home: Path) -> set[tuple[str, str]] | None:
    """(dependent, dependency) that the interpreter's own ``pip check`` reports for hepnum
    and the VERSIONED distributions (alone on PYTHONPATH: pip 24.2 fails on the byte order
    marks of the full stack); None when that interpreter has no pip."""
    stack = home / "pip-check"
    stack.mkdir()
    for dist in (Dist("hepnum", "1.22.3"), *VERSIONED):
        write_dist_info(stack, dist)
    result = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True,
                            env=clean_env(home, PYTHONPATH=str(stack)), check=False)
    if "No module named pip" in result.stderr:
        return None
    assert result.returncode == 1, result.stdout + result.stderr
    return {(canonicalize_name(a), canonicalize_name(b))
            for a, b in _PIP_CHECK.findall(result.stdout) if a.startswith("hep")}


@pytest.mark.parametrize("python", PYTHONS, ids=_version_id)
def test_probe_on_every_interpreter(tmp_path, python):
    """Every metadata layout is read on every interpreter; the probe's report is what the
    interpreter says of itself; requirements whose markers hold on some versions only
    conflict exactly where that interpreter's own pip says they do."""
    if python is None:
        pytest.skip("no other interpreters here")
    site = _stack_dir(tmp_path / "stack")
    for dist in VERSIONED:
        write_dist_info(site, dist)
    egg = tmp_path / "stack" / "hepegg-4.0-py3.egg"
    zipped = tmp_path / "stack" / "hepzip-1.5-py3.egg"
    env = clean_env(tmp_path, PYTHONPATH=f"{site}:{egg}:{zipped}")
    root = tmp_path / "layer"
    run_tool("create", str(root), "--python", python, "--without-pip", env=env)

    # the interpreter's own view, in the layer and outside it
    own = _reference(python, clean_env(tmp_path))
    reference = _reference(root / "bin" / "python", env, cwd=root)
    assert reference["version_info"] == own["version_info"]
    report = inspect_layer(Layer.open(root), env).report
    assert report is not None
    assert report["version"] == "{}.{}.{}".format(*reference["version_info"])
    assert report["markers"] == reference["markers"], reference["markers_from"]
    for key in ("implementation", "executable", "prefix", "base_prefix", "user_base",
                "user_site", "user_site_enabled", "stdlib_dir", "builtin_module_names",
                "stdlib_module_names"):
        assert report[key] == reference[key], key
    assert [entry["path"] for entry in report["sys_path"]] == reference["sys_path"]

    rows = {r["name"]: r for r in json.loads(
        run_tool("list", str(root), "--format", "json", env=env).stdout)}
    assert rows["hepnum"]["location"] == str(site)
    assert rows["hepfit"]["compiled"] is True and rows["hepnum"]["compiled"] is False
    assert rows["hepold"]["version"] == "0.3" and rows["hepold"]["compiled"] is True
    assert rows["hepflat"]["version"] == "2.1"
    assert rows["hepegg"]["location"] == str(egg) and rows["hepegg"]["version"] == "4.0"
    assert rows["hepzip"]["location"] == str(zipped) and rows["hepzip"]["version"] == "1.5"
    assert rows["hepcmod"]["version"] == "1.0" and rows["hepcmod"]["compiled"] is True

    result = run_tool("check", str(root), "--format", "json", env=env, check=False)
    conflicts = {(canonicalize_name(p["distribution"]),
                  canonicalize_name(Requirement(p["requirement"]).name))
                 for p in json.loads(result.stdout)["problems"]
                 if p["kind"] == "conflict" and p["distribution"].startswith("hep")}
    # hepfit's requirement (from 3.8 on) is met; the [plot] extra of hepold is asked for by
    # no one; of the VERSIONED ones, those whose markers hold on this interpreter conflict
    expected = _expected_conflicts(tuple(reference["version_info"]), reference["implementation"])
    assert conflicts == expected, result.stdout
    assert result.returncode == 1, result.stderr
    pip_says = _pip_check_conflicts(python, tmp_path)
    if pip_says is not None:
        assert pip_says == expected


def test_markers_are_evaluated_for_the_layers_interpreter(tmp_path):
    """A requirement only for Python < 3.8 is a conflict on a 3.6 layer, not on the tool's."""
    old = [p for p in PYTHONS if p and ("/3.6." in p or "/3.7." in p)]
    if not old:
        pytest.skip("no Python < 3.8 here")
    site = tmp_path / "stack" / "lib" / "site-packages"
    site.mkdir(parents=True)
    write_dist_info(site, Dist("hepnum", "2.0.0"))
    write_dist_info(site, Dist("hepfit", "1.0.0", requires=(
        'hepnum<2; python_version < "3.8"',)))
    env = clean_env(tmp_path, PYTHONPATH=str(site))
    for python, expected in ((old[0], True), (None, False)):
        root = tmp_path / f"layer-{expected}"
        args = ("--python", python) if python else ()
        run_tool("create", str(root), *args, "--without-pip", env=env)
        result = run_tool("check", str(root), "--format", "json", env=env, check=False)
        conflicts = [p for p in json.loads(result.stdout)["problems"]
                     if p["kind"] == "conflict" and p.get("distribution") == "hepfit"]
        assert [p["requirement"] for p in conflicts] == (
            ['hepnum<2; python_version < "3.8"'] if expected else []), (python, result.stdout)


def test_requires_txt_sections(tmp_path):
    """requires.txt becomes the very lines importlib.metadata makes of it (the reference),
    comment lines left out as pip does."""
    text = ("a>=1\n\n[test]\nb\n# a comment\n\n[:python_version < \"3.8\"]\nc\n\n"
            "[gui:sys_platform == 'x']\nd\ne @ https://x.org/e.zip\n")
    info = tmp_path / "x-1.0.egg-info"
    info.mkdir()
    (info / "PKG-INFO").write_text("Name: x\nVersion: 1.0\n")
    (info / "requires.txt").write_text(text)
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps(next(m.distributions(path=[sys.argv[1]])).requires))")
    reference = json.loads(subprocess.run([sys.executable, "-c", code, str(tmp_path)],
                                          capture_output=True, text=True, check=True).stdout)
    assert _requires_from_txt(text) == [r for r in reference if not r.startswith("#")]
    assert len(reference) == 6


def test_interpreter_replaced_by_another_version(tmp_path):
    """The recorded interpreter path now runs another Python: python-mismatch."""
    versions = [p for p in PYTHONS if p and "/3.1" in p]
    if len(versions) < 2:
        pytest.skip("needs two Python 3.1x interpreters")
    link = tmp_path / "stack" / "python3"
    link.parent.mkdir()
    link.symlink_to(versions[0])
    env = clean_env(tmp_path)
    root = tmp_path / "layer"
    run_tool("create", str(root), "--python", str(link), "--without-pip", env=env)
    link.unlink()
    link.symlink_to(versions[1])
    result = run_tool("check", str(root), "--format", "json", env=env, check=False)
    mismatch = [p for p in json.loads(result.stdout)["problems"]
                if p["kind"] == "python-mismatch"]
    assert result.returncode == 1 and len(mismatch) == 1, result.stdout
    made, now = ("{}.{}.{}".format(*_reference(python, env)["version_info"])
                 for python in versions[:2])
    assert mismatch[0]["message"] == (
        f"this layer was made with Python {made} but its interpreter is now Python {now}: "
        f"recreate it (layervenv create --clear)")


#: Run by a layer's interpreter: evaluates each marker read from stdin with its own pip's
#: packaging, in its own default environment, and answers with one JSON line: the marker
#: and its value (or the error it raised).
EVALUATOR = r"""
import json, sys
from pip._vendor.packaging.markers import Marker
for line in sys.stdin:
    try:
        answer = Marker(line.strip()).evaluate()
    except Exception as error:
        answer = "%s: %s" % (type(error).__name__, error)
    sys.stdout.write(json.dumps([line.rstrip("\n"), answer]) + "\n")
    sys.stdout.flush()
"""


class _Interpreter:
    """A layer's interpreter: the marker environment its probe reported, and a process
    of it that evaluates markers the way its own pip does."""

    def __init__(self, python: str, home: Path) -> None:
        self.name = _version_id(python)
        env = clean_env(home)
        root = home / "layer"
        run_tool("create", str(root), "--python", python, "--without-pip", env=env)
        report = inspect_layer(Layer.open(root), env).report
        assert report is not None
        self.markers: dict[str, str] = report["markers"]
        self.process = subprocess.Popen([str(root / "bin" / "python"), "-c", EVALUATOR], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)

    def __repr__(self) -> str:
        return f"<{self.name}>"

    def ask(self, marker: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(marker + "\n")
        self.process.stdin.flush()

    def answer(self, marker: str) -> bool | str:
        """The answer to ``marker``, the question it came with checked."""
        assert self.process.stdout is not None
        question, answer = json.loads(self.process.stdout.readline())
        assert question == marker, (self.name, question, marker)
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def _has_pip(python: str) -> bool:
    return subprocess.run([python, "-I", "-c", "import pip._vendor.packaging.markers"],
                          capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def interpreters(tmp_path_factory):
    found = [p for p in PYTHONS if p and _has_pip(p)]
    if not found:
        pytest.skip("no interpreter with pip here")
    started = [_Interpreter(p, tmp_path_factory.mktemp(_version_id(p))) for p in found]
    yield started
    for interpreter in started:
        interpreter.close()


_VERSION_VARIABLES = ("python_version", "python_full_version", "implementation_version")
_STRING_VARIABLES = ("os_name", "sys_platform", "platform_machine", "platform_system",
                     "platform_release", "platform_version", "implementation_name",
                     "platform_python_implementation")
#: Versions about the interpreters here: 3.5 to 3.14, with or without a micro number
_VERSIONS = st.builds(lambda minor, micro: f"3.{minor}" + ("" if micro is None else f".{micro}"),
                      st.integers(5, 14), st.none() | st.integers(0, 20))
_VERSION_OPERATORS = ("<", "<=", "==", "!=", ">=", ">", "~=")


def _quoted(value: str) -> str:
    return f'"{value}"'


def _version_comparisons(variable: str) -> st.SearchStrategy[str]:
    """``python_version >= "3.9"``, ``"3.8" < python_version``, ``python_version == "3.8.*"``."""
    plain = st.builds(lambda op, value: f"{variable} {op} {_quoted(value)}",
                      st.sampled_from(_VERSION_OPERATORS), _VERSIONS)
    reversed_ = st.builds(lambda op, value: f"{_quoted(value)} {op} {variable}",
                          st.sampled_from(_VERSION_OPERATORS), _VERSIONS)
    wildcard = st.builds(lambda op, minor: f'{variable} {op} "3.{minor}.*"',
                         st.sampled_from(("==", "!=")), st.integers(5, 14))
    return plain | reversed_ | wildcard


#: The values this machine gives the string variables (the same for every interpreter
#: here but implementation_name and friends on another implementation)
_HERE = default_environment()


def _string_values(variable: str) -> st.SearchStrategy[str]:
    """What this machine reports for ``variable``, parts of it, and other words."""
    value = _HERE[variable].replace('"', "")  # a marker's value cannot hold its quote
    part = st.tuples(st.integers(0, len(value)), st.integers(0, len(value))).map(
        lambda span: value[min(span):max(span)])
    words = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_", max_size=8)
    return st.just(value) | part | words


def _string_comparisons(variable: str) -> st.SearchStrategy[str]:
    """``==``/``!=`` with values that are no version (a version would be compared as one,
    which packaging releases define differently for a non-version value), and ``in``."""
    values = _string_values(variable).filter(lambda v: not _is_specifier("==" + v))
    equal = st.builds(lambda op, value: f"{variable} {op} {_quoted(value)}",
                      st.sampled_from(("==", "!=")), values)
    contained = st.builds(lambda op, value: f"{_quoted(value)} {op} {variable}",
                          st.sampled_from(("in", "not in")), _string_values(variable))
    return equal | contained


def _is_specifier(text: str) -> bool:
    try:
        Specifier(text)
    except InvalidSpecifier:
        return False
    return True


#: Markers over every PEP 508 variable, up to five comparisons joined by and/or
_MARKERS = st.recursive(
    st.one_of(*(_version_comparisons(v) for v in _VERSION_VARIABLES),
              *(_string_comparisons(v) for v in _STRING_VARIABLES)),
    lambda inner: st.builds(lambda left, op, right: f"({left}) {op} ({right})",
                            inner, st.sampled_from(("and", "or")), inner),
    max_leaves=5)


@settings(max_examples=300, deadline=None)
@given(marker=_MARKERS)
def test_markers_decide_as_each_interpreters_pip(interpreters, marker):
    """For any marker over the PEP 508 variables, check's decision with the probe's
    environment (the tool's packaging) is the one the layer's interpreter makes with its
    own pip's packaging in its own environment (pip 18 to 24 here)."""
    for interpreter in interpreters:
        interpreter.ask(marker)
    answers = [(i.name, i.answer(marker)) for i in interpreters]  # all read before failing
    ours = [(i.name, requirement_applies(Marker(marker), False, i.markers, ""))
            for i in interpreters]
    assert ours == answers, marker
