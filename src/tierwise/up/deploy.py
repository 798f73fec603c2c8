"""Ship what the plan says to the running cloud: packages, cloud models, per-site assignments.

Packages come from `tierwise.scenarios.build.build_scenario_packages` (built once, cached,
signed with the cache's key); they are uploaded through the registry API like an operator
would (the registry verifies each one), then each feature is assigned at each site with its
placement, deadline, the package variant the plan chose and — for a cascade — the threshold
that escalates the planned share, read off that variant's own calibration curve.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tierwise.cloud.client import CloudAdmin
from tierwise.errors import TierwiseError
from tierwise.package.manifest import CurvePoint, Manifest
from tierwise.scenarios.build import ScenarioPackages
from tierwise.spec.scenario import Role
from tierwise.spec.tiers import EscalationRule, Placement, no_curve_message
from tierwise.up.layout import FeatureRun, package_name
from tierwise.wire import CloudModelAssignment, FeatureAssignment

Progress = Callable[[str], None]
PACKAGE_VERSION = 1  # every run starts a fresh registry


def build_packages(
    scenarios: list[str], cache: Path, progress: Progress
) -> dict[str, ScenarioPackages]:
    """Signed edge and cloud packages of every scenario the run needs (cached in `cache`)."""
    from tierwise.scenarios.build import build_scenario_packages

    built = {}
    for name in scenarios:
        progress(f"packages for scenario {name} (cache {cache})")
        built[name] = build_scenario_packages(name, cache, version=PACKAGE_VERSION)
    return built


def package_dir(packages: dict[str, ScenarioPackages], scenario: str, role: Role) -> Path:
    built = packages[scenario]
    return built.edge if role == "edge" else built.cloud


def manifest_of(packages: dict[str, ScenarioPackages], scenario: str, role: Role) -> Manifest:
    built = packages[scenario]
    return built.edge_manifest if role == "edge" else built.cloud_manifest


def cascade_threshold(
    manifest: Manifest,
    escalated: float,
    rule: EscalationRule | None = None,
    variant: str | None = None,
) -> tuple[EscalationRule, CurvePoint]:
    """The escalation rule and the point of its curve escalating (at most) the planned share:
    its threshold and the share of ties at it that escalate.

    The curves are those of the variant the edge agent runs (`variant`; default the package's
    smallest, what an agent runs when the deployment names none); the rule is the spec's
    (`cascade.rule`) or else that variant's best (`best_rule`: the rule that ranks the edge's
    wrong answers first best; package/routers.py).
    """
    if manifest.cascade is None:
        raise TierwiseError(f"package {manifest.name} has no cascade calibration curve")
    variant = manifest.variant(variant).name
    if variant not in manifest.cascade.rules:
        raise TierwiseError(f"package {manifest.name} has no cascade curve for {variant}")
    name = rule.value if rule is not None else manifest.cascade.best_rule[variant]
    if name not in manifest.cascade.rules[variant]:
        missing = no_curve_message(name, manifest.cascade.rules[variant])
        raise TierwiseError(f"{manifest.name} {variant}: {missing}")
    return EscalationRule(name), manifest.cascade.at_budget(variant, escalated, name)


def deployed_variant(run: FeatureRun, manifest: Manifest) -> str:
    """The variant of the local package a feature runs: the plan's choice when the package
    has it, else the package's smallest (a spec variant like `small` that only says which
    scenario model plays it)."""
    names = {v.name for v in manifest.variants}
    return run.variant if run.variant in names else manifest.variant().name


def feature_assignment(run: FeatureRun, manifest: Manifest) -> FeatureAssignment:
    """What a site runs for `run`'s feature: its local package (`manifest`) at the plan's
    variant, placement, deadline and, for a cascade, that variant's threshold."""
    variant = deployed_variant(run, manifest)
    threshold, tie_share, rule = None, 0.0, EscalationRule.MAX_PROBABILITY
    if run.mode == "cascade":
        rule, point = cascade_threshold(manifest, run.escalated, run.rule, variant)
        threshold, tie_share = point.threshold, point.tie_share
    return FeatureAssignment(
        package=manifest.name,
        version=manifest.version,
        variant=variant,
        placement=Placement(run.mode),
        threshold=threshold,
        rule=rule,
        tie_share=tie_share,
        planned_escalated=run.escalated if run.mode == "cascade" else None,
        deadline_ms=run.feature.deadline * 1000,
        raw_data_may_reach=run.feature.raw_data_may_reach,
    )


@dataclass
class Deployed:
    """What was deployed per feature: for the report, and to assign a feature elsewhere too."""

    summary: dict[str, dict[str, Any]]
    assignments: dict[str, FeatureAssignment]


def deploy(
    admin: CloudAdmin,
    runs: list[FeatureRun],
    packages: dict[str, ScenarioPackages],
    progress: Progress,
) -> Deployed:
    """Upload every package the run needs, set cloud models, assign features to sites."""
    wanted = sorted(
        {(r.scenario, role) for r in runs for role in (r.local_role, r.cloud_role) if role}
    )
    for scenario, role in wanted:
        progress(f"uploading package {package_name(scenario, role)} v{PACKAGE_VERSION}")
        admin.upload_package(package_dir(packages, scenario, role))
    deployed = Deployed({}, {})
    for run in runs:
        entry: dict[str, Any] = {"mode": run.mode, "scenario": run.scenario}
        if run.cloud_role is not None:
            cloud_pkg = package_name(run.scenario, run.cloud_role)
            admin.set_cloud_model(
                run.name, CloudModelAssignment(package=cloud_pkg, version=PACKAGE_VERSION)
            )
            entry["cloud_package"] = cloud_pkg
        if run.local_role is not None:
            entry["local_package"] = package_name(run.scenario, run.local_role)
        if run.local_role is not None:
            manifest = manifest_of(packages, run.scenario, run.local_role)
            entry["variant"] = deployed_variant(run, manifest)
        if run.uses_agent:
            assert run.local_role is not None
            assignment = feature_assignment(run, manifest)
            if assignment.threshold is not None:
                entry["threshold"], entry["rule"] = assignment.threshold, assignment.rule.value
            for load in run.sites:
                admin.assign(load.site, run.name, assignment)
            deployed.assignments[run.name] = assignment
        deployed.summary[run.name] = entry
    return deployed


def wait_until_serving(
    agent_urls: dict[str, str], expected: dict[str, set[str]], timeout: float = 90.0
) -> None:
    """Wait until every agent has installed (and probed) every feature assigned to it."""
    deadline = time.monotonic() + timeout
    pending = dict(expected)
    last: dict[str, Any] = {}
    while pending:
        for site in list(pending):
            try:
                state = httpx.get(agent_urls[site] + "/v1/state", timeout=5).json()
            except (httpx.HTTPError, ValueError):
                continue
            last[site] = state
            served = state.get("features", {})
            ready = {f for f, s in served.items() if s.get("version") is not None}
            if pending[site] <= ready:
                del pending[site]
            elif state.get("refused"):
                raise TierwiseError(f"edge agent {site} refused a package: {state['refused']}")
        if not pending:
            return
        if time.monotonic() > deadline:
            missing = {s: sorted(f) for s, f in pending.items()}
            raise TierwiseError(
                f"edge agents did not install their features within {timeout:.0f} s: "
                f"missing {missing}"
            )
        time.sleep(0.2)
