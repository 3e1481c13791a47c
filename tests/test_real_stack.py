"""``list`` and ``check`` on real stacks: real 2023 wheels laid out like an LCG view
(network-marked: downloaded once, then cached) and Debian's own dist-packages.

Every answer is compared with an independent reference: importlib.metadata run by the
interpreter concerned, ``pip check`` run by the layer's own python, a real import.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import clean_env

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
