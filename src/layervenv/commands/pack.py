"""``layervenv pack [DIR] -o FILE``: one archive a batch job unpacks anywhere and uses.

The contract a job script relies on: ``tar -xzf FILE -C DEST`` makes ``DEST/NAME``,
and ``DEST/NAME/bin/layervenv-run CMD [ARGS...]`` runs CMD with the layer and its
recorded stack, from an empty environment, with nothing but the stack on the worker.
How the archive is made: :mod:`layervenv.services.packing`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from layervenv.infra.arguments import add_active_dir, add_format
from layervenv.infra.writelock import layer_write_lock
from layervenv.model.layer import Layer
from layervenv.services.packing import LAUNCHER, Snapshot, archive_name, write_archive


@dataclass
class PackResult:
    path: str
    layer: str
    size: int
    files: int
    seconds: float
    snapshots: list[Snapshot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def human(self) -> str:
        lines = [f"packed layer {self.layer} into {self.path} ({self.size / 1e6:.1f} MB, "
                 f"{self.files} files) in {self.seconds:.2f} s"]
        for snap in self.snapshots:
            lines.append(f"snapshot of editable {snap.name} {snap.version} from {snap.project} "
                         f"(built in {snap.seconds:.1f} s)")
        lines += self.notes
        name = Path(self.layer).name
        lines.append(f"on a worker: tar -xzf {Path(self.path).name} -C DEST && "
                     f"DEST/{name}/bin/{LAUNCHER} COMMAND [ARGS...]")
        return "\n".join(lines)


def pack(directory: str | None, output: str | None, find_links: Sequence[str] = ()
         ) -> PackResult:
    """Pack the layer ``directory`` into ``output``.

    It holds the layer's lock: snapshotting an editable project runs pip in the layer,
    which two packs at once would race.
    """
    start = time.perf_counter()
    layer = Layer.from_argument(directory)
    with layer_write_lock(layer.root, "pack"):
        target = archive_name(layer, output)
        packed = write_archive(layer, target, find_links)
    return PackResult(path=str(target), layer=str(layer.root), size=target.stat().st_size,
                      files=packed.files, seconds=round(time.perf_counter() - start, 3),
                      snapshots=packed.snapshots, notes=packed.notes)


def add_arguments(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``layervenv pack``'s options and help."""
    parser = commands.add_parser(
        "pack", help="one archive of the layer for batch jobs (Slurm, HTCondor)",
        description="Pack the layer into a .tar.gz that a job unpacks anywhere: "
                    "tar -xzf FILE -C DEST, then DEST/NAME/bin/layervenv-run COMMAND "
                    "[ARGS...]. Editable projects are packed as a snapshot of their "
                    "current code; links leaving the layer as a copy of their content.")
    add_active_dir(parser)
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="the archive (default: NAME.tar.gz in the current directory)")
    parser.add_argument("--find-links", metavar="DIR", action="append", default=[],
                        help="also look here for the build requirements of editable "
                             "projects (their snapshot is built as pip install -e built "
                             "them; your pip configuration is used too); repeatable")
    add_format(parser)
    return parser
