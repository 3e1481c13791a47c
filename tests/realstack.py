"""Real stacks for the tests: 2023-era wheels from PyPI laid out like an LCG view, and
Debian's own ``dist-packages``.

The simulated stack (``layervenv.services.simstack``) holds the project's own tiny metadata only;
what real distributions write (folded ``License:`` headers, ``Requires-Dist`` with old
``name (>=1)`` syntax, markers and dozens of extras, compiled modules) is only seen here.

The wheels are downloaded once (``pip download --only-binary :all: --no-deps``) into
``$LAYERVENV_TEST_WHEELS/real-cpXY/`` and reused offline afterwards; a ``.complete``
marker says the download finished, a file lock keeps parallel test workers (xdist) from
downloading twice.  ``dev/test`` runs ``python tests/realstack.py DIR`` to fetch them up
front, as it does the build backends.

API (fixtures in conftest.py): ``real_stack`` -> :class:`RealStack` (``root``, ``python``,
``site_packages``, ``setup_script``, ``wheelhouse``, ``short_version``, ``versions``,
``env(base)``); ``debian_stack`` -> :class:`DebianStack` (same names, the system's
``/usr/lib/python3/dist-packages`` with ``/usr/bin/python3``).
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from layervenv.services.simstack import make_prefix, sourced_environment

#: The stack: ~20 real wheels of scientific packages as a 2023 LCG view had them
#: (cp311 manylinux; ~67 MB).  Six of them fold a header over a whitespace-only line.
STACK_PINS = (
    "numpy==1.24.4", "scipy==1.10.1", "pandas==2.0.3", "python-dateutil==2.8.2",
    "six==1.16.0", "pytz==2023.3", "tzdata==2023.3", "contourpy==1.1.0",
    "kiwisolver==1.4.4", "cycler==0.11.0", "packaging==23.1", "iminuit==2.22.0",
    "boost-histogram==1.3.2", "uhi==0.3.3", "awkward==2.3.1", "awkward-cpp==21",
    "typing-extensions==4.7.1", "importlib-metadata==6.8.0", "zipp==3.16.2",
    "vector==1.1.0",
)
#: What a layer upgrades (or downgrades) to, offline from the wheelhouse: numpy 2
#: (scipy requires numpy<1.27), python-dateutil, pytz and tzdata below pandas' bounds,
#: a packaging below vector's bound (and requiring pyparsing, which is not there), a
#: packaging everyone accepts, an awkward-cpp awkward pins away from.
UPGRADE_PINS = (
    "numpy==2.0.2", "python-dateutil==2.8.1", "pytz==2019.3", "tzdata==2021.5",
    "packaging==18.0", "packaging==24.1", "awkward-cpp==22",
)

DEBIAN_PYTHON = Path("/usr/bin/python3")
DEBIAN_DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")
DEBIAN_SETUP = f'export PYTHONPATH="{DEBIAN_DIST_PACKAGES}${{PYTHONPATH:+:$PYTHONPATH}}"\n'


def short_version(python: Path) -> str:
    return subprocess.run([str(python), "-I", "-S", "-c",
                           "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, check=True).stdout.strip()


def wheel_cache(base: Path, python: Path) -> Path:
    """``base/real-cpXY``, holding ``stack/`` and ``upgrades/`` wheels for ``python``;
    downloaded on the first call (under a file lock), offline afterwards."""
    cache = base / f"real-cp{short_version(python).replace('.', '')}"
    done = cache / ".complete"
    if done.exists():
        return cache
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be downloading: wait for it
        if not done.exists():
            # the upgrades one by one: two versions of one name cannot be asked at once
            _download(python, cache / "stack", STACK_PINS)
            for pin in UPGRADE_PINS:  # one by one: two versions of a name cannot be asked
                _download(python, cache / "upgrades", [pin])
            done.touch()
    return cache


def _download(python: Path, target: Path, pins: list[str] | tuple[str, ...]) -> None:
    result = subprocess.run([str(python), "-m", "pip", "download", "-q",
                             "--disable-pip-version-check", "--only-binary", ":all:",
                             "--no-deps", "-d", str(target), *pins],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"pip download {' '.join(pins)} failed:\n{result.stderr}")


@dataclass
class RealStack:
    """A prefix of real wheels laid out like an LCG view, and a wheelhouse of upgrades."""

    root: Path
    python: Path  # the stack's bin/python3 (a symlink to the real interpreter)
    site_packages: Path
    setup_script: Path
    wheelhouse: Path
    short_version: str
    versions: dict[str, str]  # canonical name -> version, as installed

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment after sourcing ``setup.sh`` in a real bash on top of ``base``."""
        return sourced_environment(self.setup_script, base)


def build_real_stack(root: Path, python: Path, cache: Path, name: str = "LCG_real") -> RealStack:
    """Install the cached stack wheels into a new prefix at ``root`` (byte-compiled)."""
    made = make_prefix(root, python)
    versions = {}
    for wheel in sorted((cache / "stack").glob("*.whl")):
        made.install(wheel)
        dist, version = wheel.name.split("-")[:2]
        versions[dist.replace("_", "-").lower()] = version
    made.byte_compile()
    setup = made.write_setup(name, [made.site_packages])
    return RealStack(root=root, python=made.python, site_packages=made.site_packages,
                     setup_script=setup, wheelhouse=cache / "upgrades",
                     short_version=made.short_version, versions=versions)


@dataclass
class DebianStack:
    """Debian's python3-numpy/python3-scipy: the system's ``dist-packages`` as a stack,
    set up (as a site's setup script would) by putting it on PYTHONPATH."""

    root: Path  # /usr
    python: Path
    site_packages: Path
    setup_script: Path
    short_version: str

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        return sourced_environment(self.setup_script, base)


def debian_stack(setup_dir: Path) -> DebianStack | None:
    """The system's stack, or None where Debian's python3-numpy/-scipy are not installed."""
    if not (DEBIAN_PYTHON.exists() and (DEBIAN_DIST_PACKAGES / "scipy").is_dir()
            and (DEBIAN_DIST_PACKAGES / "numpy").is_dir()):
        return None
    setup = setup_dir / "debian-setup.sh"
    setup.write_text(DEBIAN_SETUP, encoding="utf-8")
    return DebianStack(root=Path("/usr"), python=DEBIAN_PYTHON,
                       site_packages=DEBIAN_DIST_PACKAGES, setup_script=setup,
                       short_version=short_version(DEBIAN_PYTHON))


if __name__ == "__main__":  # dev/test: python tests/realstack.py WHEEL_DIR [PYTHON]
    print(wheel_cache(Path(sys.argv[1]), Path(sys.argv[2] if len(sys.argv) > 2
                                                  else sys.executable)))
