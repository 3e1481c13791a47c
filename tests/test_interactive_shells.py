"""Real interactive shells under a pseudo-terminal (pexpect): the prompt hook.

Activation in an interactive bash, zsh, fish or tcsh installs a hook run before each
prompt: when something (here: the stack's setup, sourced after activation) put its
entries in front of the layer's ``bin``, the layer's entries go back in front, and what
the other tool added stays.  ``deactivate`` removes the hook and gives the user's own
prompt commands back exactly.  Each test is one short session; the layers are shared.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
from helpers import clean_env, import_or_missing, run_tool, shell_path

pexpect = import_or_missing("pexpect")

#: what every session's prompt ends with (the layer's prefix goes in front of it)
MARK = "@@P@@ "


#: how each shell starts interactive, reading no start-up file
SETUP = {
    "bash": ("--norc", "--noprofile", "-i"),
    "zsh": ("-f", "-i"),
    "fish": ("--no-config", "-i"),
    "tcsh": ("-f", "-i"),
}
#: MARK written in two quoted parts: the echo of the line typed is not a prompt
SPLIT = MARK[:2] + "''" + MARK[2:]
#: sets the prompt to MARK
PROMPT = {
    "bash": f"PS1='{SPLIT}'",
    "zsh": f"unsetopt zle; PS1='{SPLIT}'; PROMPT_EOL_MARK=''",
    "fish": f"function fish_prompt; printf '{SPLIT}'; end",
    "tcsh": f"set prompt = '{SPLIT}'",
    "ksh": f"PS1='{SPLIT}'",
    "dash": f"PS1='{SPLIT}'",
    "csh": f"set prompt = '{SPLIT}'",
}


class Session:
    """One interactive shell on a pseudo-terminal, driven line by line."""

    def __init__(self, shell: str, env: dict[str, str], argv: list[str] | None = None) -> None:
        self.shell = shell
        env = dict(env, TERM="dumb")
        command = argv or [shell_path(shell), *SETUP[shell]]
        self.child = pexpect.spawn(command[0], command[1:], env=env, encoding="utf-8",
                                   timeout=30, dimensions=(40, 2000))
        if argv is None:
            self.run(PROMPT[shell])

    #: printed after each command line (written in two parts: its echo is not it)
    DONE = "@@D@@"

    def run(self, line: str, status: bool = False) -> None:
        """Type ``line`` and wait until it ran and the next prompt came; ``status``: the
        line's status is what the prompt commands see (no end mark printed after it)."""
        if line and not status:
            self.child.sendline(f'{line}; echo "{self.DONE[:2]}""{self.DONE[2:]}"')
            self.child.expect_exact(self.DONE)
        else:  # Enter on an empty line, or a line whose status counts
            self.child.sendline(line)
        self.child.expect_exact(MARK)

    def value(self, expression: str, after: str = "") -> str:
        """What ``echo`` prints for ``expression`` (a variable, a command substitution),
        on the command line of ``after`` (before the next prompt)."""
        self.child.sendline(f'{after + "; " if after else ""}echo "R=[{expression}]"; '
                            f'echo "{self.DONE[:2]}""{self.DONE[2:]}"')
        # (pexpect's . matches a newline)
        self.child.expect(r"R=\[([^\r\n]*?)\]\r?\n")
        found = self.child.match.group(1)
        self.child.expect_exact(self.DONE)
        self.child.expect_exact(MARK)
        return found

    def close(self) -> None:
        self.child.sendline("exit")
        self.child.expect(pexpect.EOF)
        self.child.close()


@pytest.fixture(scope="module")
def hooked(tmp_path_factory, _built_stack):
    """A layer made on the stack, an --export-pythonpath one, and one made --no-prompt-hook."""
    base = tmp_path_factory.mktemp("interactive")
    env = _built_stack.env(clean_env(base))
    made = {}
    for name, args in (("plain", ()), ("exported", ("--export-pythonpath",)),
                       ("nohook", ("--no-prompt-hook",))):
        made[name] = base / f"layer {name}"
        run_tool("create", "--without-pip", str(made[name]), *args, env=env)
    return made


def _source(shell: str, layer: Path) -> str:
    script = {"fish": "activate.fish", "tcsh": "activate.csh"}.get(shell, "activate")
    path = shlex.quote(str(layer / "bin" / script))
    return f"source {path}" if shell in ("fish", "tcsh") else f". {path}"


def _stack_setup(shell: str, stack) -> str:
    """Sourcing the stack's setup (fish and tcsh: what it does to PATH)."""
    if shell in ("bash", "zsh"):
        return f". {shlex.quote(str(stack.setup_script))}"
    bin_dir = stack.root / "bin"
    if shell == "fish":
        return f"set -gx PATH {bin_dir} $PATH"
    return f'setenv PATH "{bin_dir}:$PATH"'


#: the user's own prompt command: counts prompts, keeps the status it saw; and how to
#: show what the shell holds of prompt commands (compared before and after)
USER_HOOK = {
    "bash-string": ("_upc () { _st=$?; _n=$((_n+1)); }; _n=0; PROMPT_COMMAND='_upc'",
                    "$(declare -p PROMPT_COMMAND)"),
    "bash-array": ("_upc () { _st=$?; _n=$((_n+1)); }; _n=0; "
                   "PROMPT_COMMAND=([0]=_upc [3]=': second')", "$(declare -p PROMPT_COMMAND)"),
    "bash-unset": ("_upc () { _st=$?; _n=$((_n+1)); }; _n=0; unset PROMPT_COMMAND",
                   "$(declare -p PROMPT_COMMAND 2>&1)"),
    "zsh": ("_upc () { _st=$?; _n=$((_n+1)); }; _n=0; precmd_functions=(_upc)",
            "$(typeset -p precmd_functions)"),
    "fish": ("function _upc --on-event fish_prompt; set -g _st $status; "
             "set -g _n (math $_n + 1); end; set -g _n 0",
             "$(functions --handlers-type generic | string join ,)"),
    "tcsh": ("set _n = 0; alias precmd '@ _n++'", "`alias precmd`"),
}


@pytest.mark.parametrize("case", sorted(USER_HOOK))
def test_prompt_hook_keeps_the_layer_in_front(case, hooked, _built_stack, base_env):
    """Activate, source the stack's setup, press Enter: ``python`` is the layer's again,
    with the stack's entries kept right behind the layer's; deactivate gives back the
    user's prompt commands exactly, which still run (and see the right $?), and the
    environment is what the setup alone would have made of it."""
    shell = case.split("-")[0]
    layer = hooked["plain"]
    define, show = USER_HOOK[case]
    session = Session(shell, base_env)
    try:
        session.run(define)
        before_hooks = session.value(show)
        before_path = session.value("$PATH")
        session.run(_source(shell, layer))
        stack_first = session.value("$PATH", after=_stack_setup(shell, _built_stack))
        session.run("")  # another prompt: the hook ran at the one before, and runs again
        during = session.value("$PATH")
        found = "`which python`" if shell == "tcsh" else "$(command -v python)"
        assert session.value(found) == str(layer / "bin" / "python")
        assert stack_first.split(":")[0] == str(_built_stack.root / "bin")
        bin_dir = str(layer / "bin")
        assert during == bin_dir + ":" + stack_first.replace(bin_dir + ":", "", 1)
        checks_status = shell != "tcsh" and case != "bash-unset"
        if checks_status:  # the user's hook, behind the layer's, sees the line's status
            session.run("false", status=True)
            assert session.value("$_st") == "1"
        session.run("deactivate")
        assert session.value(show) == before_hooks
        assert session.value("$PATH") == stack_first.replace(bin_dir + ":", "", 1)
        assert session.value("$PATH").endswith(before_path)
        if checks_status:
            session.run("false", status=True)
            assert session.value("$_st") == "1"
        count = session.value("$_n")
        session.run("")
        if case != "bash-unset":
            assert int(session.value("$_n")) > int(count)
        leftovers = session.value("$_layervenv_hooked" if shell != "tcsh"
                                  else "$?_layervenv_hooked")
        assert leftovers in ("", "0")
    finally:
        session.close()


@pytest.mark.parametrize("prompt_command", ["unset", "set"])
def test_prompt_hook_under_set_u(prompt_command, hooked, base_env):
    """A user's ``set -u`` (nounset) in an interactive bash: activation installs the hook
    without a word on the terminal (an unset PROMPT_COMMAND was read as ``@a``), and
    deactivate gives PROMPT_COMMAND back exactly."""
    session = Session("bash", base_env)
    try:
        session.run("unset PROMPT_COMMAND" if prompt_command == "unset"
                    else "PROMPT_COMMAND='_n=1'")
        session.run("set -u")
        before = session.value("${PROMPT_COMMAND-unset}")
        session.child.sendline(f"{_source('bash', hooked['plain'])}; echo \"S=[$?]\"")
        session.child.expect(r"S=\[(\d+)\]")
        said = session.child.before
        assert session.child.match.group(1) == "0"
        session.child.expect_exact(MARK)
        assert "unbound" not in said and "layervenv" not in said, said
        assert session.value("${_layervenv_hooked-no}") == "1"
        session.run("deactivate")
        assert session.value("${PROMPT_COMMAND-unset}") == before
    finally:
        session.close()


def test_prompt_hook_moves_the_exported_site_packages_back(hooked, _built_stack, base_env):
    """An --export-pythonpath layer's site-packages goes back in front of PYTHONPATH too."""
    layer = hooked["exported"]
    session = Session("bash", base_env)
    try:
        session.run(_source("bash", layer))
        site = session.value("${PYTHONPATH%%:*}")
        assert site.startswith(str(layer))
        session.run(_stack_setup("bash", _built_stack))
        session.run("")
        assert session.value("${PYTHONPATH%%:*}") == site
        assert session.value("${PATH%%:*}") == str(layer / "bin")
    finally:
        session.close()


@pytest.mark.parametrize("how", ["variable", "option"])
def test_no_prompt_hook_when_turned_off(how, hooked, _built_stack, base_env):
    """LAYERVENV_NO_PROMPT_HOOK=1, or a layer made --no-prompt-hook: no hook, the stack's
    setup wins as it would in a plain venv, and PROMPT_COMMAND is left alone."""
    layer = hooked["nohook" if how == "option" else "plain"]
    env = dict(base_env, LAYERVENV_NO_PROMPT_HOOK="1") if how == "variable" else base_env
    session = Session("bash", env)
    try:
        session.run(_source("bash", layer))
        session.run(_stack_setup("bash", _built_stack))
        session.run("")
        assert session.value("$(command -v python)") == str(_built_stack.root / "bin" / "python")
        assert session.value("${PROMPT_COMMAND-unset}") == "unset"
    finally:
        session.close()


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_no_prompt_hook_in_scripts(shell, hooked, base_env):
    """A non-interactive shell (a script) gets no hook: it stays deterministic."""
    script = (f"{_source(shell, hooked['plain'])}; "
              "echo \"${_layervenv_hooked-none}:${PROMPT_COMMAND-unset}:${precmd_functions-}\"")
    out = subprocess.run([shell_path(shell), "-c", script], env=base_env, capture_output=True,
                         text=True, check=True).stdout
    assert out == "none:unset:\n"


#: each shell's own start-up file (under HOME) and what it does: a variable, and PATH
RC_FILES = {
    "bash": (".bashrc", "RC_RAN=yes; PATH=/rc/bin:$PATH"),
    "zsh": (".zshrc", "RC_RAN=yes; PATH=/rc/bin:$PATH"),
    "fish": (".config/fish/config.fish", "set -g RC_RAN yes; set -gx PATH /rc/bin $PATH"),
    "tcsh": (".tcshrc", 'set RC_RAN = yes\nsetenv PATH "/rc/bin:$PATH"'),
    "ksh": (".kshrc", "RC_RAN=yes; PATH=/rc/bin:$PATH"),
    # dash reads the file ENV names (set below); BSD csh reads ~/.cshrc
    "dash": (".shrc", "RC_RAN=yes; PATH=/rc/bin:$PATH"),
    "csh": (".cshrc", 'set RC_RAN = yes\nsetenv PATH "/rc/bin:$PATH"'),
}


@pytest.mark.parametrize("shell", sorted(RC_FILES))
def test_layervenv_shell(shell, hooked, base_env, home, tmp_path):
    """``layervenv shell DIR`` starts $SHELL after its own start-up file, with the layer
    on top of what that file did; ``exit`` ends it with its status, and the temporary
    start-up files are gone."""
    from helpers import tool_command

    layer = hooked["plain"]
    name, text = RC_FILES[shell]
    (home / name).parent.mkdir(parents=True, exist_ok=True)
    (home / name).write_text(text + "\n", encoding="utf-8")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(base_env, SHELL=shell_path(shell), TMPDIR=str(scratch))
    if shell == "dash":
        env["ENV"] = str(home / name)
    session = Session(shell, env, argv=tool_command("shell", str(layer)))
    session.run(PROMPT[shell])
    assert session.value("$RC_RAN") == "yes"
    found = "`which python`" if shell in ("tcsh", "csh") else "$(command -v python)"
    # (ksh's command -v quotes a path with a space)
    assert session.value(found).strip("'") == str(layer / "bin" / "python")
    path = session.value("$PATH").split(":")
    assert path[:2] == [str(layer / "bin"), "/rc/bin"]
    assert session.value("$HOME") == str(home)
    session.child.sendline("exit 3")
    session.child.expect(pexpect.EOF)
    session.child.close()
    assert session.child.exitstatus == 3
    assert list(scratch.glob("layervenv-*")) == []


def test_layervenv_shell_nested(hooked, base_env, home, tmp_path):
    """``layervenv shell`` inside ``layervenv shell`` (the same layer, then another): the
    inner shell has each layer once, the other layer's only in the second case, and
    ``exit`` gives back the outer shell as it was."""
    from helpers import tool_command

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = dict(base_env, SHELL=shell_path("bash"), TMPDIR=str(scratch))
    outer = hooked["plain"]
    session = Session("bash", env, argv=tool_command("shell", str(outer)))
    try:
        session.run(PROMPT["bash"])
        before = session.value("$PATH")
        for inner in (outer, hooked["exported"]):
            session.child.sendline(shlex.join(tool_command("shell", str(inner))))
            session.run(PROMPT["bash"])
            path = session.value("$PATH").split(":")
            assert path[0] == str(inner / "bin")
            assert path.count(str(inner / "bin")) == 1
            assert (str(outer / "bin") in path) == (inner == outer)
            assert session.value("$VIRTUAL_ENV") == str(inner)
            session.child.sendline("exit")
            session.child.expect_exact(MARK)
            assert session.value("$PATH") == before
            assert session.value("$VIRTUAL_ENV") == str(outer)
    finally:
        session.close()


def test_layervenv_shell_from_an_empty_environment(tmp_path, _built_stack, home):
    """From ``env -i`` (only SHELL and HOME kept, no PATH): a --setup layer's shell has the
    stack re-established and the layer's python first."""
    from helpers import tool_command

    layer = tmp_path / "setup layer"
    run_tool("create", "--without-pip", str(layer), "--setup",
             f". {shlex.quote(str(_built_stack.setup_script))}", env=clean_env(home))
    env = {"SHELL": shell_path("bash"), "HOME": str(home)}
    session = Session("bash", env, argv=tool_command("shell", str(layer)))
    try:
        session.run(PROMPT["bash"])
        assert session.value("$(command -v python)") == str(layer / "bin" / "python")
        assert session.value("$SIMSTACK_NAME") == "LCG_sim"
        assert session.value("$(python -c 'import hepnum, sys; print(sys.prefix)')") == str(layer)
    finally:
        session.close()


def test_layervenv_shell_refuses_a_shell_it_does_not_know(hooked, base_env):
    """A $SHELL it cannot start with the layer activated: one line, nothing started."""
    result = run_tool("shell", str(hooked["plain"]), env=dict(base_env, SHELL="/usr/bin/rc"),
                      check=False)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "/usr/bin/rc" in result.stderr
