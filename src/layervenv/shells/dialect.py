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
from dataclasses import dataclass

from layervenv.envchange import (
    MARKER,
    Change,
    EnvChange,
    PrependPath,
    SetPrompt,
    SetVar,
    UnsetVar,
    added_name,
    applied_name,
    saved_name,
)


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


class Script:
    """Lines with indentation: just enough structure for nested conditionals."""

    def __init__(self, dialect: Dialect, indent: int = 0) -> None:
        self.dialect = dialect
        self.lines: list[str] = []
        self.depth = indent

    def add(self, template: str, **fields: str) -> None:
        for line in template.format(**fields).splitlines():
            self.lines.append("    " * self.depth + line)

    def open(self, template: str, **fields: str) -> None:
        self.add(template, **fields)
        self.depth += 1

    def otherwise(self) -> None:
        self.depth -= 1
        self.add(self.dialect.else_)
        self.depth += 1

    def close(self) -> None:
        self.depth -= 1
        self.add(self.dialect.end_if)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _set(script: Script, var: str, value: str, exported: bool) -> None:
    d = script.dialect
    script.add(d.set_exported if exported else d.set_local, var=var, value=value)


def _unset(script: Script, var: str, exported: bool) -> None:
    d = script.dialect
    script.add(d.unset_exported if exported else d.unset_local, var=var)


def _save(script: Script, var: str, exported: bool) -> None:
    """Copy ``var`` into its saved variable, only if it is set (unset stays unset)."""
    script.open(script.dialect.if_set, var=var)
    _set(script, saved_name(var), script.dialect.ref.format(var=var), exported)
    script.close()


def _restore(script: Script, var: str, exported: bool) -> None:
    """Give ``var`` back its saved value, or unset it if it had none."""
    d = script.dialect
    saved = saved_name(var)
    script.open(d.if_set, var=saved)
    _set(script, var, d.ref.format(var=saved), exported)
    _unset(script, saved, exported)
    script.otherwise()
    _unset(script, var, exported)
    script.close()


def _prompt_var(change: Change, dialect: Dialect) -> str:
    return dialect.prompt_var if isinstance(change, SetPrompt) else change.name


def apply_change(script: Script, change: Change) -> None:
    """Emit the lines that perform one change at activation."""
    d = script.dialect
    if isinstance(change, SetVar):
        _save(script, change.name, change.exported)
        _set(script, change.name, d.quote(change.value), change.exported)
    elif isinstance(change, UnsetVar):
        _save(script, change.name, change.exported)
        _unset(script, change.name, change.exported)
    elif isinstance(change, PrependPath):
        _save(script, change.name, change.exported)
        script.add(d.prepend, var=change.name, entry=d.quote(change.entry))
        _set(script, applied_name(change.name), d.ref.format(var=change.name), change.exported)
        _set(script, added_name(change.name), d.quote(change.entry), change.exported)
    elif isinstance(change, SetPrompt):
        var = d.prompt_var
        script.open(d.if_empty, var="VIRTUAL_ENV_DISABLE_PROMPT")
        _save(script, var, change.exported)
        value = d.prompt_value.format(prefix=d.quote(change.text), var=var)
        _set(script, var, value, change.exported)
        _set(script, applied_name(var), d.ref.format(var=var), change.exported)
        script.close()
    else:  # pragma: no cover - the model is closed
        raise TypeError(change)


def revert_change(script: Script, change: Change) -> None:
    """Emit the lines that undo one change at deactivation."""
    d = script.dialect
    if isinstance(change, (SetVar, UnsetVar)):
        if isinstance(change, UnsetVar):
            script.open(d.if_set, var=saved_name(change.name))
            _set(script, change.name, d.ref.format(var=saved_name(change.name)), change.exported)
            _unset(script, saved_name(change.name), change.exported)
            script.close()
        else:
            _restore(script, change.name, change.exported)
        return
    var = _prompt_var(change, d)
    applied = applied_name(var)
    script.open(d.if_set, var=applied)
    if isinstance(change, PrependPath):
        script.open(d.if_equal, a=var, b=applied)
        _restore(script, var, change.exported)
        script.otherwise()
        script.add(d.remove_entry, var=var, entry=d.ref.format(var=added_name(var)))
        script.open(d.if_empty, var=var)
        script.open(d.if_unset, var=saved_name(var))
        _unset(script, var, change.exported)
        script.close()
        script.close()
        _unset(script, saved_name(var), change.exported)
        script.close()
        _unset(script, added_name(var), change.exported)
    else:
        _restore(script, var, change.exported)
    _unset(script, applied, change.exported)
    script.close()


def render_apply(env: EnvChange, dialect: Dialect, indent: int = 0) -> str:
    """The lines that activate the layer."""
    script = Script(dialect, indent)
    _set(script, MARKER, dialect.quote(env.layer), True)
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
    _unset(script, MARKER, True)
    if env.touches_path():
        script.add(dialect.rehash)
    script.close()
    return script.text()
