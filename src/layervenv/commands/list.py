"""``layervenv list [DIR]``: every distribution the layer's interpreter sees, and where from.

The listing itself is :mod:`layervenv.inspection.listing` (``demo`` shows it too).
"""

from __future__ import annotations

from layervenv.inspection.listing import ListResult, list_layer

__all__ = ["ListResult", "list_layer"]
