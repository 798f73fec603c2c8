"""A small fleet for the learning loop's tests, all real: a `tierwise cloud`, two `tierwise edge`
agents each behind its own byte-capturing WAN proxy, and the test playing the devices.

The model is a scaled one-hidden-layer MLP on scikit-learn's digits (what the loop folds and
fine-tunes), packaged and signed by `tierwise.package`. The devices send each row with
sensor noise on its lit pixels (sd 0.01: those values on the wire are then distinctive, so a
wire search means something); once shifted, at half their sensitivity (x 0.5): a labelled
transformation of real rows. They tell the site the labels of even rows only; accuracy is
counted on odd rows, which no retraining saw.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
from tests.edge.support import ADMIN, AgentProcess, CloudProcess
from tests.package.support import Keys, make_keys

from tierwise.cloud.client import CloudAdmin
from tierwise.edge.field_sample import field_sample_path
from tierwise.learn.target import LoopTarget
from tierwise.spec.tiers import Placement, Reach
from tierwise.wan import WanConditions, WanProxy
from tierwise.wan.thread import ProxyThread
from tierwise.wire import FeatureAssignment

SITES = ("site-a", "site-b")
FEATURE = "inspect"
PACKAGE = "digits-mlp"
GAIN = 0.5  # the drift: every sensor lost half its sensitivity
NOISE = 0.01


@dataclass
class Fleet:
    cloud: CloudProcess
    admin: CloudAdmin
    agents: dict[str, AgentProcess]
    wan: dict[str, ProxyThread]
    captures: dict[str, Path]  # site -> its agent's WAN capture
    target: LoopTarget
    keys: Keys
    x: np.ndarray  # the devices' rows (digits the model never trained on), clean
    y: np.ndarray
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(7))
    sent: list[np.ndarray] = field(default_factory=list)  # every row any device sent

    def drive(self, rows: int, shifted: bool, sites: tuple[str, ...] = SITES) -> float:
        """`rows` rows to each site (labels of even ones); accuracy on the odd ones' answers."""
        correct = scored = 0
        for site in sites:
            pick = self.rng.integers(0, len(self.y), rows)
            clean = self.x[pick]
            # jitter on lit pixels only: a dark pixel is 0 in every training row, and a
            # scaler would blow the smallest jitter there up to many standard deviations
            x = clean + (clean > 0) * self.rng.normal(0, NOISE, clean.shape)
            x = (x * GAIN if shifted else x).astype(np.float32)
            self.sent.append(x)
            told, held = pick % 2 == 0, pick % 2 == 1
            url = f"{self.agents[site].url}/v1/predict/{FEATURE}"
            with httpx.Client(timeout=10) as client:
                for start in range(0, rows, 50):
                    part = slice(start, start + 50)
                    rows_told = x[part][told[part]]
                    if len(rows_told):
                        labels = self.y[pick[part]][told[part]].tolist()
                        body = {"inputs": rows_told.tolist(), "labels": labels}
                        assert client.post(url, json=body).status_code == 200
                    rows_held = x[part][held[part]]
                    if len(rows_held):
                        answer = client.post(url, json={"inputs": rows_held.tolist()})
                        assert answer.status_code == 200, answer.text
                        predicted = np.argmax(answer.json()["outputs"], axis=1)
                        correct += int(np.sum(predicted == self.y[pick[part]][held[part]]))
                        scored += int(held[part].sum())
        return correct / scored

    def installed(self, site: str) -> int | None:
        """The version the site's agent answers with now."""
        return installed(self.agents[site].state())


def installed(state: dict[str, Any]) -> int | None:
    version = state["features"].get(FEATURE, {}).get("version")
    return None if version is None else int(version)


def _train(x: np.ndarray, y: np.ndarray) -> Any:
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return make_pipeline(
            StandardScaler(), MLPClassifier((16,), max_iter=400, random_state=0)
        ).fit(x, y)


@contextmanager
def fleet(tmp: Path, reach: Reach) -> Iterator[Fleet]:
    """The fleet, v1 deployed at both sites with the spec's `reach` for raw data."""
    import joblib
    from sklearn.datasets import load_digits

    from tierwise.package.build import BuildOptions, build_package
    from tierwise.package.evaldata import EvalData, save_eval_data

    data = load_digits()
    x, y = (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)
    keys = make_keys(tmp / "keys")
    model = tmp / "operator" / "digits-mlp.joblib"
    model.parent.mkdir(parents=True)
    joblib.dump(_train(x[:900], y[:900]), model)
    evaluation = EvalData(x[900:1100], y[900:1100], x[:256], "digits rows 900-1099")
    eval_path = tmp / "operator" / "eval.npz"
    save_eval_data(eval_path, evaluation)
    v1 = build_package(
        model,
        evaluation,
        tmp / "packages" / "v1",
        BuildOptions(name=PACKAGE, version=1, sign_key=keys.private, latency_runs=20),
    )
    tokens = {site: f"tw_site-token-{site}-for-learning-tests" for site in SITES}
    with ExitStack() as stack:
        cloud = stack.enter_context(CloudProcess(tmp / "cloud", keys.public, sites=tokens))
        target = urlsplit(cloud.url)
        wan, captures, agents = {}, {}, {}
        for site in SITES:
            captures[site] = tmp / "wan" / f"{site}.wan"
            proxy = WanProxy(
                (target.hostname or "127.0.0.1", target.port or 80),
                WanConditions(),
                capture=captures[site],
            )
            wan[site] = stack.enter_context(ProxyThread(proxy))
            agents[site] = AgentProcess(
                wan[site].url,
                tmp / f"edge-{site}",
                keys.public,
                extra=("--poll-interval", "0.5"),
                # status and feedback reports, and with them the loop's judgements, come
                # every second or faster (an agent's defaults: 5 s)
                env={
                    "TIERWISE_EDGE_STATUS_INTERVAL_S": "0.5",
                    "TIERWISE_EDGE_FEEDBACK_INTERVAL_S": "1",
                },
                site=site,
                token=tokens[site],
            ).start()
            stack.callback(_stop, agents[site])
        admin = CloudAdmin(cloud.url, ADMIN)
        admin.upload_package(v1.path)
        for site in SITES:
            admin.assign(
                site,
                FEATURE,
                FeatureAssignment(
                    package=PACKAGE,
                    version=1,
                    # the full model: INT8 of this folded network loses much (a canary
                    # would catch it, but this fleet is about the loop, not quantization)
                    variant="fp32",
                    placement=Placement.EDGE,
                    deadline_ms=1000,
                    raw_data_may_reach=reach,
                ),
            )
        for agent in agents.values():
            agent.wait_for("v1", lambda s: installed(s) == 1, timeout=30)
        loop_target = LoopTarget(
            feature=FEATURE,
            package=PACKAGE,
            classes=list(range(10)),
            raw_may_reach_cloud=reach is Reach.CLOUD,
            model=model,
            eval_data=eval_path,
            field_files={s: field_sample_path(tmp / f"edge-{s}", FEATURE) for s in SITES},
        )
        yield Fleet(cloud, admin, agents, wan, captures, loop_target, keys, x[1100:], y[1100:])


def _stop(agent: AgentProcess) -> None:
    if agent.proc is not None and agent.proc.poll() is None:
        agent.terminate()


def until(check: Any, timeout: float, every: float = 0.2) -> Any:
    """`check()`'s first truthy value within `timeout` real seconds (AssertionError after)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s")
        time.sleep(every)
