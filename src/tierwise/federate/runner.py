"""One federated run, end to end: provision sites, start the federation, run, follow, stop.

Used by the CLI (`tierwise federate`), the tests and the benchmark. The run directory
holds everything the run made: each site's data and logs, the settings, the event log,
the global model per round and at the end.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tierwise.errors import TierwiseError
from tierwise.federate import mlp
from tierwise.federate.deployment import Federation, Mode, NodeConfig
from tierwise.federate.progress import PROGRESS_FILE, ProgressReader
from tierwise.federate.rounds import MODEL_FILE
from tierwise.federate.settings import RunSettings, resolve
from tierwise.federate.sitedata import provision_sites, site_dirname
from tierwise.spec.federated import FederatedTraining
from tierwise.spec.model import TrainingJob
from tierwise.wan import WanConditions

VALIDATION_FILE = "validation.npz"
WAN_DIR = "wan"
EventHook = Callable[[dict[str, Any]], None]
# worst case for starting ~2 processes per site on a small machine, plus `flwr run`
STARTUP_SECONDS_PER_SITE = 10.0


@dataclass
class RunOptions:
    """How to run (not what: that is the spec's training job)."""

    run_dir: Path
    mode: Mode = "tierwise"
    # test/chaos only: site -> node-config entries such as {"fault": "crash", "fault-round": 2}
    faults: dict[str, NodeConfig] = field(default_factory=dict)
    capture_messages: bool = False
    on_event: EventHook | None = None
    # site -> the emulated WAN its SuperNode crosses to reach the SuperLink (a
    # `tierwise.wan` proxy per site); sites not named connect directly
    wan: dict[str, WanConditions] = field(default_factory=dict)
    # with `wan`: keep every byte each site's proxy forwarded, in <run_dir>/wan/<site>.wan
    # (read with `tierwise.wan.read_streams`)
    wan_capture: bool = False


@dataclass(frozen=True)
class ModelEvaluation:
    """A global model scored on the union of the sites' held-out rows.

    Sites send only these aggregates: accuracy, loss, how many rows, and how many rows fell
    in each bin of the model's top probability (`rules.drift.CONFIDENCE_EDGES`; None when
    the run's protocol carried no histogram, as under SecAgg+).
    """

    accuracy: float
    loss: float
    examples: int
    confidence_counts: tuple[int, ...] | None

    @classmethod
    def from_event(cls, scores: dict[str, Any]) -> ModelEvaluation | None:
        if scores.get("eval_acc") is None:
            return None
        counts = scores.get("confidence_counts")
        return cls(
            accuracy=float(scores["eval_acc"]),
            loss=float(scores["eval_loss"]),
            examples=int(scores.get("eval_examples") or 0),
            confidence_counts=None if counts is None else tuple(int(c) for c in counts),
        )


@dataclass
class RunResult:
    """What a run did, read back from its event log."""

    settings: RunSettings
    events: list[dict[str, Any]]
    seconds: float

    @property
    def run_dir(self) -> Path:
        return Path(self.settings.run_dir)

    @property
    def finished(self) -> dict[str, Any]:
        return next(e for e in self.events if e["event"] in {"done", "failed"})

    @property
    def ok(self) -> bool:
        return bool(self.finished["event"] == "done")

    @property
    def reason(self) -> str:
        return str(self.finished.get("reason", ""))

    @property
    def rounds(self) -> list[dict[str, Any]]:
        return [e for e in self.events if e["event"] == "round"]

    @property
    def final_accuracy(self) -> float | None:
        rounds = self.rounds
        if rounds and "global" in rounds[-1]:
            value = rounds[-1]["global"].get("eval_acc")
            return None if value is None else float(value)
        value = self.finished.get("accuracy")
        return None if value is None else float(value)

    @property
    def initial_evaluation(self) -> ModelEvaluation | None:
        """The starting model (round 0) on the sites' held-out rows."""
        initial = next((e for e in self.events if e["event"] == "initial"), None)
        return None if initial is None else ModelEvaluation.from_event(initial["global"])

    @property
    def final_evaluation(self) -> ModelEvaluation | None:
        """The final global model on the sites' held-out rows."""
        rounds = self.rounds
        return ModelEvaluation.from_event(rounds[-1]["global"]) if rounds else None

    def params(self) -> mlp.Params:
        """The final global model's [W1, b1, W2, b2]."""
        return mlp.load_params(self.run_dir / MODEL_FILE)

    def round_params(self, server_round: int) -> mlp.Params:
        return mlp.load_params(self.run_dir / "models" / f"round-{server_round:03d}.npz")

    def wan_capture(self, site: str) -> Path:
        """The file of every byte `site`'s WAN proxy forwarded (with `RunOptions.wan_capture`)."""
        return self.run_dir / WAN_DIR / f"{site_dirname(site)}.wan"


def run_federated(job: TrainingJob, sites: list[str], options: RunOptions) -> RunResult:
    """Run `job` over `sites` on Flower's Deployment Engine; returns once it ends or fails."""
    fed = job.federated or FederatedTraining()
    run_dir = options.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    site_dirs, features, classes = provision_sites(
        run_dir / "sites",
        sites,
        fed.dataset,
        fed.dirichlet_alpha,
        fed.seed,
        validation=run_dir / "cloud" / VALIDATION_FILE,
    )
    settings = resolve(
        job, sites, run_dir, features, classes, capture_messages=options.capture_messages
    )
    return run_settings(settings, site_dirs, options)


def run_settings(
    settings: RunSettings,
    site_dirs: dict[str, Path],
    options: RunOptions,
    node_config: dict[str, NodeConfig] | None = None,
) -> RunResult:
    """Run resolved `settings` over sites already provisioned in `site_dirs`; `node_config`
    adds entries to a site's SuperNode configuration (what its ClientApp reads)."""
    run_dir = Path(settings.run_dir)
    settings_path = settings.save(run_dir)
    started = time.monotonic()
    reader = ProgressReader(run_dir / PROGRESS_FILE)
    config = {
        site: {**(node_config or {}).get(site, {}), **options.faults.get(site, {})}
        for site in site_dirs
    }
    federation = Federation(
        run_dir,
        site_dirs,
        mode=options.mode,
        node_config=config,
        wan=options.wan,
        wan_capture=run_dir / WAN_DIR if options.wan_capture else None,
    )
    with federation:
        federation.submit(settings_path)
        deadline = started + time_budget(settings)
        while reader.finished() is None:
            for event in reader.poll():
                if options.on_event is not None:
                    options.on_event(event)
            if reader.finished() is not None:
                break
            federation.check_alive()
            if time.monotonic() > deadline:
                raise TierwiseError(
                    f"the run did not finish within {time_budget(settings):.0f}s; "
                    f"see the logs in {run_dir / 'logs'}"
                )
            time.sleep(0.1)
    return RunResult(settings=settings, events=reader.events, seconds=time.monotonic() - started)


def time_budget(settings: RunSettings) -> float:
    """The longest a run may take before it is declared stuck: every wait is bounded."""
    stages = 5 if settings.secagg else 2  # SecAgg+ has four stages, plus evaluation
    per_round = stages * settings.round_timeout + 5.0
    startup = STARTUP_SECONDS_PER_SITE * len(settings.sites) + settings.connect_timeout
    return startup + settings.rounds * per_round
