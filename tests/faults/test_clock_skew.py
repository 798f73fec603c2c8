"""Two edges whose clocks are off by +10 and -10 minutes, against the real cloud over HTTP:
their events are still ingested once (stamped with the edge's time, as the edge saw it), and a
rollout with one of them as canary goes to done, because the cloud judges reports by its own
receive time, not the edges' claims."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.edge.support import FEATURE, CloudProcess, build_package, digits
from tests.faults.support import Tally
from tests.package.support import make_keys

from tierwise.edge.agent import EdgeAgent
from tierwise.edge.http_link import HttpCloudLink
from tierwise.edge.packages import SignedPackages
from tierwise.edge.settings import EdgeSettings
from tierwise.rules.clock import WallClock
from tierwise.spec.tiers import Placement
from tierwise.wire import FeatureAssignment, PredictRequest, RolloutRequest, RolloutThresholds

SKEW_S = {"ahead": 600.0, "behind": -600.0}
PACKAGE = "digits-edge"
TIMEOUT_S = 40.0


class SkewedClock(WallClock):
    """The machine's calendar clock read `offset` seconds wrong, as a badly set edge reads it."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset


def test_edges_ten_minutes_off_are_ingested_once_and_roll_out(tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    tokens = {site: f"tw_token-of-{site}-for-the-skew-test" for site in SKEW_S}
    with CloudProcess(tmp_path / "cloud", keys.public, sites=tokens) as cloud:
        admin = cloud.admin
        for version in (1, 2):
            pkg = tmp_path / f"v{version}"
            admin.upload_package(build_package(pkg, keys.private, PACKAGE, version, max_iter=20))
        for site in SKEW_S:
            assignment = FeatureAssignment(
                package=PACKAGE, version=1, placement=Placement.EDGE, deadline_ms=500
            )
            admin.assign(site, FEATURE, assignment)
        agents = {
            site: EdgeAgent(
                EdgeSettings(
                    site=site,
                    cloud_url=cloud.url,
                    token=tokens[site],
                    data_dir=tmp_path / site,
                    trusted_keys=(keys.public,),
                    poll_interval_s=0.05,
                    status_interval_s=0.1,
                    upload_interval_s=0.1,
                    drain_timeout_s=10.0,
                ),
                HttpCloudLink(cloud.url, tokens[site]),
                SignedPackages((keys.public,)),
                wall_clock=SkewedClock(skew),
            )
            for site, skew in SKEW_S.items()
        }
        acked: dict[str, set[int]] = {site: set() for site in SKEW_S}
        rows = PredictRequest(inputs=digits()[0][1200:1204].tolist())

        async def answer_all() -> None:
            for site, agent in agents.items():
                reply = await agent.predict(FEATURE, rows)
                assert reply.event_seq is not None
                acked[site].add(reply.event_seq)

        def version(site: str) -> int | None:
            served = agents[site].deployer.served.get(FEATURE)
            return None if served is None or served.model is None else served.model.version

        async def body() -> str:
            for agent in agents.values():
                await agent.start()
            while not all(version(site) == 1 for site in SKEW_S):
                await asyncio.sleep(0.05)
            for _ in range(20):
                await answer_all()
            rollout = await asyncio.to_thread(
                admin.start_rollout,
                RolloutRequest(
                    package=PACKAGE,
                    version=2,
                    canary_sites=["ahead"],
                    thresholds=RolloutThresholds(max_error_rate=0.5),
                    min_canary_requests=20,
                    min_canary_feedback=0,
                    bake_seconds=0,
                ),
            )
            state = rollout.state.value
            while state not in ("done", "rolled_back"):
                await answer_all()
                await asyncio.sleep(0.05)
                state = (await asyncio.to_thread(admin.rollout, rollout.id)).state.value
            for _ in range(20):  # more answers on v2, after the rollout
                await answer_all()
            for agent in agents.values():
                await agent.stop()
            return state

        state = asyncio.run(asyncio.wait_for(body(), TIMEOUT_S))
        assert state == "done"
        assert {site: version(site) for site in SKEW_S} == {"ahead": 2, "behind": 2}
        for site, skew in SKEW_S.items():
            events = admin.events(site, FEATURE)
            seqs = [e.seq for e in events]
            Tally(
                f"clock {skew:+.0f} s ({site})",
                acknowledged=len(acked[site]),
                delivered=len(set(seqs) & acked[site]),
                duplicates=agents[site].uploader.stats.duplicates,  # type: ignore[union-attr]
                stored_twice=len(seqs) - len(set(seqs)),
                unexpected=len(set(seqs) - acked[site]),
            ).check()
            # Stamped with the edge's own (wrong) time: the cloud keeps what it was told.
            offsets = [e.ts - time.time() for e in events]
            assert all(skew - 120 < o < skew + 1 for o in offsets), (site, offsets[:3])
