"""`tierwise cloud`: serve the cloud service; `cloud token`: issue access tokens; `cloud migrate`.

Thin shells over `tierwise.cloud`: options become a `Settings` (on top of TIERWISE_CLOUD_*
variables), heavy imports happen inside the commands so `tierwise --help` stays fast.
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from tierwise.errors import UsageError

if TYPE_CHECKING:
    import uvicorn

    from tierwise.cloud.changes import DeploymentChanges

cloud_app = typer.Typer(
    help="Run the cloud service (registry, rollouts, cloud inference, telemetry).",
    invoke_without_command=True,
    no_args_is_help=False,
)


def register(app: typer.Typer) -> None:
    """Add `cloud` and `cloud token` to the `tierwise` app."""
    app.add_typer(cloud_app, name="cloud")


DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="SQLAlchemy URL: sqlite:///path (default <data-dir>/cloud.db) or "
        "postgresql+psycopg://user@host:5432/db",
        show_default=False,
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="where the database and package archives live"),
]


@cloud_app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (0: any free port)")] = 8000,
    db: DbOption = None,
    data_dir: DataDirOption = None,
    tokens: Annotated[
        Path | None,
        typer.Option("--tokens", help='JSON {"site": "token" | "sha256:<hex>"} to load'),
    ] = None,
    trusted_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--trusted-key", help="public key (or dir of *.pub) packages must be signed by"
        ),
    ] = None,
    max_body_bytes: Annotated[
        int | None, typer.Option(help="largest request body (package uploads excepted)")
    ] = None,
    max_package_bytes: Annotated[int | None, typer.Option(help="largest package upload")] = None,
    replica: Annotated[
        str | None,
        typer.Option(help="this replica's name in the Tierwise-Replica header (default host-pid)"),
    ] = None,
) -> None:
    """Serve the cloud API with uvicorn until Ctrl-C or SIGTERM."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from tierwise.cloud import Settings, create_app
    from tierwise.cloud.auth import known_sites

    settings = Settings.from_env(
        db_url=db,
        data_dir=data_dir,
        tokens_file=tokens,
        trusted_keys=tuple(trusted_key) if trusted_key else None,
        max_body_bytes=max_body_bytes,
        max_package_bytes=max_package_bytes,
        replica=replica,
    )
    if port < 0 or port > 65535:
        raise UsageError(f"--port {port}: must be 0-65535")
    sock = _bind(host, port)
    app = create_app(settings)
    log = logging.getLogger("tierwise.cloud")
    if settings.admin_token_sha256 is None and not _has_admin_token(app.state.cloud.db):
        log.warning("no operator token: create one with `tierwise cloud token --admin`")
    if not settings.trusted_keys:
        log.warning("no --trusted-key: every package upload will be refused")
    bound_port = sock.getsockname()[1]
    sys.stderr.write(_migration_line(app.state.cloud.db))
    sys.stderr.write(
        f"tierwise cloud: http://{host}:{bound_port} (db {settings.database_url}, "
        f"{len(known_sites(app.state.cloud.db))} sites with tokens)\n"
    )
    sys.stderr.flush()
    config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it to the handler it found:
    # make that handler a clean exit, so a supervisor sees 0 for an orderly stop.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    # What start-up made (FastAPI, SQLAlchemy, pydantic: ~10^5 objects) lives forever: keep it
    # out of every later full GC pass, each of which otherwise stalls a request by ~100 ms
    # (benchmarks/dashboard_endpoints.py). The edge agent does the same.
    gc.freeze()
    _server(config, app.state.cloud.changes).run(sockets=[sock])


@cloud_app.command()
def token(
    site: Annotated[str | None, typer.Option("--site", help="the site the token is for")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="an operator token instead")] = False,
    revoke: Annotated[bool, typer.Option("--revoke", help="forget every token of --site")] = False,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Issue a token (printed once, stored hashed), or revoke a site's tokens."""
    from tierwise.cloud import Settings
    from tierwise.cloud.auth import issue_token, revoke_site_tokens
    from tierwise.cloud.db import open_database
    from tierwise.rules.clock import WallClock

    if admin == (site is not None):
        raise UsageError("give exactly one of --site SITE or --admin")
    if revoke and site is None:
        raise UsageError("--revoke needs --site SITE")
    settings = Settings.from_env(db_url=db, data_dir=data_dir)
    database = open_database(settings.database_url, settings.db_schema)
    try:
        if revoke:
            assert site is not None
            count = revoke_site_tokens(database, site)
            sys.stderr.write(f"revoked {count} token(s) of site {site}\n")
            return
        sys.stdout.write(issue_token(database, site, WallClock().now()) + "\n")
    finally:
        database.dispose()


@cloud_app.command()
def migrate(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Bring the database schema to this tierwise's newest migration, then exit.

    Every `tierwise cloud` does this at start (one replica at a time, under a lock); run it
    alone to migrate before a rolling upgrade, or to see where a database stands.
    """
    from tierwise.cloud import Settings
    from tierwise.cloud.db import open_database

    settings = Settings.from_env(db_url=db, data_dir=data_dir)
    database = open_database(settings.database_url, settings.db_schema)
    database.dispose()
    sys.stderr.write(_migration_line(database))


def _migration_line(db: object) -> str:
    """One line for the operator: where the schema stands and what this start changed."""
    from tierwise.cloud.db import Database

    assert isinstance(db, Database)
    assert db.migration is not None
    m = db.migration
    done = f"applied {', '.join(m.applied)}" if m.applied else "nothing to apply"
    return f"tierwise cloud: database schema at migration {m.head} ({done})\n"


def _server(config: uvicorn.Config, changes: DeploymentChanges) -> uvicorn.Server:
    """uvicorn's server, releasing held deployment polls as soon as a stop is asked for."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # uvicorn waits for requests in flight before it stops; a held poll would make
            # that wait last its whole `wait`. Answer them (304) now instead.
            changes.release()
            super().handle_exit(sig, frame)

    return Server(config)


def _exit_cleanly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


LISTEN_BACKLOG = 2048  # uvicorn's own default


def _bind(host: str, port: int) -> socket.socket:
    """Bind before building the app, so a busy port is one clear line, not a traceback."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: {exc.strerror}") from None
    family, _type, _proto, _name, address = infos[0]
    # IPPROTO_TCP so that asyncio turns Nagle off on every accepted socket; with proto 0 it
    # does not, and without uvloop each answer stalled ~40 ms (see tierwise.edge.serve.bind).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise UsageError(f"--host {host} --port {port}: {exc.strerror}") from None
    # Listening now, not when uvicorn starts: the address line goes out before the server
    # runs, and whoever reads it may connect at once (queued until accepted, not refused).
    sock.listen(LISTEN_BACKLOG)
    sock.set_inheritable(True)
    return sock


def _has_admin_token(db: object) -> bool:
    import sqlalchemy as sa

    from tierwise.cloud.db import Database, tokens

    assert isinstance(db, Database)
    with db.read() as conn:
        return (
            conn.execute(sa.select(tokens.c.role).where(tokens.c.role == "admin")).first()
            is not None
        )
