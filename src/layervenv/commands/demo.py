"""``layervenv demo``: the user's story, replayed offline on a simulated stack.

It builds a stack laid out like an LCG view (old ``hepnum`` 1.22.3 on PYTHONPATH),
shows a plain ``python -m venv`` failing on it exactly as in the seed transcript,
then a layer succeeding, activated and not, and checks that the stack's bytes
did not change.  Every claim it prints is checked; the exit code is 1 if one fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from layervenv.dists.seed import install_wheel
from layervenv.infra.errors import UserError
from layervenv.infra.output import count
from layervenv.inspection.checks import run_checks
from layervenv.inspection.listing import list_layer
from layervenv.interp.interpreter import probe_interpreter
from layervenv.model.layer import Layer
from layervenv.services.simstack import build_stack, sourced_environment, tree_digest
from layervenv.services.staging import CreateOptions, create

VERSION = "import hepnum; print(hepnum.__version__)"


class Story:
    """Prints the steps and keeps count of the claims that did not hold."""

    def __init__(self) -> None:
        self.failures = 0

    def step(self, text: str) -> None:
        print(f"\n== {text}")

    def show(self, command: str, output: str) -> None:
        print(f"$ {command}")
        for line in output.rstrip().splitlines():
            print(f"  {line}")

    def claim(self, ok: bool, text: str) -> None:
        print(f"  [{'ok' if ok else 'FAILED'}] {text}")
        self.failures += not ok


def _run(argv: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    return (result.stdout + result.stderr).strip()


def _pip_upgrade(python: Path, env: dict[str, str]) -> str:
    """pip's verdict on the upgrade: its 'Successfully installed ...' line."""
    out = _run([str(python), "-m", "pip", "install", "--upgrade", "hepnum<2"], env)
    verdicts = [line for line in out.splitlines() if line.startswith("Successfully")]
    return (verdicts or out.splitlines() or ["(no output)"])[-1]


def _plain_venv(root: Path, python: Path, env: dict[str, str]) -> Path:
    """A plain ``python -m venv`` with pip put in from the same bundled wheel."""
    subprocess.run([str(python), "-m", "venv", "--system-site-packages", "--without-pip",
                    str(root)], env=env, check=True)
    interp = probe_interpreter(python)
    wheel = interp.newest_pip_wheel()
    if wheel is not None:
        install_wheel(wheel, interp.install_scheme(root, root))
    return root / "bin" / "python"


def _stack_interpreter(python: str | None) -> Path:
    """The simulated stack's interpreter: ``--python``, else the one running the tool."""
    if not python:
        return Path(getattr(sys, "_base_executable", None) or sys.executable)
    interp = probe_interpreter(Path(python))
    if tuple(int(p) for p in interp.version.split(".")[:2]) < (3, 6):
        raise UserError(f"{python} is Python {interp.version}; layers need Python 3.6 or newer")
    return Path(python)


def _demo_directory(workdir: str | None) -> Path:
    """A new temporary directory, or ``--workdir``: created, or empty.

    A demo kept there before is not built over (its stack is read-only by contract),
    nor are files of the user's mixed with the demo's.
    """
    if not workdir:
        return Path(tempfile.mkdtemp(prefix="layervenv-demo-"))
    base = Path(workdir).absolute()
    if base.exists() and not base.is_dir():
        raise UserError(f"{base} is not a directory; choose another --workdir")
    if base.is_dir() and any(base.iterdir()):
        raise UserError(f"{base} is not empty (a demo kept there before?): remove it, "
                        f"or choose another --workdir")
    try:
        base.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create {base}: {error.strerror or error}") from None
    return base


def demo(workdir: str | None = None, keep: bool = False, python: str | None = None) -> int:
    interpreter = _stack_interpreter(python)
    base = _demo_directory(workdir)
    story = Story()
    try:
        story.step("A read-only stack, set up the way an LCG view is")
        stack = build_stack(base / "stack", interpreter)
        digest = tree_digest(stack.root)
        home = base / "home"
        home.mkdir(exist_ok=True)
        clean = {k: v for k, v in os.environ.items()
                 if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("_LAYERVENV")}
        env = sourced_environment(stack.setup_script, dict(clean, HOME=str(home)))
        env.update(PIP_NO_INDEX="1", PIP_FIND_LINKS=str(stack.wheelhouse),
                   PIP_DISABLE_PIP_VERSION_CHECK="1")
        story.show(f". {stack.setup_script}; echo $PYTHONPATH", env["PYTHONPATH"])
        story.show(f"python -c '{VERSION}'", _run([str(stack.python), "-c", VERSION], env))

        story.step("A plain venv on the stack (python -m venv --system-site-packages)")
        venv_python = _plain_venv(base / "plain-venv", stack.python, env)
        story.show("python -m pip install --upgrade 'hepnum<2'", _pip_upgrade(venv_python, env))
        got = _run([str(venv_python), "-c", VERSION], env)
        story.show(f"python -c '{VERSION}'", got)
        story.claim(got == "1.22.3", "the plain venv still imports the stack's 1.22.3")

        story.step("A layer on the same stack (layervenv create)")
        result = create(CreateOptions(directory=str(base / "layer"), python=str(stack.python),
                                      environ=env))
        story.show(f"layervenv create {result.path}", result.human())
        layer_python = Path(result.path) / "bin" / "python"
        got = _run([str(layer_python), "-c", VERSION], env)
        story.show(f"{layer_python} -c '{VERSION}'", got)
        story.claim(got == "1.22.3", "before the upgrade the layer sees the stack's copy")
        story.show("python -m pip install --upgrade 'hepnum<2'", _pip_upgrade(layer_python, env))
        got = _run([str(layer_python), "-c", VERSION], env)
        story.show(f"{layer_python} -c '{VERSION}'", got)
        story.claim(got == "1.24.2", "the layer's 1.24.2 wins, without activation")
        shown = _run([str(layer_python), "-m", "pip", "show", "hepnum"], env)
        story.claim("Version: 1.24.2" in shown, "pip show reports the layer's copy")
        got = _run([str(layer_python), "-c", "import hepio, hepfit; print(hepio.__version__)"],
                   env)
        story.claim(got == "5.4.3", "the rest of the stack stays importable (hepio, hepfit)")

        story.step("Activated in bash, then deactivated")
        activate = Path(result.path) / "bin" / "activate"
        script = (f". '{activate}'; python -c '{VERSION}'; deactivate; "
                  f"python -c '{VERSION}'; printf '%s\\n' \"$PATH\"")
        lines = _run(["bash", "-c", script], env).splitlines()
        story.show(". layer/bin/activate; python ...; deactivate; python ...", "\n".join(lines[:2]))
        story.claim(lines[:2] == ["1.24.2", "1.22.3"], "active: the layer; deactivated: the stack")
        story.claim(lines[2:] == [env["PATH"]], "deactivate restored PATH exactly")

        story.step("What wins and what it shadows (layervenv list --shadowed)")
        listed = list_layer(result.path, shadowed_only=True, environ=env)
        story.show(f"layervenv list --shadowed {result.path}", listed.human())
        rows = {d.name: d for d in listed.distributions}
        hepnum = rows.get("hepnum")
        story.claim(hepnum is not None and hepnum.winner.origin == "layer"
                    and [c.version for c in hepnum.shadowed] == ["1.22.3"],
                    "list: the layer's hepnum wins and shadows the stack's 1.22.3")

        story.step("What will break (layervenv check)")
        checked = run_checks(Layer.open(Path(result.path)), env)
        story.show(f"layervenv check {result.path}", checked.human())
        story.claim(checked.ok, "check: no error in the layer")

        story.step("The stack")
        story.claim(tree_digest(stack.root) == digest, "not one byte under the stack changed")
    finally:
        if keep or workdir:
            print(f"\ndemo files kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    failed = count(story.failures, "claim")
    print("\nall claims hold" if not story.failures else f"\n{failed} FAILED")
    return 1 if story.failures else 0


def add_arguments(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``layervenv demo``'s options and help."""
    parser = commands.add_parser(
        "demo", help="show the problem and the fix on a simulated stack (offline)",
        description="Build a simulated read-only stack, show a plain venv failing on it, "
                    "then a layer succeeding.")
    parser.add_argument("--workdir", metavar="DIR", help="where to build (default: a temp dir)")
    parser.add_argument("--keep", action="store_true", help="keep the demo directory")
    parser.add_argument("--python", metavar="PATH", help="interpreter of the simulated stack")
    return parser
