"""Cloud inference answers with the feature's registered model, exactly as ONNX Runtime would."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tests.package.support import Keys

from tierwise.package.archive import pack_archive

from .packages import FEATURES, build, trained, wine
from .support import Cloud


@pytest.fixture
def wine_model(cloud: Cloud, signer: Keys, tmp_path: Path) -> None:
    for version, max_iter in ((1, 200), (2, 3)):
        blob = pack_archive(build(tmp_path / f"wine-{version}", signer, "wine", version, max_iter))
        response = cloud.client.post(
            "/v1/packages",
            content=blob,
            headers=cloud.admin | {"Content-Type": "application/gzip"},
        )
        assert response.status_code == 201, response.text
    chosen = {"package": "wine", "version": 1}
    response = cloud.client.put("/v1/cloud-models/quality", json=chosen, headers=cloud.admin)
    assert response.status_code == 200


def test_outputs_match_the_trained_model(cloud: Cloud, wine_model: None) -> None:
    x, _y = wine()
    response = cloud.client.post(
        "/v1/infer/quality", json={"inputs": x[:32].tolist()}, headers=cloud.site_a
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"]) == ("wine", 1)
    expected = trained(200).predict_proba(x[:32])
    np.testing.assert_allclose(np.asarray(body["outputs"]), expected, atol=1e-5)


def test_switching_the_cloud_model_switches_the_answers(cloud: Cloud, wine_model: None) -> None:
    x, _y = wine()
    cloud.client.put(
        "/v1/cloud-models/quality", json={"package": "wine", "version": 2}, headers=cloud.admin
    )
    body = cloud.client.post(
        "/v1/infer/quality", json={"inputs": x[:8].tolist()}, headers=cloud.site_b
    ).json()
    assert body["version"] == 2
    np.testing.assert_allclose(
        np.asarray(body["outputs"]), trained(3).predict_proba(x[:8]), atol=1e-5
    )


def test_bad_inputs_are_422(cloud: Cloud, wine_model: None) -> None:
    cases = [
        {"inputs": [[0.0] * (FEATURES - 1)]},  # wrong width
        {"inputs": [[0.0] * FEATURES, [0.0] * (FEATURES + 1)]},  # ragged
        {"inputs": []},
        {"inputs": [[]]},
        {"inputs": [["a"] * FEATURES]},
        {"inputs": "nope"},
        {"rows": [[0.0] * FEATURES]},
    ]
    codes = [
        cloud.client.post("/v1/infer/quality", json=c, headers=cloud.site_a).status_code
        for c in cases
    ]
    assert codes == [422] * len(cases)


def test_feature_without_a_cloud_model_is_404(cloud: Cloud, wine_model: None) -> None:
    response = cloud.client.post(
        "/v1/infer/other", json={"inputs": [[0.0] * FEATURES]}, headers=cloud.site_a
    )
    assert response.status_code == 404


def test_cloud_model_must_be_registered(cloud: Cloud, wine_model: None) -> None:
    response = cloud.client.put(
        "/v1/cloud-models/quality", json={"package": "wine", "version": 9}, headers=cloud.admin
    )
    assert response.status_code == 422


def test_inference_is_counted(cloud: Cloud, wine_model: None) -> None:
    x, _y = wine()
    cloud.client.post("/v1/infer/quality", json={"inputs": x[:5].tolist()}, headers=cloud.site_a)
    text = cloud.client.get("/metrics").text
    assert 'tierwise_cloud_inference_rows_total{feature="quality"} 5.0' in text


def test_replicas_sharing_a_data_dir_unpack_a_package_once_each_safely(
    cloud: Cloud, wine_model: None
) -> None:
    """Several replicas (threads here) unpacking one package into one data dir at once all get
    a complete copy, and no staging directory is left behind."""
    import threading

    from tierwise.cloud.inference import load_predictor

    ctx = cloud.client.app.state.cloud  # type: ignore[attr-defined]
    barrier = threading.Barrier(4)
    widths: list[int] = []
    errors: list[BaseException] = []

    def replica() -> None:
        try:
            barrier.wait(timeout=10)
            widths.append(load_predictor(ctx, "wine", 1).input_width)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert widths == [FEATURES] * 4
    models = cloud.settings.data_dir / "models"
    assert [p.name for p in models.iterdir() if p.name.startswith(".")] == []
    assert len(list(models.iterdir())) == 1


def test_an_interrupted_unpack_left_in_place_is_redone(cloud: Cloud, wine_model: None) -> None:
    from tierwise.cloud.deployments import cloud_model_of
    from tierwise.cloud.registry import archive_of

    settings = cloud.settings
    _path, sha = archive_of(cloud.db, settings.package_dir, *cloud_model_of(cloud.db, "quality"))
    half = settings.data_dir / "models" / sha
    half.mkdir(parents=True)
    (half / "manifest.json").write_text("{")  # cut off mid-unpack, no marker
    x, _y = wine()
    response = cloud.client.post(
        "/v1/infer/quality", json={"inputs": x[:4].tolist()}, headers=cloud.site_a
    )
    assert response.status_code == 200, response.text
