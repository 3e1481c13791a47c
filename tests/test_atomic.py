"""``atomic_write``: the one write-then-rename of the tool (launchers, locks, the cache)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from layervenv.infra.atomic import atomic_write


def test_modes_and_content(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        plain = atomic_write(tmp_path / "plain.txt", "été")
        script = atomic_write(tmp_path / "script", b"#!/bin/sh\n", mode=0o755)
        private = atomic_write(tmp_path / "private.json", "{}", mode=0o600)
    finally:
        os.umask(old)
    assert plain.read_text(encoding="utf-8") == "été"
    assert stat.S_IMODE(plain.stat().st_mode) == 0o644  # as any new file under the umask
    assert stat.S_IMODE(script.stat().st_mode) == 0o755
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt", "private.json", "script"]


def test_a_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path: Path,
                                                              monkeypatch) -> None:
    target = tmp_path / "pylock.toml"
    target.write_text("old")

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["pylock.toml"]
