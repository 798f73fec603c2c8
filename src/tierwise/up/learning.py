"""`tierwise up --learn`: the learning loop beside the running continuum.

What the loop may retrain: every feature an edge agent serves whose edge model folds into
the loop's network (a scaled one-hidden-layer MLP: the factory's vibration model does; a
logistic regression or trees do not, and the run says so). For each, the learner
(tierwise.learn) gets the operator's copy of the model and evaluation rows from the scenario
cache, and where each site's agent keeps its labelled field sample. A federated retraining
runs Flower here too: a SuperNode per drifted site reads that site's sample, and reaches the
SuperLink through a WAN proxy of the site's own conditions, as the agent reaches the cloud.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

from tierwise.cloud.client import CloudAdmin
from tierwise.federate.from_sklearn import UnsupportedModelError
from tierwise.learn.loop import Learner, LoopEvent, Trainer
from tierwise.learn.target import LoopSettings, LoopTarget
from tierwise.learn.trainers import default_trainers, initial_params
from tierwise.scenarios.build import ScenarioPackages
from tierwise.spec.model import Spec
from tierwise.spec.tiers import Reach
from tierwise.up.layout import FeatureRun
from tierwise.wan.conditions import WanConditions

AGENT_DIR = "edge-{site}"  # components.start_agents' data directory per site


def field_file(run_dir: Path, site: str, feature: str) -> Path:
    """Where the site's agent keeps the labelled rows of `feature` (edge/field_sample.py)."""
    from tierwise.edge.field_sample import field_sample_path

    return field_sample_path(run_dir / AGENT_DIR.format(site=site), feature)


def loop_targets(
    spec: Spec, runs: list[FeatureRun], packages: dict[str, ScenarioPackages], run_dir: Path
) -> tuple[list[LoopTarget], list[str]]:
    """The features the loop looks after, and a note for each it cannot retrain."""
    targets, notes = [], []
    for run in runs:
        if not run.uses_agent or run.local_role != "edge":
            continue
        built = packages[run.scenario]
        target = LoopTarget(
            feature=run.name,
            package=built.edge_manifest.name,
            classes=list(built.edge_manifest.output.classes),
            raw_may_reach_cloud=run.feature.raw_data_may_reach is Reach.CLOUD,
            model=built.files.edge,
            eval_data=built.files.eval,
            field_files={s.site: field_file(run_dir, s.site, run.name) for s in run.sites},
        )
        try:
            initial_params(target)
        except UnsupportedModelError as exc:
            notes.append(f"{run.name}: not retrained by the loop ({exc})")
            continue
        targets.append(target)
    return targets, notes


class LearnerThread:
    """The learner polling in a thread for as long as the `with` block runs."""

    def __init__(
        self,
        admin: CloudAdmin,
        targets: list[LoopTarget],
        notes: list[str],
        work_dir: Path,
        sign_key: Path,
        wan: dict[str, WanConditions],
        trainers: dict[str, Trainer] | None = None,
        settings: LoopSettings | None = None,
        on_event: Callable[[LoopEvent], None] = lambda _: None,
    ) -> None:
        chosen = settings or LoopSettings()
        self.targets, self.notes = targets, notes
        self.learner = Learner(
            admin,
            targets,
            trainers or default_trainers(chosen, wan),
            work_dir,
            sign_key,
            chosen,
            on_event,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self.learner.run, args=(self._stop,), name="learner", daemon=True
        )

    def __enter__(self) -> LearnerThread:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        # a federated round or a package build in progress finishes first (bounded by
        # their own timeouts)
        self._thread.join()

    def section(self) -> dict[str, Any]:
        """run.json's `learning` block."""
        return {
            "features": [
                {"feature": t.feature, "package": t.package, "retrained": t.where}
                for t in self.targets
            ],
            "notes": self.notes,
            "events": [e.as_dict() for e in self.learner.events],
        }
