"""The edge agent and the WAN proxy stay slim: no torch, scikit-learn or Flower on a gateway."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "sklearn", "flwr", "skl2onnx", "onnx", "sqlalchemy")


def test_edge_and_wan_import_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "import tierwise.edge, tierwise.edge.serve, tierwise.edge.packages\n"
        "import tierwise.edge.commands\n"
        "import tierwise.wan, tierwise.wan.__main__, tierwise.package.runtime\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
