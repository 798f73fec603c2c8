"""WAN bytes per second of an idle site: deployment polling vs long-polling, side by side.

    .venv/bin/python benchmarks/idle_site_bytes.py [--window 40]

One real `tierwise cloud` (SQLite) and, for each mode in turn, one real `tierwise edge` agent
with one feature deployed and no device traffic, its cloud link through a byte-counting TCP
proxy on loopback (`tierwise.wan`, no impairment). After the agent has installed its
package, every byte crossing the proxy in either direction during `--window` seconds is
counted (HTTP bytes: TCP/IP headers and TLS are not in it). Modes:

- poll: the agent asks for its deployment every 2 s (`--deployment-wait 0`), as before;
- long-poll: the cloud holds an unchanged poll up to 25 s (the agent's default now);
- floor: no deployment polls after the first (`--poll-interval 3600 --deployment-wait 0`):
  what is left is the status report and the metrics snapshot every 5 s, which neither
  polling mode changes.

Goal (issue 14): the ~1 KB/s per idle site that deployment polls cost goes away.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' shared helpers

from tests.edge.support import (  # noqa: E402
    FEATURE,
    SITE,
    AgentProcess,
    CloudProcess,
    build_package,
)
from tests.package.support import make_keys  # noqa: E402

from tierwise.spec.tiers import Placement  # noqa: E402
from tierwise.wan import WanConditions, WanProxy  # noqa: E402
from tierwise.wan.thread import ProxyThread  # noqa: E402
from tierwise.wire import FeatureAssignment  # noqa: E402

MODES = {
    "poll every 2 s": ("--poll-interval", "2", "--deployment-wait", "0"),
    "long-poll 25 s": ("--poll-interval", "2", "--deployment-wait", "25"),
    "floor (no polls)": ("--poll-interval", "3600", "--deployment-wait", "0"),
}


def measure(
    cloud: CloudProcess, keys_public: Path, work: Path, flags: tuple[str, ...], window: float
) -> tuple[float, float]:
    """(bytes/s up, bytes/s down) of one idle agent over `window` seconds."""
    target = urlsplit(cloud.url)
    proxy = WanProxy((target.hostname or "127.0.0.1", target.port or 80), WanConditions())
    with ProxyThread(proxy) as wan:
        agent = AgentProcess(wan.url, work, keys_public, extra=flags).start()
        try:
            agent.wait_for("its package", lambda s: bool(s.get("deployment_etag")), timeout=60)
            time.sleep(1.0)  # the first status report after the install has gone out
            up, down = wan.stats.bytes_up, wan.stats.bytes_down
            time.sleep(window)
            return (wan.stats.bytes_up - up) / window, (wan.stats.bytes_down - down) / window
        finally:
            agent.terminate()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=40.0, help="seconds counted per mode")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tierwise-idle-") as tmp:
        root = Path(tmp)
        keys = make_keys(root / "keys")
        with CloudProcess(root / "cloud", keys.public) as cloud:
            cloud.admin.upload_package(build_package(root / "pkg", keys.private, "digits", 1))
            cloud.admin.assign(
                SITE,
                FEATURE,
                FeatureAssignment(
                    package="digits", version=1, placement=Placement.EDGE, deadline_ms=100
                ),
            )
            rates = {
                mode: measure(cloud, keys.public, root / f"edge-{i}", flags, args.window)
                for i, (mode, flags) in enumerate(MODES.items())
            }
    floor = sum(rates["floor (no polls)"])
    before = sum(rates["poll every 2 s"])
    print(f"idle site, one feature, {args.window:g} s counted per mode (HTTP bytes on the WAN)")
    header = ("mode", "up B/s", "down B/s", "total B/s", "polls B/s", "vs poll")
    print(f"{header[0]:<18}" + "".join(f"{h:>11}" for h in header[1:]))
    for mode, (up, down) in rates.items():
        total = up + down
        polls = max(total - floor, 0.0)  # what deployment polling itself costs
        cells = (
            f"{up:.0f}",
            f"{down:.0f}",
            f"{total:.0f}",
            f"{polls:.0f}",
            f"{total / before:.2f}x",
        )
        print(f"{mode:<18}" + "".join(f"{c:>11}" for c in cells))
    print("polls B/s = total minus the floor: what deployment polling itself costs")


if __name__ == "__main__":
    main()
