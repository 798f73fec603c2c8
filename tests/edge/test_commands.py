"""`tierwise edge` refuses bad input with one line and exit code 2, and drains on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from tests.package.support import make_keys

from tierwise.edge.device import DeviceConnection


def _edge(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tierwise", "edge", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def pub(tmp_path: Path) -> Path:
    return make_keys(tmp_path).public


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["--cloud", "http://127.0.0.1:1"], {"TIERWISE_EDGE_TOKEN": ""}, "no site token"),
        (["--cloud", "127.0.0.1:1"], {"TIERWISE_EDGE_TOKEN": "t"}, "expected a URL like"),
        (
            ["--cloud", "http://127.0.0.1:1", "--durability", "forever"],
            {"TIERWISE_EDGE_TOKEN": "t"},
            "edge setting durability (TIERWISE_EDGE_DURABILITY)",
        ),
        (
            ["--cloud", "http://127.0.0.1:1", "--drop-policy", "drop-random"],
            {"TIERWISE_EDGE_TOKEN": "t"},
            "edge setting drop_policy",
        ),
        (
            ["--cloud", "http://127.0.0.1:1", "--mqtt", "mqtt://edge:secret@127.0.0.1:1883"],
            {"TIERWISE_EDGE_TOKEN": "t"},
            "--mqtt mqtt://127.0.0.1:1883: no password in the URL",
        ),
    ],
)
def test_bad_options_give_one_line_and_exit_2(
    pub: Path, tmp_path: Path, args: list[str], env: dict[str, str], message: str
) -> None:
    out = _edge("--site", "s1", "--trust", str(pub), "--data-dir", str(tmp_path), *args, env=env)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


def test_a_missing_trusted_key_is_named(tmp_path: Path) -> None:
    out = _edge(
        "--site", "s1", "--cloud", "http://127.0.0.1:1", "--trust", str(tmp_path / "nope.pub"),
        env={"TIERWISE_EDGE_TOKEN": "t"},
    )  # fmt: skip
    assert out.returncode == 2
    assert "nope.pub: no such public key file" in out.stderr


def test_an_agent_without_its_cloud_serves_health_and_drains_on_sigterm(
    pub: Path, tmp_path: Path
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "tierwise", "edge", "--site", "s1",
            "--cloud", "http://127.0.0.1:1", "--trust", str(pub),
            "--data-dir", str(tmp_path / "edge"), "--port", "0", "--drain-timeout", "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "TIERWISE_EDGE_TOKEN": "t"},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "edge agent s1 serving on http://127.0.0.1:" in line
    url = line.split()[-1]
    assert httpx.get(url + "/healthz").json() == {"state": "serving"}
    state = httpx.get(url + "/v1/state").json()
    assert state["features"] == {}
    device = DeviceConnection(url)
    status, body = asyncio.run(device.post("/v1/predict/nothing", b'{"inputs": [[1.0]]}'))
    assert status == 404
    assert b"not deployed" in body
    malformed = httpx.post(url + "/v1/predict/nothing", json={"inputs": "rows"})
    assert malformed.status_code == 422
    assert "tierwise_edge_serving 1.0" in httpx.get(url + "/metrics").text
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert (tmp_path / "edge" / "outbox.db").exists()  # kept for the next start
