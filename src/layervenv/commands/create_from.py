"""``layervenv create DIR --from pylock.toml``: the locked layer again, on the current stack.

Before anything is created, the stack the layer will have (the environment of
``--setup``, by default the lock's own setup command, or of this shell) is compared
with the lock's record; a drifted stack is listed and refused unless
``--allow-stack-drift``.  Then the layer is built as by ``create``, and while it is
still staged its pip fetches exactly the locked files (hash-checked, no resolving:
``--no-deps``), which ``installer`` installs with scripts pointing at the final
path.  Editable entries are installed with ``pip install -e --no-deps`` in the
staging directory and their scripts re-pointed.  Only a complete layer is renamed
into place; any failure leaves nothing.

What may run is decided by :mod:`layervenv.services.consent`; the installing is
:mod:`layervenv.services.locked`'s, inside the engine of ``create``
(:mod:`layervenv.services.staging`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from layervenv.infra.errors import UserError
from layervenv.inspection.checks import problems_line, run_checks
from layervenv.model.layer import Layer
from layervenv.model.lockfile import Lock
from layervenv.services.consent import group_layer_of, trusted_build, trusted_setup
from layervenv.services.locked import FromLock
from layervenv.services.packages import Sources
from layervenv.services.staging import CreateOptions, CreateResult, create


@dataclass
class FromResult:
    created: CreateResult
    lock: str
    packages: dict[str, str]
    drift: list[str]
    problems: list[str] | None

    def human(self) -> str:
        names = ", ".join(f"{n} {v}" for n, v in self.packages.items()) or "no packages"
        lines = [self.created.human(), f"installed from {self.lock}: {names}"]
        if self.drift:
            lines.append("the stack differs from the lock (--allow-stack-drift):")
            lines += self.drift
        lines.append(problems_line(self.problems))
        return "\n".join(lines)


def create_from(options: CreateOptions, lock_file: str, allow_drift: bool,
                sources: Sources, trust_setup: bool = False,
                trust_build: bool = False) -> FromResult:
    path = Path(lock_file).absolute()
    lock = Lock.read(path)
    # the user's pip configuration: a setup command's environment starts from a clean login
    sources = sources.with_configuration(
        dict(os.environ if options.environ is None else options.environ))
    built = trusted_build(lock, trust_build)  # before the setup command runs: one refusal
    note = None
    if lock.over and options.over is None and options.setup is None and options.python is None:
        options.over = group_layer_of(lock, trust_setup,
                                      Path(os.path.abspath(options.directory)))
    if options.over is None and options.setup is None and options.python is None and lock.setup:
        note = trusted_setup(lock, trust_setup, Path(os.path.abspath(options.directory)))
        options.setup = lock.setup
        options.rerun_setup = options.rerun_setup or lock.rerun_setup
    # the layer's own choices, as it was made (a flag given here adds to them)
    options.export_pythonpath = options.export_pythonpath or lock.export_pythonpath
    if options.prompt is None:
        options.prompt = lock.prompt
    if options.without_pip:
        raise UserError("--from installs with the layer's pip; --without-pip cannot be used "
                        "(a lock without pip gives a layer without pip)")
    extension = FromLock(lock=lock, allow_drift=allow_drift, sources=sources)
    options.extension = extension
    created = create(options)
    for told in (built, note):
        if told:
            created.notes.insert(0, told)
    created.pip = extension.installed.get("pip")
    problems = run_checks(Layer.open(Path(created.path))).lines()
    return FromResult(created=created, lock=str(path),
                      packages=dict(sorted(extension.installed.items())),
                      drift=extension.drift.lines(), problems=problems)
