"""A site's Flower SuperNode: `flower-supernode` itself, with LAN-sized polling.

Run it exactly like `flower-supernode` (same arguments, e.g. `--insecure --superlink
127.0.0.1:9092 --isolation process --port 9094 --node-config 'data-dir="..."'`):
`python -m tierwise.federate.site_node ARGS`. The only difference is `polling.tune_supernode`.
"""

from __future__ import annotations

import sys

from tierwise.federate.polling import tune_supernode


def main() -> None:
    from flwr.supernode.cli.flower_supernode import flower_supernode

    tune_supernode()
    sys.argv[0] = "flower-supernode"
    flower_supernode()


if __name__ == "__main__":
    main()
