"""`tierwise cloud` serves over HTTP and stops cleanly; `tierwise cloud token` issues tokens."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from tests.nagle import accepted_nodelay
from tests.package.support import Keys

from tierwise.cloud.commands import _bind
from tierwise.cloud.db import open_database, tokens
from tierwise.cloud.settings import hash_token
from tierwise.edge.serve import installed_server_stacks

TIERWISE = [sys.executable, "-m", "tierwise"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*TIERWISE, *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_token_is_printed_once_and_stored_hashed(tmp_path: Path) -> None:
    result = run("cloud", "token", "--site", "plant-1", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip()
    assert token.startswith("tw_")
    db = open_database(f"sqlite:///{tmp_path / 'cloud.db'}")
    with db.read() as conn:
        rows = conn.execute(sa.select(tokens)).all()
    db.dispose()
    assert [(r.site, r.role, r.token_sha256) for r in rows] == [
        ("plant-1", "site", hash_token(token))
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "exactly one of --site SITE or --admin"),
        (("--site", "a", "--admin"), "exactly one of"),
        (("--admin", "--revoke"), "--revoke needs --site"),
        (("--site", "no spaces"), "site name"),
    ],
)
def test_bad_token_arguments_exit_2_with_one_line(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    result = run("cloud", "token", *args, "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_answers_then_stops_on_sigterm(tmp_path: Path, signer: Keys) -> None:
    env = dict(os.environ, TIERWISE_CLOUD_ADMIN_TOKEN="tw_operator-token-for-the-cli-test")
    site = run("cloud", "token", "--site", "s1", "--data-dir", str(tmp_path)).stdout.strip()
    args = [
        "cloud",
        "--port",
        "0",
        "--data-dir",
        str(tmp_path),
        "--trusted-key",
        str(signer.public),
    ]
    proc = subprocess.Popen(
        [*TIERWISE, *args],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        url = ""
        deadline = time.monotonic() + 60
        while not url and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, f"exited with {proc.poll()} before serving"
            found = re.search(r"http://127\.0\.0\.1:\d+", line)
            url = found.group(0) if found else ""
        with httpx.Client(base_url=url, timeout=10) as client, ThreadPoolExecutor(1) as pool:
            assert client.get("/healthz").json() == {"status": "ok"}
            me = {"Authorization": f"Bearer {site}"}
            first = client.get("/v1/sites/s1/deployment", headers=me)
            assert first.status_code == 200
            assert client.get("/v1/sites/s2/deployment", headers=me).status_code == 403
            held = pool.submit(
                client.get,
                "/v1/sites/s1/deployment",
                params={"wait": 60},
                headers=me | {"If-None-Match": first.headers["ETag"]},
                timeout=90,
            )
            while "tierwise_cloud_deployment_polls_held 1.0" not in client.get("/metrics").text:
                assert not held.done(), held.result()
                time.sleep(0.01)
            # A stop does not wait out the held poll's 60 s: the poll is answered at once.
            proc.send_signal(signal.SIGTERM)
            assert held.result(20).status_code == 304
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_serve_refuses_a_busy_port_and_a_missing_key(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        taken = run("cloud", "--port", port, "--data-dir", str(tmp_path))
    no_key = run("cloud", "--port", "0", "--trusted-key", str(tmp_path / "missing.pub"))
    assert (taken.returncode, no_key.returncode) == (2, 2)
    assert "--port" in taken.stderr
    assert "missing.pub" in no_key.stderr
    assert "Traceback" not in taken.stderr + no_key.stderr


@pytest.mark.parametrize("stack", installed_server_stacks())
def test_serve_answers_on_a_socket_with_nagle_off(stack: str) -> None:
    # Without uvloop, a listener of proto 0 kept Nagle on: each answer (head and body written
    # apart by uvicorn) waited ~40 ms for the client's delayed ACK.
    assert accepted_nodelay(_bind("127.0.0.1", 0), stack) != 0
