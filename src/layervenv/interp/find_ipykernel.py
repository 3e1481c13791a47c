# layervenv: runs on the stack's Python (3.6+, stdlib only; checked by vermin)
"""Where a layer's Python finds ``ipykernel_launcher``: ``{"origin": PATH or null}``.

Run as ``DIR/bin/python -c SOURCE REPORT`` in the environment the kernel gets; the
module is found, never imported.
"""

import importlib.util
import json
import sys


def main():
    target = sys.argv[1]
    spec = importlib.util.find_spec("ipykernel_launcher")
    with open(target, "w") as handle:
        json.dump({"origin": spec.origin if spec and spec.origin else None}, handle)


if __name__ == "__main__":
    main()
