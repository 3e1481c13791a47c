"""fish.  Rendered as ``bin/activate.fish``.

fish keeps PATH -- and every variable whose name ends in ``PATH``, so PYTHONPATH and
our own ``_LAYERVENV_*_PATH`` state too -- as a *list*, split on ``:`` when set from a
string, joined with ``:`` when quoted or exported.  Other variables are plain strings.
The dialect therefore only ever handles the joined form: a value is read as
``"$VAR"`` (the colon-joined string) and written as one string, which fish splits
again where the variable is a list.  The exported value is the same either way.

fish empties nothing: an empty entry in PATH is turned into ``.`` by fish itself when
it starts; activation keeps whatever value the shell has.

The prompt is a function (``fish_prompt``); it is saved by copying the function.
Only builtins are used (``set``, ``test``, ``string``, ``contains``, ``functions``,
``printf``): command substitutions run builtins in the shell itself, no process.
"""

from __future__ import annotations

from layervenv.runtime.envchange import EnvChange, applied_name
from layervenv.runtime.shells.dialect import (
    PREFIX,
    Dialect,
    PromptSyntax,
    render_aside,
    render_general,
    render_script,
    render_to_front,
)

#: the file activation reads where it sets another layer aside
ASIDE = "aside.fish"
#: the file ``deactivate`` reads for every case but the common one
GENERAL = "revert.fish"
#: the prompt hook, read by interactive shells
HOOK = "prompt-hook.fish"


def quote(value: str) -> str:
    """Single-quote ``value`` for fish (only ``\\`` and ``'`` are special inside)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


#: drop the first run of entries equal to {entry} from {var}: ":v:" with ":e:" replaced
#: once by ":", then the outer colons removed (":" alone, when v was e, becomes "")
_REMOVE_ENTRY = """\
set -g _layervenv_v (string replace -- ':'{entry}':' ':' ':'"${var}"':')
set -gx {var} (string replace -r -- '(?s)^:(.*):$|^:$' '$1' "$_layervenv_v")
set -e _layervenv_v"""

_OLD_PROMPT = "_layervenv_old_fish_prompt"

#: the old prompt runs with the status the command line left, as if it were not wrapped
_PROMPT = PromptSyntax(
    if_set="if functions -q fish_prompt",
    save=f"functions -e {_OLD_PROMPT}\nfunctions -c fish_prompt {_OLD_PROMPT}",
    set=f"""\
function fish_prompt
    set -l _layervenv_status $status
    printf '%s' {PREFIX}
    if functions -q {_OLD_PROMPT}
        echo "exit $_layervenv_status" | source
        {_OLD_PROMPT}
    end
end""",
    if_saved=f"if functions -q {_OLD_PROMPT}",
    restore=(f"functions -e fish_prompt\nfunctions -c {_OLD_PROMPT} fish_prompt\n"
             f"functions -e {_OLD_PROMPT}"),
    unset="functions -e fish_prompt",
    applied=quote("1"),
)

# A layer set aside (SetAsideLayer): the prompt it wrapped is given its form before that
# (its wrapper calls the saved prompt by name: wrapped again, it would call itself) and its
# wrapper is kept; given back over the prompt this layer's deactivate restored.
_ASIDE_PROMPT = "_layervenv_aside_fish_prompt"
_PROMPT_ASIDE = f"""\
if set -q {applied_name("fish_prompt")}
    functions -e {_ASIDE_PROMPT}
    functions -q fish_prompt; and functions -c fish_prompt {_ASIDE_PROMPT}
    functions -e fish_prompt
    if functions -q {_OLD_PROMPT}
        functions -c {_OLD_PROMPT} fish_prompt
        functions -e {_OLD_PROMPT}
    end
end"""
_PROMPT_BACK = f"""\
if functions -q {_ASIDE_PROMPT}
    functions -e {_OLD_PROMPT}
    functions -q fish_prompt; and functions -c fish_prompt {_OLD_PROMPT}
    functions -e fish_prompt
    functions -c {_ASIDE_PROMPT} fish_prompt
    functions -e {_ASIDE_PROMPT}
end"""

#: the entries ``{added}`` names, moved to the front of ``{var}`` where they are in it but
#: not in front
_TO_FRONT = """\
if set -q {added}
    set -l _layervenv_a ':'"${added}"':'
    set -l _layervenv_v ':'"${var}"':'
    if test (string sub -l (string length -- "$_layervenv_a") -- "$_layervenv_v") != "$_layervenv_a"
        set -l _layervenv_r (string replace -- "$_layervenv_a" ':' "$_layervenv_v")
        if test "$_layervenv_r" != "$_layervenv_v"
            set -gx {var} "${added}"(string replace -r -- ':$' '' "$_layervenv_r")
        end
    end
end"""

DIALECT = Dialect(
    name="fish",
    quote=quote,
    ref='"${var}"',
    if_set="if set -q {var}",
    if_unset="if not set -q {var}",
    if_empty='if test -z "${var}"',
    if_equal='if set -q {a}; and test "x${a}" = "x${b}"',
    else_="else",
    end_if="end",
    set_exported="set -gx {var} {value}",
    set_local="set -g {var} {value}",
    unset_exported="set -e {var}",
    unset_local="set -e {var}",
    prepend=(
        'if test -n "${var}"\n'
        '    set -gx {var} {entry}:"${var}"\n'
        "else\n"
        "    set -gx {var} {entry}\n"
        "end"
    ),
    remove_entry=_REMOVE_ENTRY,
    prompt_value="",
    prompt_var="fish_prompt",
    # fish looks commands up on PATH every time: nothing to forget
    rehash="",
    if_set_nonempty='if test -n "${var}"',
    if_missing="if not test -e {path}",
    fail="printf '%s\\n' {message} >&2\nreturn 1",
    flag_if_absent="contains -- {entry} (string split -- : \"${var}\"); or set -g {flag} ''",
    flag_if_contains=(
        'string match -q -r -- (string escape --style=regex -- {text}) "${var}"; '
        "and set -g {flag} 1"
    ),
    # a stack's setup command is POSIX shell code: fish replays the recorded environment
    eval="",
    source_or_say=("if test -r {path}\n    source {path}\nelse\n"
                   "    printf '%s\\n' {message} >&2\nend"),
    prompt=_PROMPT,
    prompt_aside=_PROMPT_ASIDE,
    prompt_back=_PROMPT_BACK,
    aside_file=ASIDE,
    to_front=_TO_FRONT,
    if_set_unless="if set -q {var}; and not set -q {flag}",
    if_venv_active=('if not set -q _LAYERVENV_ACTIVE; and set -q _OLD_VIRTUAL_PATH; '
                    'and test -n "$VIRTUAL_ENV"'),
)

_HEADER = """\
# Activate the layervenv layer {layer_comment}
# Generated by layervenv {version}; regenerated by "layervenv create --clear"; never edit it.
# Use it with "source bin/activate.fish" from fish; it cannot be run directly.

# Another layer active in this shell (its deactivate defined here) is set aside, not left
# (envchange.SetAsideLayer): its prompt hook goes, _layervenv_nest tells the apply part to
# move its state aside; this layer's deactivate gives it back with a deactivate of its
# own.  This layer active, or one layer already set aside: that one is left first with its
# own deactivate, which knows the stack it re-established and gives the one below back.
if set -q _LAYERVENV_ACTIVE; and functions -q deactivate
    if contains -- "$_LAYERVENV_ACTIVE" {leave}; or set -q _LAYERVENV_ASIDE
        deactivate nondestructive
    end
    set -e _layervenv_nest
    if set -q _LAYERVENV_ACTIVE
        set -g _layervenv_nest 1
        if set -q _layervenv_hooked
            functions -e _layervenv_hook
            set -e _layervenv_hooked
        end
    end
end

# A venv (python -m venv, virtualenv) active in this shell is set aside, not left: its
# deactivate would drop what was added to PATH since (a stack).  Its deactivate is kept
# aside, given back by this layer's deactivate; the apply part takes its bin out of PATH.
if not set -q _LAYERVENV_ACTIVE; and set -q VIRTUAL_ENV; and set -q _OLD_VIRTUAL_PATH
    if functions -q deactivate; and not functions -q _layervenv_venv_deactivate
        functions -c deactivate _layervenv_venv_deactivate
    end
end

function deactivate --description "Deactivate the layervenv layer"
{unhook}{revert}    if set -q _layervenv_nest; or test "$argv[1]" != nondestructive
        functions -e deactivate
        if set -q _LAYERVENV_ACTIVE
            # a layer set aside, given back: its deactivate is its general revert
            function deactivate --description "Deactivate the layervenv layer"
                if set -q _LAYERVENV_ACTIVE
                    if test -r "$_LAYERVENV_ACTIVE/bin/{general_file}"
                        source "$_LAYERVENV_ACTIVE/bin/{general_file}"
                    else
                        printf 'layervenv: cannot deactivate: %s is gone (was the layer moved\
 or deleted?); start a new shell\\n' "$_LAYERVENV_ACTIVE/bin/{general_file}" >&2
                    end
                end
                if test "$argv[1]" != nondestructive
                    functions -e deactivate
                    if not set -q _LAYERVENV_ACTIVE; and functions -q _layervenv_venv_deactivate
                        functions -c _layervenv_venv_deactivate deactivate
                        functions -e _layervenv_venv_deactivate
                    end
                end
            end
            # activation refused after the header set it aside: that layer is what is there
            if set -q _layervenv_nest
                set -e _layervenv_nest
                deactivate $argv
            end
        else if functions -q _layervenv_venv_deactivate
            functions -c _layervenv_venv_deactivate deactivate
            functions -e _layervenv_venv_deactivate
        end
    end
end

# Leave a layer inherited from a parent shell (its state is in exported _LAYERVENV_*
# variables), so that activating again never duplicates an entry.
if not set -q _layervenv_nest
    deactivate nondestructive
end

{checks}
{apply}{hook}"""

#: the prompt hook of interactive fish: what installs it, read from bin/prompt-hook.fish,
#: and how deactivate removes it (a function run at the fish_prompt event; nothing of the
#: user's is changed to install it)
_HOOK = """\
if status is-interactive; and test -z "$LAYERVENV_NO_PROMPT_HOOK"
    source {path}
end
"""
_UNHOOK = """\
    if set -q _layervenv_hooked
        functions -e _layervenv_hook
        set -e _layervenv_hooked
    end
"""
_HOOK_FILE = """\
# The prompt hook of the layervenv layer {layer_comment} (interactive fish)
# Generated by layervenv {version}; read by bin/activate.fish; never edit it.

function _layervenv_hook --on-event fish_prompt
{checks}end
set -g _layervenv_hooked 1
"""



def render(env: EnvChange, version: str) -> dict[str, str]:
    """``bin/activate.fish`` and ``bin/revert.fish`` for the layer described by ``env``;
    with a prompt hook, ``bin/prompt-hook.fish``."""
    hook = f"{env.layer}/bin/{HOOK}"
    fields = {"general_file": GENERAL,
              "leave": " ".join(quote(root) for root in env.aside.leave) if env.aside else "",
              "hook": _HOOK.format(path=quote(hook)) if env.prompt_hook else "",
              "unhook": _UNHOOK if env.prompt_hook else ""}
    scripts = {"activate.fish": render_script(_HEADER, env, DIALECT, version, GENERAL, **fields),
               GENERAL: render_general(env, DIALECT, version, "fish"),
               ASIDE: render_aside(env, DIALECT, version)}
    if env.prompt_hook:
        scripts[HOOK] = _HOOK_FILE.format(layer_comment=env.layer.replace("\n", " "),
                                          version=version,
                                          checks=render_to_front(env, DIALECT, indent=1))
    return scripts
