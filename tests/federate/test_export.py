from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tierwise.federate import mlp
from tierwise.federate.export import next_version, to_onnx


def test_the_onnx_graph_computes_what_numpy_computes() -> None:
    import onnxruntime as ort

    params = mlp.init_params(mlp.MlpShape(64, 16, 10), seed=4)
    session = ort.InferenceSession(to_onnx(params, list(range(10))))
    x = np.random.default_rng(0).random((32, 64), dtype=np.float32)
    (out,) = session.run(["probabilities"], {"input": x})
    assert np.allclose(out, mlp.predict_proba(params, x), atol=1e-5)
    meta = session.get_modelmeta().custom_metadata_map
    assert json.loads(meta["classes"]) == list(range(10))


def test_next_version_is_one_above_the_newest_of_that_name(tmp_path: Path) -> None:
    assert next_version(tmp_path, "m") == 1
    for folder, name, version in (("a", "m", 3), ("b", "m", 7), ("c", "other", 9)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "manifest.json").write_text(
            json.dumps({"name": name, "version": version}), encoding="utf-8"
        )
    assert next_version(tmp_path, "m") == 8
