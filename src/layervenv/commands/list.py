"""``layervenv list [DIR]``: every distribution the layer's interpreter sees, and where from.

The listing itself is :mod:`layervenv.inspection.listing` (``demo`` shows it too).
"""

from __future__ import annotations

import argparse

from layervenv.infra.arguments import add_active_dir, add_format
from layervenv.inspection.listing import ListResult, list_layer

__all__ = ["ListResult", "list_layer"]


def add_arguments(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``layervenv list``'s options and help."""
    parser = commands.add_parser(
        "list", help="every distribution the layer sees, and where from",
        description="List every distribution the layer's interpreter sees: the copy that "
                    "wins, its origin (layer, editable, user-site, stack), its location and "
                    "the copies it shadows.")
    add_active_dir(parser)
    parser.add_argument("--shadowed", action="store_true",
                        help="only names with more than one copy")
    add_format(parser)
    return parser
