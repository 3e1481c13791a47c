"""Conventions people type from habit: -V, -q/-v, --system-site-packages, --python 3.X,
--prompt ., a default DIR, plurals, progress lines, and generated shell completion
checked in the real shells (their own completion machinery, not our parser)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import SRC, py, run_tool, shell_path
from hypothesis import given
from hypothesis import strategies as st

from layervenv.app.parser import build_parser
from layervenv.app.runners import RUNNERS
from layervenv.infra.output import count
from layervenv.inspection.problems import Problem


def _leaves(parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
            ) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every leaf sub-command (nested ones too) with its words, read from argparse's own
    tree: a command added later is covered here without editing this file."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(words, parser)]
    return [leaf for action in subs for name, child in action.choices.items()
            for leaf in _leaves(child, (*words, name))]


LEAVES = dict(_leaves(build_parser(RUNNERS)))
#: the top-level commands, in the parser's order
COMMANDS = tuple(dict.fromkeys(words[0] for words in LEAVES))
#: the leaves that offer --format
FORMATTED = [words for words, parser in LEAVES.items()
             if any("--format" in action.option_strings for action in parser._actions)]


def _help_options(*command: str) -> set[str]:
    """The options ``layervenv COMMAND --help`` shows (argparse's text, read with a regex)."""
    text = run_tool(*command, "--help").stdout
    # the invocation column: lines "  -x, --xx VALUE   help", up to the help text
    columns = [line.strip().split("  ")[0] for line in text.split("options:", 1)[1].splitlines()
               if line.startswith("  -")]
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", " ".join(columns)))


def test_dash_capital_v_is_the_version():
    assert run_tool("-V").stdout == run_tool("--version").stdout
    assert run_tool("-V").stdout.startswith("layervenv ")


def test_the_walk_finds_what_the_help_lists():
    """The commands ``layervenv --help`` shows are the walk's, and it goes into nested
    ones (``kernel install``)."""
    text = run_tool("--help").stdout.split("COMMAND", 2)[2]
    listed = re.findall(r"^    ([a-z]+) ", text, re.M)
    assert tuple(listed) == COMMANDS
    assert {("kernel", "install"), ("kernel", "list"), ("kernel", "remove")} <= set(LEAVES)
    assert ("kernel",) not in LEAVES and {("list",), ("check",)} <= set(FORMATTED)


@pytest.mark.parametrize("words", LEAVES, ids=" ".join)
def test_every_leaf_has_help_quiet_and_verbose(words):
    """``--help`` prints its usage; ``-q`` and ``-v`` are options of the leaf: given both,
    the parser names both as exclusive (an unknown one would be "unrecognized")."""
    helped = run_tool(*words, "--help")
    assert helped.stdout.startswith(f"usage: layervenv {' '.join(words)} ")
    assert {"-q", "--quiet", "-v", "--verbose"} <= _help_options(*words)
    both = run_tool(*words, "-q", "-v", check=False)
    assert both.returncode == 2, both.stderr
    assert "argument -v/--verbose: not allowed with argument -q/--quiet" in both.stderr
    assert "unrecognized" not in both.stderr


def _json_arguments(words: tuple[str, ...], layer: Path, stack, tmp_path: Path) -> list[str]:
    """What a leaf needs besides ``--format json`` to do its work on ``layer``; by default
    the layer as DIR (list, check, and a command added later that takes one)."""
    recipes = {
        ("create",): [str(tmp_path / "new")],
        ("lock",): [str(layer), "-o", str(tmp_path / "pylock.toml")],
        ("rebase",): [str(layer), "--python", str(stack.python)],
        ("pack",): [str(layer), "-o", str(tmp_path / "layer.tar.gz")],
        ("install",): [str(layer), "hepconf==1.0.0"],
        ("kernel", "install"): [str(layer), "--prefix", str(tmp_path / "prefix")],
        ("kernel", "list"): [],
        ("kernel", "remove"): ["conventions"],
    }
    return recipes.get(words, [str(layer)])


@pytest.mark.parametrize("words", FORMATTED, ids=" ".join)
def test_format_json_prints_json(words, make_layer, stack, tmp_path):
    """On a real small layer, with ``-v`` (which must not spoil standard output)."""
    layer = make_layer()
    if words[0] == "kernel":  # kernelspecs need only that ipykernel be found
        site = next((layer.root / "lib").glob("python*/site-packages"))
        (site / "ipykernel_launcher.py").write_text("", encoding="utf-8")
        run_tool("kernel", "install", str(layer.root), "--name", "conventions", env=layer.env)
    result = run_tool(*words, *_json_arguments(words, layer.root, stack, tmp_path), "--format",
                      "json", "-v", env=layer.env, check=False)
    assert result.returncode in ((0, 1) if words == ("check",) else (0,)), result.stderr
    assert isinstance(json.loads(result.stdout), (dict, list))
    assert result.stderr.startswith("layervenv: layervenv ")


def test_quiet_and_verbose_on_create(tmp_path, stack_env):
    quiet = run_tool("create", "-q", str(tmp_path / "q"), env=stack_env)
    assert quiet.stdout == "" and (tmp_path / "q" / "layervenv.toml").is_file()
    loud = run_tool("create", "-v", str(tmp_path / "v"), env=stack_env)
    assert loud.stderr.startswith("layervenv: layervenv ") and sys.executable in loud.stderr
    assert loud.stdout.startswith("created layer")
    both = run_tool("create", "-q", "-v", str(tmp_path / "b"), env=stack_env, check=False)
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_system_site_packages_is_accepted_and_changes_nothing(tmp_path, stack_env):
    result = run_tool("create", "--system-site-packages", str(tmp_path / "l"), env=stack_env)
    assert "--system-site-packages changes nothing" in result.stderr
    cfg = (tmp_path / "l" / "pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfg
    assert py(tmp_path / "l" / "bin" / "python", "import hepconf; print('ok')",
              stack_env) == "ok"


def test_python_version_is_found_on_path(tmp_path, stack_env):
    """``--python 3.11`` is python3.11 on PATH; the layer's interpreter says so itself."""
    minor = f"{sys.version_info[0]}.{sys.version_info[1]}"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / f"python{minor}").symlink_to(sys.executable)
    env = {**stack_env, "PATH": f"{bin_dir}:{stack_env['PATH']}"}
    run_tool("create", "--python", minor, str(tmp_path / "l"), env=env)
    version = py(tmp_path / "l" / "bin" / "python", "import sys; print(sys.version)", env)
    assert version.startswith(minor + ".")
    run_tool("create", "--python", f"python{minor}", str(tmp_path / "m"), env=env)
    missing = run_tool("create", "--python", "3.99", str(tmp_path / "n"), env=env, check=False)
    assert missing.returncode == 2 and missing.stderr.startswith("layervenv: error: no "
                                                                 "python3.99 on PATH")
    assert not (tmp_path / "n").exists()


def test_prompt_dot_is_the_current_directory_name(tmp_path, stack_env):
    project = tmp_path / "my-analysis"
    project.mkdir()
    run_tool("create", "--prompt", ".", str(tmp_path / "l"), env=stack_env, cwd=project)
    out = subprocess.run([shell_path("bash"), "-c", f". {tmp_path}/l/bin/activate && "
                          'printf %s "$VIRTUAL_ENV_PROMPT"'], env=stack_env,
                         capture_output=True, text=True, check=True).stdout
    assert out == "my-analysis"


def test_create_without_dir_makes_dot_venv(tmp_path, stack_env):
    result = run_tool("create", "--format", "json", env=stack_env, cwd=tmp_path)
    assert json.loads(result.stdout)["path"] == str(tmp_path / ".venv")
    assert (tmp_path / ".venv" / "pyvenv.cfg").is_file()


@given(st.integers(min_value=0, max_value=10**6))
def test_count_is_singular_for_one_only(number):
    text = count(number, "distribution")
    assert text == f"{number} distribution" + ("" if number == 1 else "s")
    assert count(number, "copy", "copies").endswith("copy" if number == 1 else "copies")


def test_list_counts_with_the_right_plural(make_layer):
    layer = make_layer()
    human = run_tool("list", str(layer.root), env=layer.env).stdout.splitlines()[-1]
    number = len(json.loads(run_tool("list", str(layer.root), "--format", "json",
                                     env=layer.env).stdout))
    assert human.startswith(count(number, "distribution") + " (")


def test_progress_lines_go_to_stderr_with_verbose_only_off_a_terminal(make_layer, tmp_path):
    layer = make_layer()
    subprocess.run([str(layer.python), "-m", "pip", "install", "-q", "hepconf==1.0.0"],
                   env=layer.env, check=True, capture_output=True)
    plain = run_tool("lock", str(layer.root), "-o", str(tmp_path / "a.toml"), env=layer.env)
    assert "..." not in plain.stderr
    loud = run_tool("lock", "-v", str(layer.root), "-o", str(tmp_path / "b.toml"),
                    env=layer.env)
    assert re.search(r"^layervenv: .+\.\.\.$", loud.stderr, re.M)
    assert "..." not in loud.stdout


# --- completion, asked of the shells themselves --------------------------------------

def _completion(shell: str, tmp_path: Path) -> Path:
    path = tmp_path / f"layervenv.{shell}"
    path.write_text(run_tool("completion", shell).stdout, encoding="utf-8")
    return path


def _bash_complete(script: Path, words: list[str], shell: str = "bash") -> list[str]:
    """COMPREPLY for the command line ``words`` (the last one being completed)."""
    array = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    code = (f"source {script}; COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}; "
            '_layervenv; printf "%s\\n" "${COMPREPLY[@]}"')
    if shell == "zsh":  # as zsh's bashcompinit runs the function: sh emulation
        code = (f"source {script}; emulate sh; COMP_WORDS=({array}); "
                f"COMP_CWORD={len(words) - 1}; _layervenv; "
                'printf "%s\\n" "${COMPREPLY[@]}"')
    out = subprocess.run([shell_path(shell), "-c", code], capture_output=True, text=True,
                         check=True, cwd=script.parent).stdout
    return [line for line in out.splitlines() if line]


def test_bash_completion_registers_and_completes(tmp_path):
    script = _completion("bash", tmp_path)
    registered = subprocess.run([shell_path("bash"), "-c", f"source {script}; complete -p "
                                 "layervenv"], capture_output=True, text=True, check=True)
    assert "-F _layervenv" in registered.stdout and registered.stdout.rstrip().endswith(
        " layervenv")
    assert _bash_complete(script, ["layervenv", "cre"]) == ["create"]
    assert set(COMMANDS) <= set(_bash_complete(script, ["layervenv", ""]))
    assert _bash_complete(script, ["layervenv", "list", "--format", ""]) == ["human", "json"]
    (tmp_path / "somedir").mkdir()
    (tmp_path / "somefile").write_text("")
    assert _bash_complete(script, ["layervenv", "check", "some"]) == ["somedir"]
    assert "somefile" in _bash_complete(script, ["layervenv", "create", "--from", "some"])
    assert "bash" in _bash_complete(script, ["layervenv", "run", "d", "--", "bas"])


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_of_every_command_completes(tmp_path, command):
    """What --help lists is what completion offers after '-', in bash and zsh."""
    for shell in ("bash", "zsh"):
        script = _completion(shell, tmp_path)
        offered = set(_bash_complete(script, ["layervenv", command, "-"], shell))
        assert offered == _help_options(command), shell


def test_zsh_registers_the_completion(tmp_path):
    script = _completion("zsh", tmp_path)
    out = subprocess.run([shell_path("zsh"), "-f", "-c", f"autoload -U compinit; compinit -u; "
                          f"source {script}; print -r -- $_comps[layervenv]"],
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert "_layervenv" in out


def test_fish_completes_commands_options_and_values(tmp_path):
    script = _completion("fish", tmp_path)

    def complete(line: str) -> list[str]:
        out = subprocess.run([shell_path("fish"), "--no-config", "-c",
                              f"source {script}; complete -C {json.dumps(line)}"],
                             capture_output=True, text=True, check=True).stdout
        return [entry.split("\t")[0] for entry in out.splitlines()]

    assert complete("layervenv cre") == ["create"]
    assert set(COMMANDS) <= set(complete("layervenv "))
    assert complete("layervenv list --format ") == ["human", "json"]
    for command in ("create", "lock", "list"):
        longs = {o for o in _help_options(command) if o.startswith("--")}
        assert longs <= set(complete(f"layervenv {command} --")), command


def _positional_problems(source: str) -> list[int]:
    """Lines of ``source`` that make a Problem with more than kind, severity and message
    positionally (or with ``*args``, which could be anything)."""
    return [node.lineno for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Call)
            and (node.func.id if isinstance(node.func, ast.Name) else
                 node.func.attr if isinstance(node.func, ast.Attribute) else None) == "Problem"
            and (len(node.args) > 3 or any(isinstance(a, ast.Starred) for a in node.args))]


def test_problem_optional_fields_are_keyword_only():
    """A name passed after the message is refused at run time, and the constructor
    written out for Python 3.9 (no ``kw_only``) takes every field, under its name."""
    with pytest.raises(TypeError):
        Problem("conflict", "error", "a requires b", "a")  # type: ignore[misc]
    made = Problem("conflict", "error", "a requires b<1", distribution="a",
                   distributions=["a"], requirement="b<1")
    assert (made.distribution, made.distributions, made.requirement) == ("a", ["a"], "b<1")
    assert dataclasses.replace(made, message="m") == Problem(
        "conflict", "error", "m", distribution="a", distributions=["a"], requirement="b<1")
    parameters = list(inspect.signature(Problem).parameters.values())
    fields = dataclasses.fields(Problem)
    assert [p.name for p in parameters] == [f.name for f in fields]
    for parameter, field in zip(parameters, fields):
        optional = field.default is not dataclasses.MISSING
        assert (parameter.kind == parameter.KEYWORD_ONLY) == optional, field.name
        assert parameter.default == (field.default if optional else parameter.empty)


def test_no_problem_is_made_with_positional_optional_fields():
    """Also in code no test runs: the source is read, not executed."""
    assert _positional_problems('Problem("k", "error", "m", name)\n'
                                'x = inspection.Problem(*args)\n'
                                'Problem("k", "error", "m", distribution=name)\n') == [1, 2]
    sources = {str(path.relative_to(SRC)): path.read_text(encoding="utf-8")
               for path in sorted(SRC.rglob("*.py"))}
    assert sum("Problem(" in text for text in sources.values()) >= 5  # the checks are read
    found = {name: lines for name, text in sources.items()
             if (lines := _positional_problems(text))}
    assert found == {}
