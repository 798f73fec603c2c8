"""What the edge agent adds to a model call: HTTP predict vs a bare ONNX Runtime call, one run.

    .venv/bin/python benchmarks/edge_overhead.py [--requests 3000] [--concurrency 8]

Builds a signed digits package (scikit-learn's bundled data, logistic regression) with
`tierwise.package`, calibrated as a cascade against a cloud model (3-nearest-neighbours) with
a learned router (fitted on out-of-fold edge outputs on the training rows) and the prototypes
rule (fitted on those training rows' inputs), installs it into
an agent's data directory and starts `tierwise edge` as
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

Then what the fitted escalation rules (learned, prototypes: each one more ONNX Runtime call
per request) cost next to max-probability, one-row inputs, the variants timed interleaved
(round-robin, the first rotating) so load hits them alike:

- in process: a bare ORT call, and the agent's `PackageAnswerer.predict` with each rule;
- HTTP: the same package deployed as three cascade features, one per rule, threshold 0 (no
  score is below it: nothing escalates, as there is no cloud, but the rule runs on every
  request), requests alternating on one connection of the default agent.
Target: each fitted rule adds under 10% to the HTTP predict p50.
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
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tierwise.edge.device import DeviceConnection
from tierwise.edge.serve import STACK_ENV, installed_server_stacks
from tierwise.spec.tiers import EscalationRule

FEATURE = "digits"
PACKAGE = "digits-edge"
TARGET_P50_MS = 2.0
# The learned escalation rule vs the classic one: the same package deployed as a cascade.
CASCADE_FEATURES = {
    "digits-max-probability": EscalationRule.MAX_PROBABILITY,
    "digits-learned": EscalationRule.LEARNED,
    "digits-prototypes": EscalationRule.PROTOTYPES,
}
FITTED_RULES = (EscalationRule.LEARNED, EscalationRule.PROTOTYPES)
TARGET_LEARNED_EXTRA = 0.10  # a fitted rule adds under 10% to the HTTP predict p50

# Run as `python benchmarks/edge_overhead.py`: the repository root, home of the tests' shared
# helpers, is not on the path by itself.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_and_install(root: Path) -> tuple[Path, Path, Path, str]:
    """A signed digits package installed under root/edge/packages, calibrated as a cascade
    against a cloud model, with a learned router and prototypes; (public key, package dir,
    model, input)."""
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict
    from sklearn.neighbors import KNeighborsClassifier
    from tests.edge.support import SITE

    from tierwise.package.build import BuildOptions, build_package
    from tierwise.package.evaldata import EvalData
    from tierwise.package.install import current_package, install_package
    from tierwise.package.keys import write_keypair
    from tierwise.spec.tiers import Placement
    from tierwise.wire import Deployment, FeatureDeployment

    data = load_digits()
    x, y = data.data.astype(np.float32) / 16.0, data.target
    edge = LogisticRegression(max_iter=500)
    model_path = root / "digits.joblib"
    joblib.dump(edge.fit(x[:1200], y[:1200]), model_path)
    cloud_path = root / "digits-cloud.joblib"
    joblib.dump(KNeighborsClassifier(n_neighbors=3).fit(x[:1200], y[:1200]), cloud_path)
    # What the learned router learns from: the edge model's answers on training rows it did
    # not see (out of fold), with their labels.
    router_p = cross_val_predict(edge, x[:1200], y[:1200], method="predict_proba")
    private, public = write_keypair(root / "keys", "bench")
    result = build_package(
        model_path,
        EvalData(
            x=x[1200:],
            y=y[1200:],
            x_calibration=x[:200],
            source="digits",
            router_p=router_p.astype(np.float32),
            router_y=y[:1200],
            router_x=x[:1200],
        ),
        root / "package",
        BuildOptions(
            name=PACKAGE, version=1, sign_key=private, cloud_model=cloud_path, latency_runs=20
        ),
    )
    packages = root / "edge" / "packages"
    install_package(result.path, packages / PACKAGE, [public])
    edge_spec = FeatureDeployment(
        package=PACKAGE,
        version=1,
        sha256="0" * 64,  # what the cloud would have announced; unused for an installed package
        placement=Placement.EDGE,
        deadline_ms=150,
    )
    # The same package as a cascade, once per rule. Threshold 0: no score is below it, so
    # nothing escalates (there is no cloud) while the rule still runs on every request.
    cascades = {
        feature: edge_spec.model_copy(
            update={"placement": Placement.CASCADE, "threshold": 0.0, "rule": rule}
        )
        for feature, rule in CASCADE_FEATURES.items()
    }
    features = {FEATURE: edge_spec, **cascades}
    deployment = Deployment(site=SITE, features=features, etag="local")
    (packages / "deployment.json").write_text(deployment.model_dump_json(), "utf-8")
    installed = current_package(packages / PACKAGE)
    assert installed is not None
    manifest = result.manifest
    assert manifest.cascade is not None, "no cascade calibration"
    variant = manifest.variant(None)
    for rule in FITTED_RULES:
        assert rule in manifest.cascade.rules[variant.name], f"no {rule} rule: {result.notes}"
    return public, installed, installed / variant.file, manifest.input.name


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


def interleaved(
    calls: dict[str, Callable[[np.ndarray], object]], rows: list[np.ndarray]
) -> dict[str, list[float]]:
    """Seconds per call of each variant on each row, timed round-robin with the first variant
    rotating every row (as package/measure.py does), so background load hits them alike."""
    names = list(calls)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i, row in enumerate(rows):
        for j in range(len(names)):
            name = names[(i + j) % len(names)]
            t = time.perf_counter()
            calls[name](row)
            times[name].append(time.perf_counter() - t)
    return times


def rule_cost_in_process(
    package_dir: Path, public: Path, model_file: Path, input_name: str, rows: np.ndarray
) -> dict[str, float]:
    """p50 ms of one-row predicts: a bare ORT call, and the agent's `PackageAnswerer` with the
    max-probability rule and with each fitted rule, interleaved; 200 warm-up rows first."""
    import onnxruntime as ort

    from tierwise.edge.packages import PackageAnswerer
    from tierwise.package.runtime import load_verified, session_options

    session = ort.InferenceSession(
        str(model_file), session_options(1), providers=["CPUExecutionProvider"]
    )
    answerer = PackageAnswerer(load_verified(package_dir, [public]))
    calls: dict[str, Callable[[np.ndarray], object]] = {
        "bare ORT": lambda row: session.run(None, {input_name: row}),
        "max_probability": lambda row: answerer.predict(row, EscalationRule.MAX_PROBABILITY),
        "learned": lambda row: answerer.predict(row, EscalationRule.LEARNED),
        "prototypes": lambda row: answerer.predict(row, EscalationRule.PROTOTYPES),
    }
    one_row = [row[None, :] for row in rows]
    interleaved(calls, one_row[:200])
    times = interleaved(calls, one_row)
    return {name: float(np.percentile(t, 50)) * 1000 for name, t in times.items()}


def rule_cost_http(url: str, rows: np.ndarray) -> dict[EscalationRule, tuple[float, float]]:
    """(p50, p99) ms of one-row HTTP predicts on the cascade features, one connection, the
    features' requests interleaved (first one rotating every row); 200 warm-up rows first."""
    bodies = [json.dumps({"inputs": [row.tolist()]}).encode() for row in rows]
    features = list(CASCADE_FEATURES)
    times: dict[str, list[float]] = {feature: [] for feature in features}

    async def run() -> None:
        connection = DeviceConnection(url)
        for feature in features:  # the cascade ran and kept the answer at the edge
            status, answer = await connection.post(f"/v1/predict/{feature}", bodies[0])
            assert status == 200, answer
            assert json.loads(answer)["reason"] == "confident", answer
        for i, body in enumerate(bodies[:200] + bodies):
            for j in range(len(features)):
                feature = features[(i + j) % len(features)]
                t = time.perf_counter()
                status, _ = await connection.post(f"/v1/predict/{feature}", body)
                if i >= 200:
                    times[feature].append(time.perf_counter() - t)
                assert status == 200
        connection.close()

    asyncio.run(run())
    return {
        CASCADE_FEATURES[feature]: (
            float(np.percentile(t, 50)) * 1000,
            float(np.percentile(t, 99)) * 1000,
        )
        for feature, t in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    from tierwise.edge.serve import fastest_server_stack

    with tempfile.TemporaryDirectory(prefix="tierwise-edge-bench-") as tmp:
        root = Path(tmp)
        print("building and installing a signed digits package ...", flush=True)
        public, package_dir, model_file, input_name = build_and_install(root)
        from sklearn.datasets import load_digits

        x = load_digits().data.astype(np.float32) / 16.0
        rows = x[np.arange(args.requests) % len(x)]
        results = {"bare ONNX Runtime call": bare_ort(model_file, input_name, rows)}
        in_process = rule_cost_in_process(package_dir, public, model_file, input_name, rows)
        http_rules: dict[EscalationRule, tuple[float, float]] = {}
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
                if (durability, stack) == runs[0]:
                    http_rules = rule_cost_http(url, rows)
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

    print_rule_cost(in_process, http_rules)


def print_rule_cost(
    in_process: dict[str, float], http: dict[EscalationRule, tuple[float, float]]
) -> None:
    """The fitted escalation rules' cost next to max-probability's, in process and over HTTP."""
    print("\nescalation rule cost, one-row predicts, timed interleaved (p50 ms):")
    bare, classic = in_process["bare ORT"], in_process["max_probability"]
    print(f"  {'bare ORT call (edge model)':44} {bare:8.3f}")
    print(f"  {'PackageAnswerer.predict, max_probability':44} {classic:8.3f}")
    for rule in FITTED_RULES:
        cost = in_process[rule.value]
        print(
            f"  {'PackageAnswerer.predict, ' + rule.value:44} {cost:8.3f}   "
            f"{cost / classic:.2f}x max_probability (+{(cost - classic) * 1000:.0f} us)"
        )
    (classic_p50, classic_p99) = http[EscalationRule.MAX_PROBABILITY]
    print(f"  {'':44} {'p50 ms':>8} {'p99 ms':>8}")
    print(f"  {'HTTP predict, cascade, max_probability':44} {classic_p50:8.3f} {classic_p99:8.3f}")
    for rule in FITTED_RULES:
        p50, p99 = http[rule]
        print(f"  {'HTTP predict, cascade, ' + rule.value:44} {p50:8.3f} {p99:8.3f}")
    for rule in FITTED_RULES:
        extra = http[rule][0] / classic_p50 - 1
        verdict = "meets" if extra < TARGET_LEARNED_EXTRA else "MISSES"
        print(
            f"{rule.value} adds {extra * 100:+.1f}% to the HTTP predict p50 "
            f"({http[rule][0] / classic_p50:.3f}x): {verdict} the < 10% target"
        )


if __name__ == "__main__":
    main()
