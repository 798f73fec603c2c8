"""The edge agent and the WAN proxy stay slim: no torch, scikit-learn or Flower on a gateway."""

from __future__ import annotations

from tests.exported import heavy_modules_loaded

HEAVY = ("torch", "sklearn", "flwr", "skl2onnx", "onnx", "sqlalchemy")


def test_edge_and_wan_import_nothing_heavy() -> None:
    imports = (
        "tierwise.edge, tierwise.edge.serve, tierwise.edge.packages, tierwise.edge.commands, "
        "tierwise.wan, tierwise.wan.__main__, tierwise.package.runtime"
    )
    assert heavy_modules_loaded(imports, HEAVY) == []
