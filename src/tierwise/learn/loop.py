"""The learner: drift verdicts in, retrained models rolled out to the drifted sites.

One poll (`step`) reads the cloud's verdicts. A feature that drifted at some sites gets a job:
after `settle_s` (the sites gather labelled rows meanwhile) it is retrained where the spec
says (`LoopTarget.where`), packaged as the next version (`publish.py`) and rolled out to the
drifted sites alone — the first one to drift is the canary, the rest follow once it has
served `bake_s`, `min_canary_requests` and `min_canary_feedback` labelled answers at an
accuracy no worse than the deployed model had on the held-out field rows. A canary below
that is rolled back by the cloud, and the other sites never get the version. A verdict is
acted on once per (site, version): a rolled-back retraining is not retried on the same
version; a verdict on the new version can start another job after `cooldown_s`.

Every step is a `LoopEvent` with its wall-clock time: what `tierwise up --learn` prints and
the benchmark measures from.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tierwise.cloud.client import CloudAdmin
from tierwise.errors import TierwiseError, UnprocessableError, VerificationError
from tierwise.learn.publish import field_reference, publish
from tierwise.learn.retrain import Retrained, RetrainJob
from tierwise.learn.target import LoopSettings, LoopTarget
from tierwise.wire import RolloutRequest, RolloutState, RolloutThresholds

log = logging.getLogger(__name__)

TERMINAL = (RolloutState.DONE, RolloutState.ROLLED_BACK)


@dataclass(frozen=True)
class LoopEvent:
    at: float  # wall-clock seconds
    feature: str
    step: str  # detected, training, trained, packaged, canary, promoting, done, rolled_back, failed
    sites: list[str]
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "feature": self.feature,
            "step": self.step,
            "sites": self.sites,
            "detail": self.detail,
        }


# Retrains a job's target: centralized or federated (learn/trainers.py), or a test's own.
Trainer = Callable[[RetrainJob], Retrained]


@dataclass
class _Job:
    target: LoopTarget
    sites: list[str]  # drifted sites, first detected first
    detected_at: float
    versions: dict[str, int]  # site -> the version that drifted
    rollout_id: int | None = None
    state: str = "settling"  # -> rolling out -> ended
    promoted: bool = False
    ended_at: float | None = None


@dataclass
class Learner:
    admin: CloudAdmin
    targets: list[LoopTarget]
    trainers: dict[str, Trainer]  # "centralized" / "federated" -> how
    work_dir: Path
    sign_key: Path
    settings: LoopSettings = field(default_factory=LoopSettings)
    on_event: Callable[[LoopEvent], None] = lambda _: None
    clock: Callable[[], float] = time.time
    events: list[LoopEvent] = field(default_factory=list)
    _jobs: dict[str, _Job] = field(default_factory=dict)
    _handled: set[tuple[str, str, int]] = field(default_factory=set)  # site, feature, version

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; a failed poll or job is logged, and the loop goes on."""
        while not stop.is_set():
            try:
                self.step()
            except TierwiseError as exc:
                log.warning("learning loop: %s", exc)
            stop.wait(self.settings.poll_s)

    def step(self) -> None:
        verdicts = self.admin.drift()
        for target in self.targets:
            job = self._jobs.get(target.feature)
            if job is None or job.state == "ended":
                self._maybe_start(target, verdicts, job)
            elif job.state == "settling":
                self._add_sites(job, verdicts)
                if self.clock() - job.detected_at >= self.settings.settle_s:
                    self._run_when_ready(job)
            elif job.state == "rolling out":
                self._follow(job)

    def _maybe_start(
        self, target: LoopTarget, verdicts: list[dict[str, Any]], last: _Job | None
    ) -> None:
        ended = None if last is None else last.ended_at
        if ended is not None and self.clock() - ended < self.settings.cooldown_s:
            return
        fresh = self._fresh(target.feature, verdicts)
        if not fresh:
            return
        fresh.sort(key=lambda v: v["since"])
        job = _Job(
            target,
            sites=[v["site"] for v in fresh],
            detected_at=self.clock(),
            versions={v["site"]: int(v["version"]) for v in fresh},
        )
        self._jobs[target.feature] = job
        for v in fresh:
            self._event(
                target.feature,
                "detected",
                [v["site"]],
                f"{v['column']} PSI {v['psi']:.3f} > {v['threshold']:.3f} "
                f"({v['columns_over']} columns) on v{v['version']}",
                at=float(v["since"]),
            )

    def _fresh(self, feature: str, verdicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            v
            for v in verdicts
            if v["feature"] == feature
            and v["drifted"]
            and (v["site"], feature, int(v["version"])) not in self._handled
        ]

    def _add_sites(self, job: _Job, verdicts: list[dict[str, Any]]) -> None:
        for v in sorted(self._fresh(job.target.feature, verdicts), key=lambda v: v["since"]):
            if v["site"] not in job.sites:
                job.sites.append(v["site"])
                job.versions[v["site"]] = int(v["version"])
                self._event(job.target.feature, "detected", [v["site"]], "joins the job")

    def _run_when_ready(self, job: _Job) -> None:
        """Train once the drifted sites have sent enough since the drift (`_enough`); a job
        that fails, or waited too long, ends, and its drift is not acted on again."""
        try:
            feedback = self._feedback(job, job.detected_at)
            if not self._enough(job, feedback):
                return
            self._handle(job)
            self._train_and_roll_out(job, feedback)
        except TierwiseError as exc:
            self._handle(job)
            self._end(job, "failed", str(exc))

    def _enough(self, job: _Job, feedback: list[dict[str, Any]]) -> bool:
        """Whether `min_rows` rows were summarized since the drift (federated: each site
        trains on its own rows of that time), or `min_examples` raw examples came
        (centralized); UnprocessableError once `max_wait_s` passed without."""
        centralized = job.target.where == "centralized"
        if centralized:
            have = sum(len(f["examples"]) for f in feedback)
            needed = self.settings.min_examples
        else:
            have = sum(int(f["rows"]) for f in feedback)
            needed = self.settings.min_rows
        if have >= needed:
            return True
        if self.clock() - job.detected_at < self.settings.max_wait_s:
            return False
        raise UnprocessableError(
            f"{job.target.feature}: {have} {'raw examples' if centralized else 'rows'} from "
            f"{', '.join(job.sites)} in {self.settings.max_wait_s:g} s since the drift, "
            f"{needed} needed to retrain"
        )

    def _handle(self, job: _Job) -> None:
        """This drift of these sites is acted on: not again for the same version."""
        for site in job.sites:
            self._handled.add((site, job.target.feature, job.versions[site]))

    def _train_and_roll_out(self, job: _Job, feedback: list[dict[str, Any]]) -> None:
        target, s = job.target, self.settings
        since = job.detected_at
        self._event(target.feature, "training", job.sites, f"{target.where} retraining")
        trainer = self.trainers[target.where]
        retrained = trainer(
            RetrainJob(target, job.sites, since, feedback, self.work_dir / target.feature)
        )
        self._event(target.feature, "trained", job.sites, retrained.describe())
        if retrained.after < retrained.before:
            # not a model to ship: the field rows say it is worse than what runs
            self._end(job, "failed", "the retrained model is worse on held-out field rows")
            return
        reference = field_reference(feedback, retrained.confidence)
        published = publish(
            target,
            retrained,
            reference,
            self.admin,
            self.work_dir / "packages",
            self.sign_key,
            s.latency_runs,
        )
        self._event(
            target.feature,
            "packaged",
            job.sites,
            f"{published.package} v{published.version} signed and uploaded "
            f"({published.accuracy:.1%} on the operator's evaluation rows)",
        )
        rollout = self.admin.start_rollout(
            RolloutRequest(
                package=target.package,
                version=published.version,
                canary_sites=[job.sites[0]],
                sites=job.sites,
                features=[target.feature],
                thresholds=RolloutThresholds(min_accuracy=retrained.before),
                min_canary_requests=s.min_canary_requests,
                min_canary_feedback=s.min_canary_feedback,
                bake_seconds=s.bake_s,
            )
        )
        job.rollout_id, job.state = rollout.id, "rolling out"
        self._event(
            target.feature,
            "canary",
            [job.sites[0]],
            f"rollout {rollout.id}: v{published.version} on the canary; must stay at or above "
            f"{retrained.before:.1%} accuracy (the deployed model's on the field)",
        )

    def _feedback(self, job: _Job, since: float) -> list[dict[str, Any]]:
        """The drifted sites' summed feedback since the job began; a site that has sent
        none since (it joined the job late) is left out of the yardstick, not the training."""
        found = []
        for site in job.sites:
            try:
                found.append(self.admin.field_feedback(site, job.target.feature, since))
            except VerificationError as exc:
                if "(404)" not in str(exc):
                    raise
        return found

    def _follow(self, job: _Job) -> None:
        assert job.rollout_id is not None
        rollout = self.admin.rollout(job.rollout_id)
        if rollout.state is RolloutState.PROMOTING and not job.promoted:
            job.promoted = True
            self._event(job.target.feature, "promoting", rollout.other_sites, rollout.reason)
        if rollout.state is RolloutState.DONE and rollout.other_sites and not job.promoted:
            # promoted and done between two polls: the promotion still happened
            job.promoted = True
            self._event(job.target.feature, "promoting", rollout.other_sites, "canary passed")
        if rollout.state in TERMINAL:
            step = "done" if rollout.state is RolloutState.DONE else "rolled_back"
            self._end(job, step, rollout.reason)

    def _end(self, job: _Job, step: str, detail: str) -> None:
        job.state, job.ended_at = "ended", self.clock()
        self._event(job.target.feature, step, job.sites, detail)

    def _event(
        self, feature: str, step: str, sites: list[str], detail: str, at: float | None = None
    ) -> None:
        event = LoopEvent(self.clock() if at is None else at, feature, step, sites, detail)
        self.events.append(event)
        log.info("learning loop %s %s at %s: %s", feature, step, ",".join(sites), detail)
        self.on_event(event)
