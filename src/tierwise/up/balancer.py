"""Several `tierwise cloud` replicas on one PostgreSQL, behind HAProxy: one URL for them all.

HAProxy (Debian's `haproxy` package) rather than nginx: its open-source build checks each
replica actively (`option httpchk GET /healthz`, so a dead replica leaves the rotation within
about two seconds even when no request happens to hit it; nginx's open-source build only
notices failures passively, on live traffic), balances by open connections (`leastconn`:
held deployment long-polls pile up as open connections, round-robin would ignore them), and
re-sends a request whose connection failed or that got no answer to another replica
(`retry-on conn-failure empty-response`; every edge call it may repeat — telemetry by
(site, stream, seq), status reports, deployment reads — is idempotent).
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from tierwise.errors import UsageError
from tierwise.up.components import DASHBOARD_ENV, Tokens, cloud_argv, cloud_serving, wait_http
from tierwise.up.processes import Child, Supervisor

# Above the cloud's longest long-poll (60 s): a held poll must not be cut by the balancer.
SERVER_TIMEOUT_S = 90
CHECK_INTERVAL_S = 1


def haproxy_config(port: int, replicas: dict[str, str]) -> str:
    """The configuration: listen on 127.0.0.1:`port`, spread over `replicas` {name: url}."""
    servers = "\n".join(
        f"    server {name} {url.removeprefix('http://')} check" for name, url in replicas.items()
    )
    return f"""# written by tierwise up: {len(replicas)} cloud replicas behind one address
global
    maxconn 4096  # fits the default 20,000 open files (two per proxied connection)

defaults
    mode http
    timeout connect 5s
    timeout client {SERVER_TIMEOUT_S}s
    timeout server {SERVER_TIMEOUT_S}s
    timeout http-keep-alive 75s
    retries 2
    option redispatch
    retry-on conn-failure empty-response

frontend cloud
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance leastconn
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter {CHECK_INTERVAL_S}s fall 2 rise 1
{servers}
"""


def start_cloud_replicas(
    sup: Supervisor,
    run_dir: Path,
    tokens: Tokens,
    trusted_key: Path,
    replicas: int,
    db_url: str,
    db_schema: str | None = None,
) -> tuple[list[Child], Child]:
    """`replicas` clouds on `db_url` (sharing one data directory for package archives) and
    HAProxy in front of them; returns the replicas and the balancer, whose `url` is the
    cloud's address for everyone else."""
    env = {"TIERWISE_CLOUD_ADMIN_TOKEN": tokens.admin, **DASHBOARD_ENV}
    if db_schema is not None:
        env["TIERWISE_CLOUD_DB_SCHEMA"] = db_schema
    haproxy = shutil.which("haproxy")
    if haproxy is None:
        raise UsageError("--cloud-replicas needs HAProxy: apt-get install haproxy")
    tokens_file = tokens.write(run_dir)
    children = [
        sup.spawn(
            f"cloud-{i}",
            cloud_argv(
                run_dir, tokens_file, trusted_key, "--db", db_url, "--replica", f"cloud-{i}"
            ),
            env=env,
        )
        for i in range(1, replicas + 1)
    ]
    for child in children:
        cloud_serving(sup, child)
    port = _free_port()
    config = run_dir / "haproxy.cfg"
    config.write_text(haproxy_config(port, {c.name: c.url for c in children}), encoding="utf-8")
    balancer = sup.spawn("balancer", [haproxy, "-db", "-f", str(config)])
    balancer.url = f"http://127.0.0.1:{port}"
    wait_http(balancer, balancer.url + "/healthz")
    return children, balancer


def _free_port() -> int:
    """A port free now on 127.0.0.1 (HAProxy cannot be told to take any and say which)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
