"""``layervenv shell [DIR]``: the user's own shell, interactive, with the layer activated.

For csh users, and anyone who would rather not source anything (``poetry shell``,
``pipenv shell`` and ``hatch shell`` do the same for their environments).  The shell
reads its start-up files as it always does, and *then* sources the layer's activation
script, so the layer ends up on top of whatever those files set up, as if the user had
typed ``. bin/activate`` at the first prompt; ``exit`` returns to this process's shell,
which nothing changed.  Shells have no option that reads one more file after their own,
so each gets a small start-up file in a private temporary directory, in its own way:

* bash: ``--rcfile`` names ours, which reads ``~/.bashrc`` first;
* zsh: ``ZDOTDIR`` names our directory, whose ``.zshenv`` and ``.zshrc`` read the user's
  (from the user's ``ZDOTDIR``, also when ``.zshenv`` sets it) and give ``ZDOTDIR`` back;
* fish: ``-C`` runs a command after the user's configuration;
* tcsh and csh: ``HOME`` names our directory for as long as it takes to read our
  ``.tcshrc``/``.cshrc``, which gives ``HOME`` back and reads the user's;
* ksh and sh (dash): ``ENV`` names ours, which reads the user's ``ENV`` file (ksh: or
  ``~/.kshrc``).

Which shell: ``$SHELL``, else the user's login shell from the password database (a shell
started with ``env -i`` has no ``SHELL``).  Activation does the rest as it does anywhere:
a layer already active, or inherited from a parent shell, is left first; a ``--setup``
layer re-establishes its stack where it is not set up.
"""

from __future__ import annotations

import argparse
import os
import pwd
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from layervenv.infra.arguments import add_active_dir
from layervenv.infra.errors import UserError
from layervenv.model.layer import Layer
from layervenv.runtime.shells import csh, fish, posix


@dataclass
class Plan:
    """How to start one shell: its command line, what to add to its environment, and the
    start-up files to write into the temporary directory."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)


def _bash(program: str, layer: Layer, tmp: Path, environ: dict[str, str]) -> Plan:
    rc = "\n".join([
        "# layervenv shell: the user's ~/.bashrc, then the layer's activation",
        'if [ -f ~/.bashrc ]; then . ~/.bashrc; fi',
        f". {posix.quote(str(layer.bin_dir / 'activate'))}", ""])
    return Plan([program, "--rcfile", str(tmp / "bashrc"), "-i"], files={"bashrc": rc})


#: where the user's ZDOTDIR (if any) waits while ours is in effect
ZDOTDIR_KEPT = "LAYERVENV_SHELL_ZDOTDIR"

_ZSHENV = f"""\
# layervenv shell: the user's .zshenv (from the user's ZDOTDIR), then this directory again
if (( ${{+{ZDOTDIR_KEPT}}} )); then ZDOTDIR=${ZDOTDIR_KEPT}; else unset ZDOTDIR; fi
if [[ -r ${{ZDOTDIR:-$HOME}}/.zshenv ]]; then source ${{ZDOTDIR:-$HOME}}/.zshenv; fi
if (( ${{+ZDOTDIR}} )); then {ZDOTDIR_KEPT}=$ZDOTDIR; else unset {ZDOTDIR_KEPT}; fi
ZDOTDIR={{tmp}}
"""

_ZSHRC = f"""\
# layervenv shell: the user's ZDOTDIR given back, the user's .zshrc, then the layer
if (( ${{+{ZDOTDIR_KEPT}}} )); then ZDOTDIR=${ZDOTDIR_KEPT}; else unset ZDOTDIR; fi
unset {ZDOTDIR_KEPT}
if [[ -r ${{ZDOTDIR:-$HOME}}/.zshrc ]]; then source ${{ZDOTDIR:-$HOME}}/.zshrc; fi
. {{activate}}
"""


def _zsh(program: str, layer: Layer, tmp: Path, environ: dict[str, str]) -> Plan:
    env = {"ZDOTDIR": str(tmp)}
    if "ZDOTDIR" in environ:
        env[ZDOTDIR_KEPT] = environ["ZDOTDIR"]
    files = {".zshenv": _ZSHENV.replace("{tmp}", posix.quote(str(tmp))),
             ".zshrc": _ZSHRC.replace("{activate}",
                                      posix.quote(str(layer.bin_dir / "activate")))}
    return Plan([program, "-i"], env=env, files=files)


def _fish(program: str, layer: Layer, tmp: Path, environ: dict[str, str]) -> Plan:
    activate = fish.quote(str(layer.bin_dir / "activate.fish"))
    return Plan([program, "-i", "-C", f"source {activate}"])


#: where the user's HOME waits while csh reads our start-up file from a HOME of ours
HOME_KEPT = "LAYERVENV_SHELL_HOME"

_CSHRC = f"""\
# layervenv shell: HOME given back, the user's start-up file, then the layer
setenv HOME "${HOME_KEPT}"
set home = "${HOME_KEPT}"
unsetenv {HOME_KEPT}
if ( $?tcsh && -r ~/.tcshrc ) then
    source ~/.tcshrc
else if ( -r ~/.cshrc ) then
    source ~/.cshrc
endif
source {{activate}}
"""


def _csh(program: str, layer: Layer, tmp: Path, environ: dict[str, str]) -> Plan:
    rc = _CSHRC.replace("{activate}", csh.quote(str(layer.bin_dir / "activate.csh")))
    return Plan([program, "-i"], env={"HOME": str(tmp), HOME_KEPT: home_of(environ)},
                files={".tcshrc": rc, ".cshrc": rc})


#: where the user's ENV (if any) waits while ours is in effect
ENV_KEPT = "LAYERVENV_SHELL_ENV"

_ENV_FILE = f"""\
# layervenv shell: ENV given back, the file it names, then the layer
if [ -n "${{{ENV_KEPT}+x}}" ]; then ENV=${ENV_KEPT}; export ENV; else unset ENV; fi
unset {ENV_KEPT}
_layervenv_env={{default}}
if [ -n "${{ENV+x}}" ]; then eval "_layervenv_env=\\"$ENV\\""; fi
if [ -n "$_layervenv_env" ] && [ -r "$_layervenv_env" ]; then . "$_layervenv_env"; fi
unset _layervenv_env
. {{activate}}
"""


def _env_file(program: str, layer: Layer, tmp: Path, environ: dict[str, str]) -> Plan:
    # ksh reads ~/.kshrc when ENV is unset; sh (dash) reads nothing
    default = '~/.kshrc' if Path(program).name.endswith("ksh") else "''"
    env = {"ENV": str(tmp / "env.sh")}
    if "ENV" in environ:
        env[ENV_KEPT] = environ["ENV"]
    rc = _ENV_FILE.replace("{default}", default).replace(
        "{activate}", posix.quote(str(layer.bin_dir / "activate")))
    return Plan([program, "-i"], env=env, files={"env.sh": rc})


Planner = Callable[[str, Layer, Path, dict[str, str]], Plan]

#: the shells ``layervenv shell`` starts, by the name of their program
PLANNERS: dict[str, Planner] = {
    "bash": _bash, "zsh": _zsh, "fish": _fish, "tcsh": _csh, "csh": _csh, "bsd-csh": _csh,
    "ksh": _env_file, "ksh93": _env_file, "mksh": _env_file, "sh": _env_file,
    "dash": _env_file,
}


def home_of(environ: dict[str, str]) -> str:
    """HOME, else the user's home directory from the password database."""
    return environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir


def user_shell(environ: dict[str, str]) -> str:
    """$SHELL, else the user's login shell (``env -i`` leaves no SHELL), else /bin/sh."""
    shell = environ.get("SHELL")
    if not shell:
        try:
            shell = pwd.getpwuid(os.getuid()).pw_shell
        except KeyError:
            shell = ""
    return shell or "/bin/sh"


def shell(directory: str | None, environ: dict[str, str] | None = None) -> int:
    """Start the user's shell with the layer active; its exit status when it ends."""
    environ = dict(os.environ if environ is None else environ)
    layer = Layer.from_argument(directory)
    layer.refuse_if_moved()
    program = user_shell(environ)
    name = Path(program).name.lstrip("-")
    planner = PLANNERS.get(name)
    if planner is None:
        raise UserError(f"layervenv shell does not know the shell {program} ($SHELL): it "
                        f"starts {', '.join(sorted(set(PLANNERS) - {'ksh93', 'mksh'}))}; "
                        f"set SHELL to one of them, or source the layer's activation script")
    with tempfile.TemporaryDirectory(prefix="layervenv-shell-") as tmp:
        plan = planner(program, layer, Path(tmp), environ)
        for file_name, text in plan.files.items():
            (Path(tmp) / file_name).write_text(text, encoding="utf-8")
        env = dict(environ, **plan.env)
        env.setdefault("HOME", home_of(environ))
        print(f"layervenv: {name} with the layer {layer.root} active; exit returns here",
              file=sys.stderr)
        return _wait_for(plan.argv, env)


def _wait_for(argv: list[str], env: dict[str, str]) -> int:
    """Run the shell to its end; a signal typed at it is for it, not for this process."""
    ignored = (signal.SIGINT, signal.SIGQUIT)
    previous = [signal.signal(number, signal.SIG_IGN) for number in ignored]
    try:
        child = subprocess.Popen(argv, env=env, restore_signals=True,
                                 preexec_fn=_default_signals)
        status = child.wait()
    except OSError as error:
        raise UserError(f"cannot start {argv[0]}: {error.strerror}") from None
    finally:
        for number, handler in zip(ignored, previous):
            signal.signal(number, handler)
    return 128 - status if status < 0 else status


def _default_signals() -> None:
    """In the child: SIGINT and SIGQUIT back to their defaults (this process ignores them)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


def add_arguments(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``layervenv shell``'s options and help."""
    parser = commands.add_parser(
        "shell", help="start your shell with the layer activated",
        description="Start your shell ($SHELL: bash, zsh, fish, tcsh, csh, ksh or sh) "
                    "interactively, after its own start-up files, with the layer activated; "
                    "exit returns here. Exit status: the shell's.")
    add_active_dir(parser)
    return parser
