"""A simulated read-only stack, laid out the way LCG views and ATLAS releases are.

There is no CVMFS here, so the demo and the tests build one: a prefix whose
``bin/python3`` is the real interpreter (a symlink, as in an LCG view), a
``lib/pythonX.Y/site-packages`` holding *old* versions of small distributions
installed from real wheels built on the spot (offline), one egg-style entry, a
compiled-looking distribution, a ``bin/`` tool, and a ``setup.sh`` that prepends
PATH, LD_LIBRARY_PATH and PYTHONPATH.  A wheelhouse beside it holds newer
versions for the layer to upgrade to.  Everything is byte-compiled at build time,
so importing from the stack writes nothing into it (real stacks are read-only).
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from installer import install
from installer.destinations import SchemeDictionaryDestination
from installer.sources import WheelFile

from layervenv.dists.record import wheel_record


@dataclass(frozen=True)
class Dist:
    """A tiny distribution: one package that knows its own version and origin."""

    name: str
    version: str
    requires: tuple[str, ...] = ()
    compiled: bool = False
    scripts: tuple[str, ...] = ()  # console scripts printing the package's version and file

    @property
    def package(self) -> str:
        return self.name.replace("-", "_").lower()


#: What the simulated stack provides (old versions, as on a release).
STACK_DISTS = (
    Dist("hepnum", "1.22.3", scripts=("hepnum-info",)),
    Dist("hepfit", "1.0.0", requires=("hepnum<1.27",), compiled=True),
    Dist("hepconf", "0.9.0"),
)
#: The egg-style entry (a ``.egg`` directory put on PYTHONPATH by setup.sh).
STACK_EGG = Dist("hepio", "5.4.3")
#: Newer versions available to the layer (offline, from the wheelhouse).
WHEELHOUSE_DISTS = (
    Dist("hepnum", "1.24.2", scripts=("hepnum-info",)),
    Dist("hepnum", "2.0.0", scripts=("hepnum-info",)),
    Dist("hepconf", "1.0.0"),
    Dist("hepio", "5.6.0"),
)


def _module_source(dist: Dist) -> str:
    return (
        f'"""{dist.name} {dist.version}: a small distribution built by '
        'layervenv.services.simstack."""\n'
        f"__version__ = {dist.version!r}\n"
        "import os as _os\n"
        "ORIGIN = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))\n\n"
        "def info():\n"
        "    print(__name__, __version__, __file__)\n"
    )


def build_wheel(dist: Dist, outdir: Path, python_tag: str = "cp311") -> Path:
    """Write a real, installable wheel for ``dist`` into ``outdir``."""
    outdir.mkdir(parents=True, exist_ok=True)
    tag = f"{python_tag}-{python_tag}-linux_x86_64" if dist.compiled else "py3-none-any"
    filename = f"{dist.package}-{dist.version}-{tag}.whl"
    info = f"{dist.package}-{dist.version}.dist-info"
    metadata = ["Metadata-Version: 2.1", f"Name: {dist.name}", f"Version: {dist.version}"]
    metadata += [f"Requires-Dist: {req}" for req in dist.requires]
    files: dict[str, bytes] = {f"{dist.package}/__init__.py": _module_source(dist).encode()}
    if dist.compiled:
        # Looks like an extension module to tools (name and tag); never imported.
        files[f"{dist.package}/_core.{python_tag}-x86_64-linux-gnu.so"] = b"\x7fELF-not-really\n"
    files[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    files[f"{info}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: layervenv.services.simstack\n"
        f"Root-Is-Purelib: {'false' if dist.compiled else 'true'}\nTag: {tag}\n"
    ).encode()
    if dist.scripts:
        lines = ["[console_scripts]"] + [f"{s} = {dist.package}:info" for s in dist.scripts]
        files[f"{info}/entry_points.txt"] = ("\n".join(lines) + "\n").encode()
    files[f"{info}/RECORD"] = wheel_record(files, f"{info}/RECORD")
    wheel = outdir / filename
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for path, data in files.items():
            archive.writestr(path, data)
    return wheel


def install_into(wheel: Path, site_packages: Path, scripts: Path, interpreter: Path) -> None:
    """Install ``wheel`` the way a release build would (byte-compiled)."""
    destination = SchemeDictionaryDestination(
        {"purelib": str(site_packages), "platlib": str(site_packages),
         "headers": str(site_packages.parent / "include"), "scripts": str(scripts),
         "data": str(site_packages.parent)},
        interpreter=str(interpreter), script_kind="posix",
    )
    with WheelFile.open(wheel) as source:
        install(source, destination, {"INSTALLER": b"release-build\n"})


def _write_egg(dist: Dist, site_packages: Path, short_version: str) -> Path:
    """An easy_install-style egg directory: ``name-ver-pyX.Y.egg/{name,EGG-INFO}``."""
    egg = site_packages / f"{dist.package}-{dist.version}-py{short_version}.egg"
    (egg / dist.package).mkdir(parents=True)
    (egg / dist.package / "__init__.py").write_text(_module_source(dist), encoding="utf-8")
    (egg / "EGG-INFO").mkdir()
    (egg / "EGG-INFO" / "PKG-INFO").write_text(
        f"Metadata-Version: 1.1\nName: {dist.name}\nVersion: {dist.version}\n", encoding="utf-8"
    )
    return egg


SETUP_TEMPLATE = """\
# Set up the simulated stack {name} (as an LCG view's setup.sh does).
_stack={root}
export PATH="$_stack/bin${{PATH:+:$PATH}}"
export ROOTSYS="$_stack"
export LD_LIBRARY_PATH="$_stack/lib${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"
export PYTHONPATH="{pythonpath}${{PYTHONPATH:+:$PYTHONPATH}}"
export SIMSTACK_NAME={name}
unset _stack
"""


@dataclass
class SimStack:
    """A built simulated stack and the wheelhouse that goes with it."""

    root: Path
    python: Path  # the stack's bin/python3 (a symlink to the real interpreter)
    site_packages: Path
    egg: Path
    setup_script: Path
    wheelhouse: Path
    short_version: str
    dists: tuple[Dist, ...] = field(default=(*STACK_DISTS, STACK_EGG))

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """The environment after sourcing ``setup.sh`` in a real bash on top of ``base``."""
        return sourced_environment(self.setup_script, base)


def _python_facts(python: Path) -> tuple[str, str]:
    out = subprocess.run(
        [str(python), "-I", "-S", "-c",
         "import sys; print('%d.%d' % sys.version_info[:2]); print(sys.executable)"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")
    return out[0], out[1]


#: Where a release keeps its files below its root: LCG views are flat, ATLAS releases
#: put everything under InstallArea/<platform>.
LAYOUTS = {"lcg": "", "atlas": "InstallArea/x86_64-el9-gcc13-opt"}


@dataclass
class Prefix:
    """An empty stack prefix: ``bin/python3`` (a symlink to the interpreter, as in an
    LCG view), a ``bin/`` tool, ``lib/`` and an empty ``lib/pythonX.Y/site-packages``."""

    root: Path
    prefix: Path  # where bin/ and lib/ are (below root for an ATLAS layout)
    site_packages: Path
    short_version: str  # "3.11"

    @property
    def bin(self) -> Path:
        return self.prefix / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python3"

    @property
    def tag(self) -> str:
        return "cp" + self.short_version.replace(".", "")

    def install(self, wheel: Path) -> None:
        install_into(wheel, self.site_packages, self.bin, self.python)

    def byte_compile(self) -> None:
        """Byte-compile with the stack's own interpreter, as a release build does, so that
        importing from the stack never writes a __pycache__ into it."""
        subprocess.run([str(self.python), "-I", "-m", "compileall", "-q",
                        str(self.prefix / "lib")], check=True, stdout=subprocess.DEVNULL)

    def write_setup(self, name: str, pythonpath: list[Path]) -> Path:
        """``ROOT/setup.sh``, prepending PATH, LD_LIBRARY_PATH and ``pythonpath``."""
        setup = self.root / "setup.sh"
        entries = ":".join(f"$_stack/{p.relative_to(self.prefix).as_posix()}"
                           for p in pythonpath)
        setup.write_text(SETUP_TEMPLATE.format(
            name=name, root=_sh_quote(str(self.prefix)), pythonpath=entries,
        ), encoding="utf-8")
        return setup


def make_prefix(root: Path, python: Path, layout: str = "lcg") -> Prefix:
    """An empty stack prefix at ``root`` with ``python`` as its interpreter."""
    short, real_python = _python_facts(python)
    prefix = root / LAYOUTS[layout] if LAYOUTS[layout] else root
    made = Prefix(root=root, prefix=prefix,
                  site_packages=prefix / "lib" / f"python{short}" / "site-packages",
                  short_version=short)
    made.bin.mkdir(parents=True)
    made.site_packages.mkdir(parents=True)
    os.symlink(real_python, made.python)
    os.symlink("python3", made.bin / "python")
    tool = made.bin / "stack-tool"
    tool.write_text("#!/bin/sh\necho stack-tool from " + str(root) + "\n", encoding="utf-8")
    tool.chmod(0o755)
    (prefix / "lib" / "libstack.so").write_bytes(b"")
    return made


def build_stack(root: Path, python: Path, name: str = "LCG_sim", wheels: Path | None = None,
                dists: tuple[Dist, ...] = STACK_DISTS, layout: str = "lcg") -> SimStack:
    """Build a simulated stack at ``root`` with ``python`` as its interpreter."""
    made = make_prefix(root, python, layout)
    wheelhouse = wheels or root.parent / f"{root.name}-wheelhouse"
    for dist in dists:
        made.install(build_wheel(dist, root / ".build", made.tag))
    egg = _write_egg(STACK_EGG, made.site_packages, made.short_version)
    for dist in WHEELHOUSE_DISTS:
        build_wheel(dist, wheelhouse, made.tag)
    _remove_tree(root / ".build")
    made.byte_compile()
    setup = made.write_setup(name, [made.site_packages, egg])
    return SimStack(root=root, python=made.python, site_packages=made.site_packages, egg=egg,
                    setup_script=setup, wheelhouse=wheelhouse,
                    short_version=made.short_version, dists=(*dists, STACK_EGG))


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _sh_quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def sourced_environment(script: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """Source ``script`` in a real bash and return the environment it leaves."""
    env = dict(os.environ if base is None else base)
    out = subprocess.run(
        ["bash", "-c", '. "$1" >/dev/null && env -0', "bash", str(script)],
        env=env, capture_output=True, check=True,
    ).stdout.decode()
    pairs = (item.split("=", 1) for item in out.split("\0") if "=" in item)
    return {key: value for key, value in pairs}


def tree_digest(root: Path) -> str:
    """A hash of every path, mode, symlink target and byte under ``root``."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            path = Path(dirpath) / name
            info = path.lstat()
            digest.update(f"{path.relative_to(root)}\0{stat.S_IMODE(info.st_mode)}\0".encode())
            if stat.S_ISLNK(info.st_mode):
                digest.update(os.readlink(path).encode())
            elif stat.S_ISREG(info.st_mode):
                digest.update(path.read_bytes())
    return digest.hexdigest()


def write_dist_info(site_packages: Path, dist: Dist, installer: str = "release-build") -> Path:
    """``dist`` as installed, written directly (no wheel, no installer): fast, for big stacks.

    The same files an installer leaves (package, METADATA, WHEEL, RECORD, INSTALLER),
    so ``pip list`` and ``layervenv list`` read it like any other distribution.
    """
    info = site_packages / f"{dist.package}-{dist.version}.dist-info"
    files = {f"{dist.package}/__init__.py": _module_source(dist).encode()}
    if dist.compiled:
        files[f"{dist.package}/_core.so"] = b"\x7fELF-not-really\n"
    metadata = ["Metadata-Version: 2.1", f"Name: {dist.name}", f"Version: {dist.version}"]
    metadata += [f"Requires-Dist: {req}" for req in dist.requires]
    files[f"{info.name}/METADATA"] = ("\n".join(metadata) + "\n\nA simulated distribution.\n"
                                      ).encode()
    files[f"{info.name}/WHEEL"] = (
        "Wheel-Version: 1.0\nGenerator: layervenv.services.simstack\n"
        f"Root-Is-Purelib: {'false' if dist.compiled else 'true'}\nTag: py3-none-any\n"
    ).encode()
    files[f"{info.name}/INSTALLER"] = f"{installer}\n".encode()
    files[f"{info.name}/RECORD"] = wheel_record(files, f"{info.name}/RECORD")
    for path, data in files.items():
        target = site_packages / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return info


def many_dists(count: int, prefix: str = "lcgpkg") -> list[Dist]:
    """``count`` distributions that require each other the way a big stack's do: every
    one requires an earlier one (met), some with markers or extras; one in ten compiled."""
    dists = []
    for index in range(count):
        requires: list[str] = []
        if index:
            requires.append(f"{prefix}-{index // 2:04d}>=1.0")
        if index > 2:
            requires.append(f'{prefix}-{index // 3:04d}[extra]>=1; python_version >= "3"')
            requires.append(f'{prefix}-{index - 1:04d}<1; extra == "test"')
        dists.append(Dist(f"{prefix}-{index:04d}", f"1.{index % 50}.{index % 7}",
                          requires=tuple(requires), compiled=index % 10 == 0))
    return dists
