"""What a lock file may hold, checked field by field before any of it is used.

A lock is a file people share: every value in it is data from elsewhere.  Names
and versions are parsed with ``packaging`` (a name is a PEP 508 name, a version a
PEP 440 version with nothing around it), URLs are of an allowed scheme, paths and
URLs hold no whitespace or control character, hashes are hexadecimal digests of
their algorithm's length, types are what PEP 751 and ``[tool.layervenv]`` say,
and a key neither of them defines is refused.  So no value can become a second
line, or an option, in what is given to pip, or escape codes on a terminal.

The first problem found is reported in one line naming the field, e.g.
``packages[0].version is not a version: '1.24.2\\n-e /p'``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from layervenv.infra.errors import UserError

#: PEP 508's name, matched whole (``re.fullmatch``: ``$`` would let a final newline by)
NAME = re.compile(r"[A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9]", re.IGNORECASE)
#: the longest name or version taken: PEP 508 and 440 set none, but no published one comes
#: near it, and a 40,000-character "version" is no version anyone locked
MAX_NAME = MAX_VERSION = 200
#: the longest path (Linux's PATH_MAX) or prompt taken from ``[tool.layervenv]``: such a
#: value is shown in messages (the stack's drift), where 40,000 characters are no line
MAX_PATH = 4096
#: URL schemes pip may fetch a locked file or archive from
FILE_SCHEMES = ("https", "http", "file")
#: ... and a VCS checkout (written ``type+URL`` for pip)
VCS_SCHEMES = (*FILE_SCHEMES, "ssh", "git")
VCS_TYPES = ("git", "hg", "svn", "bzr")
#: a commit id (hex for git and hg, a number for svn)
COMMIT = re.compile(r"[0-9A-Za-z]+")
#: a branch or tag as pip takes it after ``@``: no whitespace, ``@``, ``#`` or leading ``-``
REVISION = re.compile(r"[A-Za-z0-9._+][A-Za-z0-9._/+-]*")
#: an archive's or a VCS checkout's subdirectory (pip's ``#subdirectory=``)
SUBDIRECTORY = re.compile(r"[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*")

# PEP 751's keys; ours in [tool.layervenv]
TOP_KEYS = {"lock-version", "environments", "requires-python", "extras", "dependency-groups",
            "default-groups", "created-by", "packages", "tool"}
PACKAGE_KEYS = {"name", "version", "marker", "requires-python", "dependencies", "index", "vcs",
                "directory", "archive", "sdist", "wheels", "attestation-identities", "tool"}
FILE_KEYS = {"name", "upload-time", "url", "path", "size", "hashes"}
ARCHIVE_KEYS = {"url", "path", "size", "upload-time", "hashes", "subdirectory"}
VCS_KEYS = {"type", "url", "path", "requested-revision", "commit-id", "subdirectory"}
DIRECTORY_KEYS = {"path", "editable", "subdirectory"}
TOOL_KEYS = {"python-version", "implementation", "python", "setup", "rerun-setup",
             "export-pythonpath", "prompt", "requested-from-stack", "stack-fingerprint",
             "stack-distributions", "over"}
PACKAGE_TOOL_KEYS = {"requested"}


#: What a line of the requirements file given to pip may be: ``name==version`` or a URL
#: (``file:``, ``https:``, ``git+https:``... with pip's ``#subdirectory=``), then hashes
PIP_LINE = re.compile(
    r"(?:[A-Za-z0-9._-]+==[A-Za-z0-9.+!_-]+"
    r"|(?:(?:git|hg|svn|bzr)\+)?(?:https?|file|ssh|git)://[!-\"$-~]+"
    r"(?:#subdirectory=[A-Za-z0-9._/+-]+)?)"
    r"(?: --hash=sha256:[0-9a-f]{64})*")


def requirement_line(line: str) -> str:
    """``line`` when it is one plain requirement for pip (see ``PIP_LINE``), else a
    UserError: the last guard before a requirements file is written, whatever the lock
    checks before it missed."""
    if not PIP_LINE.fullmatch(line):
        raise UserError(f"refusing to give pip the requirement {shown(line)}: it is not "
                        "name==version or a URL with hashes")
    return line


class LockRefused(UserError):
    """A lock with a value that cannot be used as it is."""


def shown(value: Any, limit: int = 80) -> str:
    """``value`` for a one-line message: quoted, control characters escaped, cut short."""
    try:
        text = repr(value)
    except RecursionError:  # a value nested deeper than repr goes
        text = f"<a {type(value).__name__} nested too deeply to show>"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def visible(text: str) -> str:
    """A command as it can be shown on a terminal: as it is when every character is
    printable (a newline, a carriage return or an escape code could hide a part of
    it), else escaped."""
    lines = text.split("\n")
    if all(line.isprintable() for line in lines):
        return text
    return repr(text)


class _Checker:
    """Walks a lock's data; the first problem raises, naming its field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, why: str, value: Any = None, show: bool = True) -> None:
        said = f": {shown(value)}" if show else ""
        raise LockRefused(f"{self.source}: {where} {why}{said}; the lock is refused "
                          "(nothing was run or created)")

    def table(self, value: Any, where: str, keys: set[str]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(where, "is not a table", value)
        unknown = sorted(str(k) for k in value if k not in keys)
        if unknown:
            self.fail(f"{where}.{unknown[0]}", "is an unknown key", show=False)
        return value

    def array(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(where, "is not an array", value)
        return value

    def string(self, value: Any, where: str) -> str:
        """A one-line printable string (no newline, tab, escape code)."""
        if not isinstance(value, str):
            self.fail(where, "is not a string", value)
        if not value.isprintable():
            self.fail(where, "holds a control character", value)
        return value

    def bounded(self, value: Any, where: str, limit: int) -> str:
        """A one-line string of at most ``limit`` characters."""
        text = self.string(value, where)
        if len(text) > limit:
            self.fail(where, f"is longer than {limit} characters ({len(text)})", value)
        return text

    def word(self, value: Any, where: str) -> str:
        """A printable string with no whitespace at all: one word on pip's line."""
        text = self.string(value, where)
        if not text or any(c.isspace() for c in text):
            self.fail(where, "is empty or holds whitespace", value)
        return text

    def boolean(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            self.fail(where, "is not true or false", value)
        return value

    def name(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not NAME.fullmatch(value):
            self.fail(where, "is not a package name", value)
        if len(value) > MAX_NAME:
            self.fail(where, f"is longer than {MAX_NAME} characters ({len(value)})", value)
        return value

    def version(self, value: Any, where: str) -> str:
        text = self.word(value, where)
        if len(text) > MAX_VERSION:
            self.fail(where, f"is longer than {MAX_VERSION} characters ({len(text)})", value)
        try:
            Version(text)
        except InvalidVersion:
            self.fail(where, "is not a version", value)
        return text

    def pin(self, value: Any, where: str) -> str:
        """``name==version``."""
        name, _, version = self.word(value, where).partition("==")
        self.name(name, where)
        self.version(version, where)
        return value

    def url(self, value: Any, where: str, schemes: tuple[str, ...]) -> str:
        text = self.word(value, where)
        try:
            parts = urlsplit(text)
        except ValueError:
            self.fail(where, "is not a URL", value)
        if not text.isascii():
            self.fail(where, "is not ASCII (percent-encode it)", value)
        if parts.scheme not in schemes:
            self.fail(where, f"is not a URL of {', '.join(schemes)}", value)
        if "#" in text:
            self.fail(where, "has a fragment (#...)", value)
        return text

    def path(self, value: Any, where: str) -> str:
        text = self.string(value, where)
        if not text or text.startswith("-"):
            self.fail(where, "is not a path", value)
        return text

    def pattern(self, value: Any, where: str, regex: re.Pattern[str], what: str) -> str:
        if not isinstance(value, str) or not regex.fullmatch(value):
            self.fail(where, f"is not {what}", value)
        return value

    def hashes(self, value: Any, where: str) -> dict[str, str]:
        table = self.table(value, where, set(hashlib.algorithms_guaranteed))
        for algorithm, digest in table.items():
            length = hashlib.new(algorithm).digest_size * 2
            if algorithm.startswith("shake_") or not isinstance(digest, str) or \
                    not re.fullmatch(f"[0-9a-f]{{{length}}}", digest):
                self.fail(f"{where}.{algorithm}", "is not a lower-case hex digest", digest)
        return table

    def optional(self, table: dict[str, Any], key: str, where: str,
                 check: Callable[[Any, str], Any]) -> None:
        if key in table:
            check(table[key], f"{where}.{key}")

    def location(self, table: dict[str, Any], where: str, schemes: tuple[str, ...]) -> None:
        """A source table's ``url`` or ``path`` (at least one)."""
        if "url" not in table and "path" not in table:
            self.fail(where, "has neither url nor path", show=False)
        self.optional(table, "url", where, lambda v, w: self.url(v, w, schemes))
        self.optional(table, "path", where, self.path)

    def common(self, table: dict[str, Any], where: str) -> None:
        """``size``, ``upload-time`` and ``subdirectory``, where a table has them."""
        if "size" in table and (not isinstance(table["size"], int) or
                                isinstance(table["size"], bool) or table["size"] < 0):
            self.fail(f"{where}.size", "is not a size", table["size"])
        if "upload-time" in table and not isinstance(table["upload-time"], (datetime, date, str)):
            self.fail(f"{where}.upload-time", "is not a time", table["upload-time"])
        self.optional(table, "subdirectory", where, self.subdirectory)

    def subdirectory(self, value: Any, where: str) -> None:
        self.pattern(value, where, SUBDIRECTORY, "a relative directory")
        if ".." in value.split("/"):
            self.fail(where, "leaves its tree", value)

    def file(self, value: Any, where: str, wheel: bool) -> None:
        """A ``wheels`` entry or an ``sdist``: a file name, where it is, its sha256."""
        table = self.table(value, where, FILE_KEYS)
        self.location(table, where, FILE_SCHEMES)
        self.common(table, where)
        if "name" in table:
            name = self.word(table["name"], f"{where}.name")
            if "/" in name:
                self.fail(f"{where}.name", "is not a file name", name)
            if wheel:
                try:
                    parse_wheel_filename(name)
                except InvalidWheelFilename:
                    self.fail(f"{where}.name", "is not a wheel file name", name)
        if wheel:  # pip takes a wheel's name from where it is (and fails on another)
            for key in ("url", "path"):
                if key in table:
                    self.wheel_location(table[key], f"{where}.{key}")
        if "sha256" not in self.hashes(table.get("hashes"), f"{where}.hashes"):
            self.fail(f"{where}.hashes", "has no sha256", show=False)

    def wheel_location(self, value: str, where: str) -> None:
        """A wheel's URL or path ends with a wheel file name, as pip requires of it."""
        last = unquote(urlsplit(value).path if "://" in value else value).rpartition("/")[2]
        try:
            parse_wheel_filename(last)
        except InvalidWheelFilename:
            self.fail(where, "does not end with a wheel file name", value)

    def package(self, value: Any, where: str) -> None:
        name = value.get("name") if isinstance(value, dict) else None
        if isinstance(name, str) and NAME.fullmatch(name) and len(name) <= MAX_NAME:
            where = f"{where} ({name})"  # named from here on (a name too long is not)
        table = self.table(value, where, PACKAGE_KEYS)
        if "name" not in table:
            self.fail(where, "has no name", show=False)
        self.name(table["name"], f"{where}.name")
        direct = [k for k in ("vcs", "directory", "archive") if k in table]
        files = [k for k in ("sdist", "wheels") if k in table]
        if len(direct) > 1 or (direct and files):
            self.fail(where, f"has more than one source ({', '.join(direct + files)})",
                      show=False)
        if not direct and not files:
            self.fail(where, "names no source (wheels, sdist, archive, directory or vcs)",
                      show=False)
        if "version" in table:
            self.version(table["version"], f"{where}.version")
        elif not set(direct) & {"vcs", "directory"}:
            self.fail(where, "has no version", show=False)
        for wheel_index, wheel in enumerate(self.array(table.get("wheels", []),
                                                       f"{where}.wheels")):
            self.file(wheel, f"{where}.wheels[{wheel_index}]", wheel=True)
        self.optional(table, "sdist", where, lambda v, w: self.file(v, w, wheel=False))
        self.optional(table, "archive", where, self.archive)
        self.optional(table, "vcs", where, self.vcs)
        self.optional(table, "directory", where, self.directory)
        if "tool" in table:
            tools = self.table(table["tool"], f"{where}.tool", set(table["tool"]) if
                               isinstance(table["tool"], dict) else set())
            if "layervenv" in tools:
                ours = self.table(tools["layervenv"], f"{where}.tool.layervenv",
                                  PACKAGE_TOOL_KEYS)
                self.optional(ours, "requested", f"{where}.tool.layervenv", self.boolean)

    def archive(self, value: Any, where: str) -> None:
        table = self.table(value, where, ARCHIVE_KEYS)
        self.location(table, where, FILE_SCHEMES)
        self.common(table, where)
        self.hashes(table.get("hashes", {}), f"{where}.hashes")

    def vcs(self, value: Any, where: str) -> None:
        table = self.table(value, where, VCS_KEYS)
        if table.get("type", "git") not in VCS_TYPES:
            self.fail(f"{where}.type", f"is not one of {', '.join(VCS_TYPES)}", table["type"])
        self.location(table, where, VCS_SCHEMES)
        self.common(table, where)
        self.optional(table, "commit-id", where,
                      lambda v, w: self.pattern(v, w, COMMIT, "a commit id"))
        self.optional(table, "requested-revision", where,
                      lambda v, w: self.pattern(v, w, REVISION, "a revision"))

    def directory(self, value: Any, where: str) -> None:
        table = self.table(value, where, DIRECTORY_KEYS)
        if "path" not in table:
            self.fail(where, "has no path", show=False)
        self.path(table["path"], f"{where}.path")
        self.common(table, where)
        self.optional(table, "editable", where, self.boolean)

    def tool(self, value: Any, where: str) -> None:
        table = self.table(value, where, TOOL_KEYS)
        # the stack's Python as it names itself (``3.11.7+`` is no PEP 440 version) and
        # where it was: bounded, since each is shown when the stack differs from it
        for key, limit in (("python-version", MAX_VERSION), ("implementation", MAX_NAME),
                           ("python", MAX_PATH), ("prompt", MAX_PATH)):
            self.optional(table, key, where,
                          lambda v, w, limit=limit: self.bounded(v, w, limit))
        self.optional(table, "stack-fingerprint", where, self.word)
        for key in ("rerun-setup", "export-pythonpath"):
            self.optional(table, key, where, self.boolean)
        if "setup" in table and not isinstance(table["setup"], str):
            self.fail(f"{where}.setup", "is not a string", table["setup"])
        for index, root in enumerate(self.array(table.get("over", []), f"{where}.over")):
            # a group layer of the stack (create --over): an absolute path, only looked at
            text = self.path(root, f"{where}.over[{index}]")
            if not text.startswith("/") or ":" in text:
                self.fail(f"{where}.over[{index}]", "is not an absolute path", root)
        for index, pin in enumerate(self.array(table.get("requested-from-stack", []),
                                               f"{where}.requested-from-stack")):
            self.pin(pin, f"{where}.requested-from-stack[{index}]")
        stack = table.get("stack-distributions", {})
        if not isinstance(stack, dict):
            self.fail(f"{where}.stack-distributions", "is not a table", stack)
        for name, version in stack.items():
            self.name(name, f"{where}.stack-distributions")
            self.string(version, f"{where}.stack-distributions.{name}")
            if len(version) > MAX_VERSION:  # a stack's version need not be PEP 440's
                self.fail(f"{where}.stack-distributions.{name}",
                          f"is longer than {MAX_VERSION} characters ({len(version)})", version)


def validate(data: dict[str, Any], source: str) -> None:
    """Refuse (``LockRefused``, one line) a lock with any value that is not as it must be.

    ``data`` has ``lock-version`` 1.x and a ``[tool.layervenv]`` table (checked before).
    """
    check = _Checker(source)
    top = check.table(data, "the lock", TOP_KEYS)
    check.optional(top, "created-by", "the lock", check.string)
    tools = check.table(top["tool"], "tool", set(top["tool"]))
    check.tool(tools["layervenv"], "tool.layervenv")
    for index, package in enumerate(check.array(top.get("packages", []), "packages")):
        check.package(package, f"packages[{index}]")
