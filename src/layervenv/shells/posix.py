"""POSIX shells: bash, zsh, dash (sh) and ksh.  Rendered as ``bin/activate``.

Only builtins are used (``[``, ``case``, parameter expansion): sourcing
the script starts no process, so its cost does not grow with the layer's size.
Every builtin is written with a backslash (``\\unset``, ``\\[``): zsh, dash and ksh expand
aliases in a sourced file, bash does in every interactive shell, and a quoted command
name is never an alias, so a user's ``alias unset=...`` is not what activation runs.
Pattern operands are single-quoted literals in unquoted assignments, which every
one of these shells treats as plain text, whatever the layer's path contains.
"""

from __future__ import annotations

from dataclasses import replace

from layervenv.envchange import STATE_PREFIX, EnvChange, saved_name
from layervenv.shells.dialect import PREFIX, Dialect, PromptSyntax, render_script


def quote(value: str) -> str:
    """Single-quote ``value`` for any POSIX shell (a ``'`` becomes ``'\\''``)."""
    return "'" + value.replace("'", "'\\''") + "'"


# The first {entry} of {var} goes, every other entry (empty ones too) stays: with the
# value wrapped in ':', the entry is the first ':{entry}:'; what precedes and follows it
# are joined by one ':' and the wrapping ':' are taken off again.
_REMOVE_ENTRY = """\
case :${{{var}-}}: in
    *:{entry}:*)
        _layervenv_v=:${{{var}-}}:
        _layervenv_v=${{_layervenv_v%%:{entry}:*}}:${{_layervenv_v#*:{entry}:}}
        _layervenv_v=${{_layervenv_v#:}}
        {var}=${{_layervenv_v%:}}; \\export {var}
        \\unset _layervenv_v ;;
esac"""

_TEXT = STATE_PREFIX + "PROMPT"
_OLD_PS1 = saved_name("PS1")

# A prompt text with characters the shell expands when it shows PS1 -- bash, dash and
# ksh run $(...) and `...` found in PS1 at every prompt, bash decodes \w, ksh turns !
# into the history number, zsh reads %d -- is kept in a variable that PS1 refers to:
# what an expansion yields is not expanded again.  zsh expands ${...} in PS1 only with
# PROMPT_SUBST, so without it the text goes in literally, its % doubled.
_GUARDED_PROMPT = PromptSyntax(
    if_set='if \\[ -n "${PS1+x}" ]; then',
    save=f'{_OLD_PS1}="${{PS1}}"',
    set=f"""\
{_TEXT}={PREFIX}
if \\[ -n "${{ZSH_VERSION-}}" ]; then
    if [[ -o promptsubst ]]; then
        PS1='${{{_TEXT}//\\%/%%}}'"${{PS1-}}"
    else
        PS1="${{{_TEXT}//\\%/%%}}${{PS1-}}"
    fi
elif \\[ -n "${{KSH_VERSION-}}" ]; then
    PS1='${{{_TEXT}//!/!!}}'"${{PS1-}}"
else
    PS1='${{{_TEXT}}}'"${{PS1-}}"
fi""",
    if_saved=f'if \\[ -n "${{{_OLD_PS1}+x}}" ]; then',
    restore=f'PS1="${{{_OLD_PS1}}}"\n\\unset {_OLD_PS1} {_TEXT}',
    unset=f"\\unset PS1 {_TEXT}",
    applied='"${PS1}"',
)

# LeaveStacks (a kernel's launcher; see envchange.LeaveStacks for the rule).  A value is
# split at each ':' by cutting ${v%%:*} off "$v:" -- no IFS, no globbing, empty entries
# seen as they are.  The PYTHONPATH the launcher was started with stays in
# _layervenv_all: the prefixes of the other stacks are read from it.
_LEAVE_PYTHONPATH = """\
_layervenv_all=${{PYTHONPATH-}}
if \\[ -n "${{PYTHONPATH+x}}" ]; then
    _layervenv_rest=$PYTHONPATH:
    _layervenv_kept=
    while \\[ -n "$_layervenv_rest" ]; do
        _layervenv_e=${{_layervenv_rest%%:*}}
        _layervenv_rest=${{_layervenv_rest#*:}}
        case $_layervenv_e in
            {own}) _layervenv_kept=${{_layervenv_kept:+$_layervenv_kept:}}$_layervenv_e ;;
        esac
    done
    if \\[ -n "$_layervenv_kept" ]; then
        \\export PYTHONPATH="$_layervenv_kept"
    else
        \\unset PYTHONPATH
    fi
fi"""

_LEAVE_BELOW = """\
if \\[ -n "${{{var}:+x}}" ]; then
    _layervenv_rest=${{{var}}}:
    _layervenv_kept=
    _layervenv_none=1
    while \\[ -n "$_layervenv_rest" ]; do
        _layervenv_e=${{_layervenv_rest%%:*}}
        _layervenv_rest=${{_layervenv_rest#*:}}
        _layervenv_drop=
        case $_layervenv_e in
            {keep}) ;;
            *)
                _layervenv_ps=$_layervenv_all:
                while \\[ -n "$_layervenv_ps" ]; do
                    _layervenv_p=${{_layervenv_ps%%:*}}
                    _layervenv_ps=${{_layervenv_ps#*:}}
                    case $_layervenv_p in
                        {own}) continue ;;
                        *site-packages*) ;;
                        *) continue ;;
                    esac
                    _layervenv_r=${{_layervenv_p%/lib*/python*}}
                    case $_layervenv_r in
                        "$_layervenv_p"|''|/|/usr|/usr/local) continue ;;
                    esac
                    case $_layervenv_e in
                        "$_layervenv_r"|"$_layervenv_r"/*) _layervenv_drop=1; break ;;
                    esac
                done ;;
        esac
        if \\[ -z "$_layervenv_drop" ]; then
            if \\[ -n "$_layervenv_none" ]; then
                _layervenv_kept=$_layervenv_e
                _layervenv_none=
            else
                _layervenv_kept=$_layervenv_kept:$_layervenv_e
            fi
        fi
    done
    if \\[ -n "$_layervenv_none" ]; then
        \\unset {var}
    else
        \\export {var}="$_layervenv_kept"
    fi
fi"""

_LEAVE_END = ("\\unset _layervenv_all _layervenv_rest _layervenv_kept _layervenv_e _layervenv_none "
              "_layervenv_drop _layervenv_ps _layervenv_p _layervenv_r")

#: what bash, dash, ksh or zsh expand in a prompt: then the guarded steps are used
PROMPT_EXPANDS = "$`\\!%"

DIALECT = Dialect(
    name="posix",
    quote=quote,
    ref='"${{{var}}}"',
    if_set='if \\[ -n "${{{var}+x}}" ]; then',
    if_unset='if \\[ -z "${{{var}+x}}" ]; then',
    if_empty='if \\[ -z "${{{var}:-}}" ]; then',
    if_equal='if \\[ -n "${{{a}+x}}" ] && \\[ "x${{{a}}}" = "x${{{b}}}" ]; then',
    else_="else",
    end_if="fi",
    # one builtin instead of two (values are always quoted: no field splitting in dash)
    set_exported="\\export {var}={value}",
    set_local="{var}={value}",
    unset_exported="\\unset {var}",
    unset_local="\\unset {var}",
    # ':' and the old value only when that is not empty: never an empty entry
    prepend='\\export {var}={entry}"${{{var}:+:${{{var}}}}}"',
    remove_entry=_REMOVE_ENTRY,
    prompt_value='{prefix}"${{{var}-}}"',
    prompt_var="PS1",
    # nothing to forget: POSIX shells discard remembered command locations whenever PATH
    # is assigned (XCU 2.9.1.1), and activation and deactivate always assign it
    rehash="",
    if_set_nonempty='if \\[ -n "${{{var}:-}}" ]; then',
    if_missing="if \\[ ! -e {path} ]; then",
    fail="\\printf '%s\\n' {message} >&2\n\\return 1",
    flag_if_absent='case ":${{{var}-}}:" in *:{entry}:*) ;; *) {flag}= ;; esac',
    flag_if_contains="case ${{{var}-}} in *{text}*) {flag}=1 ;; esac",
    eval="\\eval {command}",
    prompt_expands=PROMPT_EXPANDS,
    prompt_guarded=_GUARDED_PROMPT,
    leave_pythonpath=_LEAVE_PYTHONPATH,
    leave_below=_LEAVE_BELOW,
    leave_end=_LEAVE_END,
)

_HEADER = """\
# Activate the layervenv layer {layer_comment}
# Generated by layervenv {version}; regenerated by "layervenv create --clear"; never edit it.
# Use it with ". bin/activate" from bash, zsh, sh (dash) or ksh; it cannot be run directly.

# Run (bash bin/activate), it would activate a shell that ends at once: say so where the
# shell can tell (bash and zsh; dash and ksh see no difference).
if \\[ "${{BASH_SOURCE-}}" = "$0" ] || \\[ "${{ZSH_EVAL_CONTEXT-}}" = toplevel ]; then
    \\printf 'layervenv: this script must be sourced, not run: . %s/bin/activate\\n' {layer} >&2
    \\exit 2
fi

# A layer active in this shell is left with its own deactivate, which knows the stack it
# re-established (this layer's deactivate knows only this layer's stack).
if \\[ -n "${{_LAYERVENV_ACTIVE+x}}" ] && \\command -v deactivate >/dev/null 2>&1; then
    deactivate nondestructive
fi

# So is a venv (python -m venv, virtualenv) active in this shell, as activating another
# venv would: a layer on top of it would hide its deactivate for good.  Its deactivate
# is a function of this shell where its unexported _OLD_VIRTUAL_PATH is set.
if \\[ -z "${{_LAYERVENV_ACTIVE+x}}" ] && \\[ -n "${{_OLD_VIRTUAL_PATH+x}}" ]; then
    if \\[ -n "${{VIRTUAL_ENV:-}}" ] && \\command -v deactivate >/dev/null 2>&1; then
        deactivate nondestructive
    fi
fi

deactivate () {{
{revert}    if \\[ "${{1-}}" != nondestructive ]; then
        \\unset -f deactivate
    fi
}}

# Leave the layer active in this shell, or inherited from a parent shell (its state is
# in exported _LAYERVENV_* variables), so that activating again never duplicates an entry.
deactivate nondestructive

{checks}
{apply}"""


def render(env: EnvChange, version: str) -> dict[str, str]:
    """``bin/activate`` for the layer described by ``env``."""
    text = render_script(_HEADER, env, DIALECT, version)
    return {"activate": text}


_LAUNCHER = """\
#!/bin/sh
# The Jupyter kernel of the layer {layer_comment}
# Generated by layervenv {version} (layervenv kernel install; create --clear and rebase
# make it again); never edit it.  Started by a Jupyter client (through the kernelspec's
# own small launcher), it leaves whatever stack the client's environment carries that is
# not the layer's, re-establishes the layer's recorded stack as bin/activate does, puts
# the layer first and replaces itself with the layer's Python running ipykernel.
# layervenv-kernel-stack: {stack}

# A layer active where the client was started is left first, as bin/activate does.
_layervenv_leave_layer () {{
{revert}}}
_layervenv_leave_layer
\\unset -f _layervenv_leave_layer

{checks}
{apply}
\\exec {python} -m ipykernel_launcher "$@"
"""

#: the launcher runs (it is not sourced): a refusal ends it
LAUNCHER_DIALECT = replace(DIALECT, fail="\\printf '%s\\n' {message} >&2\n\\exit 2")


def render_kernel_launcher(env: EnvChange, version: str, python: str, stack: str) -> str:
    """The kernel launcher of the layer described by ``env`` (a kernel's EnvChange, with
    ``leave``): the same renderer and dialect as ``bin/activate``, but a refusal exits."""
    return render_script(_LAUNCHER, env, LAUNCHER_DIALECT, version,
                         python=LAUNCHER_DIALECT.quote(python), stack=stack.replace("\n", " "))
