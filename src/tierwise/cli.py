"""The `tierwise` command: the app, each verb's commands added by its `register(app)`, `main`.

Every verb lives in its package's `commands.py`, which imports typer, rich and a few small
modules of ours at the top and the rest inside its commands: starting `tierwise` loads no
FastAPI, ONNX Runtime, scikit-learn or Flower (tests/test_cli.py checks), so `--help` stays
fast and a gateway with only `tierwise[edge]` can run `tierwise edge`.
"""

from __future__ import annotations

import logging

import typer

from tierwise.cloud import commands as cloud_commands
from tierwise.console import err_console
from tierwise.edge import commands as edge_commands
from tierwise.errors import TierwiseError, UsageError
from tierwise.federate import commands as federate_commands
from tierwise.package import commands as package_commands
from tierwise.plan import commands as plan_commands
from tierwise.scenarios import commands as scenarios_commands
from tierwise.simulate import commands as simulate_commands
from tierwise.spec import commands as spec_commands
from tierwise.up import commands as up_commands

app = typer.Typer(
    name="tierwise",
    help="Decide where each piece of your AI should live — device, edge or cloud — and run it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


# `tierwise --help` lists the commands in the order they are added here, then the groups
# (cloud, keys, scenario) in theirs.
plan_commands.register(app)  # plan
spec_commands.register(app)  # schema, validate
simulate_commands.register(app)  # simulate
edge_commands.register(app)  # edge
up_commands.register(app)  # up
cloud_commands.register(app)  # cloud, cloud token
package_commands.register(app)  # package, verify, install, keys new
federate_commands.register(app)  # federate
scenarios_commands.register(app)  # scenario list, scenario train


def main() -> None:
    """Entry point: run the app, turning every TierwiseError into its message and exit code."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(standalone_mode=False)
    except TierwiseError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            err_console.print(f"error: {line}", markup=False, highlight=False, soft_wrap=True)
        raise SystemExit(exc.exit_code) from None
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except (typer.Abort, KeyboardInterrupt):
        err_console.print("aborted")
        raise SystemExit(130) from None
    except Exception as exc:  # click's own usage errors
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            raise SystemExit(UsageError.exit_code) from None
        raise


if __name__ == "__main__":
    main()
