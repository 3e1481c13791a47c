"""What a shell dialect is, and the one renderer that turns the model into a script.

A dialect is a *table of syntax*: how to test whether a variable is set, how to
set, export and unset one, how to drop one entry from a path-like variable, and
one ``quote`` function for literal values.  The meaning -- what is saved, when a
value is restored exactly, when only the layer's entry is removed -- lives in
:func:`render`, once for every shell.  Literal values are always produced by the
dialect's ``quote`` and never pasted inside another pair of quotes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from layervenv.boot._layervenv_boot import PACKAGE_DIRECTORIES
from layervenv.runtime.envchange import (
    MARKER,
    STACK_FLAG,
    STATE_PREFIX,
    VENV_KEY,
    VENV_STATE,
    Change,
    EnvChange,
    LeaveStacks,
    PrependPath,
    SetAsideVenv,
    SetPrompt,
    SetVar,
    StackGroup,
    UnsetVar,
    added_name,
    applied_name,
    saved_name,
    state_key,
)


def _same(text: str) -> str:
    return text


#: where the quoted prompt text goes in :attr:`PromptSyntax.set`
PREFIX = "{prefix}"


@dataclass(frozen=True)
class PromptSyntax:
    """How to prefix, save and restore a prompt that is not one plain variable.

    fish's prompt is a function (``fish_prompt``): it is saved by copying the function,
    not a value.  Each field is one or more complete statements, as they appear in the
    script (no ``str.format`` escaping); ``{prefix}`` in ``set`` becomes the quoted prompt
    text.  The *order* of the steps -- save only what exists, restore it
    exactly or remove it -- is still :func:`apply_change` / :func:`revert_change`'s.
    """

    #: opens a block run when there is a prompt to save
    if_set: str
    #: copies the prompt to its saved slot
    save: str
    #: installs the prefixed prompt (the saved one, if any, follows the prefix)
    set: str
    #: opens a block run when the saved slot exists
    if_saved: str
    #: gives the prompt back its saved form and removes the saved slot
    restore: str
    #: removes the prompt (there was none before activation)
    unset: str
    #: what the applied-state variable is set to (an expression)
    applied: str
    #: turns the prompt text into what the prompt shows literally (tcsh doubles ``%``)
    escape: Callable[[str], str] = field(default=_same)


@dataclass(frozen=True)
class Dialect:
    """The syntax of one shell family.  ``{var}``/``{value}``/``{entry}`` are filled in."""

    name: str
    quote: Callable[[str], str]
    #: the value of a variable, as an expression (the variable is known to be set)
    ref: str
    if_set: str
    if_unset: str
    if_empty: str
    #: true when ``{a}`` is set and equal to ``{b}`` (which is set)
    if_equal: str
    else_: str
    end_if: str
    set_exported: str
    set_local: str
    unset_exported: str
    unset_local: str
    #: ``{var}`` becomes ``{entry}`` followed by its old entries; never adds an empty entry
    prepend: str
    #: remove the first ``{entry}`` from ``{var}``, leaving every other entry as it is
    remove_entry: str
    #: expression: ``{prefix}`` (a quoted literal) followed by the prompt's current value
    prompt_value: str
    prompt_var: str
    rehash: str
    #: joins two value expressions
    concat: str = "{a}{b}"
    #: true when ``{var}`` is set and not empty
    if_set_nonempty: str = ""
    #: true when the file or directory ``{path}`` does not exist
    if_missing: str = ""
    #: print ``{message}`` on stderr and stop sourcing the script with a failure status
    fail: str = ""
    #: run by a refused activation before ``fail`` where layers set aside are given back
    #: (:class:`~layervenv.runtime.envchange.SetAsideLayers`): the layer's own deactivate,
    #: defined by then, which activates again the layer it left; "" where ``fail`` jumps to
    #: the script's end, which does it (csh)
    give_back: str = ""
    #: empty ``{flag}`` when ``{entry}`` is not one of the entries of ``{var}``
    flag_if_absent: str = ""
    #: the same for each of ``{entries}`` (quoted literals, separated by spaces) in one pass
    #: over ``{var}``, for a dialect where a pass is costly (csh); "" to use flag_if_absent
    flag_if_any_absent: str = ""
    #: set ``{flag}`` to 1 when ``{var}`` contains ``{text}``
    flag_if_contains: str = ""
    #: run ``{command}`` in the current shell (re-running a stack's setup); "" if impossible
    eval: str = ""
    #: read and run the file ``{path}`` in the current shell, or print ``{message}`` on
    #: stderr where it is not there (the layer was moved or deleted while active);
    #: ``{message_format}`` is that message with ``%s`` for the path, for a ``printf``
    source_or_say: str = ""
    #: a prompt that is not the plain variable ``prompt_var`` (default: derived from it)
    prompt: PromptSyntax | None = None
    #: characters the shell expands when it shows the prompt (``$``, a backquote, ...)
    prompt_expands: str = ""
    #: the prompt steps for a text holding one of ``prompt_expands``: shown literally
    prompt_guarded: PromptSyntax | None = None
    #: :class:`~layervenv.runtime.envchange.LeaveStacks` on PYTHONPATH: keep the entries matching
    #: ``{own}`` (alternatives of quoted literals); "" where the dialect has no launcher
    leave_pythonpath: str = ""
    #: the same on ``{var}``: drop the entries under another stack's prefix (found on the
    #: PYTHONPATH kept aside by ``leave_pythonpath``, its entries matching ``{packages}``)
    #: unless they match ``{keep}``
    leave_below: str = ""
    #: ends the steps above (forgets what they kept aside)
    leave_end: str = ""
    #: joins alternatives in ``{own}`` and ``{keep}``
    alternatives: str = "|"
    #: a literal no entry can equal: ``{own}`` and ``{keep}`` are never empty
    never_an_entry: str = ":"
    #: move the entries the state variable ``{added}`` names to the front of ``{var}`` when
    #: they are in it but not in front (the prompt hook); "" where there is no hook
    to_front: str = ""
    #: opens a block run when ``{added}`` is set and its entries are not in front of
    #: ``{var}`` (the prompt hook's test at each prompt: it must cost next to nothing)
    if_not_in_front: str = ""
    #: opens a block run when a plain venv (not a layer) is active: VIRTUAL_ENV set and the
    #: venv's own ``_OLD_VIRTUAL_PATH`` set, no layer's marker (see SetAsideVenv)
    if_venv_active: str = ""
    #: one level of indentation in the rendered script
    indent: str = "    "
    #: ``unset_exported`` and ``unset_local`` are one command that takes several names
    unset_joins: bool = False
    #: ``set_exported`` is one command that takes several ``var=value`` words (POSIX
    #: ``export``; see :func:`_set` for the order they are assigned in): activation then
    #: sets its exported variables in one command, each command costing more than its
    #: words (zsh blocks and unblocks signals around each)
    set_joins: bool = False
    #: the value ``prepend`` gives ``{var}``, as one expression of its old value ("" where
    #: ``prepend`` is not a single assignment)
    prepend_value: str = ""
    #: a word of a joined ``export`` that sets ``{dst}`` to the value of ``{src}`` where
    #: ``{src}`` is set, and is no word at all where it is not ("" where the dialect has none):
    #: activation saves, and deactivate gives back, every plain variable in one command
    copy_word: str = ""
    #: one exported-variable command of the words ``{words}`` (at least one is always a word)
    export_words: str = ""
    #: opens a block run when ``{a}`` is set and equal to ``{b}`` (set) and none of the
    #: variables whose ``unset_flag`` words are ``{flags}`` is set: one test, not several
    if_unset_and_equal: str = ""
    #: a word that is empty exactly when ``{var}`` is unset (see ``if_unset_and_equal``)
    unset_flag: str = ""
    #: read and run the file ``{path}`` in the current shell: a rare case kept out of the
    #: script that every activation parses
    source: str = ""
    #: how a block opened by ``case`` goes on and ends (POSIX shells test with ``case``:
    #: no builtin to run, and fewer words to parse, than ``if [ ... ]``)
    case_ends: tuple[str, str] = ("", "")

    @property
    def copies_in_one_export(self) -> bool:
        """Whether plain variables are saved, and given back, as words of one export."""
        return bool(self.copy_word and self.export_words)

    def block_ends(self, opener: str) -> tuple[str, str]:
        """The else and the end of the block that ``opener`` starts."""
        if opener.lstrip().startswith("case ") and self.case_ends[1]:
            return self.case_ends
        return self.else_, self.end_if


def prompt_syntax(dialect: Dialect, exported: bool = False, text: str = "") -> PromptSyntax:
    """The dialect's prompt steps; by default, those of the plain variable ``prompt_var``.

    A prompt ``text`` the shell would expand when showing it (a layer named ``a$HOME``
    or ``$(cmd)``) gets the dialect's guarded steps, where it has them.
    """
    if dialect.prompt_guarded is not None and any(c in text for c in dialect.prompt_expands):
        return dialect.prompt_guarded
    if dialect.prompt is not None:
        return dialect.prompt
    var = dialect.prompt_var
    saved = saved_name(var)
    assign = dialect.set_exported if exported else dialect.set_local
    remove = dialect.unset_exported if exported else dialect.unset_local
    return PromptSyntax(
        if_set=dialect.if_set.format(var=var),
        save=assign.format(var=saved, value=dialect.ref.format(var=var)),
        set=assign.format(var=var, value=dialect.prompt_value.format(prefix=PREFIX, var=var)),
        if_saved=dialect.if_set.format(var=saved),
        restore=(assign.format(var=var, value=dialect.ref.format(var=saved)) + "\n"
                 + remove.format(var=saved)),
        unset=remove.format(var=var),
        applied=dialect.ref.format(var=var),
    )


class Script:
    """Lines with indentation: just enough structure for nested conditionals.

    Only the lines of the *templates* are indented, before the values are filled in:
    a quoted value that spans lines (a stack variable holding a newline) must reach
    the shell exactly as it is, without the indentation of the block it sits in.
    """

    def __init__(self, dialect: Dialect, indent: int = 0) -> None:
        self.dialect = dialect
        self.lines: list[str] = []
        self.depth = indent
        #: how each open block goes on (else) and ends, innermost last
        self.ends: list[tuple[str, str]] = []
        #: the last line, when it unsets variables (see :func:`_unset`), and its depth
        self.unset_at = -1
        self.unset_depth = 0
        #: the last line, when it exports variables (see :func:`_set`), its depth and the
        #: names it sets
        self.export_at = -1
        self.export_depth = 0
        self.exported_names: list[str] = []
        #: state variables whose unset waits for the end of the fast ``deactivate``
        self.deferred: list[str] | None = None

    def add(self, template: str, **fields: str) -> None:
        for line in template.splitlines():
            self.lines.append(self.dialect.indent * self.depth + line.format(**fields))

    def add_text(self, text: str, prefix: str = "") -> None:
        """Lines already spelled out (no placeholders but :data:`PREFIX`, which becomes
        ``prefix``)."""
        for line in text.splitlines():
            self.lines.append(self.dialect.indent * self.depth + line.replace(PREFIX, prefix))

    def open(self, template: str, **fields: str) -> None:
        self.add(template, **fields)
        self._opened(template)

    def open_text(self, text: str) -> None:
        self.add_text(text)
        self._opened(text)

    def _opened(self, opener: str) -> None:
        self.ends.append(self.dialect.block_ends(opener))
        self.depth += 1

    def otherwise(self) -> None:
        self.depth -= 1
        self.add(self.ends[-1][0])
        self.depth += 1

    def close(self) -> None:
        self.depth -= 1
        self.add(self.ends.pop()[1])

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _set(script: Script, var: str, value: str, exported: bool) -> None:
    """Set ``var`` to the expression ``value``.

    In a dialect whose export takes several assignments, an export right after another
    at the same place is added to that command -- unless ``value`` reads a variable
    that command assigns (bash, zsh and dash expand all the words first; ksh93 assigns
    each word before it expands the next).
    """
    d = script.dialect
    last = len(script.lines) - 1
    joinable = (exported and d.set_joins and last >= 0 and script.export_at == last
                and script.export_depth == script.depth)
    if joinable and not any("${" + name in value for name in script.exported_names):
        script.lines[last] += " " + d.set_exported.format(var=var, value=value).split(" ", 1)[1]
        script.exported_names.append(var)
        return
    script.add(d.set_exported if exported else d.set_local, var=var, value=value)
    if exported:
        script.export_at, script.export_depth = len(script.lines) - 1, script.depth
        script.exported_names = [var]


def _unset(script: Script, var: str, exported: bool) -> None:
    """Unset ``var``; in a dialect that unsets several in one statement, right after
    another unset at the same place, by adding it to that statement (fewer to parse)."""
    d = script.dialect
    if script.deferred is not None and var.startswith(STATE_PREFIX):
        if var not in script.deferred:
            script.deferred.append(var)
        return
    template = d.unset_exported if exported else d.unset_local
    last = len(script.lines) - 1
    if (d.unset_joins and last >= 0 and script.unset_at == last
            and script.unset_depth == script.depth):
        script.lines[last] += " " + var
    else:
        script.add(template, var=var)
    script.unset_at, script.unset_depth = len(script.lines) - 1, script.depth


def _save(script: Script, var: str, key: str, exported: bool) -> None:
    """Copy ``var`` into its saved variable, only if it is set (unset stays unset)."""
    script.open(script.dialect.if_set, var=var)
    _set(script, saved_name(key), script.dialect.ref.format(var=var), exported)
    script.close()


def _restore(script: Script, var: str, key: str, exported: bool) -> None:
    """Give ``var`` back its saved value, or unset it if it had none."""
    d = script.dialect
    saved = saved_name(key)
    script.open(d.if_set, var=saved)
    _set(script, var, d.ref.format(var=saved), exported)
    _unset(script, saved, exported)
    script.otherwise()
    _unset(script, var, exported)
    script.close()


def _var_and_key(change: Change, dialect: Dialect) -> tuple[str, str]:
    if isinstance(change, SetPrompt):
        return dialect.prompt_var, dialect.prompt_var
    return change.name, state_key(change)


def _leave_stacks(script: Script, change: LeaveStacks) -> None:
    d = script.dialect

    def alternatives(entries: tuple[str, ...]) -> str:
        return d.alternatives.join(d.quote(e) for e in (d.never_an_entry, *entries))

    own, keep = alternatives(change.own), alternatives(change.keep)
    script.add(_template(d, "leave_pythonpath"), own=own)
    for name in change.below:
        script.add(_template(d, "leave_below"), var=name, own=own, keep=keep,
                   packages=packages_patterns(d))
    script.add(_template(d, "leave_end"))


def packages_patterns(dialect: Dialect) -> str:
    """A pattern (alternatives) matching an entry that is a stack's packages directory:
    the shells' spelling of :func:`~layervenv.model.stack.is_packages_directory`."""
    return dialect.alternatives.join(f"*{dialect.quote(name)}*" for name in PACKAGE_DIRECTORIES)


def apply_change(script: Script, change: Change) -> None:
    """Emit the lines that perform one change at activation."""
    d = script.dialect
    if isinstance(change, LeaveStacks):
        _leave_stacks(script, change)
        return
    var, key = _var_and_key(change, d)
    if isinstance(change, SetVar):
        _save(script, var, key, change.exported)
        _set(script, var, d.quote(change.value), change.exported)
    elif isinstance(change, UnsetVar):
        _save(script, var, key, change.exported)
        _unset(script, var, change.exported)
    elif isinstance(change, PrependPath):
        _save(script, var, key, change.exported)
        _prepend(script, change, var, key)
    elif isinstance(change, SetPrompt):
        prompt = prompt_syntax(d, change.exported, change.text)
        script.open(d.if_empty, var="VIRTUAL_ENV_DISABLE_PROMPT")
        script.open_text(prompt.if_set)
        script.add_text(prompt.save)
        script.close()
        script.add_text(prompt.set, prefix=d.quote(prompt.escape(change.text)))
        _set(script, applied_name(key), prompt.applied, change.exported)
        script.close()
    else:  # pragma: no cover - the model is closed
        raise TypeError(change)


def _prepend(script: Script, change: PrependPath, var: str, key: str,
             applied: bool = True) -> None:
    """Prepend the entry, and keep what was added and (with ``applied``) what the
    variable became: read back from the shell in a command of its own, since the shell
    may store something else than the value it was given (zsh's ``typeset -U PATH``
    drops duplicate entries)."""
    d = script.dialect
    entry = d.quote(change.entry)
    if d.prepend_value and d.set_joins and change.exported:
        _set(script, var, d.prepend_value.format(var=var, entry=entry), True)
    else:
        script.add(d.prepend, var=var, entry=entry)
    if applied:
        _set(script, applied_name(key), d.ref.format(var=var), change.exported)
    _set(script, added_name(key), entry, change.exported)


def _apply_joined(script: Script, changes: tuple[Change, ...], marker: str | None) -> bool:
    """Apply ``changes`` with every save first and every export in one command, where
    the dialect joins exports and that means the same: the changes are SetVar, UnsetVar
    and PrependPath of distinct variables, so no save reads a value set before it.
    ``marker`` (a quoted value) sets MARKER in that command.  False if not possible."""
    d = script.dialect
    kinds = (SetVar, UnsetVar, PrependPath)
    names = [getattr(c, "name", "") for c in changes]
    if (not d.set_joins or not all(isinstance(c, kinds) for c in changes)
            or len(set(names)) != len(names)):
        return False
    words = d.copies_in_one_export and all(c.exported for c in changes)
    if words:  # the saves are words of the one export (each reads what is not yet set)
        script.add(d.export_words, words=" ".join(
            d.copy_word.format(src=c.name, dst=saved_name(state_key(c))) for c in changes))
        script.export_at, script.export_depth = len(script.lines) - 1, script.depth
        script.exported_names = []
    else:
        for change in changes:
            _save(script, *_var_and_key(change, d), change.exported)  # type: ignore[union-attr]
        _unset_all(script, changes)
    if marker is not None:
        _set(script, MARKER, marker, True)
    for change in changes:
        var, key = _var_and_key(change, d)
        if isinstance(change, SetVar):
            _set(script, var, d.quote(change.value), change.exported)
        elif isinstance(change, PrependPath):
            _prepend(script, change, var, key, applied=False)
    if words:
        _unset_all(script, changes)
    for change in changes:  # a command of their own: they read what the one above set
        if isinstance(change, PrependPath):
            var, key = _var_and_key(change, d)
            _set(script, applied_name(key), d.ref.format(var=var), change.exported)
    return True


def _unset_all(script: Script, changes: tuple[Change, ...]) -> None:
    for change in changes:
        if isinstance(change, UnsetVar):
            _unset(script, change.name, change.exported)


def revert_change(script: Script, change: Change, unchanged: bool = False) -> None:
    """Emit the lines that undo one change at deactivation.

    ``unchanged``: the caller has checked that nothing changed the path-like variable
    since activation, so its old value is given back without the other cases.
    """
    d = script.dialect
    var, key = _var_and_key(change, d)
    if isinstance(change, UnsetVar):
        script.open(d.if_set, var=saved_name(key))
        _set(script, var, d.ref.format(var=saved_name(key)), change.exported)
        _unset(script, saved_name(key), change.exported)
        script.close()
        return
    if isinstance(change, SetVar):
        _restore(script, var, key, change.exported)
        return
    applied = applied_name(key)
    if unchanged and isinstance(change, PrependPath):
        _restore(script, var, key, change.exported)
        _unset(script, added_name(key), change.exported)
        _unset(script, applied, change.exported)
        return
    script.open(d.if_set, var=applied)
    if isinstance(change, SetPrompt):
        prompt = prompt_syntax(d, change.exported, change.text)
        script.open_text(prompt.if_saved)
        script.add_text(prompt.restore)
        script.otherwise()
        script.add_text(prompt.unset)
        script.close()
    elif isinstance(change, PrependPath):
        script.open(d.if_equal, a=var, b=applied)
        _restore(script, var, key, change.exported)
        script.otherwise()
        script.add(d.remove_entry, var=var, entry=d.ref.format(var=added_name(key)))
        script.open(d.if_empty, var=var)
        script.open(d.if_unset, var=saved_name(key))
        _unset(script, var, change.exported)
        script.close()
        script.close()
        _unset(script, saved_name(key), change.exported)
        script.close()
        _unset(script, added_name(key), change.exported)
    else:  # pragma: no cover - the model is closed
        raise TypeError(change)
    _unset(script, applied, change.exported)
    script.close()


def _template(dialect: Dialect, name: str) -> str:
    template = getattr(dialect, name)
    if not template:
        raise NotImplementedError(f"the {dialect.name} dialect has no {name!r} syntax")
    return template


def render_requires(env: EnvChange, dialect: Dialect, indent: int = 0) -> str:
    """The refusals of :func:`render_checks` that read nothing of the shell: the layer moved,
    its stack or a group layer gone.  An activation script puts them first, before a layer
    active is left (:class:`~layervenv.runtime.envchange.SetAsideLayers`): such a refusal
    then changes nothing at all, and needs none of this layer's files to give that layer
    back (a moved layer has none)."""
    script = Script(dialect, indent)
    for requirement in env.requires:
        script.open(_template(dialect, "if_missing"), path=dialect.quote(requirement.path))
        message = requirement.message or (
            f"layervenv: the stack of this layer is missing: {requirement.what} "
            f"{requirement.path} (is CVMFS mounted? was the release removed?)")
        script.add(_template(dialect, "fail"), message=dialect.quote(message))
        script.close()
    return script.text()


def render_checks(env: EnvChange, dialect: Dialect, indent: int = 0,
                  requires: bool = True) -> str:
    """Refusals that come before any change: a missing stack (without ``requires``: left to
    :func:`render_requires`, rendered before), another stack set up.

    ``env.leave`` (a kernel's launcher leaving the server's stacks) comes between the two:
    after it, no other stack is set up.

    Whether the layer's stack is set up is found out here once, and left in
    PRESENT_FLAG for :func:`render_apply`, which comes right after it in every script.
    """
    script = Script(dialect, indent)
    if requires:
        script.add_text(render_requires(env, dialect))
    for change in env.leave:
        apply_change(script, change)
    if env.stack is not None:
        _compute_stack_presence(script, env.stack)
        script.open(dialect.if_empty, var=PRESENT_FLAG)
        _set(script, FOREIGN_FLAG, dialect.quote(""), False)
        for name in PACKAGE_DIRECTORIES:  # site-packages, dist-packages
            script.add(_template(dialect, "flag_if_contains"), var="PYTHONPATH",
                       flag=FOREIGN_FLAG, text=dialect.quote(name))
        script.open(dialect.if_set_nonempty, var=FOREIGN_FLAG)
        message = (f"layervenv: another stack is set up in this shell; this layer was made on "
                   f"{env.stack.describe}: activate it in a shell without that stack")
        _unset(script, PRESENT_FLAG, False)
        _unset(script, FOREIGN_FLAG, False)
        _refuse(script, env, message)
        script.close()
        _unset(script, FOREIGN_FLAG, False)
        script.close()
    return script.text()


def _refuse(script: Script, env: EnvChange, message: str) -> None:
    """Say ``message`` and stop; a layer that this activation left is active again."""
    d = script.dialect
    if env.under is not None and d.give_back:
        script.add(d.give_back)
    script.add(_template(d, "fail"), message=d.quote(message))


PRESENT_FLAG = "_layervenv_stack_present"
FOREIGN_FLAG = "_layervenv_foreign"


def _compute_stack_presence(script: Script, stack: StackGroup) -> None:
    """Set PRESENT_FLAG to 1 when every marker entry of the stack is on PYTHONPATH."""
    d = script.dialect
    _set(script, PRESENT_FLAG, d.quote("1"), False)
    if d.flag_if_any_absent:
        script.add(d.flag_if_any_absent, var=stack.present_var, flag=PRESENT_FLAG,
                   entries=" ".join(d.quote(entry) for entry in stack.present_if))
        return
    for entry in stack.present_if:
        script.add(_template(d, "flag_if_absent"), var=stack.present_var, flag=PRESENT_FLAG,
                   entry=d.quote(entry))


def _apply_stack(script: Script, stack: StackGroup) -> None:
    """Re-establish the stack where PRESENT_FLAG (left by the checks) says it is not set up."""
    d = script.dialect
    script.open(d.if_empty, var=PRESENT_FLAG)
    _set(script, STACK_FLAG, d.quote("1"), True)
    if stack.rerun and d.eval:
        for change in stack.changes:
            var, key = _var_and_key(change, d)
            _save(script, var, key, True)
        script.add(d.eval, command=d.quote(stack.rerun))
    else:
        for change in stack.changes:
            apply_change(script, change)
    script.close()
    _unset(script, PRESENT_FLAG, False)


def _revert_stack(script: Script, stack: StackGroup) -> None:
    d = script.dialect
    script.open(d.if_set, var=STACK_FLAG)
    for change in reversed(stack.changes):
        if stack.rerun and d.eval:
            var, key = _var_and_key(change, d)
            _restore(script, var, key, True)
        else:
            revert_change(script, change)
    _unset(script, STACK_FLAG, True)
    script.close()


def _set_aside_venv(script: Script, venv: SetAsideVenv, file: str | None = None) -> None:
    """Take the active venv's ``bin`` out of PATH, keeping what undoes it (SetAsideVenv):
    inline, or by reading ``file`` (:func:`render_venv_aside`), which only an activation
    over a venv then parses."""
    d = script.dialect
    script.open(_template(d, "if_venv_active"))
    if file is not None:
        script.add(_template(d, "source"), path=d.quote(file))
    else:
        _venv_aside_steps(script, venv)
    script.close()


def _venv_aside_steps(script: Script, venv: SetAsideVenv) -> None:
    d = script.dialect
    _set(script, VENV_STATE, d.concat.format(a=d.ref.format(var="VIRTUAL_ENV"),
                                             b=d.quote("/" + venv.bin_name)), True)
    _save(script, "PATH", VENV_KEY, True)
    script.add(d.remove_entry, var="PATH", entry=d.ref.format(var=VENV_STATE))
    _set(script, applied_name(VENV_KEY), d.ref.format(var="PATH"), True)


def render_venv_aside(env: EnvChange, dialect: Dialect) -> str:
    """The steps that set a plain venv aside, as a file of their own (see
    :func:`_set_aside_venv`): empty where ``env`` sets none aside."""
    if env.venv is None:
        return ""
    script = Script(dialect)
    _venv_aside_steps(script, env.venv)
    return script.text()


def _bring_back_venv(script: Script) -> None:
    """Give PATH the venv's ``bin`` back: the exact old PATH where nothing changed it since
    the venv was set aside, else the venv's ``bin`` in front of what PATH is now."""
    d = script.dialect
    applied = applied_name(VENV_KEY)
    script.open(d.if_set, var=VENV_STATE)
    script.open(d.if_equal, a="PATH", b=applied)
    _restore(script, "PATH", VENV_KEY, True)
    script.otherwise()
    script.add(d.prepend, var="PATH", entry=d.ref.format(var=VENV_STATE))
    _unset(script, saved_name(VENV_KEY), True)
    script.close()
    _unset(script, applied, True)
    _unset(script, VENV_STATE, True)
    script.close()


def render_apply(env: EnvChange, dialect: Dialect, indent: int = 0,
                 venv_file: str | None = None) -> str:
    """The lines that activate the layer (after the checks); ``venv_file``: where the
    steps that set a venv aside are read from (else they are inline)."""
    script = Script(dialect, indent)
    if env.venv is not None:  # first: what it reads is the shell's own state
        _set_aside_venv(script, env.venv, venv_file)
    marker: str | None = dialect.quote(env.layer)
    if env.stack is not None:  # set first: a stack's setup may fail half-way
        _set(script, MARKER, dialect.quote(env.layer), True)
        _apply_stack(script, env.stack)
        marker = None
    plain = tuple(c for c in env.changes if not isinstance(c, SetPrompt))
    if plain == env.changes[:len(plain)] and _apply_joined(script, plain, marker):
        for change in env.changes[len(plain):]:
            apply_change(script, change)
    else:
        if marker is not None:
            _set(script, MARKER, marker, True)
        for change in env.changes:
            apply_change(script, change)
    if env.touches_path():
        script.add(dialect.rehash)
    return script.text()


def render_revert(env: EnvChange, dialect: Dialect, indent: int = 0) -> str:
    """The lines that deactivate it: a no-op unless the marker says a layer is active."""
    script = Script(dialect, indent)
    script.open(dialect.if_set, var=MARKER)
    for change in env.reverted():
        revert_change(script, change)
    if env.stack is not None:
        _revert_stack(script, env.stack)
    if env.venv is not None:
        _bring_back_venv(script)
    _unset(script, MARKER, True)
    if env.touches_path():
        script.add(dialect.rehash)
    script.close()
    return script.text()


#: set while ``deactivate`` has to run the general revert (something changed since activation)
GENERAL_FLAG = "_layervenv_general"


def render_deactivate(env: EnvChange, dialect: Dialect, general: str, indent: int = 0) -> str:
    """What ``deactivate`` runs: the common case inline, every other case from ``general``.

    Every shell parses the whole ``deactivate`` at each activation (bash copies a function's
    body again at each call), so the lines that handle what rarely happens -- another tool
    changed PATH meanwhile, an inherited ``--export-pythonpath`` layer, a re-established
    stack -- live in the file ``general`` (the :func:`render_revert` of the same model),
    read only when one of them happened.  The common case is the one where every
    path-like variable is exactly what activation left: each gets its old value back.
    """
    d = dialect
    script = Script(dialect, indent)
    script.open(d.if_set, var=MARKER)
    _set(script, GENERAL_FLAG, d.quote("1"), False)
    opened = _open_common_case(script, env)
    _unset(script, GENERAL_FLAG, False)
    # every state variable goes at the end, in one command where the dialect allows
    script.deferred = [] if d.unset_joins else None
    copies = []  # plain variables given back as words of one export, where the dialect can
    for change in reversed(env.changes):
        if (isinstance(change, (SetVar, UnsetVar)) and change.exported
                and d.copies_in_one_export):
            if isinstance(change, SetVar):
                _unset(script, change.name, True)
            copies.append(change)
        else:
            revert_change(script, change, unchanged=True)
    if copies:  # the marker, still set here, makes sure the command has a word
        script.add(d.export_words, words=" ".join([MARKER, *(
            d.copy_word.format(src=saved_name(state_key(c)), dst=c.name) for c in copies)]))
        for change in copies:
            _unset(script, saved_name(state_key(change)), True)
    deferred, script.deferred = script.deferred or [], None
    for name in [*deferred, MARKER]:
        _unset(script, name, True)
    if env.touches_path():
        script.add(d.rehash)
    for _ in range(opened):
        script.close()
    script.open(d.if_set, var=GENERAL_FLAG)
    _unset(script, GENERAL_FLAG, False)
    gone = ("layervenv: cannot deactivate: {} is gone (was the layer moved or deleted?); "
            "start a new shell")
    script.add(_template(d, "source_or_say"), path=d.quote(general),
               message=d.quote(gone.format(general)), message_format=d.quote(gone.format("%s")))
    script.close()
    script.close()
    return script.text()


def _open_common_case(script: Script, env: EnvChange) -> int:
    """Open the blocks of deactivate's common case (every path-like variable as activation
    left it; no inherited layer, re-established stack or venv set aside); how many."""
    d = script.dialect
    prepends = [c for c in env.changes if isinstance(c, PrependPath)]
    absent = [applied_name(state_key(c)) for c in env.revert_also]
    if any(not isinstance(c, PrependPath) for c in env.revert_also):  # pragma: no cover
        raise TypeError(env.revert_also)
    absent += [STACK_FLAG] if env.stack is not None else []
    absent += [VENV_STATE] if env.venv is not None else []
    opened = 0
    if prepends and d.if_unset_and_equal:  # one test for the first and every absence
        first = prepends.pop(0)
        script.open(d.if_unset_and_equal, a=first.name, b=applied_name(state_key(first)),
                    flags="".join(d.unset_flag.format(var=name) for name in absent))
        absent, opened = [], 1
    for change in prepends:
        applied = applied_name(state_key(change))
        script.open(d.if_set, var=applied)
        script.open(d.if_equal, a=change.name, b=applied)
        opened += 2
    for name in absent:
        script.open(d.if_unset, var=name)
        opened += 1
    return opened


def bin_path(env: EnvChange, name: str) -> str:
    """Where the file ``name`` of ``env``'s layer's ``bin`` is, as its scripts name it."""
    return f"{env.layer}/bin/{name}"


def general_revert_path(env: EnvChange, name: str) -> str:
    """Where the general revert of ``env``'s layer is: ``bin/name``.

    See :func:`render_deactivate`."""
    return bin_path(env, name)


def render_to_front(env: EnvChange, dialect: Dialect, indent: int = 0) -> str:
    """What the prompt hook runs at each prompt: the layer's own entries (its ``bin`` on
    PATH, its site-packages on PYTHONPATH where it exports them) back in front, where
    another tool (a stack's setup sourced after activation) put its entries before them.

    The entries are read from the state variables, as ``deactivate`` reads them; the
    stack's entries that activation re-established are the stack's, left where they are.
    """
    script = Script(dialect, indent)
    for change in env.changes:
        if isinstance(change, PrependPath):
            script.add(_template(dialect, "to_front"), var=change.name,
                       added=added_name(state_key(change)))
    return script.text()


def render_front_test(env: EnvChange, dialect: Dialect, call: str, indent: int = 0) -> str:
    """The prompt hook's test at each prompt: ``call`` (which runs :func:`render_to_front`)
    when one of the layer's entries is not in front."""
    script = Script(dialect, indent)
    for change in env.changes:
        if isinstance(change, PrependPath):
            script.open(_template(dialect, "if_not_in_front"), var=change.name,
                        added=added_name(state_key(change)))
            script.add(call)
            script.close()
    return script.text()


def render_script(template: str, env: EnvChange, dialect: Dialect, version: str,
                  general: str | None = None, venv_file: str | None = None,
                  requires_first: bool = False,
                  **fields: str) -> str:
    """Fill a dialect's script template: header fields (``layer`` is the quoted path), the
    revert (inside its ``deactivate``), the checks and the apply part, all from ``env``;
    ``fields`` fill the template's own.  With ``general``, the revert is the fast one and
    the rest is in the file ``general`` (``bin/activate``: see :func:`render_deactivate`);
    without, the whole revert is inline (a script that stands alone: the kernel launcher).
    With ``requires_first``, the template places ``{requires}`` (:func:`render_requires`)
    itself, ahead of ``{checks}``."""
    return template.format(
        **fields,
        layer=dialect.quote(env.layer),
        layer_comment=env.layer.replace("\n", " "),
        version=version,
        revert=(render_revert(env, dialect, indent=1) if general is None else
                render_deactivate(env, dialect, general_revert_path(env, general), indent=1)),
        requires=render_requires(env, dialect) if requires_first else "",
        checks=render_checks(env, dialect, requires=not requires_first),
        apply=render_apply(env, dialect, venv_file=venv_file),
    )


def under_path(env: EnvChange, suffix: str) -> str:
    """Where the file that gives back the layers set aside is: ``bin/under.SUFFIX``."""
    assert env.under is not None
    return bin_path(env, f"{env.under.file}.{suffix}")


def render_under(env: EnvChange, version: str, shells: str, body: str) -> str:
    """The file ``deactivate`` reads when a layer was set aside (``body``: what it does)."""
    return (f"# Give back what the layervenv layer {env.layer.replace(chr(10), ' ')} set "
            f"aside\n# Generated by layervenv {version}; read by deactivate ({shells}) "
            f"when a layer\n# was active before this one; never edit it.\n\n" + body)


def render_general(env: EnvChange, dialect: Dialect, version: str, shells: str) -> str:
    """The file ``deactivate`` reads when something changed since activation."""
    return (f"# Deactivate the layervenv layer {env.layer.replace(chr(10), ' ')}: every case\n"
            f"# Generated by layervenv {version}; read by deactivate ({shells}) when something\n"
            f"# changed since activation; never edit it.\n\n"
            + render_revert(env, dialect))
