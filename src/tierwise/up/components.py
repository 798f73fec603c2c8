"""Start each kind of process of the continuum and know when it serves: cloud, WAN, agent, devices.

Every component is started the way an operator would start it — `tierwise cloud`,
`python -m tierwise.wan`, `tierwise edge`, plus the device process — as a child of the
supervisor, and is ready once it prints the line it prints when it serves.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tierwise.errors import LinkError
from tierwise.up.processes import Child, Supervisor, python_module
from tierwise.wan.conditions import WanConditions

STATUS_INTERVAL_S = "1"  # agents' status reports and metrics snapshots: a live dashboard
# Sites on this machine report every second: the dashboard calls one offline after three
# silent seconds, not the production default's fifteen (every cloud process of a run).
DASHBOARD_ENV = {"TIERWISE_CLOUD_SITE_OFFLINE_AFTER_S": "3"}
READY_TIMEOUT_S = 90.0  # a cold start on a busy 2-core machine imports for a while


@dataclass(frozen=True)
class Tokens:
    """The operator's token and one token per site, made for this run only."""

    admin: str
    sites: dict[str, str]

    @classmethod
    def issue(cls, sites: list[str]) -> Tokens:
        return cls(
            f"tw_{secrets.token_urlsafe(32)}", {s: f"tw_{secrets.token_urlsafe(32)}" for s in sites}
        )

    def write(self, run_dir: Path) -> Path:
        """The cloud's tokens file (hashed by the cloud on load), readable by us only."""
        path = run_dir / "tokens.json"
        path.write_text(json.dumps(self.sites), encoding="utf-8")
        path.chmod(0o600)
        # The operator's, for the dashboard's sign-in: in a file, never on the console.
        self.admin_file(run_dir).write_text(self.admin + "\n", encoding="utf-8")
        self.admin_file(run_dir).chmod(0o600)
        for site, token in self.sites.items():
            token_file = self.site_file(run_dir, site)
            token_file.write_text(token + "\n", encoding="utf-8")
            token_file.chmod(0o600)
        return path

    @staticmethod
    def admin_file(run_dir: Path) -> Path:
        return run_dir / "admin.token"

    @staticmethod
    def site_file(run_dir: Path, site: str) -> Path:
        return run_dir / f"{site}.token"


def start_cloud(
    sup: Supervisor, run_dir: Path, tokens: Tokens, trusted_key: Path, *extra: str
) -> Child:
    """One `tierwise cloud`; `extra` arguments such as `--db URL`."""
    child = sup.spawn(
        "cloud",
        cloud_argv(run_dir, tokens.write(run_dir), trusted_key, *extra),
        env={"TIERWISE_CLOUD_ADMIN_TOKEN": tokens.admin, **DASHBOARD_ENV},
    )
    cloud_serving(sup, child)
    wait_http(child, child.url + "/healthz")
    return child


def cloud_argv(run_dir: Path, tokens_file: Path, trusted_key: Path, *extra: str) -> list[str]:
    """`tierwise cloud` on any free port, its data in run_dir/cloud, the run's tokens loaded."""
    return python_module(
        "tierwise",
        "cloud",
        "--port",
        "0",
        "--data-dir",
        str(run_dir / "cloud"),
        "--tokens",
        str(tokens_file),
        "--trusted-key",
        str(trusted_key),
        *extra,
    )


def cloud_serving(sup: Supervisor, child: Child) -> None:
    """Wait for a cloud's "serving on" line; its URL becomes `child.url`."""
    found = sup.wait_ready(child, r"tierwise cloud: (http://\S+) \(", READY_TIMEOUT_S)
    child.url = found.group(1)


def start_wans(
    sup: Supervisor, cloud: Child, conditions: dict[str, WanConditions], seed: int
) -> dict[str, Child]:
    """One proxy per site in front of the cloud, started together."""
    target = cloud.url.removeprefix("http://")
    children = {}
    for i, (site, cond) in enumerate(conditions.items()):
        children[site] = sup.spawn(
            f"wan-{site}",
            python_module(
                "tierwise.wan",
                "--target",
                target,
                "--rtt",
                f"{cond.rtt_p50_s * 1000:.3f}ms/{cond.rtt_p99_s * 1000:.3f}ms",
                "--loss",
                repr(cond.loss),
                "--loss-mode",
                cond.loss_mode.value,
                "--seed",
                str(seed + i),
            ),
        )
    for child in children.values():
        child.url = sup.wait_ready(child, r"listening on (http://\S+)", READY_TIMEOUT_S).group(1)
    return children


def start_agents(
    sup: Supervisor,
    run_dir: Path,
    clouds: dict[str, str],
    trusted_key: Path,
    prefix: str = "edge",
    extra: dict[str, list[str]] | None = None,
) -> dict[str, Child]:
    """`tierwise edge` per site (its cloud URL: the site's WAN proxy), started together;
    `extra` adds arguments per site (its MQTT broker). An agent on a broker is ready once it
    is subscribed there too."""
    children = {}
    for site, cloud_url in clouds.items():
        name = f"{prefix}-{site}"
        children[site] = sup.spawn(
            name,
            python_module(
                "tierwise",
                "edge",
                "--site",
                site,
                "--cloud",
                cloud_url,
                "--token-file",
                str(Tokens.site_file(run_dir, site)),
                "--trust",
                str(trusted_key),
                "--data-dir",
                str(run_dir / name),
                "--port",
                "0",
                "--poll-interval",
                "0.5",
                "--drain-timeout",
                "5",
                *(extra or {}).get(site, []),
            ),
            env={"TIERWISE_EDGE_STATUS_INTERVAL_S": STATUS_INTERVAL_S},
        )
    for site, child in children.items():
        pattern = rf"edge agent {site} serving on (http://\S+)"
        child.url = sup.wait_ready(child, pattern, READY_TIMEOUT_S).group(1)
        if "--mqtt" in (extra or {}).get(site, []):
            sup.wait_ready(child, rf"edge agent {site} answering MQTT on", READY_TIMEOUT_S)
    return children


def start_devices(sup: Supervisor, run_dir: Path, site: str, config: dict[str, Any]) -> Child:
    path = run_dir / f"devices-{site}.json"
    path.write_text(json.dumps(config, default=str), encoding="utf-8")
    return sup.spawn(f"devices-{site}", python_module("tierwise.up.devices", str(path)))


def wan_stats(child: Child) -> dict[str, Any]:
    """The proxy's statistics: the JSON line it prints when it stops."""
    try:
        lines = child.log.read_text("utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    for line in reversed(lines):
        if line.startswith("{"):
            try:
                found: dict[str, Any] = json.loads(line)
            except ValueError:
                continue
            return found
    return {}


def wait_http(child: Child, url: str, timeout: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if not child.alive() or time.monotonic() > deadline:
            raise LinkError(f"{child.name}: {url} did not answer: {child.tail()}")
        time.sleep(0.05)
