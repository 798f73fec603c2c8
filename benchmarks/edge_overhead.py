"""What the edge agent adds to a model call: HTTP predict vs a bare ONNX Runtime call, one run.

    .venv/bin/python benchmarks/edge_overhead.py [--requests 3000] [--concurrency 8]

Builds a signed digits package (scikit-learn's bundled data, logistic regression) with
`tierwise.package`, installs it into an agent's data directory and starts `tierwise edge` as
its own process (no cloud needed: the agent serves what is installed; its telemetry waits in
the outbox). Then, for the same model file and the same single-row inputs:

- bare ORT: `InferenceSession.run` in this process, one thread (as the agent runs it);
- HTTP: POST /v1/predict/{feature} over loopback, one keep-alive connection, sequential, from
  the light device client of `tierwise.edge.device` —
  parse, route, infer, commit the event to the SQLite outbox, answer;
- HTTP (concurrent): the same with several connections at once, for requests/s;

once with the outbox as configured by default (durability=process: every answer committed
to the SQLite WAL before it is sent, safe against a crash or SIGKILL of the agent) and once
with an fsync per group commit (durability=power, safe against power loss too); then once per
installed uvicorn server stack (asyncio or uvloop, h11 or httptools: without the optional
uvloop and httptools, e.g. on Windows, a user gets asyncio/h11).
Target: HTTP p50 <= 2 ms, on every server stack.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tierwise.edge.device import DeviceConnection
from tierwise.edge.serve import STACK_ENV, installed_server_stacks

FEATURE = "digits"
PACKAGE = "digits-edge"
TARGET_P50_MS = 2.0

# Run as `python benchmarks/edge_overhead.py`: the repository root, home of the tests' shared
# helpers, is not on the path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_and_install(root: Path) -> tuple[Path, Path, str]:
    """A signed digits package installed under root/edge/packages; (public key, model, input)."""
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from tests.edge.support import SITE

    from tierwise.package.build import BuildOptions, build_package
    from tierwise.package.evaldata import EvalData
    from tierwise.package.install import current_package, install_package
    from tierwise.package.keys import write_keypair
    from tierwise.spec.tiers import Placement
    from tierwise.wire import Deployment, FeatureDeployment

    data = load_digits()
    x, y = data.data.astype(np.float32) / 16.0, data.target
    model_path = root / "digits.joblib"
    joblib.dump(LogisticRegression(max_iter=500).fit(x[:1200], y[:1200]), model_path)
    private, public = write_keypair(root / "keys", "bench")
    result = build_package(
        model_path,
        EvalData(x=x[1200:], y=y[1200:], x_calibration=x[:200], source="digits"),
        root / "package",
        BuildOptions(name=PACKAGE, version=1, sign_key=private, latency_runs=20),
    )
    packages = root / "edge" / "packages"
    install_package(result.path, packages / PACKAGE, [public])
    spec = FeatureDeployment(
        package=PACKAGE,
        version=1,
        sha256="0" * 64,  # what the cloud would have announced; unused for an installed package
        placement=Placement.EDGE,
        deadline_ms=150,
    )
    deployment = Deployment(site=SITE, features={FEATURE: spec}, etag="local")
    (packages / "deployment.json").write_text(deployment.model_dump_json(), "utf-8")
    installed = current_package(packages / PACKAGE)
    assert installed is not None
    manifest = result.manifest
    return public, installed / manifest.variant(None).file, manifest.input.name


def closed_port() -> int:
    """A port nothing listens on: the agent's cloud, unreachable on purpose."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_agent(
    root: Path, public: Path, durability: str, stack: str = ""
) -> tuple[subprocess.Popen[str], str]:
    """`tierwise edge` serving what is installed under root/edge, as the edge tests start it."""
    from tests.edge.support import AgentProcess

    cloud = f"http://127.0.0.1:{closed_port()}"
    agent = AgentProcess(cloud, root / "edge", public, ("--durability", durability))
    before = os.environ.get(STACK_ENV)
    if stack:
        os.environ[STACK_ENV] = stack  # the agent process inherits it
    try:
        agent.start()
    finally:
        if before is None:
            os.environ.pop(STACK_ENV, None)
        else:
            os.environ[STACK_ENV] = before
    assert agent.proc is not None
    return agent.proc, agent.url


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), load-independent cost."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summarize(latencies_s: list[float], wall_s: float) -> tuple[float, float, float]:
    ms = np.asarray(latencies_s) * 1000
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), len(ms) / wall_s


def bare_ort(model_file: Path, input_name: str, rows: np.ndarray) -> tuple[float, float, float]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_file), options, providers=["CPUExecutionProvider"])
    for row in rows[:200]:
        session.run(None, {input_name: row[None, :]})
    times = []
    started = time.perf_counter()
    for row in rows:
        t = time.perf_counter()
        session.run(None, {input_name: row[None, :]})
        times.append(time.perf_counter() - t)
    return summarize(times, time.perf_counter() - started)


def http_devices(url: str, rows: np.ndarray, concurrency: int) -> tuple[float, float, float]:
    """`concurrency` devices at once, each on its own keep-alive connection, one request at a
    time each (1 = sequential); 200 warm-up requests first, not counted."""
    bodies = [json.dumps({"inputs": [row.tolist()]}).encode() for row in rows]
    times: list[float] = []

    async def device(share: list[bytes], record: bool) -> None:
        connection = DeviceConnection(url)
        for body in share:
            t = time.perf_counter()
            status, _ = await connection.post(f"/v1/predict/{FEATURE}", body)
            if record:
                times.append(time.perf_counter() - t)
            assert status == 200
        connection.close()

    async def run() -> float:
        await device(bodies[:200], record=False)
        started = time.perf_counter()
        shares = (bodies[i::concurrency] for i in range(concurrency))
        await asyncio.gather(*(device(share, record=True) for share in shares))
        return time.perf_counter() - started

    wall = asyncio.run(run())
    return summarize(times, wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    from tierwise.edge.serve import fastest_server_stack

    with tempfile.TemporaryDirectory(prefix="tierwise-edge-bench-") as tmp:
        root = Path(tmp)
        print("building and installing a signed digits package ...", flush=True)
        public, model_file, input_name = build_and_install(root)
        from sklearn.datasets import load_digits

        x = load_digits().data.astype(np.float32) / 16.0
        rows = x[np.arange(args.requests) % len(x)]
        results = {"bare ONNX Runtime call": bare_ort(model_file, input_name, rows)}
        cpu_ms: dict[str, float] = {}
        stacks = installed_server_stacks()
        runs = [("process", ""), ("power", "")] + [("process", stack) for stack in stacks]
        for durability, stack in runs:
            proc, url = start_agent(root, public, durability, stack)
            try:
                name = f"HTTP predict, outbox {durability}" + (f", {stack}" if stack else "")
                for conns in (1, args.concurrency):
                    label = name if conns == 1 else f"{name}, {conns} conns"
                    before = cpu_seconds(proc.pid)
                    results[label] = http_devices(url, rows, conns)
                    cpu_ms[label] = (cpu_seconds(proc.pid) - before) / (len(rows) + 200) * 1000
            finally:
                proc.terminate()
                proc.wait(30)
    loop, http = fastest_server_stack()
    base_p50 = results["bare ONNX Runtime call"][0]
    print(
        f"\nedge overhead on {os.cpu_count()} cores, {args.requests} single-row requests each, "
        f"model {model_file.name}, server uvicorn with {loop} + {http}"
    )
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(
        f"load average at the end: {load} (wall-clock figures suffer on a busy machine; the "
        "agent's CPU per request does not)"
    )
    width = max(len(name) for name in results)
    header = f"{'':{width}} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>9} {'p50 vs bare':>12}"
    print(f"{header} {'agent CPU ms/req':>17}")
    for name, (p50, p99, rps) in results.items():
        cpu = f"{cpu_ms[name]:17.3f}" if name in cpu_ms else f"{'':17}"
        print(f"{name:{width}} {p50:8.3f} {p99:8.3f} {rps:9.0f} {p50 / base_p50:11.1f}x {cpu}")
    http_p50 = results["HTTP predict, outbox process"][0]
    verdict = "meets" if http_p50 <= TARGET_P50_MS else "MISSES"
    print(f"\nHTTP p50 {http_p50:.2f} ms (default durability): {verdict} the <= 2 ms target")
    print("per server stack (outbox process, one connection), target p50 <= 2 ms on each:")
    print(f"  {'':20} {'p50 ms':>8} {'p99 ms':>8}")
    for stack in stacks:
        p50, p99, _ = results[f"HTTP predict, outbox process, {stack}"]
        verdict = "meets" if p50 <= TARGET_P50_MS else "MISSES"
        print(f"  {stack:20} {p50:8.3f} {p99:8.3f}  {verdict}")


if __name__ == "__main__":
    main()
