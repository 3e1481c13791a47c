# layervenv: runs on the stack's Python (3.6+, stdlib only; checked by vermin)
"""What a stack puts on its interpreter's ``sys.path``, and which Python it is.

Run as ``PYTHON -s -c SOURCE REPORT`` in the environment the layer has (PYTHONPATH
from the stack's setup; ``-s`` so that ``~/.local`` is not counted as the stack);
writes one JSON object to REPORT.  With ``-c``, ``sys.path[0]`` is ``''`` (the current
directory): not the stack's, so it is left out.
"""

import json
import sys


def main():
    facts = {
        "path": sys.path[1:],
        "version": ".".join(str(n) for n in sys.version_info[:3]),
        "implementation": sys.implementation.name,
    }
    with open(sys.argv[1], "w") as handle:
        json.dump(facts, handle)


if __name__ == "__main__":
    main()
