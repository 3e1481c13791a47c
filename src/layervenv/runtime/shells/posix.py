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

from layervenv.infra.quoting import quote
from layervenv.runtime.envchange import STATE_PREFIX, EnvChange, saved_name
from layervenv.runtime.shells.dialect import (
    PREFIX,
    Dialect,
    PromptSyntax,
    render_front_test,
    render_general,
    render_script,
    render_to_front,
    render_under,
    under_path,
)

#: the file ``deactivate`` reads for every case but the common one
GENERAL = "revert.sh"


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

#: the entries ``{added}`` names, moved to the front of ``{var}`` where they are in it but
#: not in front
_TO_FRONT = (
    'case ${{{added}+x}}:${{{var}-}}: in x:"${{{added}}}":*) ;; x:*:"${{{added}}}":*)\n'
    + "\n".join("\t" + line for line in _REMOVE_ENTRY.replace(
        "{entry}", '"${{{added}}}"').splitlines())
    + '\n\t\\export {var}="${{{added}}}:${{{var}}}"\n;; esac'
)

_TEXT = STATE_PREFIX + "PROMPT"
_OLD_PS1 = saved_name("PS1")

# A prompt text with characters the shell expands when it shows PS1 -- bash, dash and
# ksh run $(...) and `...` found in PS1 at every prompt, bash decodes \w, ksh turns !
# into the history number, zsh reads %d -- is kept in a variable that PS1 refers to:
# what an expansion yields is not expanded again.  zsh expands ${...} in PS1 only with
# PROMPT_SUBST, so without it the text goes in literally, its % doubled.
_GUARDED_PROMPT = PromptSyntax(
    if_set="case ${PS1+x} in x)",
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
    if_saved=f"case ${{{_OLD_PS1}+x}} in x)",
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
                        {packages}) ;;
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
    # the word of a case is neither split nor globbed; a quoted pattern is literal text
    if_set="case ${{{var}+x}} in x)",
    if_unset="case ${{{var}+x}} in '')",
    if_empty="case ${{{var}:-}} in '')",
    if_equal='case ${{{a}+x}}${{{a}-}} in "x${{{b}}}")',
    else_="else",
    end_if="fi",
    case_ends=(";; *)", ";; esac"),
    unset_joins=True,
    to_front=_TO_FRONT,
    if_not_in_front='case ${{{added}+x}}:${{{var}-}}: in x:"${{{added}}}":* | :*) ;; *)',
    # a tab, not four spaces: every character is read at each activation
    indent="\t",
    # one builtin instead of two (values are always quoted: no field splitting in dash)
    set_exported="\\export {var}={value}",
    set_local="{var}={value}",
    unset_exported="\\unset {var}",
    unset_local="\\unset {var}",
    # ':' and the old value only when that is not empty: never an empty entry
    prepend='\\export {var}={entry}"${{{var}:+:${{{var}}}}}"',
    prepend_value='{entry}"${{{var}:+:${{{var}}}}}"',
    set_joins=True,
    remove_entry=_REMOVE_ENTRY,
    prompt_value='{prefix}"${{{var}-}}"',
    prompt_var="PS1",
    # nothing to forget: POSIX shells discard remembered command locations whenever PATH
    # is assigned (XCU 2.9.1.1), and activation and deactivate always assign it
    rehash="",
    if_set_nonempty="case ${{{var}:-}} in ?*)",
    if_missing="if \\[ ! -e {path} ]; then",
    fail="\\printf '%s\\n' {message} >&2\n\\return 1",
    give_back="deactivate",
    flag_if_absent='case ":${{{var}-}}:" in *:{entry}:*) ;; *) {flag}= ;; esac',
    flag_if_contains="case ${{{var}-}} in *{text}*) {flag}=1 ;; esac",
    eval="\\eval {command}",
    source_or_say=("if \\[ -r {path} ]; then\n    \\. {path}\nelse\n"
                   "    \\printf '%s\\n' {message} >&2\nfi"),
    prompt_expands=PROMPT_EXPANDS,
    prompt_guarded=_GUARDED_PROMPT,
    leave_pythonpath=_LEAVE_PYTHONPATH,
    leave_below=_LEAVE_BELOW,
    leave_end=_LEAVE_END,
    if_venv_active=("case ${{_LAYERVENV_ACTIVE+a}}${{_OLD_VIRTUAL_PATH+v}}${{VIRTUAL_ENV:+e}} "
                    "in ve)"),
)

# The script is short on purpose: shells read all of it at each activation, and its length
# is most of what activation costs (zsh and bash: a 330-byte header cost 3% of it).  The
# rare cases are in revert.sh; a one-line comment says what the file is; these comments,
# which would be read each time too, are here.  What the header does, in order:
# - run (bash bin/activate), it would activate a shell that ends at once: say so where the
#   shell can tell (bash and zsh; dash and ksh see no difference);
# - a layer moved, its stack or a group layer gone: refused before anything changed;
# - a layer active in this shell (not this one) is remembered in the unexported
#   _layervenv_under (newline-separated, most recent first: SetAsideLayers), then left with
#   its own deactivate, which knows the stack it re-established (both in under.sh, read only
#   where a layer is active); this layer's deactivate
#   (destructive), once this layer is left, reads under.sh, which gives a venv set aside its
#   deactivate back and sources that layer's bin/activate again;
# - a venv active in this shell (python -m venv, virtualenv: its deactivate is a function
#   of this shell where its unexported _OLD_VIRTUAL_PATH is set) is set aside, not left: its
#   deactivate would drop what was added to PATH since (a stack).  Its deactivate is kept as
#   text (typeset -f; dash has none: one doing what the venv's does is defined instead) and
#   given back by this layer's deactivate; the apply part takes its bin out of PATH;
# - a layer inherited from a parent shell (its state is in exported _LAYERVENV_* variables)
#   is left with this layer's deactivate, so that activating again never duplicates an entry.
_HEADER = """\
# ". bin/activate" (bash, zsh, sh, ksh) of {layer_comment}: made by layervenv {version}; never edit

case ${{BASH_SOURCE-}}:${{ZSH_EVAL_CONTEXT-}} in "$0:" | *:toplevel)
\t\\printf 'layervenv: this script must be sourced, not run: . %s/bin/activate\\n' {layer} >&2
\t\\exit 2
;; esac
{requires}case ${{_LAYERVENV_ACTIVE+a}} in a)
{leave};; esac
case ${{_LAYERVENV_ACTIVE+a}}${{_OLD_VIRTUAL_PATH+v}}${{VIRTUAL_ENV:+e}}${{_layervenv_vfn+f}} in ve)
\t_layervenv_vfn=$(\\typeset -f deactivate 2>/dev/null) || _layervenv_vfn=
;; esac

deactivate () {{
{unhook}{revert}{tail}{under}\t*:f)
{venv_back}\t\t\\unset _layervenv_vfn ;;
\t*) \\unset -f deactivate ;;
\tesac
}}
case ${{_LAYERVENV_ACTIVE+x}} in x) deactivate nondestructive ;; esac

{checks}
{apply}{hook}"""

#: the prompt hook of interactive bash and zsh: what installs it, read from the layer's
#: bin/prompt-hook.SHELL, and how deactivate removes it
_HOOK = """\
case $-:${{LAYERVENV_NO_PROMPT_HOOK-}}:${{BASH_VERSION:+b}}${{ZSH_VERSION:+z}} in
*i*::b) \\. {bash} ;;
*i*::z) \\. {zsh} ;;
esac
"""
_UNHOOK = "\tcase ${_layervenv_hooked+x} in x) _layervenv_unhook ;; esac\n"

#: gives a venv set aside its deactivate back (in place of this one: ksh93 would also
#: remove the new one after an unset -f of the running function): the text typeset -f
#: printed, or where the shell has no typeset (dash), one doing what python -m venv's does
_VENV_BACK = """\
case $_layervenv_vfn in '')
deactivate () {
\tcase ${_OLD_VIRTUAL_PATH:+x} in x) PATH=$_OLD_VIRTUAL_PATH; \\export PATH
\t\t\\unset _OLD_VIRTUAL_PATH ;; esac
\tcase ${_OLD_VIRTUAL_PYTHONHOME:+x} in x) PYTHONHOME=$_OLD_VIRTUAL_PYTHONHOME
\t\t\\export PYTHONHOME; \\unset _OLD_VIRTUAL_PYTHONHOME ;; esac
\tcase ${_OLD_VIRTUAL_PS1+x} in x) PS1=$_OLD_VIRTUAL_PS1; \\unset _OLD_VIRTUAL_PS1 ;; esac
\t\\unset VIRTUAL_ENV VIRTUAL_ENV_PROMPT
\tcase ${1-} in nondestructive) ;; *) \\unset -f deactivate ;; esac
} ;;
*) \\eval "$_layervenv_vfn" ;;
esac"""

#: leaves the layer active, with its own deactivate (the header's; in under.sh, read only
#: where a layer is active, where layers are set aside)
_LEAVE = "\tif \\command -v deactivate >/dev/null 2>&1; then deactivate nondestructive; fi\n"
#: under.sh read by activation (a layer is active): push that layer (unless it is this one,
#: {layer}) on the layers set aside, leave it, and stop there
_PUSH = ("case ${{_LAYERVENV_ACTIVE+a}} in a)\n"
         "\tcase $_LAYERVENV_ACTIVE in {layer}) ;; *) _layervenv_under=$_LAYERVENV_ACTIVE'\n"
         "'${{_layervenv_under-}} ;; esac\n" + _LEAVE + "\t\\return ;;\nesac\n")
#: what the end of deactivate tests (nondestructive; a layer set aside, a venv set aside,
#: this layer still active): {under} is _UNDER_FLAG where layers may have been set aside
_TAIL = ("\tcase ${{1-}}:{under}${{_layervenv_vfn+f}}${{_LAYERVENV_ACTIVE+a}} in "
         "nondestructive:*) ;;\n")
#: the end of a destructive deactivate where layers were set aside: under.sh
_UNDER_FLAG = "${_layervenv_under+u}"
_UNDER_CALL = "\t*:u|*:uf) \\. {path} ;;\n"

#: the rest of under.sh, read by deactivate once this layer is left (where it could be: the
#: layer is not active any more), in place of the end of deactivate (the function stays, so that
#: the layer given back can define its own -- ksh93 would remove a function redefined after
#: an unset -f of the running one): give a venv set aside its deactivate back; pop the
#: layers set aside until one is active again (one gone is named and skipped); where
#: nothing is active then (no layer, no venv), remove deactivate, as deactivate does
_UNDER = """\
case ${{_LAYERVENV_ACTIVE+a}}${{_layervenv_vfn+f}} in f)
{venv_back}\t\\unset _layervenv_vfn ;;
esac
while \\[ "${{_LAYERVENV_ACTIVE+a}}${{_layervenv_under:+u}}" = u ]; do
\t_layervenv_d=${{_layervenv_under%%'
'*}}
\t_layervenv_under=${{_layervenv_under#*'
'}}
\tif \\[ -r "$_layervenv_d/bin/activate" ]; then
\t\t\\. "$_layervenv_d/bin/activate"
\telse
\t\t\\printf 'layervenv: the layer %s, active before, is gone\\n' "$_layervenv_d" >&2
\tfi
done
case ${{_layervenv_under:+u}} in '') \\unset _layervenv_under ;; esac
\\unset _layervenv_d
case ${{_LAYERVENV_ACTIVE+a}}${{_OLD_VIRTUAL_PATH+v}} in '') \\unset -f deactivate ;; esac
"""

# bash runs PROMPT_COMMAND -- a string, or from 5.1 an array of them -- before each
# prompt.  The hook goes in front of its first element (which is the string itself), so
# that an array keeps its other elements and indices as they are; it gives $? back for
# what follows it.  An exported PROMPT_COMMAND would hand child shells a hook they do not
# have, a readonly one cannot be changed (bash 4.4+ tells, with ${PROMPT_COMMAND@a}, asked
# only when it is set: under set -u an unset one is an error): no hook then.  deactivate
# gives the first element back exactly (unset if it was unset), or, if something changed
# it meanwhile, takes only the hook out of it.
_BASH_HOOK = """\
# The prompt hook of the layervenv layer {layer_comment} (interactive bash)
# Generated by layervenv {version}; read by bin/activate; never edit it.

_layervenv_hook () {{
\t_layervenv_s=$?
{test}\treturn $_layervenv_s
}}

_layervenv_front () {{
{checks}}}

_layervenv_unhook () {{
\tcase ${{PROMPT_COMMAND+x}}${{PROMPT_COMMAND-}} in "x${{_layervenv_pc_new-}}")
\t\tcase ${{_layervenv_pc_old+x}} in x) PROMPT_COMMAND=$_layervenv_pc_old ;;
\t\t*) \\unset 'PROMPT_COMMAND[0]' ;; esac
\t;; *)
\t\tcase ${{PROMPT_COMMAND+x}} in x)
\t\t\t_layervenv_s=${{PROMPT_COMMAND/_layervenv_hook$'\\n'/}}
\t\t\tcase $_layervenv_s in "$PROMPT_COMMAND")
\t\t\t\t_layervenv_s=${{PROMPT_COMMAND/_layervenv_hook/:}} ;; esac
\t\t\tPROMPT_COMMAND=$_layervenv_s
\t\t;; esac
\t;; esac
\t\\unset -f _layervenv_hook _layervenv_front _layervenv_unhook
\t\\unset _layervenv_s _layervenv_pc_old _layervenv_pc_new _layervenv_hooked
}}

_layervenv_s=
case ${{PROMPT_COMMAND+x}}${{BASH_VERSINFO[0]}}.${{BASH_VERSINFO[1]}} in
[0-9]* | x[0-3].* | x4.[0-3]) ;;
*) \\eval '_layervenv_s=${{PROMPT_COMMAND@a}}' ;; esac
case $_layervenv_s in *[xr]*) \\unset -f _layervenv_hook _layervenv_front _layervenv_unhook ;; *)
\tcase ${{PROMPT_COMMAND+x}} in x) _layervenv_pc_old=$PROMPT_COMMAND ;; esac
\tPROMPT_COMMAND=_layervenv_hook${{PROMPT_COMMAND:+$'\\n'$PROMPT_COMMAND}}
\t_layervenv_pc_new=$PROMPT_COMMAND
\t_layervenv_hooked=1
;; esac
\\unset _layervenv_s
"""

# zsh runs the functions named in the array precmd_functions before each prompt: the hook
# is added at its end and taken out again (the array unset again if it was unset).
_ZSH_HOOK = """\
# The prompt hook of the layervenv layer {layer_comment} (interactive zsh)
# Generated by layervenv {version}; read by bin/activate; never edit it.

_layervenv_hook () {{
\tlocal _layervenv_s=$?
{test}\treturn $_layervenv_s
}}

_layervenv_front () {{
\t\\builtin emulate -L zsh
{checks}}}

_layervenv_unhook () {{
\t\\builtin emulate -L zsh
\tprecmd_functions=("${{(@)precmd_functions:#_layervenv_hook}}")
\tif (( ${{+_layervenv_pf_unset}} && ! ${{#precmd_functions}} )); then
\t\t\\unset precmd_functions
\tfi
\t\\unset -f _layervenv_hook _layervenv_front _layervenv_unhook
\t\\unset _layervenv_pf_unset _layervenv_hooked
}}

(( ${{+precmd_functions}} )) || _layervenv_pf_unset=1
precmd_functions+=(_layervenv_hook)
_layervenv_hooked=1
"""


def _indent(text: str, depth: int) -> str:
    return "".join("\t" * depth + line + "\n" for line in text.splitlines())


def render(env: EnvChange, version: str) -> dict[str, str]:
    """``bin/activate`` and ``bin/revert.sh`` for the layer described by ``env``; with a
    prompt hook, ``bin/prompt-hook.bash`` and ``bin/prompt-hook.zsh``."""
    hooks = {f"prompt-hook.{shell}": f"{env.layer}/bin/prompt-hook.{shell}"
             for shell in ("bash", "zsh")} if env.prompt_hook else {}
    fields = {
        "hook": _HOOK.format(**{name.rsplit(".", 1)[1]: quote(path)
                                for name, path in hooks.items()}) if hooks else "",
        "unhook": _UNHOOK if hooks else "",
        "venv_back": _indent(_VENV_BACK, 2),
        "leave": f"\t\\. {quote(under_path(env, 'sh'))}\n" if env.under else _LEAVE,
        "under": _UNDER_CALL.format(path=quote(under_path(env, "sh"))) if env.under else "",
        "tail": _TAIL.format(under=_UNDER_FLAG if env.under else ""),
    }
    scripts = {"activate": render_script(_HEADER, env, DIALECT, version, GENERAL,
                                         requires_first=True, **fields),
               GENERAL: render_general(env, DIALECT, version, "bash, zsh, sh, ksh")}
    if env.under:
        scripts[f"{env.under.file}.sh"] = render_under(
            env, version, "bash, zsh, sh, ksh",
            _PUSH.format(layer=quote(env.layer)) + _UNDER.format(venv_back=_indent(_VENV_BACK, 1)))
    checks = render_to_front(env, DIALECT, indent=1)
    header = {"layer_comment": env.layer.replace("\n", " "), "version": version,
              "checks": checks, "test": render_front_test(env, DIALECT, "_layervenv_front", 1)}
    if hooks:
        scripts["prompt-hook.bash"] = _BASH_HOOK.format(**header)
        scripts["prompt-hook.zsh"] = _ZSH_HOOK.format(**header)
    return scripts
