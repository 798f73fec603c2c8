"""Issue 11's acceptance in a real browser: the system Chromium, driven by Playwright.

A real `tierwise cloud` process, two real `tierwise edge` agents (each behind its own WAN
proxy) and a device thread per site sending digits; the test is the operator at the page.
Each step is saved as a screenshot under build/dashboard-screenshots/. Intervals are short
(status every 0.3 s, offline after 1.5 s of silence) so the whole story takes seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.edge.support import AgentProcess, CloudProcess, build_package, digits
from tests.package.support import make_keys

from tierwise.spec.tiers import Placement
from tierwise.wan import OutageMode, ProxyThread, WanConditions, WanProxy
from tierwise.wire import FeatureAssignment, RolloutRequest

from .browser import chromium, screenshot

SITES = {"site-a": "tw_site-token-site-a-dashboard", "site-b": "tw_site-token-site-b-dashboard"}
ADMIN = "tw_admin-token-for-edge-tests"  # tests.edge.support's CloudProcess admin token
PACKAGE, FEATURE = "digits-edge", "digits"
DEADLINE_MS = 250.0
WAIT_S = 30.0
AGENT_ENV = {
    "TIERWISE_EDGE_STATUS_INTERVAL_S": "0.3",
    "TIERWISE_EDGE_UPLOAD_INTERVAL_S": "0.2",
    "TIERWISE_EDGE_POLL_INTERVAL_S": "0.3",
}
pytestmark = pytest.mark.slow
# Elements reaching past the right edge of the screen, outside a scroll box of their own.
WIDER_THAN_SCREEN = """
[...document.querySelectorAll("body *")]
  .filter((e) => !e.closest(".scroll") && e.getBoundingClientRect().right > window.innerWidth + 1)
  .map((e) => e.tagName + "." + e.className + " " + Math.round(e.getBoundingClientRect().right))
"""


class Devices:
    """One thread per site posting a digit every 40 ms while `on` is set."""

    def __init__(self, urls: dict[str, str]) -> None:
        self.on = threading.Event()
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(url,), daemon=True) for url in urls.values()
        ]

    def _run(self, url: str) -> None:
        x, _ = digits()
        with httpx.Client(base_url=url, timeout=5) as client:
            i = 0
            while not self.stop.is_set():
                if self.on.wait(0.05):
                    row = [float(v) for v in x[i % len(x)]]
                    client.post(f"/v1/predict/{FEATURE}", json={"inputs": [row]})
                    i += 1
                    time.sleep(0.04)

    def __enter__(self) -> Devices:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(5)


@dataclass
class Continuum:
    cloud: CloudProcess
    wans: dict[str, ProxyThread]
    agents: dict[str, AgentProcess]
    devices: Devices
    root: Path
    urls_seen: list[str] = field(default_factory=list)


@pytest.fixture
def continuum(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Continuum]:
    monkeypatch.setenv("TIERWISE_CLOUD_SITE_OFFLINE_AFTER_S", "1.5")
    monkeypatch.setenv("TIERWISE_CLOUD_EVALUATE_INTERVAL_S", "0.2")
    keys = make_keys(tmp_path)
    with ExitStack() as stack:
        cloud = stack.enter_context(CloudProcess(tmp_path / "cloud", keys.public, sites=SITES))
        for version in (1, 2):
            pkg = build_package(tmp_path / f"pkg-{version}", keys.private, PACKAGE, version)
            cloud.admin.upload_package(pkg)
        host, port = cloud.url.removeprefix("http://").rsplit(":", 1)
        wans, agents = {}, {}
        for site, token in SITES.items():
            cloud.admin.assign(
                site,
                FEATURE,
                FeatureAssignment(
                    package=PACKAGE, version=1, placement=Placement.EDGE, deadline_ms=DEADLINE_MS
                ),
            )
            proxy = WanProxy((host, int(port)), WanConditions(outage_mode=OutageMode.REFUSE))
            wans[site] = stack.enter_context(ProxyThread(proxy))
            agent = AgentProcess(
                wans[site].url, tmp_path / site, keys.public, site=site, token=token, env=AGENT_ENV
            )
            agents[site] = agent.start()
            stack.callback(agent.terminate)
        for agent in agents.values():
            agent.wait_for("its package", lambda s: s["features"].get(FEATURE, {}).get("version"))
        devices = stack.enter_context(Devices({s: a.url for s, a in agents.items()}))
        yield Continuum(cloud, wans, agents, devices, tmp_path)


# The plan, as far as cost reads it: 30 $/month fixed (gateways) + 10 of calls at 10 requests/s
PLAN = {
    "spec": "two-sites",
    "strategies": {
        "cloud-only": {"cost": 100.0, "features": [{"feature": FEATURE, "cost": 100.0}]},
        "tierwise": {"cost": 40.0, "features": [{"feature": FEATURE, "cost": 10.0}]},
    },
    "requests_per_s": {FEATURE: 10.0},
}


def until(check: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Poll `check` (real time: the processes run on the wall clock) until it is truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"the page never showed {what}")
        time.sleep(0.1)


def site_row(page: Any, site: str) -> Any:
    return page.locator(f'#sites tr[data-site="{site}"]')


def outbox_of(page: Any, site: str) -> int | None:
    value = page.locator(f'article[data-site="{site}"] [data-outbox]').get_attribute("data-outbox")
    return int(value) if value else None


def estimated(page: Any, site: str) -> bool:
    marked = page.locator(f'article[data-site="{site}"] [data-outbox]').get_attribute(
        "data-estimated"
    )
    return marked == "true"


def p99_chart(page: Any, site: str) -> Any:
    return page.locator(f'article[data-site="{site}"] [data-feature="{FEATURE}"] svg.chart').first


def test_operator_watches_the_fleet_through_an_outage_and_a_rollout(continuum: Continuum) -> None:
    c = continuum
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("request", lambda request: c.urls_seen.append(request.url))
        page.goto(c.cloud.url + "/dashboard")

        # A wrong token: refused, back at the login form.
        page.get_by_label("Access token").fill("tw_not-a-token-of-this-cloud")
        page.get_by_role("button", name="Sign in").click()
        until(lambda: "refused" in page.locator("#login-error").inner_text(), "a refusal")
        assert page.locator("#board").is_hidden()
        screenshot(page, "01-login-refused")

        # The operator's token: both sites, online, running version 1.
        page.get_by_label("Access token").fill(ADMIN)
        page.get_by_role("button", name="Sign in").click()
        for site in SITES:
            until(lambda site=site: site_row(page, site).get_attribute("data-online") == "true",
                  f"{site} online")  # fmt: skip
            until(lambda site=site: f"{FEATURE}: v1 / v1" in site_row(page, site).inner_text(),
                  f"{site} running v1")  # fmt: skip
        screenshot(page, "02-fleet")

        # Traffic flows: the p99 chart of each site fills and moves.
        c.devices.on.set()
        chart = p99_chart(page, "site-a")
        until(lambda: int(chart.get_attribute("data-points") or 0) >= 3, "p99 points")
        first = chart.locator("polyline.p99").get_attribute("points")
        until(lambda: chart.locator("polyline.p99").get_attribute("points") != first,
              "the p99 line move")  # fmt: skip
        assert "budget 250" in (chart.get_attribute("aria-label") or "")
        screenshot(page, "03-live-traffic")

        # The plan's cost per strategy, beside the same at the traffic the sites measure.
        c.cloud.admin.put_plan(PLAN)
        cost = page.locator('#cost tbody tr[data-strategy="tierwise"] td[data-measured]')
        until(lambda: cost.count() == 1 and float(cost.get_attribute("data-measured")) > 30,
              "the cost at measured traffic")  # fmt: skip
        assert page.locator('#cost tbody tr[data-strategy="cloud-only"]').count() == 1
        screenshot(page, "03b-cost")

        # Cut site-b's WAN: it goes offline and its outbox (estimated) grows.
        c.wans["site-b"].set_down(True)
        until(lambda: site_row(page, "site-b").get_attribute("data-online") == "false",
              "site-b offline")  # fmt: skip
        assert site_row(page, "site-a").get_attribute("data-online") == "true"
        low = until(lambda: outbox_of(page, "site-b"), "site-b's outbox")
        peak = until(lambda: (o := outbox_of(page, "site-b")) and o > low + 20 and o,
                     "site-b's outbox grow")  # fmt: skip
        assert estimated(page, "site-b")
        screenshot(page, "04-site-b-offline")

        # Heal: back online, and the backlog drains.
        c.wans["site-b"].set_down(False)
        until(lambda: site_row(page, "site-b").get_attribute("data-online") == "true",
              "site-b online again")  # fmt: skip
        until(lambda: not estimated(page, "site-b")
              and (o := outbox_of(page, "site-b")) is not None and o < min(peak, 20),
              "site-b's outbox drain")  # fmt: skip
        depths = page.locator('article[data-site="site-b"] .outbox svg.chart')
        assert int(depths.get_attribute("data-points") or 0) > 0
        screenshot(page, "05-site-b-drained")

        # A rollout of version 2 with site-a as canary: the page shows the canary stage.
        c.cloud.admin.start_rollout(
            RolloutRequest(
                package=PACKAGE, version=2, canary_sites=["site-a"],
                min_canary_requests=10**6, bake_seconds=3600,
            )
        )  # fmt: skip
        rollout = page.locator("#rollouts tbody tr").first
        until(lambda: rollout.get_attribute("data-stage") == "canary", "the canary stage")
        until(lambda: f"{FEATURE}: v2 / v2" in site_row(page, "site-a").inner_text(),
              "site-a installing v2")  # fmt: skip
        assert f"{FEATURE}: v1 / v1" in site_row(page, "site-b").inner_text()
        screenshot(page, "06-rollout-canary")

        # Phone width: nothing wider than the screen but the tables' own scroll boxes.
        page.set_viewport_size({"width": 390, "height": 844})
        wider = page.evaluate(WIDER_THAN_SCREEN)
        assert wider == [], wider
        screenshot(page, "07-phone")

        # A site's token sees its own site only.
        page.set_viewport_size({"width": 1280, "height": 900})
        page.get_by_role("button", name="Sign out").click()
        page.get_by_label("Access token").fill(SITES["site-b"])
        page.get_by_role("button", name="Sign in").click()
        assert page.locator("#sites tbody tr").count() == 0  # nothing left from the operator
        until(lambda: site_row(page, "site-b").count() == 1, "site-b for its own token")
        assert site_row(page, "site-a").count() == 0
        assert page.locator('article[data-site="site-a"]').count() == 0
        assert page.locator("#cost-section").is_hidden()  # cost is the operator's
        screenshot(page, "08-site-token")

    secrets = [ADMIN, *SITES.values()]
    assert not [u for u in c.urls_seen if any(s in u for s in secrets)]
