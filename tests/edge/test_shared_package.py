"""Two features of a site may run the same package: it is installed once and serves both."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from tests.package.support import make_keys

from tierwise.edge.agent import EdgeAgent
from tierwise.edge.memory_link import InMemoryCloud
from tierwise.edge.packages import SignedPackages
from tierwise.edge.settings import EdgeSettings
from tierwise.package.archive import pack_archive
from tierwise.spec.tiers import Placement
from tierwise.wire import Deployment, FeatureDeployment, PredictRequest

from .support import SITE, build_package, digits


def test_two_features_on_one_package_both_serve(tmp_path: Path) -> None:
    keys = make_keys(tmp_path / "keys")
    package = build_package(tmp_path / "pkg", keys.private, "digits-edge", 1, max_iter=20)
    cloud = InMemoryCloud()
    cloud.packages[("digits-edge", 1)] = pack_archive(package)
    sha = hashlib.sha256(cloud.packages[("digits-edge", 1)]).hexdigest()
    spec = FeatureDeployment(
        package="digits-edge", version=1, sha256=sha, placement=Placement.EDGE, deadline_ms=100.0
    )
    features = {"read-label": spec, "count-parcels": spec}
    cloud.deployments[SITE] = Deployment(site=SITE, features=features, etag="1")
    settings = EdgeSettings(
        site=SITE,
        cloud_url="memory://",
        token="t",
        data_dir=tmp_path / "agent",
        trusted_keys=(keys.public,),
        poll_interval_s=0.05,
    )
    agent = EdgeAgent(settings, cloud.link(), SignedPackages(settings.trusted_keys))
    rows = digits()[0][:2].tolist()

    async def body() -> None:
        await agent.start()
        try:
            for _ in range(500):
                served = agent.deployer.served
                if all(f in served and served[f].model is not None for f in features):
                    break
                await asyncio.sleep(0.02)
            assert not agent.deployer.refused, agent.deployer.refused
            for feature in features:
                answer = await agent.predict(feature, PredictRequest(inputs=rows))
                assert (answer.model, answer.version) == ("digits-edge", 1)
        finally:
            await agent.stop()

    asyncio.run(asyncio.wait_for(body(), 60))
