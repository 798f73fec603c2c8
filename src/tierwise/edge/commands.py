"""`tierwise edge --site S --cloud URL`: one site's agent as a process.

Importing this module costs only typer; the agent (FastAPI, ONNX Runtime) loads inside the
command. `register(app)` adds it to the main CLI.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from tierwise.errors import UsageError

TOKEN_ENV = "TIERWISE_EDGE_TOKEN"
MQTT_PASSWORD_ENV = "TIERWISE_EDGE_MQTT_PASSWORD"


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


def register(app: typer.Typer) -> None:
    """Add `edge` to the `tierwise` app."""
    app.command("edge")(edge)


def edge(
    site: Annotated[str, typer.Option(help="this site's name, as the cloud knows it")],
    cloud: Annotated[str, typer.Option(help="the cloud service URL, e.g. http://127.0.0.1:8000")],
    token_file: Annotated[
        Path | None, typer.Option(help="file holding the site token (else $TIERWISE_EDGE_TOKEN)")
    ] = None,
    trust: Annotated[
        list[Path] | None, typer.Option(help="public key packages must be signed by (repeatable)")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="outbox and packages (default ./tierwise-edge-SITE)")
    ] = None,
    host: Annotated[str | None, typer.Option(help="address devices connect to")] = None,
    port: Annotated[int | None, typer.Option(help="port devices connect to (0: any free)")] = None,
    durability: Annotated[
        str | None, typer.Option(help="outbox commits survive: 'process' or 'power' (fsync)")
    ] = None,
    outbox_cap: Annotated[int | None, typer.Option(help="outbox byte cap")] = None,
    drop_policy: Annotated[
        str | None, typer.Option(help="when the outbox is full: drop-oldest or drop-newest")
    ] = None,
    drain_timeout: Annotated[float | None, typer.Option(help="seconds to flush at stop")] = None,
    poll_interval: Annotated[
        float | None, typer.Option(help="seconds between polls when the cloud does not hold them")
    ] = None,
    deployment_wait: Annotated[
        float | None,
        typer.Option(help="seconds the cloud may hold an unchanged deployment poll (0: no wait)"),
    ] = None,
    upload_interval: Annotated[
        float | None, typer.Option(help="seconds a telemetry batch may wait to fill")
    ] = None,
    field_rows: Annotated[
        int | None,
        typer.Option(
            help="labelled rows kept per feature in DATA_DIR/field for retraining here (0: none)"
        ),
    ] = None,
    mqtt: Annotated[
        str | None,
        typer.Option(
            help="the site's MQTT broker devices publish to: mqtt://HOST[:PORT], mqtts://"
        ),
    ] = None,
    mqtt_username: Annotated[str | None, typer.Option(help="username at the MQTT broker")] = None,
    mqtt_password_file: Annotated[
        Path | None,
        typer.Option(help=f"file holding the MQTT password (else ${MQTT_PASSWORD_ENV})"),
    ] = None,
    mqtt_ca_file: Annotated[
        Path | None, typer.Option(help="mqtts: the CA that signed the broker's certificate")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
) -> None:
    """Run one site's edge agent: serve devices, follow the deployment, store and forward."""
    # Options left out fall back to TIERWISE_EDGE_* variables, then to EdgeSettings' defaults.
    from tierwise.edge.agent import EdgeAgent
    from tierwise.edge.http_link import HttpCloudLink
    from tierwise.edge.packages import SignedPackages
    from tierwise.edge.serve import serve
    from tierwise.edge.settings import EdgeSettings

    if not cloud.startswith(("http://", "https://")):
        raise UsageError(f"--cloud {cloud!r}: expected a URL like http://127.0.0.1:8000")
    mqtt_password = _mqtt_password(mqtt, mqtt_password_file, mqtt_ca_file)
    trusted = tuple(trust or ())
    for key in trusted:
        if not key.is_file():
            raise UsageError(f"--trust {key}: no such public key file")
    settings = EdgeSettings.from_env(
        site=site,
        cloud_url=cloud,
        token=read_token(token_file),
        trusted_keys=trusted or None,
        data_dir=data_dir or Path(f"tierwise-edge-{site}"),
        host=host,
        port=port,
        durability=durability,
        outbox_cap_bytes=outbox_cap,
        drop_policy=drop_policy,
        drain_timeout_s=drain_timeout,
        poll_interval_s=poll_interval,
        deployment_wait_s=deployment_wait,
        upload_interval_s=upload_interval,
        field_rows=field_rows,
        mqtt_url=mqtt,
        mqtt_username=mqtt_username,
        mqtt_password=mqtt_password,
        mqtt_ca_file=mqtt_ca_file,
    )
    if not settings.trusted_keys:
        raise UsageError("no trusted key: give --trust PUBKEY (packages must be signed)")
    link = HttpCloudLink(settings.cloud_url, settings.token)
    agent = EdgeAgent(settings, link, SignedPackages(settings.trusted_keys))
    serve(agent, log_level=log_level)


def _mqtt_password(url: str | None, password_file: Path | None, ca_file: Path | None) -> str | None:
    """The MQTT password from --mqtt-password-file (None: $TIERWISE_EDGE_MQTT_PASSWORD, read
    with the other settings); the URL is checked here so a bad one fails before start-up."""
    if url is None:
        if password_file is not None or ca_file is not None:
            raise UsageError("--mqtt-password-file and --mqtt-ca-file need --mqtt URL")
        return None
    from tierwise.edge.mqtt_wire import BrokerAddress

    broker = BrokerAddress.parse(url)
    if broker.password is not None:
        raise UsageError(
            f"--mqtt {broker.url()}: no password in the URL (every user of the machine can "
            f"read it in the process list); give --mqtt-password-file FILE or ${MQTT_PASSWORD_ENV}"
        )
    if ca_file is not None and not ca_file.is_file():
        raise UsageError(f"--mqtt-ca-file {ca_file}: no such file")
    if password_file is None:
        return None
    try:
        return password_file.read_text("utf-8").strip().splitlines()[0].strip()
    except (OSError, IndexError):
        raise UsageError(f"--mqtt-password-file {password_file}: cannot read a password") from None
