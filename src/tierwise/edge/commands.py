"""`tierwise edge --site S --cloud URL`: one site's agent as a process (registered in cli.py)."""

from __future__ import annotations

import os
from pathlib import Path

from tierwise.errors import UsageError

TOKEN_ENV = "TIERWISE_EDGE_TOKEN"


def read_token(token_file: Path | None) -> str:
    """The site token from a file (first line) or $TIERWISE_EDGE_TOKEN — never argv, which
    every user of the machine can read in the process list."""
    if token_file is not None:
        try:
            token = token_file.read_text("utf-8").strip().splitlines()[0].strip()
        except (OSError, IndexError):
            raise UsageError(f"--token-file {token_file}: cannot read a token from it") from None
        return token
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise UsageError(f"no site token: give --token-file FILE or set {TOKEN_ENV}")
    return token


def run_edge(
    site: str,
    cloud: str,
    token_file: Path | None,
    trust: list[Path],
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    durability: str | None,
    outbox_cap: int | None,
    drop_policy: str | None,
    drain_timeout: float | None,
    poll_interval: float | None,
    upload_interval: float | None,
    log_level: str,
) -> None:
    """Build the agent from options (and TIERWISE_EDGE_* variables) and serve until stopped."""
    from tierwise.edge.agent import EdgeAgent
    from tierwise.edge.http_link import HttpCloudLink
    from tierwise.edge.packages import SignedPackages
    from tierwise.edge.serve import serve
    from tierwise.edge.settings import EdgeSettings

    if not cloud.startswith(("http://", "https://")):
        raise UsageError(f"--cloud {cloud!r}: expected a URL like http://127.0.0.1:8000")
    for key in trust:
        if not key.is_file():
            raise UsageError(f"--trust {key}: no such public key file")
    settings = EdgeSettings.from_env(
        site=site,
        cloud_url=cloud,
        token=read_token(token_file),
        trusted_keys=tuple(trust) or None,
        data_dir=data_dir or Path(f"tierwise-edge-{site}"),
        host=host,
        port=port,
        durability=durability,
        outbox_cap_bytes=outbox_cap,
        drop_policy=drop_policy,
        drain_timeout_s=drain_timeout,
        poll_interval_s=poll_interval,
        upload_interval_s=upload_interval,
    )
    if not settings.trusted_keys:
        raise UsageError("no trusted key: give --trust PUBKEY (packages must be signed)")
    link = HttpCloudLink(settings.cloud_url, settings.token)
    agent = EdgeAgent(settings, link, SignedPackages(settings.trusted_keys))
    serve(agent, log_level=log_level)
