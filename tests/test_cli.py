"""What every command shares: how it fails, what it prints where, and its exit status."""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers import tool_command


def run_into_closed_pipe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``layervenv ARGS | head -0``: standard output is a pipe nobody reads any more.

    The read end is closed before the tool starts, so its first write fails whatever
    the size of the output (a pipe buffer would otherwise hide a short one).
    """
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        return subprocess.run(tool_command(*args), env=env, stdout=write_end,
                              stderr=subprocess.PIPE, text=True, check=False)
    finally:
        os.close(write_end)


@pytest.mark.parametrize("fmt", ["human", "json"])
@pytest.mark.parametrize("command", ["list", "check"])
def test_output_into_a_closed_pipe_ends_quietly(make_layer, command, fmt):
    layer = make_layer()
    result = run_into_closed_pipe(command, str(layer.root), "--format", fmt, env=layer.env)
    assert result.stderr == ""
    assert result.returncode == 141
