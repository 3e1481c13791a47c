"""``list`` and ``check`` on real stacks: real 2023 wheels laid out like an LCG view
(network-marked: downloaded once, then cached) and Debian's own dist-packages.

Every answer is compared with an independent reference: importlib.metadata run by the
interpreter concerned, ``pip check`` run by the layer's own python, a real import.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import clean_env, run_tool

network = pytest.mark.network


@network
def test_real_stack_is_what_importlib_metadata_sees(real_stack, tmp_path):
    """The fixture itself: every pinned wheel installed, importable from the stack's env."""
    env = real_stack.env(clean_env(tmp_path))
    code = ("import json, re, importlib.metadata as m\n"  # the first copy of a name wins
            "print(json.dumps({re.sub(r'[-_.]+', '-', d.metadata['Name']).lower(): d.version "
            "for d in reversed(list(m.distributions()))}))")
    seen = json.loads(subprocess.run([str(real_stack.python), "-c", code], env=env,
                                     capture_output=True, text=True, check=True).stdout)
    assert {k: seen[k] for k in real_stack.versions} == real_stack.versions
    subprocess.run([str(real_stack.python), "-c", "import scipy.special, pandas, awkward"],
                   env=env, check=True, capture_output=True)


def test_debian_stack_has_numpy_and_scipy(debian_system_stack, tmp_path):
    env = debian_system_stack.env(clean_env(tmp_path))
    out = subprocess.run([str(debian_system_stack.python), "-c",
                          "import numpy, scipy; print(numpy.__file__)"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert out.startswith(str(debian_system_stack.site_packages))


# --- conflicts agree with pip check --------------------------------------------------------

#: What a layer installs over the real stack (offline, from its wheelhouse, --no-deps).
SCENARIOS = {
    "numpy-2": ("numpy==2.0.2",),  # scipy 1.10.1 requires numpy<1.27
    "below-pandas-bounds": ("python-dateutil==2.8.1", "pytz==2019.3", "tzdata==2021.5"),
    "packaging-too-old": ("packaging==18.0",),  # vector: >=19; it needs pyparsing, absent
    "awkward-cpp-pinned": ("awkward-cpp==22",),  # awkward pins awkward-cpp==21
    "harmless-upgrade": ("packaging==24.1",),
}


def _key(name: str, requirement: str) -> tuple[str, str, str]:
    """(distribution, required name, specifier), canonical: one requirement of one
    distribution however it is spelt (``numpy (>=1.2)``, ``numpy>=1.2``)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    req = Requirement(requirement.replace("\n", "").strip())
    return canonicalize_name(name), canonicalize_name(req.name), str(req.specifier)


def pip_check(python, env) -> tuple[set, set]:
    """``pip check`` of the layer's own python: (unmet requirements, missing ones), each
    as :func:`_key`; parsed from its output, the reference."""
    import re

    result = subprocess.run([str(python), "-m", "pip", "check", "--disable-pip-version-check"],
                            env=env, capture_output=True, text=True, check=False)
    unmet, missing = set(), set()
    for line in result.stdout.splitlines():
        has = re.match(r"(\S+) \S+ has requirement (.+), but you have \S+ \S+\.$", line)
        lacks = re.match(r"(\S+) \S+ requires (\S+), which is not installed\.$", line)
        if has:
            unmet.add(_key(has.group(1), has.group(2)))
        elif lacks:
            missing.add(_key(lacks.group(1), lacks.group(2))[:2])
        else:
            assert line == "No broken requirements found." or "not supported" in line, line
    assert result.returncode == (1 if unmet or missing else 0), result.stdout + result.stderr
    return unmet, missing


def check_conflicts(root, env) -> tuple[set, set]:
    """``layervenv check``'s conflicts: (errors, warnings) as :func:`_key`."""
    data = json.loads(run_tool("check", str(root), "--format", "json", env=env,
                               check=False).stdout)
    errors, warnings = set(), set()
    for problem in data["problems"]:
        if problem["kind"] == "conflict":
            key = _key(problem["distribution"], problem["requirement"])
            (errors if problem["severity"] == "error" else warnings).add(key)
    return errors, warnings


def assert_agrees_with_pip_check(root, env) -> tuple[set, set]:
    unmet, missing = pip_check(root / "bin" / "python", env)
    errors, warnings = check_conflicts(root, env)
    assert unmet <= errors, f"pip check finds, check does not: {unmet - errors}"
    assert errors <= unmet, f"errors pip check calls satisfied: {errors - unmet}"
    assert missing <= {k[:2] for k in warnings}, missing
    return unmet, missing


@network
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_conflicts_agree_with_pip_check(real_stack, tmp_path, scenario):
    env = real_stack.env(clean_env(tmp_path))
    env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(real_stack.wheelhouse))
    root = tmp_path / "layer"
    run_tool("create", str(root), env=env)
    subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    *SCENARIOS[scenario]], env=env, check=True, capture_output=True)
    unmet, missing = assert_agrees_with_pip_check(root, env)
    # every scenario but the harmless one breaks a requirement that held in the stack
    # alone (which has conflicts of its own with the interpreter's site-packages)
    before = set().union(*pip_check(real_stack.python, env))
    added = (unmet | missing) - before
    assert bool(added) is (scenario != "harmless-upgrade"), added


@network
def test_debian_numpy_2_conflict_agrees_with_pip_check(debian_system_stack, real_wheels,
                                                       tmp_path):
    """The issue's case: Debian's python3-scipy 1.10.1 with numpy 2 in the layer."""
    wheels = real_wheels / "upgrades"
    env = debian_system_stack.env(clean_env(tmp_path))
    root = tmp_path / "layer"
    run_tool("create", str(root), "--python", str(debian_system_stack.python), "--without-pip",
             env=env)
    subprocess.run([str(root / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps",
                    "--no-index", "--find-links", str(wheels), "numpy==2.0.2"], env=env,
                   check=True, capture_output=True)
    unmet, _ = assert_agrees_with_pip_check(root, env)
    assert ("scipy", "numpy", "<1.27.0,>=1.19.5") in unmet


def test_debian_stack_is_a_stack_and_its_packages_are_sound(debian_system_stack, tmp_path):
    """A layer on Debian's dist-packages: that directory is its own stack (no mismatch),
    and cryptography's .dist-info beside its .egg-info, one version twice, as
    importlib.metadata itself sees it, is not an interrupted pip run."""
    env = debian_system_stack.env(clean_env(tmp_path))
    code = ("import importlib.metadata as m, json; print(json.dumps(sorted({(d.metadata['Name']"
            ".lower(), d.version) for d in m.distributions() if d.metadata['Name'].lower() in "
            "('cryptography', 'numpy', 'scipy')} )))")
    seen = json.loads(subprocess.run([str(debian_system_stack.python), "-c", code], env=env,
                                     capture_output=True, text=True, check=True).stdout)
    root = tmp_path / "layer"
    run_tool("create", str(root), "--python", str(debian_system_stack.python), "--without-pip",
             env=env)
    data = json.loads(run_tool("check", str(root), "--format", "json", env=env,
                               check=False).stdout)
    problems = data["problems"]
    assert not [p for p in problems if p["kind"] in ("python-mismatch", "stack-not-set-up")]
    duplicated = [name for name, _ in seen if [n for n, _ in seen].count(name) > 1]
    assert not [p for p in problems if p["kind"] == "metadata"
                and p.get("distribution", "").lower() in duplicated], problems
    assert not [p for p in problems if str(debian_system_stack.site_packages) in p["message"]
                and "remove" in p["message"]]
