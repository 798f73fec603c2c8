"""What edge tests share: real signed packages, the real cloud service and agents as processes.

Packages are built here from scikit-learn's bundled digits data (a logistic regression,
exported with skl2onnx, signed with Ed25519) until `tierwise package` offers a builder.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tierwise.cloud.client import CloudAdmin
from tierwise.package.manifest import DriftReference

ADMIN = "tw_admin-token-for-edge-tests"
SITE = "plant-a"
SITE_TOKEN = "tw_site-token-plant-a-for-edge-tests"
FEATURE = "digits"
START_TIMEOUT_S = 60.0


@cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.data.astype(np.float32) / 16.0, data.target


@cache
def _onnx_model(max_iter: int) -> bytes:
    """A digits classifier as ONNX bytes (few iterations: less accurate, less confident)."""
    import warnings

    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y = digits()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(max_iter=max_iter).fit(x[:1200], y[:1200])
    onx = to_onnx(model, x[:1], options={id(model): {"zipmap": False}}, target_opset=17)
    return bytes(onx.SerializeToString())


@cache
def _drift(max_iter: int) -> DriftReference:
    """The model's reference: its 1,200 training rows binned, its own probabilities on them."""
    import onnxruntime as ort

    from tierwise.package.drift_reference import drift_reference

    x = digits()[0][:1200]
    session = ort.InferenceSession(_onnx_model(max_iter), providers=["CPUExecutionProvider"])
    probabilities = session.run(["probabilities"], {"X": x})[0]
    return drift_reference(x, {"fp32": probabilities})


def build_package(
    out: Path, key: Path, name: str, version: int, max_iter: int = 200, broken: bool = False
) -> Path:
    """A signed package directory: one fp32 variant with its drift reference (training rows
    binned); `broken` writes a file ORT cannot load (and has no reference)."""
    from tierwise.package.keys import load_private_key
    from tierwise.package.manifest import MANIFEST_NAME, Manifest, manifest_bytes
    from tierwise.package.signing import sign_package

    out.mkdir(parents=True, exist_ok=True)
    blob = b"not an onnx model" if broken else _onnx_model(max_iter)
    (out / "model-fp32.onnx").write_bytes(blob)
    manifest = Manifest(
        name=name,
        version=version,
        files={"model-fp32.onnx": hashlib.sha256(blob).hexdigest()},
        input={"name": "X", "features": 64},
        output={"probabilities": "probabilities", "classes": list(range(10))},
        variants=[
            {
                "name": "fp32",
                "file": "model-fp32.onnx",
                "size_bytes": len(blob),
                "accuracy": 0.95,
                "quantization": "none",
            }
        ],
        drift=None if broken else _drift(max_iter),
        build={
            "tool": "tests/edge/support.py",
            "source_kind": "sklearn",
            "source_sha256": hashlib.sha256(blob).hexdigest(),
            "eval_data": "digits",
            "eval_samples": 597,
            "calibration_samples": 0,
        },
    )
    (out / MANIFEST_NAME).write_bytes(manifest_bytes(manifest))
    sign_package(out, load_private_key(key))
    return out


def _free_port_line(proc: subprocess.Popen[str], prefix: str) -> str:
    """Wait for the line a server prints once it serves; returns the URL in it."""
    assert proc.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"process exited ({proc.wait()}) before serving")
        if prefix in line:
            return line.strip().rsplit(" ", 1)[-1]
    raise RuntimeError(f"no '{prefix}' line within {START_TIMEOUT_S} s")


@dataclass
class CloudProcess:
    """The real cloud service (SQLite) as its own process on loopback, and its operator."""

    data_dir: Path
    trusted: Path
    url: str = ""
    proc: subprocess.Popen[str] | None = None
    sites: dict[str, str] = field(default_factory=lambda: {SITE: SITE_TOKEN})

    def __enter__(self) -> CloudProcess:
        """`tierwise cloud` on a free port, SQLite in `data_dir`, the sites' tokens loaded."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        tokens = self.data_dir / "tokens.json"
        tokens.write_text(json.dumps(self.sites))
        cmd = [
            sys.executable, "-m", "tierwise", "cloud", "--port", "0",
            "--data-dir", str(self.data_dir), "--tokens", str(tokens),
            "--trusted-key", str(self.trusted),
        ]  # fmt: skip
        env = {**os.environ, "TIERWISE_CLOUD_ADMIN_TOKEN": ADMIN}
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stderr is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError(f"tierwise cloud exited ({self.proc.wait()}) before serving")
            if line.startswith("tierwise cloud: http://"):
                self.url = line.split()[2]
                break
        # Keep reading what the service logs: a full pipe would block it.
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()
        _wait_http(self.url + "/healthz")
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    @property
    def admin(self) -> CloudAdmin:
        """The operator's client of this cloud: upload, assign, read what the agent sent."""
        return CloudAdmin(self.url, ADMIN)


@dataclass
class AgentProcess:
    """`tierwise edge` as its own process."""

    cloud_url: str
    data_dir: Path
    trusted: Path
    extra: tuple[str, ...] = ()
    url: str = ""
    proc: subprocess.Popen[str] | None = None
    env: dict[str, str] = field(default_factory=dict)  # beside ours, e.g. TIERWISE_EDGE_*
    site: str = SITE
    token: str = SITE_TOKEN

    def start(self) -> AgentProcess:
        """Start (or restart, on the same port, so devices find it again)."""
        port = self.url.rsplit(":", 1)[1] if self.url else "0"
        token = self.data_dir.parent / f"{self.data_dir.name}.token"
        token.write_text(self.token)
        cmd = [
            sys.executable,
            "-m",
            "tierwise",
            "edge",
            "--site",
            self.site,
            "--cloud",
            self.cloud_url,
            "--token-file",
            str(token),
            "--trust",
            str(self.trusted),
            "--data-dir",
            str(self.data_dir),
            "--port",
            port,
            *self.extra,
        ]
        env = {**os.environ, **self.env}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
        self.url = _free_port_line(self.proc, "serving on")
        return self

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout)

    def state(self) -> dict[str, Any]:
        r = httpx.get(self.url + "/v1/state", timeout=5)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    def wait_for(self, what: str, check: Any, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            state = self.state()
            if check(state):
                return state
            if time.monotonic() > deadline:
                raise AssertionError(f"agent never got {what}: {json.dumps(state)[:2000]}")
            time.sleep(0.1)


def _wait_http(url: str, timeout: float = START_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout} s")
        time.sleep(0.05)
