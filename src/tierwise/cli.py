"""The `tierwise` command: one sub-command per verb, each a thin shell over the library."""

from __future__ import annotations

import logging

import typer

from tierwise.console import err_console
from tierwise.errors import TierwiseError, UsageError

app = typer.Typer(
    name="tierwise",
    help="Decide where each piece of your AI should live — device, edge or cloud — and run it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


from tierwise.plan.commands import register as register_plan  # noqa: E402

register_plan(app)  # plan

from tierwise.spec.commands import register as register_spec  # noqa: E402

register_spec(app)  # schema, validate


from tierwise.simulate.commands import register as register_simulate  # noqa: E402

register_simulate(app)  # simulate

from tierwise.edge.commands import register as register_edge  # noqa: E402

register_edge(app)  # edge

from tierwise.up.commands import register as register_up  # noqa: E402

register_up(app)  # up

from tierwise.cloud.commands import cloud_app  # noqa: E402  (light: typer only)

app.add_typer(cloud_app, name="cloud")

from tierwise.package.commands import register as register_package  # noqa: E402  (typer only)

register_package(app)  # package, verify, install, keys new

from tierwise.federate.commands import register as register_federate  # noqa: E402  (typer only)

register_federate(app)  # federate

from tierwise.scenarios.commands import register as register_scenarios  # noqa: E402

register_scenarios(app)  # scenario list/train


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
