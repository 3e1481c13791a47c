"""csh and tcsh.  Rendered as ``bin/activate.csh`` and ``bin/deactivate.csh``.

csh has no functions, so ``deactivate`` is an alias that sources ``bin/deactivate.csh``
(the revert part of the model); ``activate.csh`` sources it first, as the POSIX script
calls ``deactivate nondestructive``.  csh cannot find the location of a sourced file, so
the layer's path is written into ``activate.csh`` (as it is into ``bin/activate``).  The
path is kept in the shell variable ``_layervenv_deactivate`` rather than in the alias's
text, because an alias's text is parsed again at each use, where ``!`` means its
arguments.

What breaks naive csh scripts, and how this dialect avoids it (tcsh and BSD csh alike):

* referencing an unset variable is an error, and a line is substituted as a whole
  before ``if`` decides anything (``&&`` does not short-circuit that): every test of a
  value sits in an ``if ( $?VAR ) then`` block, and compound tests leave their result
  in the flag ``_layervenv_c``;
* ``!`` is history substitution even inside single quotes and in sourced files:
  :func:`quote` writes it ``\\!``;
* glob characters in ``=~`` patterns are live in tcsh even when quoted, and ``:s`` cannot
  take a variable as its pattern nor (in BSD csh) contain a space: entries are never
  matched with patterns.  A colon-separated value is split into a word list by csh
  itself -- the shell splits PATH into ``$path`` -- after each entry got a ``+`` (so that
  an empty entry does not come back as ``.``), and words are compared with ``==``;
* no ``return`` in a sourced file: a refused activation jumps to the end with ``goto``
  and leaves ``$status`` at 1;
* the prompt is the shell variable ``prompt``, only set in interactive shells (many
  ``.cshrc`` files test ``$?prompt``): activation prefixes it only where it is set.

Only builtins are used (``set``, ``setenv``, ``if``, ``while``, ``foreach``, ``@``,
``echo``, ``alias``, ``source``, ``rehash``, ``eval``): no process is started.
"""

from __future__ import annotations

from layervenv.runtime.envchange import EnvChange, PrependPath, saved_name
from layervenv.runtime.shells.dialect import (
    PREFIX,
    Dialect,
    PromptSyntax,
    general_revert_path,
    render_apply,
    render_checks,
    render_deactivate,
    render_general,
    render_requires,
    render_to_front,
    render_under,
    under_path,
)

#: the file ``deactivate.csh`` reads for every case but the common one
GENERAL = "revert.csh"


def quote(value: str) -> str:
    """Single-quote ``value`` for csh: ``'`` becomes ``'\\''``, ``!`` becomes ``\\!`` and a
    newline is escaped with ``\\`` (csh reads such a value; it cannot read one back from a
    variable inside double quotes, which only a stack variable set before activation needs).
    """
    return "'" + value.replace("'", "'\\''").replace("!", "\\!").replace("\n", "\\\n") + "'"


#: stands for ':' while an entry gets its '+'; a value holding it is not split right
_SOH = "\x01"

#: temporary shell variables of the split, removed after use
_SPLIT_TEMPS = ("_layervenv_t", "_layervenv_p", "_layervenv_ng")


def _split(value: str, words: str) -> str:
    """csh lines setting the list ``words`` to ``+entry`` for each entry of ``value``.

    ``value`` is a csh expression; ``noglob`` must be set and PATH saved by the caller
    (see :func:`_with_path_saved`).  csh splits PATH on ``:`` into ``$path`` itself, with
    spaces and any other character kept; only an empty entry would come back as ``.``,
    hence the ``+`` put in front of every entry.
    """
    return f"""\
set _layervenv_t = {value}
while ( "$_layervenv_t" != "$_layervenv_t:s/:/{_SOH}/" )
    set _layervenv_t = "$_layervenv_t:s/:/{_SOH}/"
end
set _layervenv_t = "+$_layervenv_t"
while ( "$_layervenv_t" != "$_layervenv_t:s/{_SOH}/:+/" )
    set _layervenv_t = "$_layervenv_t:s/{_SOH}/:+/"
end
setenv PATH "$_layervenv_t"
set {words} = ( $path:q )"""


def _with_path_saved(body: str) -> str:
    """``body`` (which sets PATH to split values) with noglob on and PATH given back."""
    return f"""\
set _layervenv_ng = $?noglob
set noglob
if ( $?PATH ) then
    set _layervenv_p = "$PATH"
endif
{body}
if ( $?_layervenv_p ) then
    setenv PATH "$_layervenv_p"
else
    unsetenv PATH
endif"""


_RESTORE_NOGLOB = "if ( ! $_layervenv_ng ) unset noglob"

#: {var} without its first run of entries equal to the entries of {entry}
_REMOVE_ENTRY = (
    """\
if ( $?{var} ) then
    set _layervenv_v = "${var}"
else
    set _layervenv_v = ""
endif
set _layervenv_e = {entry}
"""
    + _with_path_saved(_split('"$_layervenv_v"', "_layervenv_w") + "\n"
                       + _split('"$_layervenv_e"', "_layervenv_x"))
    + """
set _layervenv_v = ""
set _layervenv_first = 1
set _layervenv_found = 0
@ _layervenv_i = 1
while ( $_layervenv_i <= $#_layervenv_w )
    set _layervenv_m = 0
    if ( $_layervenv_found == 0 ) then
        @ _layervenv_k = $_layervenv_i + $#_layervenv_x - 1
        if ( $_layervenv_k <= $#_layervenv_w ) then
            set _layervenv_m = 1
            @ _layervenv_j = 1
            @ _layervenv_k = $_layervenv_i
            while ( $_layervenv_j <= $#_layervenv_x )
                set _layervenv_t = "$_layervenv_x[$_layervenv_j]"
                if ( "$_layervenv_w[$_layervenv_k]" != "$_layervenv_t" ) set _layervenv_m = 0
                @ _layervenv_j++
                @ _layervenv_k++
            end
        endif
    endif
    if ( $_layervenv_m ) then
        set _layervenv_found = 1
        @ _layervenv_i += $#_layervenv_x
    else
        set _layervenv_t = "$_layervenv_w[$_layervenv_i]:s/+//"
        if ( $_layervenv_first ) then
            set _layervenv_v = "$_layervenv_t"
            set _layervenv_first = 0
        else
            set _layervenv_v = "$_layervenv_v"":$_layervenv_t"
        endif
        @ _layervenv_i++
    endif
end
setenv {var} "$_layervenv_v"
"""
    + _RESTORE_NOGLOB
    + "\nunset _layervenv_v _layervenv_e _layervenv_w _layervenv_x _layervenv_i _layervenv_j "
      "_layervenv_k _layervenv_m _layervenv_found _layervenv_first " + " ".join(_SPLIT_TEMPS)
)

#: empty {flag} when one of {entries} (literals) is not one of the entries of {var}: {var}
#: is split once, however many entries are looked for (each split sets PATH twice, and
#: csh reads every PATH directory again each time)
_FLAG_IF_ANY_ABSENT = (
    """\
if ( $?{var} ) then
    set _layervenv_v = "${var}"
else
    set _layervenv_v = ""
endif
"""
    + _with_path_saved(_split('"$_layervenv_v"', "_layervenv_w"))
    + """
foreach _layervenv_e ( {entries} )
    set _layervenv_m = 0
    foreach _layervenv_t ( $_layervenv_w:q )
        if ( "$_layervenv_t" == "+$_layervenv_e" ) set _layervenv_m = 1
    end
    if ( ! $_layervenv_m ) set {flag} = ""
end
"""
    + _RESTORE_NOGLOB
    + "\nunset _layervenv_v _layervenv_w _layervenv_m _layervenv_e " + " ".join(_SPLIT_TEMPS)
)


#: the entries ``{added}`` names, moved to the front of ``{var}`` where they are in it but
#: not in front.  csh has no cheap test of a prefix: the hook keeps the value it last saw
#: and looks closer only when the value changed
_TO_FRONT = (
    """\
if ( $?{added} && $?{var} ) then
    set _layervenv_c = 1
    if ( $?_layervenv_seen_{var} ) then
        if ( "$_layervenv_seen_{var}" == "${var}" ) set _layervenv_c = 0
    endif
    if ( $_layervenv_c ) then
        set _layervenv_o = "${var}"
"""
    + "\n".join("        " + line for line in _REMOVE_ENTRY.replace(
        "{entry}", '"${added}"').splitlines())
    + """
        if ( "${var}" != "$_layervenv_o" ) then
            if ( "${var}" != "" ) then
                setenv {var} "${{{added}}}:${var}"
            else
                setenv {var} "${added}"
            endif
        endif
        set _layervenv_seen_{var} = "${var}"
        unset _layervenv_o
    endif
endif"""
)


def _flag_test(var: str, operator: str, when: str) -> str:
    """Open a block run when ``$var operator ""`` (an unset ``var`` counting as empty)."""
    unset_value = "1" if when == "empty" else "0"
    set_value = "0" if when == "empty" else "1"
    return f"""\
set _layervenv_c = {unset_value}
if ( $?{var} ) then
    if ( "${var}" {operator} "" ) set _layervenv_c = {set_value}
endif
if ( $_layervenv_c ) then"""


_OLD_PROMPT = saved_name("prompt")

_PROMPT = PromptSyntax(
    if_set="if ( $?prompt ) then",
    save=f'set {_OLD_PROMPT} = "$prompt"',
    set=f"""\
if ( $?prompt ) then
    set prompt = {PREFIX}"$prompt"
endif""",
    if_saved=f"if ( $?{_OLD_PROMPT} ) then",
    restore=f'set prompt = "${_OLD_PROMPT}"\nunset {_OLD_PROMPT}',
    unset="unset prompt",
    applied=quote("1"),
    # in a prompt, ! is the history event number (\! shows a !) and tcsh expands
    # %-sequences (%% shows a %; BSD csh shows a doubled % as it is)
    escape=lambda text: text.replace("%", "%%").replace("!", "\\!"),
)

_FAIL = """\
if ( $?echo_style ) then
    set _layervenv_es = "$echo_style"
    set echo_style = bsd
    echo {message} >>& /dev/stderr
    set echo_style = "$_layervenv_es"
    unset _layervenv_es
else
    echo {message} >>& /dev/stderr
endif
set _layervenv_failed
goto _layervenv_end"""

DIALECT = Dialect(
    name="csh",
    quote=quote,
    ref='"${var}"',
    if_set="if ( $?{var} ) then",
    if_unset="if ( ! $?{var} ) then",
    if_empty=_flag_test("{var}", "!=", "empty"),
    if_equal="""\
set _layervenv_c = 0
if ( $?{a} ) then
    if ( "x${a}" == "x${b}" ) set _layervenv_c = 1
endif
if ( $_layervenv_c ) then""",
    else_="else",
    end_if="endif",
    set_exported="setenv {var} {value}",
    set_local="set {var} = {value}",
    unset_exported="unsetenv {var}",
    unset_local="unset {var}",
    prepend=_flag_test("{var}", "!=", "nonempty") + """
    setenv {var} {entry}":${var}"
else
    setenv {var} {entry}
endif""",
    remove_entry=_REMOVE_ENTRY,
    prompt_value="",
    prompt_var="prompt",
    rehash="rehash",
    if_set_nonempty=_flag_test("{var}", "!=", "nonempty"),
    if_missing="if ( ! -e {path} ) then",
    fail=_FAIL,
    give_back="set _layervenv_back",
    flag_if_any_absent=_FLAG_IF_ANY_ABSENT,
    # only used with plain text ("site-packages"): quoted glob characters stay live in tcsh
    flag_if_contains="""\
if ( $?{var} ) then
    if ( "${var}" =~ *{text}* ) set {flag} = 1
endif""",
    # a stack's setup command is POSIX shell code: csh replays the recorded environment
    eval="",
    # (source is not put in a one-line if: see _DEACTIVATE_ALIAS).  The path is not
    # written in the if: csh skipping a block (an outer if that is false, in a file
    # sourced from a sourced file) misreads such a line where the path holds ' or !
    source_or_say="""\
set _layervenv_r = {path}
if ( -r "$_layervenv_r" ) then
    source "$_layervenv_r"
else
    echo {message} >>& /dev/stderr
endif
unset _layervenv_r""",
    prompt=_PROMPT,
    to_front=_TO_FRONT,
    if_venv_active="""\
set _layervenv_c = 0
if ( $?VIRTUAL_ENV && $?_OLD_VIRTUAL_PATH && ! $?_LAYERVENV_ACTIVE ) set _layervenv_c = 1
if ( $_layervenv_c ) then""",
)

_ACTIVATE = """\
# Activate the layervenv layer {layer_comment}
# Generated by layervenv {version}; regenerated by "layervenv create --clear"; never edit it.
# Use it with "source bin/activate.csh" from csh or tcsh; it cannot be run directly.
# csh cannot find where a sourced file is: the layer's path is written here.

{requires}
# Leave the layer active in this shell with its own deactivate.csh, which knows the stack
# it re-established; then (a layer inherited from a parent shell: its state is in exported
# _LAYERVENV_* variables) with this one, so that activating again never duplicates an entry.
{push}set _layervenv_keep
if ( $?_layervenv_deactivate ) then
    if ( -f "$_layervenv_deactivate" ) source "$_layervenv_deactivate"
endif
# (not there: the layer was moved, which the check below says)
if ( -f {deactivate} ) source {deactivate}
unset _layervenv_keep
# A venv (python -m venv, virtualenv) active in this shell is set aside, not left: its
# deactivate would drop what was added to PATH since (a stack).  Its deactivate alias is
# kept, given back by deactivate.csh; the apply part takes its bin out of PATH.
if ( ! $?_LAYERVENV_ACTIVE && $?VIRTUAL_ENV && $?_OLD_VIRTUAL_PATH && ! $?_layervenv_valias ) then
    set _layervenv_valias = "`alias deactivate`"
endif

# A layer moved or deleted while active has no deactivate.csh: say so (csh has nothing
# else to run) rather than "No such file or directory.", which also ends a sourcing script.
set _layervenv_deactivate = {deactivate}
alias deactivate {deactivate_alias}

{checks}
{apply}{hook}
_layervenv_end:
unset _layervenv_c
{refused}if ( $?_layervenv_failed ) eval 'unset _layervenv_failed; set status = 1'
"""

#: what the deactivate alias does; one line (a csh alias is), run again at each use.
#: ``source`` is not put in a one-line ``if``: sourcing a file with blocks from there goes
#: wrong inside a block (csh's ``if``/``while`` of a script calling deactivate); a missing
#: file is replaced by /dev/null instead, after one line saying so.
_DEACTIVATE_ALIAS = (
    'set _layervenv_d = "$_layervenv_deactivate"; '
    'if ( ! -r "$_layervenv_d" ) echo "layervenv: cannot deactivate: $_layervenv_d is gone '
    '(was the layer moved or deleted?); start a new shell" >>& /dev/stderr; '
    'if ( ! -r "$_layervenv_d" ) set _layervenv_d = /dev/null; '
    'source "$_layervenv_d"; unset _layervenv_d'
)

_DEACTIVATE = """\
# Deactivate the layervenv layer {layer_comment}
# Generated by layervenv {version}; regenerated by "layervenv create --clear"; never edit it.
# Sourced by the "deactivate" alias that bin/activate.csh defines (csh has no functions).

{unhook}{revert}unset _layervenv_c
if ( ! $?_layervenv_keep ) then
    unalias deactivate
    unset _layervenv_deactivate
    if ( $?_layervenv_valias && ! $?_LAYERVENV_ACTIVE ) then
        if ( "$_layervenv_valias" != "" ) alias deactivate "$_layervenv_valias"
        unset _layervenv_valias
    endif
{under}endif
"""

#: remembers the layer active (not this one, {layer}) among the layers set aside, given
#: back by this layer's deactivate.csh (under.csh); the path is not written in a block (see
#: source_or_say)
_PUSH = """\
set _layervenv_r = {layer}
if ( $?_LAYERVENV_ACTIVE ) then
    if ( "$_LAYERVENV_ACTIVE" != "$_layervenv_r" ) then
        if ( ! $?_layervenv_under ) set _layervenv_under = ( )
        set _layervenv_under = ( "$_LAYERVENV_ACTIVE" $_layervenv_under:q )
    endif
endif
unset _layervenv_r
"""
#: a destructive deactivate.csh, once this layer is left, reads under.csh where layers were
#: set aside
_UNDER_CALL = """\
    if ( $?_layervenv_under && ! $?_LAYERVENV_ACTIVE ) then
        set _layervenv_r = {path}
        source "$_layervenv_r"
    endif
"""
#: under.csh: pops the layers set aside until one is active again (one gone is named and
#: skipped); an activation refused in this shell reads it from its end
_UNDER = """\
unset _layervenv_r
while ( $?_layervenv_under )
    if ( $?_LAYERVENV_ACTIVE || $#_layervenv_under == 0 ) break
    set _layervenv_u = "$_layervenv_under[1]"
    shift _layervenv_under
    if ( -r "$_layervenv_u/bin/activate.csh" ) then
        source "$_layervenv_u/bin/activate.csh"
    else
        echo "layervenv: the layer $_layervenv_u, active before, is gone" >>& /dev/stderr
    endif
end
if ( $?_layervenv_under ) then
    if ( $#_layervenv_under == 0 ) unset _layervenv_under
endif
unset _layervenv_u
"""
#: the end of a refused activation, where it left a layer (give_back): this layer's
#: deactivate gives that layer back (the failure is forgotten meanwhile: that layer's
#: activation reads it)
_REFUSED = """\
if ( $?_layervenv_back ) then
    unset _layervenv_back _layervenv_failed
    deactivate
    set _layervenv_failed
endif
"""

#: the prompt hook of interactive tcsh (BSD csh has no precmd): what installs it, read from
#: bin/prompt-hook.tcsh, and how deactivate removes it
_HOOK = """\
set _layervenv_c = 0
if ( $?prompt && $?tcsh ) set _layervenv_c = 1
if ( $?LAYERVENV_NO_PROMPT_HOOK ) then
    if ( "$LAYERVENV_NO_PROMPT_HOOK" != "" ) set _layervenv_c = 0
endif
if ( $_layervenv_c ) then
    source {path}
endif
"""

#: tcsh runs the alias precmd before each prompt.  The user's own (read with a backquote:
#: the only process activation starts, in an interactive tcsh only) runs after the hook
#: and is given back by deactivate, unless something replaced the hook's alias meanwhile.
_INSTALL = """\
# The prompt hook of the layervenv layer {layer_comment} (interactive tcsh)
# Generated by layervenv {version}; read by bin/activate.csh; never edit it.

set _layervenv_old_precmd = "`alias precmd`"
if ( "$_layervenv_old_precmd" == "" ) unset _layervenv_old_precmd
{seen}set _layervenv_hook_file = {check}
alias precmd 'source "$_layervenv_hook_file"'
set _layervenv_hooked
"""

_CHECK = """\
# Run by the prompt hook of the layervenv layer {layer_comment} (interactive tcsh)
# Generated by layervenv {version}; never edit it.

{checks}if ( $?_layervenv_old_precmd ) then
    eval "$_layervenv_old_precmd"
endif
"""

_UNHOOK = """\
if ( $?_layervenv_hooked ) then
    set _layervenv_r = {path}
    source "$_layervenv_r"
    unset _layervenv_r
endif
"""

_UNINSTALL = """\
# Removes the prompt hook of the layervenv layer {layer_comment} (interactive tcsh)
# Generated by layervenv {version}; read by bin/deactivate.csh; never edit it.

if ( $?_layervenv_hooked ) then
    set _layervenv_pc = "`alias precmd`"
    if ( "$_layervenv_pc" == 'source "$_layervenv_hook_file"' ) then
        if ( $?_layervenv_old_precmd ) then
            alias precmd "$_layervenv_old_precmd"
        else
            unalias precmd
        endif
    endif
    unset _layervenv_pc _layervenv_hooked _layervenv_old_precmd _layervenv_hook_file
    unset _layervenv_seen_*
endif
"""


def _hook_files(env: EnvChange, version: str) -> dict[str, str]:
    """bin/prompt-hook.tcsh (installs the hook), bin/prompt-check.tcsh (run by it at each
    prompt) and bin/prompt-unhook.tcsh (removes it)."""
    fields = {"layer_comment": env.layer.replace("\n", " "), "version": version}
    seen = "".join(f'if ( $?{c.name} ) set _layervenv_seen_{c.name} = "${c.name}"\n'
                   for c in env.changes if isinstance(c, PrependPath))
    return {
        "prompt-hook.tcsh": _INSTALL.format(
            seen=seen, check=quote(f"{env.layer}/bin/prompt-check.tcsh"), **fields),
        "prompt-check.tcsh": _CHECK.format(checks=render_to_front(env, DIALECT), **fields)
        + "unset _layervenv_c\n",
        "prompt-unhook.tcsh": _UNINSTALL.format(**fields),
    }


def render(env: EnvChange, version: str) -> dict[str, str]:
    """``bin/activate.csh``, ``bin/deactivate.csh`` and ``bin/revert.csh`` for the layer
    described by ``env``."""
    fields = {"layer_comment": env.layer.replace("\n", " "), "version": version}
    deactivate = quote(f"{env.layer}/bin/deactivate.csh")
    hook = quote(f"{env.layer}/bin/prompt-hook.tcsh")
    scripts = {
        "activate.csh": _ACTIVATE.format(
            deactivate=deactivate,
            deactivate_alias=quote(_DEACTIVATE_ALIAS),
            requires=render_requires(env, DIALECT),
            checks=render_checks(env, DIALECT, requires=False),
            apply=render_apply(env, DIALECT),
            hook=_HOOK.format(path=hook) if env.prompt_hook else "",
            push=_PUSH.format(layer=quote(env.layer)) if env.under else "",
            refused=_REFUSED if env.under else "",
            **fields,
        ),
        "deactivate.csh": _DEACTIVATE.format(
            revert=render_deactivate(env, DIALECT, general_revert_path(env, GENERAL)),
            unhook=_UNHOOK.format(path=quote(f"{env.layer}/bin/prompt-unhook.tcsh"))
            if env.prompt_hook else "",
            under=_UNDER_CALL.format(path=quote(under_path(env, "csh"))) if env.under else "",
            **fields),
        GENERAL: render_general(env, DIALECT, version, "csh, tcsh"),
    }
    if env.under:
        scripts[f"{env.under.file}.csh"] = render_under(env, version, "csh, tcsh", _UNDER)
    if env.prompt_hook:
        scripts.update(_hook_files(env, version))
    return scripts
