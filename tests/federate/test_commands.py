"""`tierwise federate` picks the job the plan made federated and refuses what it cannot run."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.conftest import MINIMAL
from typer.testing import CliRunner

from tierwise.cli import app

from .support import cli_federate

runner = CliRunner()


def _spec(tmp_path: Path, *jobs: dict[str, Any], sites: int = 3) -> Path:
    data = copy.deepcopy(MINIMAL)
    data["sites"] = [{"name": f"plant-{i}", "devices": 5} for i in range(sites)]
    data["training"] = list(jobs)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


PRIVATE = {
    "name": "private",
    "model": "m",
    "data_per_site": "1GB",
    "cadence": "7d",
    "raw_data_may_reach": "site",
    "rounds": 3,
}
CENTRAL = {"name": "central", "model": "m", "data_per_site": "1KB", "cadence": "7d", "rounds": 3}


def test_a_centralized_job_is_refused_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, PRIVATE, CENTRAL)
    code = cli_federate(str(spec), "--job", "central", "--out", str(tmp_path / "run"))
    err = capsys.readouterr().err
    assert code == 2
    assert 'training job "central" is centralized in the plan' in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()  # refused before anything started


def test_an_unknown_job_names_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli_federate(str(_spec(tmp_path, PRIVATE, CENTRAL)), "--job", "nope")
    assert code == 2
    assert 'no training job "nope"; known: private, central' in capsys.readouterr().err


def test_without_a_federated_job_there_is_nothing_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli_federate(str(_spec(tmp_path, CENTRAL)))
    assert code == 2
    assert "no training job is federated in the plan" in capsys.readouterr().err


def test_secagg_with_a_robust_strategy_is_a_spec_error_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = PRIVATE | {"strategy": "median", "federated": {"secagg": {}}}
    spec = _spec(tmp_path, bad)
    code = cli_federate(str(spec))
    err = capsys.readouterr().err
    assert code == 2
    line = next(i for i, t in enumerate(spec.read_text().splitlines(), 1) if "strategy:" in t)
    assert f"spec.yaml:{line} training[0].strategy: median needs each site's update" in err


def test_min_sites_above_the_site_count_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = _spec(tmp_path, PRIVATE | {"federated": {"min_sites": 4}}, sites=3)
    assert cli_federate(str(spec)) == 2
    assert "training[0].federated.min_sites: min_sites 4 exceeds the 3 sites" in (
        capsys.readouterr().err
    )


def test_cloud_options_are_checked_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in --canary or a missing token must not cost a whole training run."""
    spec, run = _spec(tmp_path, PRIVATE), tmp_path / "run"
    token = tmp_path / "admin.token"
    token.write_text("secret\n", encoding="utf-8")
    cloud = ["--cloud", "http://127.0.0.1:9", "--out", str(run)]
    assert cli_federate(str(spec), *cloud, "--admin-token-file", str(token), "--canary", "x") == 2
    assert "--canary x: not a site of private (its sites: plant-0, plant-1, plant-2)" in (
        capsys.readouterr().err
    )
    monkeypatch.delenv("TIERWISE_ADMIN_TOKEN", raising=False)
    assert cli_federate(str(spec), *cloud) == 2
    assert "--cloud needs the operator token" in capsys.readouterr().err
    assert not run.exists()  # refused before anything started


def test_the_command_is_listed() -> None:
    result = runner.invoke(app, ["federate", "--help"])
    assert result.exit_code == 0
    assert "--job" in result.output
