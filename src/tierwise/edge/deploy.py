"""Keep the site running what the cloud's deployment says — safely.

For every feature whose package changed: download the archive, check its sha256 against the
deployment, verify signature, hashes and version (`tierwise.package`), install it beside the
running one with an atomic swap that keeps the last-known-good, load it and run a health
probe. Only then does the new model answer devices. A refused package leaves the running
model untouched; one that fails to load or to pass its probe is rolled back to the
last-known-good. Both are recorded as events and reported in the site status.

The last deployment applied is kept on disk, so an agent restarted while the WAN is down
serves what it served before without asking the cloud.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tierwise.edge.link import CloudLink
from tierwise.edge.router import LocalModel, Route
from tierwise.errors import TierwiseError, VerificationError
from tierwise.wire import Deployment, FeatureDeployment

log = logging.getLogger(__name__)

DEPLOYMENT_FILE = "deployment.json"

RecordFn = Callable[[str, dict[str, Any]], Awaitable[None]]


class PackageOps(Protocol):
    """What the deployer needs from `tierwise.package` (see `edge/packages.py`)."""

    def unpack(self, archive: bytes, into: Path) -> Path:
        """Unpack a package archive safely; the package directory inside `into`."""
        ...

    def install(self, path: Path, install_dir: Path) -> int:
        """Verify `path` (signature, hashes, newer version) and atomically make it current in
        `install_dir`, keeping the previous as last-known-good; its version, or
        VerificationError with nothing changed."""
        ...

    def rollback(self, install_dir: Path) -> Path | None:
        """Make the last-known-good current again; None when there is none."""
        ...

    def current(self, install_dir: Path) -> Path | None:
        """The current package directory, if any."""
        ...

    def previous_version(self, install_dir: Path) -> int | None:
        """The version of the last-known-good package kept beside the current one, if any."""
        ...

    def check_variant(self, path: Path, variant: str | None) -> None:
        """Before installing: VerificationError if the package lacks `variant`."""
        ...

    def load(self, path: Path, variant: str | None = None) -> LocalModel:
        """Load a package's `variant` (default: its smallest) for inference (raises on failure;
        VerificationError when the package has no such variant)."""
        ...

    def probe(self, model: LocalModel) -> None:
        """Run the health probe (raises with the reason on failure)."""
        ...


@dataclass
class Served:
    """One feature as the agent serves it now."""

    name: str
    spec: FeatureDeployment
    model: LocalModel | None
    healthy: bool = True
    detail: str = ""
    _route: tuple[FeatureDeployment, Route] | None = field(default=None, repr=False, compare=False)

    @property
    def route(self) -> Route:
        """How the spec says to answer (made once per spec: every request asks)."""
        if self._route is None or self._route[0] is not self.spec:
            self._route = (self.spec, route_of(self.spec))
        return self._route[1]


def route_of(spec: FeatureDeployment) -> Route:
    return Route(
        placement=spec.placement,
        deadline_s=spec.deadline_ms / 1000,
        threshold=spec.threshold,
        rule=spec.rule,
        tie_share=spec.tie_share,
        planned_escalated=spec.planned_escalated,
        escalate_budget_s=None
        if spec.escalate_budget_ms is None
        else spec.escalate_budget_ms / 1000,
    )


@dataclass
class Refusal:
    """A package version the agent will not run, and why (reported, not retried)."""

    package: str
    version: int
    sha256: str
    reason: str
    variant: str | None = None


@dataclass
class Deployer:
    """Applies deployments for one site; `served` is what devices are answered with."""

    site: str
    link: CloudLink
    ops: PackageOps
    packages_dir: Path
    record: RecordFn
    served: dict[str, Served] = field(default_factory=dict)
    refused: dict[str, Refusal] = field(default_factory=dict)
    etag: str | None = None

    @property
    def state_file(self) -> Path:
        return self.packages_dir / DEPLOYMENT_FILE

    async def restore(self) -> None:
        """Serve what was served before a restart, from disk, without the cloud."""
        if not self.state_file.exists():
            return
        deployment = Deployment.model_validate_json(self.state_file.read_text("utf-8"))
        for name, spec in deployment.features.items():
            model = await asyncio.to_thread(self._load_current, spec.package, spec.variant)
            self.served[name] = Served(name, spec, model, healthy=model is not None)
        self.etag = deployment.etag or None

    async def poll(self, wait_s: float = 0.0) -> bool:
        """Ask the cloud for the deployment and apply it; True when something changed.

        With `wait_s` (and a settled etag to compare) a long-polling cloud holds an unchanged
        answer up to that long."""
        wait = wait_s if self.etag is not None else 0.0
        deployment = await self.link.deployment(self.site, self.etag, wait)
        if deployment is None:
            return False
        await self.apply(deployment)
        return True

    async def apply(self, deployment: Deployment) -> None:
        for name in list(self.served):
            if name not in deployment.features:
                del self.served[name]
        settled = [
            await self._apply_feature(name, spec) for name, spec in deployment.features.items()
        ]
        # A feature whose download failed is retried at the next poll: keep asking for the
        # whole deployment (no etag) until every feature is installed or refused.
        self.etag = deployment.etag if all(settled) else None
        self._save(self.etag)

    async def _apply_feature(self, name: str, spec: FeatureDeployment) -> bool:
        """Install or refuse `spec` for feature `name`; False if it should be tried again."""
        current = self.served.get(name)
        if current is not None and current.model is not None and _same_model(current.spec, spec):
            current.spec = spec  # routing may change without a new package
            return True
        refusal = self.refused.get(name)
        if refusal is not None and (refusal.version, refusal.sha256, refusal.variant) == (
            spec.version,
            spec.sha256,
            spec.variant,
        ):
            return True  # already refused and reported; a new deployment may change that
        shared = self._served_elsewhere(name, spec)
        if shared is not None:  # one install per package: installing it again is a "rollback"
            self.refused.pop(name, None)
            self.served[name] = Served(name, spec, shared)
            self._save(None)
            return True
        beside = self._installed(spec)  # another variant of it runs: load this one beside it
        try:
            if beside:
                model = await asyncio.to_thread(self._load_installed, spec)
            else:
                model = await self._install(spec)
        except VerificationError as exc:
            await self._refuse(name, spec, f"refused: {exc}")
            return True
        except TierwiseError as exc:  # download failed: try again at the next poll
            log.warning("%s: could not fetch %s v%s: %s", name, spec.package, spec.version, exc)
            return False
        except Exception as exc:  # failed to load or to pass its probe: already rolled back
            # (a variant loaded beside the installed package has nothing to roll back)
            await self._refuse(name, spec, f"{'failed' if beside else 'rolled back'}: {exc}")
            return True
        self.refused.pop(name, None)
        self.served[name] = Served(name, spec, model)
        self._save(None)  # at once: a stop or a crash may come before the rest is applied
        await self.record(
            "package.installed",
            {
                "feature": name,
                "package": spec.package,
                "version": spec.version,
                "variant": model.variant,
            },
        )
        return True

    def _served_elsewhere(self, name: str, spec: FeatureDeployment) -> LocalModel | None:
        """The model another feature already runs from this very archive and variant, if any."""
        for other in self.served.values():
            if other.name != name and other.model is not None and _same_model(other.spec, spec):
                return other.model
        return None

    def _installed(self, spec: FeatureDeployment) -> bool:
        """Whether a feature already runs (some variant of) this very package archive: it is
        installed, and installing it again would be refused as not newer."""
        return any(
            s.model is not None and _same_archive(s.spec, spec) for s in self.served.values()
        )

    def _load_installed(self, spec: FeatureDeployment) -> LocalModel:
        """Another variant of the installed package; nothing to roll back if it fails."""
        installed = self.ops.current(self.packages_dir / spec.package)
        if installed is None:
            raise VerificationError(f"{spec.package} v{spec.version} is no longer installed")
        model = self.ops.load(installed, spec.variant)
        if model.version != spec.version:  # another feature has installed a newer one since
            raise VerificationError(
                f"{spec.package}: v{model.version} is installed, the deployment says "
                f"v{spec.version}"
            )
        self.ops.probe(model)
        return model

    async def _install(self, spec: FeatureDeployment) -> LocalModel:
        install_dir = self.packages_dir / spec.package
        if self.ops.previous_version(install_dir) == spec.version:
            # The cloud rolled a rollout back: the version asked for is the last-known-good
            # this agent verified and kept. Going back to it is not a rollback attack (any
            # older version is still refused as not newer than the installed one).
            return await asyncio.to_thread(self._back_to_previous, spec)
        archive = await self.link.package(spec.package, spec.version)
        digest = hashlib.sha256(archive).hexdigest()
        if digest != spec.sha256:
            raise VerificationError(
                f"{spec.package} v{spec.version}: archive sha256 {digest[:12]}… differs from "
                f"the deployment's {spec.sha256[:12]}…"
            )
        return await asyncio.to_thread(self._verify_install_load, spec, archive)

    def _back_to_previous(self, spec: FeatureDeployment) -> LocalModel:
        install_dir = self.packages_dir / spec.package
        back = self.ops.rollback(install_dir)
        if back is None:
            raise VerificationError(f"{spec.package} v{spec.version}: nothing to go back to")
        model = self.ops.load(back, spec.variant)
        self.ops.probe(model)
        log.warning("%s: back to the last-known-good v%s", spec.package, spec.version)
        return model

    def _verify_install_load(self, spec: FeatureDeployment, archive: bytes) -> LocalModel:
        install_dir = self.packages_dir / spec.package
        staging = (
            self.packages_dir / ".staging" / f"{spec.package}-{spec.version}-{spec.sha256[:12]}"
        )
        root = self.ops.unpack(archive, staging)
        try:
            self.ops.check_variant(root, spec.variant)
            version = self.ops.install(root, install_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if version != spec.version:
            self.ops.rollback(install_dir)
            raise VerificationError(
                f"{spec.package}: archive holds version {version}, deployment says {spec.version}"
            )
        installed = self.ops.current(install_dir)
        assert installed is not None
        try:
            model = self.ops.load(installed, spec.variant)
            self.ops.probe(model)
        except Exception as exc:
            back = self.ops.rollback(install_dir)
            log.error(
                "%s v%s failed its health probe, back to %s: %s",
                spec.package,
                spec.version,
                back,
                exc,
            )
            raise
        return model

    def _load_current(self, package: str, variant: str | None) -> LocalModel | None:
        install_dir = self.packages_dir / package
        path = self.ops.current(install_dir)
        if path is None:
            return None
        try:
            model = self.ops.load(path, variant)
            self.ops.probe(model)
        except Exception as exc:
            log.error("installed %s does not load (%s); trying the last-known-good", path, exc)
            back = self.ops.rollback(install_dir)
            if back is None:
                return None
            model = self.ops.load(back, variant)
        return model

    async def _refuse(self, name: str, spec: FeatureDeployment, reason: str) -> None:
        log.error("feature %s: %s v%s %s", name, spec.package, spec.version, reason)
        self.refused[name] = Refusal(spec.package, spec.version, spec.sha256, reason, spec.variant)
        body = {"feature": name, "package": spec.package, "version": spec.version}
        if spec.variant is not None:
            body["variant"] = spec.variant
        await self.record("package.refused", body | {"reason": reason})

    def _save(self, etag: str | None) -> None:
        """Keep what is served (features with a working package) for the next start; the
        etag only once the whole deployment is applied, so a restart asks for it again."""
        kept = {name: s.spec for name, s in self.served.items() if s.model is not None}
        applied = Deployment(site=self.site, features=kept, etag=etag or "")
        self.packages_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(applied.model_dump_json(indent=2), "utf-8")
        tmp.replace(self.state_file)


def _same_archive(a: FeatureDeployment, b: FeatureDeployment) -> bool:
    return (a.package, a.version, a.sha256) == (b.package, b.version, b.sha256)


def _same_model(a: FeatureDeployment, b: FeatureDeployment) -> bool:
    """Same archive and same variant: the very model (no variant named: the smallest)."""
    return _same_archive(a, b) and a.variant == b.variant
